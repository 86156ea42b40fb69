"""Throughput of the query generator and the environments, beside CartPole-v1 in the same run.

    python -m benchmarks.envs [--seconds 1.0] [--batch 65536] [--num-envs 1024]

Prints markdown tables: game.sample queries/s for every game on both decks, then the
gym.make step+reset rate of SetUnion27-v0 and the native vector env's env-steps/s, each as a
ratio to CartPole-v1's measured here. Each rate is the median of many short rounds, with
their min-max: on a shared machine the spread says how far to trust it. Ratios, not absolute
numbers, are what carry over between machines.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

import gymnasium as gym
import numpy as np

import set_env
from set_env.cli import make_parser

MIN_ROUNDS = 5  # a median of fewer says little about the spread


class Spread(NamedTuple):
    """The median of repeated measurements, and their smallest and largest."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def format(self, spec: str, scale: float = 1.0) -> str:
        """``median (low–high)``, each divided by ``scale`` and formatted by ``spec``."""
        median, low, high = (f"{value / scale:{spec}}" for value in self)
        return f"{median} ({low}–{high})"


def rate(work, seconds: float) -> Spread:
    """Units of ``work()`` (it returns how many it did) per second over rounds of one call
    each, for ``seconds`` and at least ``MIN_ROUNDS`` rounds."""
    work()  # warm caches and lookup tables
    rates, deadline = [], time.perf_counter() + seconds
    while len(rates) < MIN_ROUNDS or time.perf_counter() < deadline:
        start = time.perf_counter()
        done = work()
        rates.append(done / (time.perf_counter() - start))
    return Spread.of(rates)


def sampling_rate(game: str, n_keys: int, seconds: float, batch: int) -> Spread:
    attributes, values = set_env.DECKS[n_keys]
    g = set_env.make_game(game, set_env.Deck(attributes, values))
    rng = np.random.default_rng(0)
    return rate(lambda: len(g.sample(batch, rng)), seconds)


def sampling_rates(seconds: float, batch: int) -> dict[str, Spread]:
    """Each game in a fresh process: the allocator's state left by the games measured before
    would otherwise change the result (glibc serves large arrays by mmap, each call paying
    its page faults, until freeing a larger one raises its threshold: SetUnion27 at batch
    65,536 ran 2.3x faster after the 81-card games than alone)."""
    spawn = multiprocessing.get_context("spawn")
    rates = {}
    for game in set_env.GAME_IDS:
        for n_keys in set_env.DECKS:
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as fresh:
                job = fresh.submit(sampling_rate, game, n_keys, seconds, batch)
                rates[set_env.env_id(game, n_keys)] = job.result()
    return rates


def single_env_rate(env_id: str, seconds: float, steps: int = 20000) -> Spread:
    """Steps per second through ``gym.make``, resetting whenever an episode ends."""
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(64)]

    def run():
        for i in range(steps):
            _, _, terminated, truncated, _ = env.step(actions[i % 64])
            if terminated or truncated:
                env.reset()
        return steps

    return rate(run, seconds)


def vector_env_rate(env_id: str, seconds: float, num_envs: int, steps: int = 200) -> Spread:
    """Environment steps per second of the id's native vector env."""
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    actions = envs.action_space.sample()

    def run():
        for _ in range(steps):
            envs.step(actions)
        return steps * num_envs

    return rate(run, seconds)


EXAMPLES = [
    "python -m benchmarks.envs",
    "python -m benchmarks.envs --seconds 0.2 --batch 4096 --num-envs 64",
]


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "benchmarks.envs",
        "Throughput of the query generator and the environments, beside CartPole-v1.",
        EXAMPLES,
    )
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="time per measurement (its rounds in all)"
    )
    parser.add_argument("--batch", type=int, default=65536, help="queries per sample() call")
    parser.add_argument("--num-envs", type=int, default=1024, help="vector env width")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)

    print(
        f"## game.sample (train split, batch {args.batch}, each game in a fresh process; "
        "median of the rounds, min–max)\n"
    )
    print("| env | M queries/s |\n|---|---:|")
    for name, spread in sampling_rates(args.seconds, args.batch).items():
        print(f"| {name} | {spread.format('.2f', 1e6)} |")

    single = single_env_rate("SetUnion27-v0", args.seconds)
    cartpole = single_env_rate("CartPole-v1", args.seconds)
    vector = vector_env_rate("SetUnion27-v0", args.seconds, args.num_envs)
    cartpole_vector = vector_env_rate("CartPole-v1", args.seconds, args.num_envs)
    print(
        "\n## environments (steps/s, median of the rounds and min–max; ratio of the medians; "
        "SetUnion27 resets after every step)\n"
    )
    print("| env | SetUnion27-v0 | CartPole-v1 | ratio |\n|---|---:|---:|---:|")
    rows = (
        ("gym.make, step+reset", single, cartpole),
        (f"native vector env ({args.num_envs})", vector, cartpole_vector),
    )
    for name, ours, theirs in rows:
        ratio = ours.median / theirs.median
        print(f"| {name} | {ours.format(',.0f')} | {theirs.format(',.0f')} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
