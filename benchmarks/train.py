"""The trainer's throughput against a bare training loop of the same model and loss, and the
joint scorer's cost of scoring all keys against the contrastive scorer's forward.

    python -m benchmarks.train [--env SetUnion27-v0] [--steps 60] [--batch-size 256]

Prints markdown tables of ratios (measured in the same run, so they carry over between
machines): trainer / bare loop examples/s per agent (target >= 0.95), and joint / contrastive
forward time per token mode (target <= 3; the median of repeated forwards, with min-max).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

import agents
from benchmarks.envs import Spread
from set_env.cli import make_parser
from set_env.registry import make_env
from train.data import draw_batch
from train.objectives import make_objective
from train.trainer import TrainConfig, Trainer

FORWARD_ROUNDS = 15  # forwards of each scorer, interleaved


def bare_loop_rate(config: TrainConfig) -> float:
    """Examples/s of the plainest loop: sample, forward, loss, backward, Adam step."""
    env = make_env(config.env, tokens=config.tokens)
    torch.manual_seed(config.seed)
    scorer = agents.make(config.agent, env, preset=config.preset)
    objective = make_objective(config.objective)
    optimizer = torch.optim.AdamW(scorer.parameters(), lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    game = env.unwrapped.game

    def step(i: int) -> None:
        rng = np.random.default_rng([config.seed, 0, i])
        tokens, positives, keys = (
            torch.from_numpy(a) for a in draw_batch(game, config.batch_size, rng, config.tokens)
        )
        loss = objective(scorer(tokens), positives, keys)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(scorer.parameters(), config.grad_clip)
        optimizer.step()

    for i in range(3):  # warm-up
        step(i)
    start = time.perf_counter()
    for i in range(config.steps):
        step(i)
    return config.steps * config.batch_size / (time.perf_counter() - start)


def trainer_rate(config: TrainConfig) -> float:
    """Examples/s of ``Trainer.run``, its one evaluation at the end taken out."""
    with tempfile.TemporaryDirectory() as logdir:
        warm = Trainer(TrainConfig(**{**vars(config), "steps": 3, "logdir": logdir}))
        warm.run()
        trainer = Trainer(TrainConfig(**{**vars(config), "logdir": logdir}))
        start = time.perf_counter()
        trainer.run()
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        trainer.evaluate()
        elapsed -= time.perf_counter() - start
    return config.steps * config.batch_size / elapsed


def forward_ratio(env_id: str, tokens: str, batch_size: int, repeats: int = FORWARD_ROUNDS) -> dict:
    """Forward times (ms) of contrastive and joint over ``repeats`` rounds, one forward of
    each per round, and the joint / contrastive ratio of each round: their spreads."""
    env = make_env(env_id, tokens=tokens)
    batch = env.unwrapped.game.sample(batch_size, np.random.default_rng(0), tokens=tokens)
    query_tokens = torch.from_numpy(batch.tokens)
    scorers = {name: agents.make(name, env).eval() for name in ("contrastive", "joint")}
    times = {name: [] for name in scorers}
    with torch.no_grad():
        for _ in range(repeats):
            for name, scorer in scorers.items():
                start = time.perf_counter()
                scorer(query_tokens)
                times[name].append((time.perf_counter() - start) * 1e3)
    rounds = zip(times["joint"], times["contrastive"], strict=True)
    ratios = [joint / contrastive for joint, contrastive in rounds]
    return {**{name: Spread.of(ms) for name, ms in times.items()}, "ratio": Spread.of(ratios)}


EXAMPLES = [
    "python -m benchmarks.train",
    "python -m benchmarks.train --env SetShatter27-v0 --steps 20 --batch-size 128",
]


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "benchmarks.train",
        "The trainer's throughput against a bare training loop, and joint vs contrastive cost.",
        EXAMPLES,
    )
    parser.add_argument("--env", default="SetUnion27-v0", help="the env id of every measurement")
    parser.add_argument("--steps", type=int, default=60, help="steps per measurement")
    parser.add_argument(
        "--batch-size", type=int, default=256, help="queries per step of the training loops"
    )
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)

    # The process's first training steps pay one-off costs (thread pools, allocator).
    bare_loop_rate(TrainConfig(env=args.env, agent="classifier", objective="ce", steps=5))
    print(f"## trainer vs bare loop ({args.env}, batch {args.batch_size}, small preset, CPU)\n")
    print("| agent | objective | bare loop ex/s | trainer ex/s | ratio |\n|---|---|---:|---:|---:|")
    for agent, objective in (("contrastive", "infonce"), ("joint", "ce"), ("classifier", "ce")):
        config = TrainConfig(
            env=args.env,
            agent=agent,
            objective=objective,
            steps=args.steps,
            batch_size=args.batch_size,
            eval_queries=256,
            eval_every=10**9,
            log_every=10,
        )
        bare, ours = bare_loop_rate(config), trainer_rate(config)
        print(f"| {agent} | {objective} | {bare:,.0f} | {ours:,.0f} | {ours / bare:.2f} |")

    print(
        f"\n## scoring all keys: joint vs contrastive forward ({args.env}, batch 256; median of "
        f"{FORWARD_ROUNDS} rounds, min–max; ratio: the median of each round's)\n"
    )
    print("| tokens | contrastive ms | joint ms | ratio |\n|---|---:|---:|---:|")
    for tokens in ("card", "attribute"):
        times = forward_ratio(args.env, tokens, 256)
        print(
            f"| {tokens} | {times['contrastive'].format('.1f')} | {times['joint'].format('.1f')} "
            f"| {times['ratio'].format('.2f')} |"
        )


if __name__ == "__main__":
    main()
