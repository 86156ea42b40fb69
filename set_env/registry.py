"""The SET env ids: the registered id of any spelling of one, and ``gym.make`` of a SET env
with errors as ValueError (the one place the other packages build their envs)."""

from __future__ import annotations

import importlib

import gymnasium as gym

from set_env.checks import excerpt


def make_env(env_id: str, **env_kwargs) -> gym.Env:
    """``gym.make`` of a SET environment; ValueError for an unknown id, bad kwargs, or an env
    that is not one of ``set_env``'s."""
    entry_point = gym.spec(canonical_env_id(env_id)).entry_point
    module = entry_point if isinstance(entry_point, str) else entry_point.__module__
    if not module.startswith("set_env."):
        raise ValueError(
            f"env {excerpt(env_id)} is not a SET environment; use one of set_env.ENV_IDS, "
            "e.g. SetUnion27-v0"
        )
    try:
        return gym.make(env_id, **env_kwargs)
    except (gym.error.Error, TypeError) as error:
        raise ValueError(f"env {excerpt(env_id)}: {str(error)[:300]}") from None


def canonical_env_id(env_id: str) -> str:
    """The registered id of ``env_id`` (``set_env:SetShatter27-v0`` -> ``SetShatter27-v0``)."""
    module, _, name = env_id.rpartition(":")
    try:
        if module:  # gym.make imports the module of a qualified id; gym.spec does not
            importlib.import_module(module)
        return gym.spec(name).id
    except (gym.error.Error, ImportError) as error:
        raise ValueError(f"env {excerpt(env_id)}: {str(error)[:300]}") from None
