"""Throughput of the query generator and the environments, beside CartPole-v1 in the same run.

    python -m benchmarks.envs [--seconds 1.0] [--batch 65536]

Prints markdown tables: ``game.sample`` queries/s for every game on both decks, then the
``gym.make`` step+reset rate of SetUnion27-v0 and the native vector env's env-steps/s, each
as a ratio to CartPole-v1's measured here. Ratios, not absolute numbers, are what carry over
between machines.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import set_env


def rate(work, seconds: float) -> float:
    """Units of ``work()`` (it returns how many it did) per second, best of short rounds."""
    work()  # warm caches and lookup tables
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        done = work()
        best = max(best, done / (time.perf_counter() - start))
    return best


def sampling_rates(seconds: float, batch: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    rates = {}
    for game in set_env.GAME_IDS:
        for n_keys, (attributes, values) in set_env.DECKS.items():
            g = set_env.make_game(game, set_env.Deck(attributes, values))
            rates[set_env.env_id(game, n_keys)] = rate(
                lambda g=g: len(g.sample(batch, rng)), seconds
            )
    return rates


def single_env_rate(env_id: str, seconds: float, steps: int = 20000) -> float:
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


def vector_env_rate(env_id: str, seconds: float, num_envs: int, steps: int = 200) -> float:
    """Environment steps per second of the id's native vector env."""
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    actions = envs.action_space.sample()

    def run():
        for _ in range(steps):
            envs.step(actions)
        return steps * num_envs

    return rate(run, seconds)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--batch", type=int, default=65536, help="queries per sample() call")
    parser.add_argument("--num-envs", type=int, default=1024, help="vector env width")
    args = parser.parse_args(argv)

    print(f"## game.sample (train split, batch {args.batch})\n")
    print("| env | queries/s |\n|---|---:|")
    for name, value in sampling_rates(args.seconds, args.batch).items():
        print(f"| {name} | {value / 1e6:.2f} M |")

    single = single_env_rate("SetUnion27-v0", args.seconds)
    cartpole = single_env_rate("CartPole-v1", args.seconds)
    vector = vector_env_rate("SetUnion27-v0", args.seconds, args.num_envs)
    cartpole_vector = vector_env_rate("CartPole-v1", args.seconds, args.num_envs)
    print("\n## environments (steps/s; SetUnion27 resets after every step)\n")
    print("| env | SetUnion27-v0 | CartPole-v1 | ratio |\n|---|---:|---:|---:|")
    print(f"| gym.make, step+reset | {single:,.0f} | {cartpole:,.0f} | {single / cartpole:.2f} |")
    print(
        f"| native vector env ({args.num_envs}) | {vector:,.0f} | {cartpole_vector:,.0f} "
        f"| {vector / cartpole_vector:.2f} |"
    )


if __name__ == "__main__":
    main()
