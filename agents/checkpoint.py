"""Checkpoints: data, never code; written atomically; checked on every read.

``checkpoint.pt`` holds the scorer's registry name and config, the env it was trained on and
its weights; a training run adds the optimiser, scheduler, scaler, RNG states and step. It
holds tensors and plain Python data only, so it is read with ``torch.load(weights_only=True)``
and a file carrying anything else (a pickled object, which could run code) is refused. A
SHA-256 of its tensors, stored inside, catches a damaged file.

``checkpoint.json`` beside it holds the same metadata without the tensors (agent, env, step,
metrics, the run's config): what a sweep or a report needs to know about a run without
loading its weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from agents.base import import_agent_module, make, resolve_device, scorer_config
from set_env.files import write_atomic, write_json_atomic
from set_env.registry import make_env

CHECKPOINT = "checkpoint.pt"
METADATA = "checkpoint.json"
RUN_CONFIG = "config.json"  # the run's training settings, written when it starts
FORMAT_VERSION = 2
# Entries that hold tensors (or only make sense with them): in checkpoint.pt, not the JSON.
TENSOR_ENTRIES = ("model", "optimizer", "scheduler", "scaler", "rng")
REQUIRED = ("format", "agent", "agent_config", "env_id", "env_kwargs", "model", "sha256")


def tensors_digest(state) -> str:
    """SHA-256 over every tensor of a nested state (its path, dtype, shape and bytes)."""
    digest = hashlib.sha256()

    def visit(value, where: str) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{where}:{tensor.dtype}:{tuple(value.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                visit(value[key], f"{where}/{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                visit(item, f"{where}/{i}")

    visit({k: v for k, v in state.items() if k != "sha256"}, "")
    return digest.hexdigest()


def check_finite_weights(model_state: dict, what: str) -> None:
    """ValueError if a floating-point weight is NaN or infinite: such a state is never saved."""
    for name, tensor in model_state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{what}: weight {name!r} is not finite; nothing was saved")


def save(state: dict, run_dir: str | Path) -> None:
    """Write ``checkpoint.pt`` (with its tensors' SHA-256) and then ``checkpoint.json``
    into ``run_dir``, each atomically. Non-finite weights or metrics are refused, so the
    checkpoint on disk is always the last good one."""
    run_dir = Path(run_dir)
    check_finite_weights(state["model"], f"checkpoint for {run_dir}")
    metrics = state.get("metrics") or {}
    if not all(math.isfinite(value) for value in metrics.values()):
        raise ValueError(f"checkpoint for {run_dir}: metrics {metrics} are not finite")
    state = {**state, "sha256": tensors_digest(state)}
    write_atomic(run_dir / CHECKPOINT, lambda file: torch.save(state, file))
    write_json_atomic(run_dir / METADATA, metadata_of(state))


def metadata_of(state: dict) -> dict:
    """The JSON-able part of a checkpoint: everything but its tensors."""
    return {key: value for key, value in state.items() if key not in TENSOR_ENTRIES}


def checkpoint_path(path: str | Path) -> Path:
    """A run folder or its checkpoint file -> the checkpoint file."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def run_folder(path: str | Path) -> Path:
    """A run folder or its checkpoint file -> the run folder."""
    path = Path(path)
    return path.parent if path.is_file() else path


def load(path: str | Path) -> dict:
    """Read a checkpoint (a file or its run folder) as data only; ValueError if it is
    missing, unreadable, holds anything but tensors and plain data, is not ours, or does not
    match its checksum."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error):  # a class or function: what a pickle runs code through
            raise ValueError(
                f"checkpoint {path} holds objects other than tensors and plain data (loading "
                "it could run code): refused"
            ) from None
        raise ValueError(f"checkpoint {path} is unreadable (not a torch checkpoint)") from None
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(
            f"checkpoint {path} is unreadable ({type(error).__name__}) {reason}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a checkpoint of this library (format {FORMAT_VERSION})")
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise ValueError(f"checkpoint {path} lacks {missing}")
    if tensors_digest(state) != state["sha256"]:
        raise ValueError(f"checkpoint {path} is damaged: its tensors do not match their SHA-256")
    return state


def read_metadata(run_dir: str | Path) -> dict:
    """A run's ``checkpoint.json`` (no weights are read); ValueError if missing or damaged."""
    path = Path(run_dir) / METADATA
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no {METADATA} in {run_dir}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is unreadable: {error}") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} is not checkpoint metadata of this library")
    return metadata


