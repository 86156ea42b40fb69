"""``python -m train.sweep``: train the study's grid of games x scorers.

    python -m train.sweep --preset quick|demo|paper --out DIR
        [--games Classic,Wildcard,Union,SymDiff,Shatter] [--dims 4,8,16,27]
        [--agents contrastive,joint,classifier,multivector,mixture] [--vectors M]
        [--components P] [--steps N] [--jobs N] [--device cpu|cuda|cuda:N] [--dry-run]
        [--launcher local|ray] [--address auto|HOST:PORT] [--gpus-per-run G] [--cpus-per-run C]

Every run is a normal run directory under DIR (``python -m train`` with ``--logdir DIR``).
The quick preset trains each game with the fastest CPU set-up measured (``QUICK_RECIPES``),
the demo preset (``make demo``) the same for union and shatter on fewer steps, and the paper
preset with the study's settings.
The dot-product scorers (contrastive, multivector, mixture) train at each dim; the default
agents are the study's three, the two others come when named (``--agents multivector,mixture``).
The sweep is resumable: a finished run is skipped and an unfinished one resumed from its
checkpoint. Each run's command is printed, so a cluster scheduler can run them instead.
The local launcher trains ``--jobs`` runs at a time on this machine; ``--launcher ray`` makes
each run a Ray task (``train/ray_launcher.py``) that asks for ``--gpus-per-run`` GPUs and
``--cpus-per-run`` CPUs, on a local Ray instance or the cluster at ``--address``.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from agents.base import make_config, parse_overrides, scorer_class
from agents.checkpoint import iter_runs
from eval import reference
from eval.analysis.free_embedding import FAMILY_SIZES
from set_env import GAME_IDS, env_id
from set_env.checks import excerpt
from set_env.cli import make_parser
from set_env.registry import make_env
from train.config import TrainConfig, config_to_argv

GAMES = reference.GAMES
GAME_KEYS = {name: key for key, name in GAME_IDS.items()}  # "SymDiff" -> "symdiff"
AGENTS = ("contrastive", "joint", "classifier")  # the study's: the default
AGENT_CHOICES = (*AGENTS, *FAMILY_SIZES)  # and multivector, mixture
# The size (``--vectors``, ``--components``: FAMILY_SIZES) of a multivector or mixture run.
DEFAULT_SIZE = 4


def has_dim(agent: str) -> bool:
    """Whether ``agent``'s config has a ``dim``: the sweep trains it at each dim."""
    return any(f.name == "dim" for f in dataclasses.fields(scorer_class(agent).Config))


@dataclass
class Recipe:
    """How a preset trains one game: ``python -m train`` settings (TrainConfig fields, steps
    and objective included) for every scorer, and overrides of them per scorer (``"joint"``)
    or per contrastive dim (``"contrastive d=27"``)."""

    settings: dict
    overrides: dict = field(default_factory=dict)
    # Each key of ``overrides`` is an agent name, or an agent's name and dim ("mixture d=4").

    def for_run(self, agent: str, dim: int | None) -> dict:
        """The recipe's field overrides for one scorer: the game's, then the agent's, then the
        agent-and-dim's."""
        label = agent if dim is None else f"{agent} d={dim}"
        return {**self.settings, **self.overrides.get(agent, {}), **self.overrides.get(label, {})}


