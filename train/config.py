"""The arguments of a supervised training run (the CLI is generated from this dataclass)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import math
import time
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agents.base import check_device_name, parse_overrides
from agents.precision import AUTOCAST_DTYPES
from eval.sets import MAX_QUERIES, SPLITS
from set_env.checks import check_seed, excerpt, is_int
from set_env.cli import make_parser
from set_env.vocab import TOKEN_MODES
from train import objectives

PRECISIONS = tuple(AUTOCAST_DTYPES)
SCHEDULES = ("noam", "cosine")
MAX_BATCH_SIZE = 1 << 16  # queries per step and process; more would not fit in memory


@dataclass
class TrainConfig:
    env: str = "SetUnion27-v0"
    """Gymnasium id of the SET environment to learn."""
    agent: str = "contrastive"
    """Registered scorer name (agents.available(), plus those of --agent-module)."""
    dim: int | None = None
    """Embedding dimension of agents that have one (contrastive, multivector, mixture); None:
    the agent's default."""
    objective: str = "infonce"
    """infonce (CLIP's symmetric loss over the batch), ce, or soft-ce (train/objectives.py's
    registry)."""
    preset: str = "small"
    """Agent size preset: small (trains on a CPU in minutes) or paper (the study's sizes)."""
    agent_config: str | None = None
    """Overrides of the agent's config fields over the preset, as comma-separated name=value
    pairs, e.g. causal=true,readout=last,norm=post (the fields: the agent's config class)."""
    steps: int = 2000
    """Optimiser steps in total (a resumed run continues up to this many)."""
    batch_size: int = 256
    """Queries per step: the global batch, split evenly over the processes under torchrun."""
    precision: str = "fp32"
    """fp32 (exact: no TF32 matmuls), tf32 (fp32 with TF32 matmuls; CUDA only), bf16
    (autocast; CPU or CUDA) or fp16 (autocast + GradScaler; CUDA only)."""
    device: str = "cpu"
    """cpu, cuda, or cuda:N."""
    logdir: str = "runs"
    """Folder that holds the run directories."""
    seed: int = 0
    """Seed of the initialisation and of the training stream."""
    agent_module: str | None = None
    """A module to import first, which registers user scorers (e.g. my_pkg.my_agents)."""
    resume: str | None = None
    """A run directory to continue from its checkpoint.pt."""
    eval_every: int = 500
    """Evaluate (and checkpoint) every this many steps, and always at the end."""
    eval_queries: int = 5120
    """Size of the fixed held-out evaluation set (test split)."""
    eval_distribution: str = "size_weighted"
    """How the evaluation set is drawn: size_weighted or uniform (over the distinct queries;
    the study's for shatter)."""
    eval_split: str = "test"
    """Evaluate on held-out queries (test) or on any query, training ones included (all: the
    study's for classic and wildcard, which had no held-out split)."""
    train_distribution: str = "size_weighted"
    """How training queries are drawn: size_weighted (every (query, key) pair equally
    likely; the study's for the pair games) or uniform (the study's for shatter)."""
    lr: float = 1e-3
    """Peak learning rate."""
    warmup: int = 200
    """Warm-up steps of the schedule."""
    schedule: str = "cosine"
    """noam (the transformer's inverse-square-root warm-up schedule) or cosine."""
    lr_decay: float = 1.0
    """noam only: also multiply the learning rate by this every --lr-decay-every steps after
    the warm-up, up to step --lr-decay-until (the study's 0.9, 2000, 80000); 1: none."""
    lr_decay_every: int = 2000
    """Steps between two --lr-decay multiplications."""
    lr_decay_until: int | None = None
    """The last step whose learning rate --lr-decay lowers (None: no limit)."""
    weight_decay: float = 0.0
    """AdamW's (decoupled) weight decay, on weight matrices and embeddings only (not on
    biases, LayerNorm gains, the key bias or a temperature)."""
    adam_beta1: float = 0.9
    """AdamW's decay rate of the gradient's running mean."""
    adam_beta2: float = 0.98
    """AdamW's decay rate of the squared gradient's running mean (the transformer's 0.98)."""
    adam_eps: float = 1e-6
    """AdamW's term added to the denominator, for numerical stability."""
    grad_clip: float = 1.0
    """Clip the gradient norm to this (0: no clipping)."""
    mask_duplicates: bool = False
    """infonce: mask duplicate keys in a batch instead of counting them as negatives."""
    tokens: str = "card"
    """Observation tokens of the env: card (the study's), attribute, or pair (one token per
    pair of cards; the pair games only)."""
    compile: bool = False
    """torch.compile the scorer."""
    log_every: int = 50
    """Write the losses/ and charts/ scalars every this many steps."""
    curriculum: int = 0
    """Union and symdiff games: over the first this many steps the queries grow from one pair
    to the env's n_pairs, in equal stages (0: no curriculum)."""

    def validate(self) -> None:
        """Raise ValueError naming the first bad argument and what is allowed."""
        check_choices(
            self,
            {
                "objective": objectives.available(),
                "precision": PRECISIONS,
                "schedule": SCHEDULES,
                "tokens": TOKEN_MODES,
                "eval_distribution": ("size_weighted", "uniform"),
                "train_distribution": ("size_weighted", "uniform"),
                "eval_split": SPLITS,
            },
        )
        check_at_least_one(self, ("steps", "batch_size", "eval_every", "eval_queries", "log_every"))
        check_at_most(self, {"batch_size": MAX_BATCH_SIZE, "eval_queries": MAX_QUERIES})
        check_seed(self.seed)
        check_device_name(self.device)
        check_at_least_zero(self, ("curriculum", "warmup"))
        check_lr_decay(self)
        overrides = parse_overrides(self.agent_config)
        if "dim" in overrides and self.dim is not None:
            raise ValueError("give dim once: as --dim or in agent_config, not both")
        if self.dim is not None and (not is_int(self.dim) or self.dim <= 0):
            raise ValueError(f"dim must be a positive integer, got {self.dim!r}")
        check_finite(
            self,
            positive=("lr", "adam_eps"),
            non_negative=("grad_clip", "weight_decay", "adam_beta1", "adam_beta2"),
        )
        check_below_one(self, ("adam_beta1", "adam_beta2"))
        if self.objective == "infonce" and self.batch_size < 2:
            raise ValueError("infonce needs batch_size >= 2 (it contrasts the batch's keys)")


