"""The scorer interface and the registry.

A scorer is a ``torch.nn.Module`` whose ``forward(tokens)`` maps query token ids (B, L) to
logits over every key of the deck (B, n_keys). Its constructor takes ``(env, **config)``,
where ``env`` is a Gymnasium env or env id, and it records what it needs of the env in a
``ScorerSpec``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import set_env  # noqa: F401  (registers the env ids)
from set_env.checks import excerpt
from set_env.query import vocab as vocab_of
from set_env.registry import make_env
from set_env.vocab import PAD

_REGISTRY: dict[str, type[Scorer]] = {}


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


DEVICE_NAMES = r"cpu|cuda(:\d+)?"  # the device names a config takes


def check_device_name(name) -> None:
    """ValueError unless ``name`` is cpu, cuda or cuda:N (whether this machine has it aside)."""
    if not isinstance(name, str) or not re.fullmatch(DEVICE_NAMES, name):
        raise ValueError(f"device must be cpu, cuda or cuda:N, got {excerpt(name)}")


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` as a torch device; ValueError for any other name or a
    CUDA device this machine does not have."""
    check_device_name(name)
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked, but CUDA is not available here")
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


def import_agent_module(name: str, recorded: bool = False) -> None:
    """Import the module that registers a user's scorers. ``recorded``: the name comes from a
    checkpoint (data), so it must look like a user's module, not the standard library's."""
    if not isinstance(name, str) or not _MODULE_NAME.fullmatch(name):
        raise ValueError(f"agent_module must be a dotted module name, got {excerpt(name)}")
    if recorded and name.split(".")[0] in sys.stdlib_module_names:
        raise ValueError(
            f"the checkpoint names agent module {excerpt(name)}, a standard module: refused"
        )
    try:
        importlib.import_module(name)
    except ImportError as error:
        reason = str(error)[:200]
        raise ValueError(f"agent module {excerpt(name)} cannot be imported: {reason}") from None


@dataclass(frozen=True, eq=False)
class ScorerSpec:
    """What a scorer reads from its environment."""

    env_id: str | None
    env_kwargs: dict
    n_keys: int
    vocab_size: int
    max_len: int
    key_tokens: np.ndarray  # (n_keys, tokens per key): each key in the env's tokens
    pad_id: int = PAD

    @classmethod
    def of(cls, env: gym.Env | str, **env_kwargs) -> ScorerSpec:
        """The spec of an env, or of ``gym.make(env_id, **env_kwargs)``."""
        if isinstance(env, str):
            env = make_env(env, **env_kwargs)
        base = env.unwrapped
        if not hasattr(base, "deck") or not hasattr(base, "tokens"):
            raise ValueError(f"scorers need a SET environment (set_env), got {base!r}")
        spec = env.spec
        mode_vocab = vocab_of(base.deck, base.tokens)
        return cls(
            env_id=spec.id if spec is not None else None,
            env_kwargs=dict(spec.kwargs) if spec is not None else {},
            n_keys=base.deck.n_keys,
            vocab_size=len(mode_vocab),
            max_len=int(base.observation_space.shape[0]),
            key_tokens=mode_vocab.key_tokens(),
        )


class Scorer(nn.Module):
    """Base class of scorers: (B, L) token ids -> (B, n_keys) logits.

    Subclasses set ``Config`` (a dataclass with a ``presets`` dict of preset name -> field
    overrides) and build their layers in ``__init__`` after calling ``super().__init__``.
    """

    name: str = ""
    Config: type = None  # a dataclass type
    contrastive = False  # has encode_queries / key_vectors

    def __init__(self, env: gym.Env | str, preset: str = "small", **config: Any):
        super().__init__()
        self.spec = env if isinstance(env, ScorerSpec) else ScorerSpec.of(env)
        self.config = make_config(self.Config, preset, config)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(self.config).items())
        return f"{self.name} ({self.n_parameters():,} parameters): {fields}"


def make_config(config_type: type, preset: str, overrides: dict):
    """A config dataclass from a preset and explicit overrides (which win)."""
    presets = getattr(config_type, "presets", {"small": {}})
    if preset not in presets:
        raise ValueError(f"preset must be one of {tuple(presets)}, got {excerpt(preset)}")
    names = {f.name for f in dataclasses.fields(config_type)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(
            f"unknown config field(s) {unknown} for {config_type.__name__}; "
            f"allowed: {sorted(names)}"
        )
    config = config_type(**{**presets[preset], **overrides})
    check = getattr(config, "validate", None)
    if check is not None:
        check()
    return config


def parse_overrides(text: str | None) -> dict[str, Any]:
    """``"causal=true,readout=last,d_ff=512"`` -> {"causal": True, "readout": "last",
    "d_ff": 512}: comma-separated name=value pairs; a value is true/false, an int, a float,
    or else a string. ValueError names a malformed pair."""
    overrides: dict[str, Any] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        name, equals, value = (part.strip() for part in pair.partition("="))
        if not (equals and name.isidentifier() and value):
            raise ValueError(f"agent_config: expected name=value pairs, got {excerpt(pair)}")
        if name in overrides:
            raise ValueError(f"agent_config: {name} is given twice")
        overrides[name] = _literal(value)
    return overrides


def _literal(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def register(name: str):
    """Class decorator: ``@agents.register("my_scorer")`` makes it ``agents.make``-able."""

    def add(cls: type[Scorer]) -> type[Scorer]:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ValueError(f"register({name!r}) decorates torch.nn.Module classes")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def available() -> list[str]:
    """The registered scorer names."""
    return sorted(_REGISTRY)


def scorer_class(name: str) -> type[Scorer]:
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown agent {excerpt(name)}; available: {', '.join(available())} (a scorer of your "
            "own: pass --agent-module, the module that registers it)"
        )
    return _REGISTRY[name]


def make(name: str, env: gym.Env | str | ScorerSpec, **config: Any) -> Scorer:
    """Build the registered scorer ``name`` for ``env`` (an env, env id or spec)."""
    scorer = scorer_class(name)(env, **config)
    scorer.name = name
    scorer.make_kwargs = dict(config)
    return scorer


def make_with_preset(name: str, env, preset: str = "small", **config: Any) -> nn.Module:
    """``make`` with a size preset, passed to the classes that take one (the built-ins, and
    user classes with a ``preset`` parameter); other user classes are built without it."""
    cls = scorer_class(name)
    if issubclass(cls, Scorer) or "preset" in inspect.signature(cls.__init__).parameters:
        config["preset"] = preset
    return make(name, env, **config)


def scorer_config(scorer: nn.Module) -> dict:
    """The config that rebuilds ``scorer`` with ``make``: a built-in's full config dataclass
    (so later preset changes cannot alter it), else the keyword arguments it was made with."""
    config = getattr(scorer, "config", None)
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return dict(getattr(scorer, "make_kwargs", {}))