# The quick preset: the fastest CPU set-up measured for each game (README, "The reproduction
# sweep"). Every scorer keeps its head (the contrastive one its key table, bias and dot
# product) and trains with soft-ce, the whole answer as the target. Held-out classic and
# wildcard pairs need the rule, so attribute tokens and weight decay; the eight-pair games
# take pair tokens, which leave the dot product's limit as the only one.
_HELD_OUT_PAIRS = {
    "tokens": "attribute",
    "weight_decay": 0.3,
    "schedule": "noam",
    "warmup": 50,
    "batch_size": 128,
}
_EIGHT_PAIRS = {"tokens": "pair", "lr": 2e-3}
QUICK_RECIPES = {
    # In batches of 128 some seeds memorise the training pairs instead (d = 4: KL 1.97, 0.99,
    # 0.006 over seeds 0-2; in 256: 0.012, 0.014, 0.002), and so does the joint scorer under
    # the weaker decay (seed 1: 0.26; under 1.0: 0.0000, 0.018, 0.0001).
    "Classic": Recipe(
        {**_HELD_OUT_PAIRS, "batch_size": 256, "steps": 1000}, {"joint": {"weight_decay": 1.0}}
    ),
    # Its scorers sit on a plateau (two attributes of three learned) for 1000-2500 steps;
    # each stops once it has learned (under noam, a shorter run is the longer one cut).
    "Wildcard": Recipe(
        {**_HELD_OUT_PAIRS, "steps": 3000, "lr": 2e-3},
        {
            "contrastive d=8": {"steps": 2500},
            "contrastive d=16": {"steps": 2000},
            "contrastive d=27": {"steps": 500},
            "classifier": {"steps": 2000},
        },
    ),
    # d = 4 and 8 stop at their bound within 500 steps, d = 27 and the classifier are exact;
    # d = 16 approaches its bound slowest. The joint scorer's steps cost three times the others'.
    "Union": Recipe(
        {**_EIGHT_PAIRS, "steps": 600},
        {"contrastive d=16": {"steps": 1000}, "joint": {"steps": 500}},
    ),
    # Only d = 27, the joint scorer and the classifier can solve it, and they need the
    # steps; the small dims are cut early, since only the ordering hangs on them. A curriculum
    # (1, 2, 4, then 8 pairs over the first 2000 steps) takes the joint scorer to KL 0.035
    # after 3000 steps and 0.010 after 4000 (without: 0.056 after 4000); it slows d = 27
    # (0.159 after 2500 steps, with a 1500-step one) and the classifier (0.109 after 3000).
    "SymDiff": Recipe(
        {**_EIGHT_PAIRS, "steps": 500},
        {
            "contrastive d=27": {"steps": 3500},
            "classifier": {"steps": 4000},
            "joint": {"steps": 3500, "curriculum": 2000},
            # The budget of the scorers that can solve it, as their bounds at d = 6 say they
            # can (docs/analysis.md); 500 steps were not tried.
            "multivector": {"steps": 3500},
            "mixture": {"steps": 3500},
        },
    ),
    # Here the small dims take longest to approach their bound: lr 4e-3 gets them as near in
    # 1500 steps as 2e-3 in 2400 (d = 4, 8, 16: 0.565, 0.419, 0.165 against 0.567, 0.422,
    # 0.165; batches of 128 stop further from it). The others are exact in a few hundred.
    "Shatter": Recipe(
        {"lr": 4e-3, "steps": 1500},
        {
            "contrastive d=27": {"lr": 2e-3, "steps": 600},
            "classifier": {"lr": 2e-3, "steps": 800},
            "joint": {"lr": 2e-3, "steps": 300},
        },
    ),
}


def study_schedule(
    warmup: int, decay: float = 0.9, every: int = 2000, until: int = 80000, d_model: int = 512
) -> dict:
    """The study's learning rate, d_model^-0.5 min(s^-0.5, s W^-1.5) with W = ``warmup``,
    times ``decay`` every ``every`` steps from W until step ``until``: noam at the peak
    (d_model W)^-0.5 (2.33e-4 for W = 36,000)."""
    return {
        "schedule": "noam",
        "warmup": warmup,
        "lr": float(f"{(d_model * warmup) ** -0.5:.6g}"),
        "lr_decay": decay,
        "lr_decay_every": every,
        "lr_decay_until": until,
    }