def check_lr_decay(config: TrainConfig) -> None:
    """ValueError unless ``lr_decay`` is in (0, 1]."""
    check_finite(config, positive=("lr_decay",))
    if config.lr_decay > 1:
        raise ValueError(f"lr_decay must be in (0, 1], got {config.lr_decay!r}")
    if config.lr_decay != 1 and config.schedule != "noam":
        raise ValueError(f"lr_decay applies to the noam schedule, not {config.schedule!r}")
    check_at_least_one(config, ("lr_decay_every",))
    if config.lr_decay_until is not None:
        check_at_least_one(config, ("lr_decay_until",))


def check_below_one(config, names) -> None:
    """ValueError for the first of the named fields of ``config`` not below 1 (a decay rate)."""
    for name in names:
        if getattr(config, name) >= 1:
            raise ValueError(f"{name} must be in [0, 1), got {getattr(config, name)!r}")


def check_choices(config, choices: dict[str, tuple]) -> None:
    """ValueError for the first field of ``config`` whose value is not among its choices."""
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ValueError(
                f"{name} must be one of {allowed}, got {excerpt(getattr(config, name))}"
            )


def check_at_least_one(config, names) -> None:
    """ValueError for the first of the named fields of ``config`` not an integer >= 1."""
    for name in names:
        value = getattr(config, name)
        if not is_int(value) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_at_least_zero(config, names) -> None:
    """ValueError for the first of the named fields of ``config`` not an integer >= 0."""
    for name in names:
        value = getattr(config, name)
        if not is_int(value) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def check_at_most(config, bounds: dict[str, int]) -> None:
    """ValueError for the first field of ``config`` above its bound (what fits in memory)."""
    for name, bound in bounds.items():
        if getattr(config, name) > bound:
            raise ValueError(f"{name} must be at most {bound:,}, got {getattr(config, name):,}")


