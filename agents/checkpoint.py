"""Checkpoints: written atomically, carrying what rebuilds their scorer.

``checkpoint.pt`` holds the scorer's registry name and config, the env it was trained on and
its weights; a training run adds the optimiser, scheduler, scaler, RNG states and step.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch

from agents.base import make, make_env, scorer_config

CHECKPOINT = "checkpoint.pt"
FORMAT_VERSION = 1


def save_atomic(state: dict, path: str | Path) -> None:
    """Write to a temporary file, then rename: a crash never leaves a half-written file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def load(path: str | Path) -> dict:
    """Read a checkpoint; ValueError if it is missing, unreadable or not ours."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        message = f"checkpoint {path} is unreadable ({type(error).__name__}): {error}"
        raise ValueError(message) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a checkpoint of this library (format {FORMAT_VERSION})")
    return state


def scorer_state(scorer: torch.nn.Module, env_id: str, env_kwargs: dict) -> dict:
    """The part of a checkpoint that rebuilds a scorer made by ``agents.make``."""
    return {
        "format": FORMAT_VERSION,
        "agent": scorer.name,
        "agent_config": scorer_config(scorer),
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "model": scorer.state_dict(),
    }


def load_scorer(path: str | Path, device: str | torch.device = "cpu", agent_module=None):
    """The scorer of a checkpoint, weights loaded, in eval mode; and the checkpoint."""
    if agent_module:
        importlib.import_module(agent_module)
    state = load(path)
    env = make_env(state["env_id"], **state["env_kwargs"])
    scorer = make(state["agent"], env, **state["agent_config"])
    scorer.load_state_dict(state["model"])
    return scorer.to(device).eval(), state
