"""The vec envs stable-baselines3 trains on: the library's native batched ``SetVectorEnv``
through SB3's ``VecEnv`` API (``NativeVecEnv``), or SB3's ``DummyVecEnv`` of one Python
``SetEnv`` per sub-environment.

    from train.vec_env import make_sb3_vec_env

    envs = make_sb3_vec_env("SetClassic27-v0", n_envs=16, seed=0)  # native, monitored
    model = PPO(ScorerPolicy, envs, policy_kwargs={"env_id": "SetClassic27-v0", ...})
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from set_env.checks import check_choice, excerpt
from set_env.vector_env import SetVectorEnv

VEC_ENVS = ("native", "dummy")


class NativeVecEnv(VecEnv):
    """A ``SetVectorEnv`` as an SB3 ``VecEnv``: one batched numpy step serves every
    sub-environment, where ``DummyVecEnv`` steps one Python env each.

    Steps return what ``DummyVecEnv`` returns: rewards as float32, ``dones``, and one info
    dict per sub-environment with ``positives``, ``n_positives``, ``is_success``,
    ``TimeLimit.truncated`` and ``terminal_observation`` (every step ends every episode);
    ``reset_infos`` hold the next queries' infos. No ``query`` text: ``query_texts()`` of
    the batched env (``env_method("query_texts")[0]``) gives them, at a cost.

    The sub-environments are one batched env: ``seed(s)`` seeds it with ``s`` at the next
    reset; ``get_attr`` returns its attribute for each index asked, ``env_method`` calls its
    method once and returns that result for each index, and ``set_attr`` sets its attribute
    once, so its indices must be all of them. They are no ``gym.Env`` and wear no wrapper.
    """

    def __init__(self, vector_env: SetVectorEnv):
        if not isinstance(vector_env, SetVectorEnv):
            raise ValueError(f"vector_env must be a SetVectorEnv, got {excerpt(vector_env)}")
        self.vector_env = vector_env
        super().__init__(
            vector_env.num_envs,
            vector_env.single_observation_space,
            vector_env.single_action_space,
        )
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        """The first observations of every env (SB3's VecEnv.reset)."""
        observations, infos = self.vector_env.reset(
            seed=self._seeds[0], options=self._batched_options()
        )
        self.reset_infos = _per_env(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return observations

    def _batched_options(self) -> dict:
        """SB3's per-env reset options as the batched env's: the one dict if all are equal,
        else each option as a list of one value per sub-environment."""
        options = self._options
        if all(env_options == options[0] for env_options in options):
            return options[0]
        names = set().union(*options)
        return {name: [env_options.get(name) for env_options in options] for name in names}

    def step_async(self, actions: np.ndarray) -> None:
        """Hold the actions for ``step_wait`` (the batched env steps them all at once)."""
        self._actions = actions

    def step_wait(self):
        """SB3's (observations, rewards, dones, infos) of one batched step, the answered queries
        in each info's ``terminal_observation``."""
        observations, rewards, terminated, truncated, infos = self.vector_env.step(self._actions)
        dones = terminated | truncated
        self.reset_infos = _per_env(infos, self.num_envs)
        step_infos = _per_env(infos["final_info"], self.num_envs)
        for env, info in enumerate(step_infos):
            info["TimeLimit.truncated"] = bool(truncated[env] and not terminated[env])
            info["terminal_observation"] = infos["final_obs"][env]
        return observations, rewards.astype(np.float32), dones, step_infos

    def close(self) -> None:
        """Close the batched env."""
        self.vector_env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The batched env's attribute ``attr_name``, once per index."""
        value = getattr(self.vector_env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Sets the batched env's attribute, which every sub-environment shares."""
        self._check_all(indices, "set_attr")
        setattr(self.vector_env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        """The result of the batched env's method ``method_name`` (called once), per index."""
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """All False: the sub-environments are rows of one batched env, no wrapped gym.Env."""
        return [False for _ in self._get_indices(indices)]

    def _check_all(self, indices: VecEnvIndices, method: str) -> None:
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError(
                f"{method}: the {self.num_envs} sub-environments share one SetVectorEnv, so "
                f"indices must be None or all of them, got {excerpt(indices)}"
            )


def _per_env(infos: dict, num_envs: int) -> list[dict]:
    """A gymnasium vector env's batched infos (each key ``k`` with its mask ``_k``) as SB3's
    list of one dict per sub-environment; ``final_obs`` and ``final_info`` left out."""
    per_env: list[dict] = [{} for _ in range(num_envs)]
    for name, values in infos.items():
        if name.startswith("_") or name in ("final_obs", "final_info"):
            continue
        for env in np.flatnonzero(infos[f"_{name}"]):
            per_env[env][name] = values[env]
    return per_env


def make_sb3_vec_env(
    env_id: str,
    n_envs: int,
    seed: int | None = None,
    env_kwargs: dict | None = None,
    vec_env: str = "native",
) -> VecEnv:
    """SB3's vec env of ``n_envs`` envs ``env_id``, monitored (episode rewards for SB3's
    ``rollout/ep_rew_mean``) and seeded for the first reset: ``vec_env="native"`` the
    batched ``SetVectorEnv`` through ``NativeVecEnv`` in a ``VecMonitor``; ``"dummy"`` SB3's
    ``make_vec_env`` (a ``DummyVecEnv`` of ``Monitor``-wrapped Python envs)."""
    check_choice("vec_env", vec_env, VEC_ENVS)
    env_kwargs = env_kwargs or {}
    if vec_env == "dummy":
        return make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)
    batched = gym.make_vec(
        env_id, num_envs=n_envs, vectorization_mode="vector_entry_point", **env_kwargs
    )
    envs = VecMonitor(NativeVecEnv(batched))
    envs.seed(seed)
    return envs