@dataclass(frozen=True)
class RunFolder:
    """A run directory as its small JSON files describe it: no weights are read."""

    path: Path
    config: dict | None
    """``config.json``, the run's training settings; None where there is none."""
    metadata: dict | None
    """``checkpoint.json``; None before the first checkpoint."""
    has_checkpoint: bool
    error: str | None
    """Why the folder is damaged (an unreadable file, a checkpoint without its metadata);
    None when it is sound."""


def iter_runs(folder: str | Path) -> Iterator[RunFolder]:
    """Every run directory directly under ``folder`` (one holding a config.json, a
    checkpoint.json or a checkpoint.pt), in name order, damaged ones included with their
    ``error``: the one scan of a folder of runs (the sweep's, the report's, the analysis')."""
    for path in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        has_config, has_metadata = (path / RUN_CONFIG).exists(), (path / METADATA).exists()
        has_checkpoint = (path / CHECKPOINT).exists()
        if not (has_config or has_metadata or has_checkpoint):
            continue
        config = metadata = error = None
        try:
            config = _read_object(path / RUN_CONFIG) if has_config else None
            metadata = read_metadata(path) if has_metadata or has_checkpoint else None
        except ValueError as problem:
            error = str(problem)
        yield RunFolder(path, config, metadata, has_checkpoint, error)


def _read_object(path: Path) -> dict:
    """A JSON file holding an object; ValueError if it cannot be read or is not one."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is unreadable: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} is not a JSON object")
    return value


def scorer_state(
    scorer: torch.nn.Module, env_id: str, env_kwargs: dict, agent_module: str | None = None
) -> dict:
    """The part of a checkpoint that rebuilds a scorer made by ``agents.make``."""
    return {
        "format": FORMAT_VERSION,
        "agent": scorer.name,
        "agent_config": scorer_config(scorer),
        "agent_module": agent_module,
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "model": scorer.state_dict(),
    }


def load_scorer(path: str | Path, device: str | torch.device = "cpu", agent_module=None):
    """The scorer of a checkpoint, weights loaded, in eval mode; and the checkpoint.

    ``agent_module`` (else the one recorded in the checkpoint) is imported first: it
    registers a user's scorer."""
    device = resolve_device(str(device))
    state = load(path)
    if agent_module:
        import_agent_module(agent_module)
    elif state.get("agent_module"):
        try:
            import_agent_module(state["agent_module"], recorded=True)
        except ValueError as error:  # e.g. run from another folder than the training was
            raise ValueError(
                f"{error} (checkpoint {path} records it for agent {state['agent']!r}): pass "
                "--agent-module, the module that registers it"
            ) from None
    return rebuild_scorer(state, path).to(device).eval(), state


def rebuild_scorer(state: dict, path: str | Path = "checkpoint", weights: bool = True):
    """The scorer a checkpoint's state describes, with its weights (unless not ``weights``:
    a trainer restores them itself, with its optimiser)."""
    env = make_env(state["env_id"], **state["env_kwargs"])
    try:
        scorer = make(state["agent"], env, **state["agent_config"])
    except TypeError as error:  # a user class that takes other arguments
        raise ValueError(f"checkpoint {path}: agent {state['agent']!r}: {error}") from None
    if not weights:
        return scorer
    try:
        scorer.load_state_dict(state["model"])
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise ValueError(
            f"checkpoint {path}: its weights do not fit agent {state['agent']!r} with its "
            f"config ({lines[-1][:200]})"
        ) from None
    return scorer