# The paper preset: the study's code (Chucooleg/Contrastive-Learning-Benchmarking,
# SecondPass-CardGame-experiments, branches final_*), README "Reproducing the study exactly".
# Adam (betas 0.9, 0.98, eps 1e-6) without weight decay or clipping in fp32, batch 1024; its
# encoder options are the agents' paper presets, plus, for the pair games, a causal encoder
# read at an EOS position.
_STUDY = {
    "batch_size": 1024,
    "weight_decay": 0.0,
    "grad_clip": 0.0,
    "precision": "fp32",
    "adam_beta1": 0.9,
    "adam_beta2": 0.98,
    "adam_eps": 1e-6,
}
_STUDY_PAIRS = {**_STUDY, **study_schedule(36000), "agent_config": "causal=true,readout=last"}
# Its schedules imply at least 80,000 steps on 27 cards (the step decay runs to 80,000)
# and 108,000 on 81 (the warm-up).
PAPER_STEPS, PAPER_STEPS_81 = 80000, 120000
PAPER_RECIPES = {
    # No held-out split in the study: its test queries were training queries too.
    "Classic": Recipe({**_STUDY_PAIRS, "eval_split": "all", "steps": PAPER_STEPS}),
    "Wildcard": Recipe({**_STUDY_PAIRS, "eval_split": "all", "steps": PAPER_STEPS}),
    "Union": Recipe(
        {**_STUDY_PAIRS, "steps": PAPER_STEPS},
        {"contrastive d=27": study_schedule(72000), "contrastive d=4": {"lr_decay": 1.0}},
    ),
    "SymDiff": Recipe({**_STUDY_PAIRS, "steps": PAPER_STEPS}),
    # Bidirectional, read at the first position; subsets uniform over the non-empty ones.
    "Shatter": Recipe(
        {
            **_STUDY,
            **study_schedule(36000),
            "train_distribution": "uniform",
            "eval_distribution": "uniform",
            "steps": PAPER_STEPS,
        }
    ),
    "Union81": Recipe(
        {
            **_STUDY_PAIRS,
            **study_schedule(108000, decay=0.95, every=3000, until=900000),
            "seed": 21,
            "steps": PAPER_STEPS_81,
        }
    ),
}

PRESETS = {
    "quick": {
        "dims": (4, 8, 16, 27),
        "agent_preset": "small",
        "recipes": QUICK_RECIPES,
        "objectives": dict.fromkeys(AGENT_CHOICES, "soft-ce"),
        "union81": (),
    },
    # make demo: the quick recipes on union and shatter on fewer steps, so that the demo
    # fits in 10 minutes on 2 cores: union's models near their bound or exact, shatter's
    # small dims still short of their bound.
    "demo": {
        "dims": (4, 8, 27),
        "agent_preset": "small",
        "recipes": {
            **QUICK_RECIPES,
            "Union": Recipe({**_EIGHT_PAIRS, "steps": 600}, {"joint": {"steps": 400}}),
            "Shatter": Recipe(
                {"lr": 2e-3, "steps": 500},
                {"contrastive d=27": {"steps": 600}, "joint": {"steps": 300}},
            ),
        },
        "objectives": dict.fromkeys(AGENT_CHOICES, "soft-ce"),
        "union81": (),
    },
    "paper": {
        "dims": (4, 8, 16, 20, 24, 27, 512),
        "agent_preset": "paper",
        "recipes": PAPER_RECIPES,
        # infoNCE for every dot-product scorer, as the study's contrastive ones.
        "objectives": {
            **dict.fromkeys(("contrastive", "multivector", "mixture"), "infonce"),
            "joint": "ce",
            "classifier": "ce",
        },
        "union81": (16, 24, 32, 64, 81, 128, 512),
    },
}