def check_finite(config, positive=(), non_negative=()) -> None:
    """ValueError for the first named field of ``config`` that is not a finite number
    (> 0 for those in ``positive``, >= 0 for those in ``non_negative``)."""
    for name in (*positive, *non_negative):
        value = getattr(config, name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        in_range = number and (value > 0 if name in positive else value >= 0)
        if not (in_range and math.isfinite(value)):
            allowed = "> 0" if name in positive else ">= 0"
            raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")


def run_name(env: str, agent: str, dim: int | None, method: str, seed: int) -> str:
    """``<env>__<agent>-d<dim>__<method>__s<seed>__<time>`` (no ``-d`` without a dim): the
    run directories of supervised (method: the objective) and RL (the algorithm) runs."""
    agent = agent if dim is None else f"{agent}-d{dim}"
    return f"{env}__{agent}__{method}__s{seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def create_run_dir(logdir: str | Path, name: str) -> Path:
    """A new run folder ``logdir/name``, created exclusively: a name already taken (a run
    started in the same second with the same arguments) gets a suffix -2, -3, ..."""
    logdir = Path(logdir)
    try:
        logdir.mkdir(parents=True, exist_ok=True)
        for n in itertools.count(1):
            path = logdir / (name if n == 1 else f"{name}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"logdir {logdir} is not a folder") from None
    except OSError as error:
        raise ValueError(f"logdir {logdir} cannot be written: {error.strerror}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass, read from its source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for statement, following in zip(body, body[1:], strict=False):
        documented = isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
        if isinstance(statement, ast.AnnAssign) and documented:
            docs[statement.target.id] = following.value.value
    return docs


def argument_parser(
    cls: type, module: str, description: str, examples: list[str]
) -> argparse.ArgumentParser:
    """The CLI ``python -m module``: one ``--flag`` per field of the dataclass ``cls``, its
    docstring as help and its default shown. ``parse_given`` tells the flags given from
    those left out."""
    parser = make_parser(module, description, examples)
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        help_text = docs.get(field.name, "")
        if hints[field.name] is bool:
            parser.add_argument(flag, action="store_true", default=field.default, help=help_text)
            continue
        kind = next(t for t in typing.get_args(hints[field.name]) or (hints[field.name],))
        parser.add_argument(flag, type=kind, default=field.default, help=help_text)
    return parser


def config_to_argv(config: TrainConfig, first: Iterable[str] = ()) -> list[str]:
    """The arguments that ``python -m train`` parses back to ``config``: a flag for each field
    named in ``first``, in that order, then for each other field that differs from its
    default. A field that is None or False is left out: no flag parses to it, and it is its
    field's default."""
    default = TrainConfig()
    changed = [
        field.name
        for field in dataclasses.fields(TrainConfig)
        if getattr(config, field.name) != getattr(default, field.name)
    ]
    argv = []
    for name in dict.fromkeys([*first, *changed]):
        value = getattr(config, name)
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def parse_given(parser: argparse.ArgumentParser, argv=None) -> dict:
    """The flags given on the command line, by field name. Every field starts as None in the
    namespace, so argparse fills in no default (the help still shows them), and a flag never
    parses to None."""
    unset = {action.dest: None for action in parser._actions if action.dest != "help"}
    args = parser.parse_args(argv, argparse.Namespace(**unset))
    return {name: value for name, value in vars(args).items() if value is not None}
