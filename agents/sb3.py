"""Any registered scorer as a stable-baselines3 actor-critic policy.

    from stable_baselines3 import PPO
    from agents.sb3 import ScorerPolicy

    model = PPO(ScorerPolicy, env, policy_kwargs={"agent": "joint", "env_id": "SetClassic27-v0"})

The action logits over the keys are the scorer's own logits, with nothing on top: a
categorical distribution over keys (``action_mode="key"``) or one Bernoulli per key
(``"subset"``). So ``policy.scorer`` is an ordinary scorer that the evaluation harness and
the checkpoints treat like a supervised one.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from agents.base import make_env, make_with_preset, scorer_config


class ScorerPolicy(ActorCriticPolicy):
    """Actor: a registered scorer's logits over the keys. Critic: a small value head.

    Policy kwargs: ``agent`` (a registered scorer name), ``env_id`` and ``env_kwargs`` (the
    env the scorer reads its spec from; its spaces must be the policy's), ``preset``,
    ``agent_config`` (config overrides, e.g. ``{"dim": 16}``), ``agent_module`` (imported
    first; it registers user scorers) and ``value_hidden``.

    Observations are token ids: SB3 hands Box observations over as floats, and they are cast
    back to int64 before the scorer embeds them (never one-hot). SB3's orthogonal
    re-initialisation is switched off, so the scorer keeps its own initialisation.

    The critic reads the policy's sorted action probabilities, detached: with one query per
    episode a state's value is the chance that the sampled action is right, which follows the
    policy's confidence, and the value loss leaves the scorer's logits to the policy loss.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule,
        agent: str = "joint",
        env_id: str = "SetUnion27-v0",
        env_kwargs: dict | None = None,
        preset: str = "small",
        agent_config: dict | None = None,
        agent_module: str | None = None,
        value_hidden: int = 64,
        **kwargs: Any,
    ):
        if agent_module:
            importlib.import_module(agent_module)
        self.agent, self.env_id, self.preset = agent, env_id, preset
        self.env_kwargs = dict(env_kwargs or {})
        self.agent_config = dict(agent_config or {})
        self.agent_module, self.value_hidden = agent_module, value_hidden
        kwargs["ortho_init"] = False
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule) -> None:
        env = make_env(self.env_id, **self.env_kwargs)
        for name in ("observation_space", "action_space"):
            if getattr(env, name) != getattr(self, name):
                raise ValueError(
                    f"env {self.env_id} {self.env_kwargs} has {name} {getattr(env, name)}, "
                    f"but the policy was given {getattr(self, name)}: pass the env's id and "
                    f"kwargs (tokens, action_mode, ...) as env_id and env_kwargs"
                )
        self.scorer = make_with_preset(self.agent, env, self.preset, **self.agent_config)
        n_keys = env.unwrapped.deck.n_keys
        self.value_net = nn.Sequential(
            nn.Linear(n_keys, self.value_hidden), nn.Tanh(), nn.Linear(self.value_hidden, 1)
        )
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            agent=self.agent,
            env_id=self.env_id,
            env_kwargs=self.env_kwargs,
            preset=self.preset,
            # The full config, so that a later change of the presets cannot alter a saved model.
            agent_config=scorer_config(self.scorer),
            agent_module=self.agent_module,
            value_hidden=self.value_hidden,
        )
        return data

    def _logits_and_values(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.scorer(obs.long())  # (B, n_keys)
        if isinstance(self.action_space, spaces.Discrete):
            confidence = logits.detach().softmax(dim=-1)
        else:
            confidence = logits.detach().sigmoid()
        values = self.value_net(confidence.sort(dim=-1, descending=True).values)  # (B, 1)
        return logits, values

    def _distribution(self, logits: torch.Tensor) -> Distribution:
        return self.action_dist.proba_distribution(action_logits=logits)

    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        logits, values = self._logits_and_values(obs)
        distribution = self._distribution(logits)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        logits, values = self._logits_and_values(obs)
        distribution = self._distribution(logits)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: torch.Tensor) -> Distribution:
        return self._distribution(self.scorer(obs.long()))

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self._logits_and_values(obs)[1]