# The fields that tell one run of a sweep from another, and those every command states.
IDENTITY = ("env", "agent", "dim", "agent_config", "seed", "objective", "preset")
STATED = ("env", "agent", "objective", "preset", "steps", "seed", "logdir")


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its config, and the fields its recipe set, which its command
    states even where they equal the defaults (the command shows the recipe)."""

    config: TrainConfig
    recipe: tuple[str, ...] = ()

    def arguments(self, out: Path, resume: Path | None = None) -> list[str]:
        """``python -m train``'s arguments for this run under ``out`` (resuming ``resume``)."""
        config = dataclasses.replace(
            self.config, logdir=str(out), resume=None if resume is None else str(resume)
        )
        return config_to_argv(config, first=(*STATED, *self.recipe, "dim", "resume"))

    @property
    def label(self) -> str:
        """The run's name in progress lines and lock files, e.g.
        ``SetUnion27-v0__contrastive-d8__soft-ce__small__s0``."""
        config = self.config
        agent = config.agent
        if config.agent in FAMILY_SIZES:
            size = FAMILY_SIZES[config.agent]
            agent += f"-{size.letter}{parse_overrides(config.agent_config)[size.fields[0]]}"
        if config.dim is not None:
            agent += f"-d{config.dim}"
        return f"{config.env}__{agent}__{config.objective}__{config.preset}__s{config.seed}"

    def matches(self, recorded: dict) -> bool:
        """Whether a run folder's config.json is this run's."""
        return all(recorded.get(name) == getattr(self.config, name) for name in IDENTITY)


def recipe_config(settings: dict) -> TrainConfig:
    """The TrainConfig of a recipe's settings; ValueError for a field it lacks or a value it
    refuses."""
    try:
        config = TrainConfig(**settings)
    except TypeError as error:
        raise ValueError(f"a recipe sets a field TrainConfig lacks: {error}") from None
    config.validate()
    return config


def sized_agent_config(agent: str, recipe_config: str | None, sizes: dict) -> str:
    """The agent_config of a multivector or mixture run: the recipe's, plus the family's
    size (``FAMILY_SIZES``; ``sizes`` maps "vectors"/"components" to it, default
    ``DEFAULT_SIZE``) in each config field it sets."""
    size = FAMILY_SIZES[agent]
    value = sizes.get(size.name, DEFAULT_SIZE)
    return ",".join([*filter(None, [recipe_config]), *(f"{name}={value}" for name in size.fields)])


def grid(
    preset: str,
    games,
    dims,
    agents,
    steps: int | None,
    sizes: dict | None = None,
    device: str | None = None,
) -> list[Run]:
    """The runs of a sweep: every game x (each dot-product scorer at each dim, and the other
    agents). ``steps`` replaces the recipes' steps (the joint scorer's too); ``sizes``
    gives multivector's ``vectors`` and mixture's ``components`` (default
    ``DEFAULT_SIZE``); ``device`` (default the trainer's, cpu) is every run's."""
    settings = PRESETS[preset]
    dims = dims or settings["dims"]
    runs = []

    def add(env: str, env_dims, recipe: Recipe) -> None:
        for agent in agents:
            for dim in env_dims if has_dim(agent) else (None,):
                run = {"env": env, "agent": agent, "dim": dim, "preset": settings["agent_preset"]}
                run["objective"] = settings["objectives"][agent]
                overrides = recipe.for_run(agent, dim)
                if agent in FAMILY_SIZES:
                    recipe_agent_config = overrides.get("agent_config")
                    overrides["agent_config"] = sized_agent_config(
                        agent, recipe_agent_config, sizes or {}
                    )
                given = {"steps": steps, "device": device}
                flags = {name: value for name, value in given.items() if value is not None}
                config = recipe_config({**run, **overrides, **flags})
                runs.append(Run(config, tuple(overrides)))

    for game in games:
        add(env_id(GAME_KEYS[game]), dims, settings["recipes"][game])
    if settings["union81"] and "Union" in games:
        recipes = settings["recipes"]
        add(env_id("union", 81), settings["union81"], recipes.get("Union81", recipes["Union"]))
    return runs


def scan_runs(out: Path, warn: bool = False) -> list[tuple[Path, dict, int]]:
    """Every training run folder under ``out``: (folder, its config, its checkpoint's step;
    0 when it was killed before its first checkpoint). A damaged folder (unreadable
    config.json or checkpoint metadata) is left out, with a one-line warning if ``warn``."""
    runs = []
    for run in iter_runs(out):
        if run.error is not None:
            if warn:
                print(
                    f"warning: skipped damaged run folder {run.path}: {run.error}", file=sys.stderr
                )
        elif run.config is not None:
            runs.append((run.path, run.config, run.metadata["step"] if run.metadata else 0))
    return runs


