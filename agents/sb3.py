"""Any registered scorer as a stable-baselines3 actor-critic policy.

    from stable_baselines3 import PPO
    from agents.sb3 import ScorerPolicy

    model = PPO(ScorerPolicy, env, policy_kwargs={"agent": "joint", "env_id": "SetClassic27-v0"})

The action logits over the keys are the scorer's own logits, with nothing on top: a
categorical distribution over keys (``action_mode="key"``) or one Bernoulli per key
(``"subset"``). So ``policy.scorer`` is an ordinary scorer that the evaluation harness and
the checkpoints treat like a supervised one.

``load_model`` reads a saved model without unpickling anything: SB3's own ``PPO.load``
unpickles several entries of the zip, so a zip from someone else could run code there.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from agents.base import import_agent_module, make_with_preset, scorer_config
from set_env.registry import make_env

ALGORITHMS = {"ppo": PPO, "a2c": A2C}


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
            import_agent_module(agent_module)
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


# The entries SB3 pickles into a saved model, which ``load_model`` rebuilds instead of
# unpickling: from the env named in the (plain JSON) policy kwargs, or SB3's own defaults.
_REBUILT = (
    "policy_class",
    "observation_space",
    "action_space",
    "lr_schedule",
    "clip_range",
    "rollout_buffer_class",
    "_last_obs",
    "_last_episode_starts",
    "ep_info_buffer",
    "ep_success_buffer",
)


def load_model(path: str | Path, algo: str = "ppo", device: str = "cpu", **kwargs):
    """An SB3 model with a ``ScorerPolicy`` saved by ``model.save`` (``train.rl``'s
    ``sb3_model.zip``), read as data: nothing in the file is unpickled. Its weights and
    plain settings come from the file; the pickled entries SB3 writes are rebuilt (spaces
    from the env, schedules as constants: ``clip_range`` 0.2 unless given). ValueError for
    a file that is not such a model or holds any other pickled entry."""
    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {tuple(ALGORITHMS)}, got {algo!r}")
    data = _saved_data(path)
    pickled = {k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v}
    unknown = sorted(pickled - set(_REBUILT))
    policy_kwargs = data.get("policy_kwargs")
    if unknown or not isinstance(policy_kwargs, dict) or "env_id" not in policy_kwargs:
        why = f"pickled entries {unknown}" if unknown else "no plain ScorerPolicy kwargs"
        raise ValueError(f"{path}: {why}; refused (unpickling could run code)")
    if policy_kwargs.get("agent_module"):
        import_agent_module(policy_kwargs["agent_module"], recorded=True)
    env = make_env(policy_kwargs["env_id"], **policy_kwargs.get("env_kwargs", {}))
    rebuilt = dict.fromkeys(_REBUILT) | {
        "policy_class": ScorerPolicy,
        "observation_space": env.observation_space,
        "action_space": env.action_space,
        "clip_range": kwargs.pop("clip_range", 0.2),
    }
    return ALGORITHMS[algo].load(path, device=device, custom_objects=rebuilt, **kwargs)


def _saved_data(path: str | Path) -> dict:
    """The JSON ``data`` entry of an SB3 zip, parsed (nothing unpickled)."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as error:
        raise ValueError(f"{path} is not a saved SB3 model ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a saved SB3 model")
    return data
