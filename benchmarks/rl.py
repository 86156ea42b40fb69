"""RL throughput on the two vec envs ``train.rl`` can use: the native batched SetVectorEnv
(``NativeVecEnv``) against SB3's DummyVecEnv of Python envs.

    python -m benchmarks.rl [--envs SetUnion27-v0,SetClassic27-v0] [--agent classifier]
        [--n-envs 16] [--timesteps 2048] [--rounds 5] [--seconds 1.0]

Prints a markdown table per env: PPO timesteps/s of ``model.learn`` (the same small scorer
and ``train.rl``'s defaults, no evaluation) and the env-only steps/s through each vec env
(random actions), each the median of the rounds with min–max, and native / dummy as the
ratio of the medians. PPO's rounds alternate between the vec envs, so both see the same
machine load.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from benchmarks.envs import Spread, rate
from set_env.cli import make_parser
from set_env.registry import canonical_env_id
from train.rl import RLConfig, make_model
from train.vec_env import VEC_ENVS, make_sb3_vec_env

SEED = 0


def env_step_rate(env_id: str, vec_env: str, n_envs: int, seconds: float) -> Spread:
    """Env steps/s (sub-environment steps) of ``vec_env``'s vec env under random actions."""
    envs = make_sb3_vec_env(env_id, n_envs, SEED, vec_env=vec_env)
    envs.reset()
    envs.action_space.seed(SEED)
    actions = [np.stack([envs.action_space.sample() for _ in range(n_envs)]) for _ in range(64)]

    def step_all() -> int:
        for batch in actions:
            envs.step(batch)
        return len(actions) * n_envs

    return rate(step_all, seconds)


def ppo_rates(config: RLConfig, timesteps: int, rounds: int) -> dict[str, Spread]:
    """PPO timesteps/s of ``model.learn(timesteps)`` per vec env, over ``rounds`` rounds that
    alternate between them (after one warm-up rollout each)."""
    with tempfile.TemporaryDirectory() as logdir:
        models = {
            kind: make_model(RLConfig(**{**vars(config), "vec_env": kind, "logdir": logdir}))
            for kind in VEC_ENVS
        }
        for model in models.values():
            model.learn(config.n_steps * config.n_envs)
        rates: dict[str, list[float]] = {kind: [] for kind in VEC_ENVS}
        for _ in range(rounds):
            for kind, model in models.items():
                start = time.perf_counter()
                model.learn(timesteps, reset_num_timesteps=False)
                rates[kind].append(timesteps / (time.perf_counter() - start))
    return {kind: Spread.of(values) for kind, values in rates.items()}


EXAMPLES = [
    "python -m benchmarks.rl",
    "python -m benchmarks.rl --envs SetClassic27-v0 --timesteps 1024 --rounds 3 --seconds 0.3",
]


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "benchmarks.rl",
        "PPO and env-stepping throughput through the native vec env and SB3's DummyVecEnv.",
        EXAMPLES,
    )
    parser.add_argument(
        "--envs",
        default="SetUnion27-v0,SetClassic27-v0",
        help="comma-separated env ids, one table each",
    )
    parser.add_argument("--agent", default="classifier", help="the scorer PPO trains")
    parser.add_argument("--n-envs", type=int, default=16, help="sub-environments of each vec env")
    parser.add_argument(
        "--timesteps", type=int, default=2048, help="PPO timesteps per round (one learn call)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="PPO rounds per vec env")
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="time of the env-stepping rounds in all"
    )
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The env ids of ``--envs``, canonical; a one-line CLI error for any bad argument."""
    for name in ("n_envs", "timesteps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    try:
        return [canonical_env_id(env_id) for env_id in args.envs.split(",")]
    except ValueError as error:
        parser.error(f"--envs: {error}")


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    env_ids = check_arguments(parser, args)
    for env_id in env_ids:
        config = RLConfig(env=env_id, agent=args.agent, n_envs=args.n_envs, seed=SEED)
        ppo = ppo_rates(config, args.timesteps, args.rounds)
        stepping = {
            kind: env_step_rate(env_id, kind, args.n_envs, args.seconds) for kind in VEC_ENVS
        }
        print(
            f"## {env_id}: {args.agent} (small), {args.n_envs} envs; median of the rounds "
            "(min–max)\n"
        )
        print("| vec env | PPO timesteps/s | env steps/s |\n|---|---:|---:|")
        for kind in VEC_ENVS:
            print(f"| {kind} | {ppo[kind].format(',.0f')} | {stepping[kind].format(',.0f')} |")
        ppo_ratio = ppo["native"].median / ppo["dummy"].median
        step_ratio = stepping["native"].median / stepping["dummy"].median
        print(f"| native / dummy | {ppo_ratio:.2f} | {step_ratio:.2f} |\n")


if __name__ == "__main__":
    main()