def existing_run(runs: list[tuple[Path, dict, int]], run: Run) -> tuple[Path | None, int]:
    """The furthest of ``runs`` (``scan_runs``) that is ``run``, and its step (0: none)."""
    best: tuple[Path | None, int] = (None, 0)
    for folder, config, step in runs:
        if run.matches(config) and (best[0] is None or step > best[1]):
            best = (folder, step)
    return best


def command(run: Run, out: Path, runs=None) -> list[str] | None:
    """The command that finishes ``run`` (resuming it if it was cut short), or None."""
    run_dir, step = existing_run(scan_runs(out) if runs is None else runs, run)
    if step >= run.config.steps:
        return None
    resume = run_dir if step > 0 else None
    return [sys.executable, "-m", "train", *run.arguments(out, resume)]


def lock_name(run: Run) -> str:
    """The run's label as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run.label)


def try_lock(out: Path, run: Run):
    """An open lock file that only this process (and the child it hands it to) holds for
    ``run``, or None when another sweep's run of it holds it. The kernel drops the lock
    when the last process holding it ends, so a killed sweep leaves no stale lock."""
    lock = open(out / f".lock-{lock_name(run)}", "w")  # noqa: SIM115 (held open while the run trains)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def die_with_parent() -> None:
    """In a sweep's child: end with the sweep (Linux's parent-death signal), so a killed
    sweep leaves no orphan training on. ``SET_SWEEP_PARENT`` names the parent's pid."""
    parent = os.environ.get("SET_SWEEP_PARENT")
    if not parent or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    if str(os.getppid()) != parent:  # the parent ended before the signal was armed
        os._exit(1)


class ListFlag(argparse.Action):
    """``--flag A B`` or ``--flag A,B``: the values as a tuple without repeats, each converted
    by ``type`` and one of ``choices`` (if given). ValueError (the sweep's one-line error)
    for an empty list, a value ``type`` refuses, or one not among the choices."""

    def __init__(self, option_strings, dest, type=str, choices=None, **kwargs):
        # The parts of "A,B" are checked here: argparse would check "A,B" as one value.
        super().__init__(option_strings, dest, **kwargs)
        self.element, self.allowed = type, choices

    def __call__(self, parser, namespace, texts, option_string=None):
        parts = [part.strip() for text in texts for part in text.split(",") if part.strip()]
        name = self.dest
        try:
            values = tuple(dict.fromkeys(self.element(part) for part in parts))
        except ValueError:
            raise ValueError(
                f"--{name}: expected comma-separated values, got {excerpt(' '.join(texts))}"
            ) from None
        if not values:
            raise ValueError(f"--{name} is empty; leave it out for all, or name some")
        unknown = [v for v in values if self.allowed is not None and v not in self.allowed]
        if unknown:
            allowed = ",".join(map(str, self.allowed))
            raise ValueError(f"--{name}: unknown {excerpt(unknown)}; allowed: {allowed}")
        setattr(namespace, self.dest, values)


def check_dims(dims: tuple, preset: str) -> None:
    """ValueError for a dim the contrastive scorer's config refuses."""
    for dim in dims:
        check_agent_config("--dims", "contrastive", preset, {"dim": dim})


def check_sizes(sizes: dict, agents, preset: str) -> None:
    """ValueError for a ``--vectors`` or ``--components`` its family's config refuses."""
    for agent in set(agents) & set(FAMILY_SIZES):
        size = FAMILY_SIZES[agent]
        overrides = dict.fromkeys(size.fields, sizes[size.name])
        check_agent_config(f"--{size.name}", agent, preset, overrides)


def check_agent_config(flag: str, agent: str, preset: str, overrides: dict) -> None:
    """ValueError naming ``flag`` if ``agent``'s config refuses ``overrides`` under the
    sweep ``preset``'s agent preset."""
    config_type = scorer_class(agent).Config
    try:
        make_config(config_type, PRESETS[preset]["agent_preset"], overrides)
    except ValueError as error:
        raise ValueError(f"{flag}: {error}") from None


EXAMPLES = [
    "python -m train.sweep --preset quick --out runs/quick --jobs 2",
    "python -m train.sweep --preset demo --out runs/demo --games Union,Shatter",
    "python -m train.sweep --preset paper --out runs/paper --dry-run",
    "python -m train.sweep --preset paper --out /shared/runs --launcher ray --address auto",
]
# The launchers' flags have no parser default, so that one given to the other launcher is an
# error; left out, they take these.
JOBS = 1
RAY_DEFAULTS = {"address": None, "gpus_per_run": 1, "cpus_per_run": 2}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m train.sweep``."""
    parser = make_parser("train.sweep", "Train the study's grid of games x scorers.", EXAMPLES)
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="quick: each game's fastest CPU recipe; demo: union and shatter on fewer steps "
        "(make demo); paper: the study's settings",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder of the run directories")
    lists = {"nargs": "+", "action": ListFlag}
    parser.add_argument(
        "--games",
        **lists,
        choices=GAMES,
        metavar="GAME",
        help=f"of {','.join(GAMES)}, separated by spaces or commas (default: all of them)",
    )
    parser.add_argument(
        "--dims",
        **lists,
        type=int,
        metavar="DIM",
        help="contrastive dims, separated by spaces or commas (default: the preset's)",
    )
    parser.add_argument(
        "--agents",
        **lists,
        choices=AGENT_CHOICES,
        metavar="AGENT",
        help=f"of {','.join(AGENT_CHOICES)}, separated by spaces or commas "
        f"(default: the study's {','.join(AGENTS)}); the dot-product ones train at each dim",
    )
    for agent, size in FAMILY_SIZES.items():
        parser.add_argument(
            f"--{size.name}",
            type=int,
            default=DEFAULT_SIZE,
            metavar=size.letter,
            help=f"{agent}'s {' and '.join(size.fields)} (its runs are named -{size.letter}N)",
        )
    parser.add_argument("--steps", type=int, help="steps per run (default: the preset's)")
    parser.add_argument(
        "--jobs",
        type=int,
        help=f"runs the local launcher trains at once, sharing the CPU cores (default: {JOBS})",
    )
    parser.add_argument(
        "--device",
        help="every run's device under the local launcher: cpu, cuda or cuda:N "
        "(default: cpu, the trainer's)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the commands only, train nothing"
    )
    parser.add_argument(
        "--launcher",
        choices=("local", "ray"),
        default="local",
        help="local: subprocesses on this machine, --jobs at a time; ray: one Ray task per "
        'run, placed where its GPUs and CPUs are free (needs pip install -e ".[ray]")',
    )
    parser.add_argument(
        "--address",
        metavar="auto|HOST:PORT",
        help="the Ray cluster to run on: auto (the one this node joined by ray start) or its "
        "head's address (default: a new Ray instance on this machine)",
    )
    parser.add_argument(
        "--gpus-per-run",
        type=float,
        metavar="G",
        help="GPUs each Ray task asks for: 1, a fraction to share one, or 0 to train on CPUs "
        f"(default: {RAY_DEFAULTS['gpus_per_run']})",
    )
    parser.add_argument(
        "--cpus-per-run",
        type=float,
        metavar="C",
        help="CPUs each Ray task asks for, its training's threads "
        f"(default: {RAY_DEFAULTS['cpus_per_run']})",
    )
    return parser


def check_launcher(args: argparse.Namespace) -> None:
    """ValueError for a flag of the launcher that ``--launcher`` did not choose, or a value
    the Ray launcher refuses (Ray missing included); then the Ray flags left out take their
    defaults."""
    given = [name for name in RAY_DEFAULTS if getattr(args, name) is not None]
    if args.launcher == "local":
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} needs --launcher ray")
        return
    if args.device is not None:
        raise ValueError(
            "--device is the local launcher's: under --launcher ray a run trains on cuda "
            "when --gpus-per-run is above 0, else on its CPUs"
        )
    if args.jobs is not None:
        raise ValueError(
            "--jobs is the local launcher's: under --launcher ray, --gpus-per-run and "
            "--cpus-per-run set how many runs train at once"
        )
    for name, default in RAY_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    from train import ray_launcher  # only now: Ray is an optional extra

    ray_launcher.check_options(args.gpus_per_run, args.cpus_per_run)


def main(argv=None) -> None:
    """``python -m train.sweep``: train (or print) the grid; exit status 1 if a run failed."""
    try:
        args = build_parser().parse_args(argv)  # ListFlag's errors are ValueErrors
        games, agents, dims = args.games or GAMES, args.agents or AGENTS, args.dims or ()
        check_dims(dims, args.preset)
        if (args.jobs is not None and args.jobs < 1) or (args.steps is not None and args.steps < 1):
            raise ValueError("--steps and --jobs must be positive")
        check_launcher(args)
        sizes = {"vectors": args.vectors, "components": args.components}
        check_sizes(sizes, agents, args.preset)
        runs = grid(args.preset, games, dims, agents, args.steps, sizes, args.device)
        make_out(args.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    existing = scan_runs(args.out, warn=True)
    pending = [(run, command(run, args.out, existing)) for run in runs]
    todo = [(run, cmd) for run, cmd in pending if cmd is not None]
    print(f"{len(runs)} runs, {len(runs) - len(todo)} already finished", file=sys.stderr)
    for _, cmd in todo:
        print(shlex.join(cmd))
    if args.dry_run:
        return
    todo_runs, done = [run for run, _ in todo], len(runs) - len(todo)
    if args.launcher == "ray":
        failures = train_on_ray(args, todo_runs, done)
    else:
        failures = run_all(todo_runs, args.out, args.jobs or JOBS, done)
    print(f"TensorBoard: tensorboard --logdir {args.out}", file=sys.stderr)
    if failures:
        print(f"error: {failures} run(s) failed; run the sweep again to retry", file=sys.stderr)
        raise SystemExit(1)


def train_on_ray(args: argparse.Namespace, runs: list[Run], done: int) -> int:
    """The Ray launcher's training of ``runs`` (``train.ray_launcher.run_on_ray``); exit
    status 2 if Ray cannot give a run what it asks for."""
    from train import ray_launcher  # only now: Ray is an optional extra

    try:
        return ray_launcher.run_on_ray(
            runs, args.out, done, args.address, args.gpus_per_run, args.cpus_per_run
        )
    except ValueError as error:  # before any run started
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def make_out(out: Path) -> None:
    """Create the sweep's folder; ValueError if it is a file or cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"--out {out} is not a folder") from None
    except OSError as error:
        raise ValueError(f"--out {out} cannot be created: {error.strerror}") from None
    if not os.access(out, os.W_OK):
        raise ValueError(f"--out {out} is not writable")


@dataclass
class Training:
    """A run being trained: its process, the lock it holds and the log of its stderr."""

    run: Run
    process: subprocess.Popen
    lock: object
    log: Path
    started: float

    def finish(self) -> bool:
        """Release the run and say in one line how it ended; True if it succeeded."""
        succeeded, message = self.outcome()
        tqdm.write(message, file=sys.stderr)
        return succeeded

    def outcome(self) -> tuple[bool, str]:
        """Wait for the run to end and release it: whether it succeeded, and the one line
        that says how it ended (``done ...`` or ``FAILED ...``)."""
        output, _ = self.process.communicate()
        self.lock.close()
        minutes, seconds = divmod(round(time.monotonic() - self.started), 60)
        took = f"{minutes}m {seconds:02d}s"
        if self.process.returncode == 0:
            summary = json.loads(output.strip().splitlines()[-1])
            kl, topk = summary.get("kl", float("nan")), summary.get("topk_overlap", float("nan"))
            return True, f"done {self.run.label}: kl {kl:.3g}, top-K {topk:.3g} ({took})"
        lines = self.log.read_text(errors="replace").strip().splitlines() or ["no output"]
        return False, failed_line(self.run, lines[-1], self.log, took)


def failed_line(run: Run, reason: str, log: Path, took: str | None = None) -> str:
    """The one line that says ``run`` failed: why (one line), after how long, and its log."""
    after = f" ({took})" if took else ""
    return f"FAILED {run.label}{after}: {reason} (log: {log})"


def skipped_line(run: Run) -> str:
    """The line that says ``run`` was skipped because another sweep holds its lock."""
    return f"skipped {run.label}: another sweep is training it"


def log_path(out: Path, run: Run) -> Path:
    """Where ``run``'s stderr goes: ``out/logs/<run>.log``."""
    return out / "logs" / f"{lock_name(run)}.log"


def progress_bar(done: int, todo: int) -> tqdm:
    """The sweep's one progress bar over runs (on stderr), ``done`` of ``done + todo`` already
    finished."""
    return tqdm(total=done + todo, initial=done, desc="sweep", unit="run", file=sys.stderr)


def run_all(runs: list[Run], out: Path, jobs: int, done: int) -> int:
    """Train the runs, ``jobs`` at a time: one progress bar over runs and one line per
    finished run (each run's own output goes to ``out/logs/<run>.log``); returns how many
    failed. A run that another sweep is training (its lock is held) is skipped."""
    progress = progress_bar(done, len(runs))
    # Share the cores between the runs rather than oversubscribing them.
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    environment = {"OMP_NUM_THREADS": threads, **os.environ, "SET_SWEEP_PARENT": str(os.getpid())}
    queue = sorted(runs, key=relative_cost, reverse=True)  # the longest first: none trails
    failures = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(train_run, run, out, environment) for run in queue]
        try:
            for future in as_completed(futures):
                failures += not future.result()
                progress.update(1)
        finally:
            pool.shutdown(cancel_futures=True)  # an interrupted sweep starts no further run
    progress.close()
    return failures


def train_run(run: Run, out: Path, environment: dict) -> bool:
    """A pool worker's job: train ``run`` in a subprocess until it ends; False if it failed.
    The subprocess dies with the sweep, through its parent, this worker's thread, which
    lives while it runs."""
    training = start(run, out, environment)
    return True if training is None else training.finish()


def relative_cost(run: Run) -> float:
    """A run's expected time, up to a factor: steps x batch x query tokens (what a CPU step
    costs, measured), times about 4 for the joint scorer, which also reads every key."""
    config = run.config
    tokens = make_env(config.env, tokens=config.tokens).observation_space.shape[0]
    return config.steps * config.batch_size * tokens * (4 if config.agent == "joint" else 1)


def start(run: Run, out: Path, environment: dict) -> Training | None:
    """Start ``run``'s training, holding its lock (handed to the child too, so the lock
    lives as long as the training); None if it is running elsewhere or already finished."""
    lock = try_lock(out, run)
    if lock is None:
        tqdm.write(skipped_line(run), file=sys.stderr)
        return None
    return launch(run, out, environment, lock)


def launch(
    run: Run, out: Path, environment: dict, lock, extra: tuple[str, ...] = ()
) -> Training | None:
    """Start ``run``'s training (its command, then the arguments ``extra``) under ``lock``,
    its lock held by the caller and handed to the child; None, the lock released, if the
    run is already finished."""
    cmd = command(run, out)  # again, under the lock: another sweep may have finished it
    if cmd is None:
        lock.close()
        return None
    log = log_path(out, run)
    log.parent.mkdir(exist_ok=True)
    with open(log, "a") as stderr:  # a resumed run adds to its log
        process = subprocess.Popen(
            [*cmd, *extra],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=environment,
            pass_fds=(lock.fileno(),),
        )
    return Training(run, process, lock, log, time.monotonic())


if __name__ == "__main__":
    main()
