"""Training throughput of the paper-preset scorers on a GPU, and the paper sweep's projected
wall time there.

    python -m benchmarks.gpu [--out gpu_benchmark.json] [--steps 20] [--warmup 5]
        [--precisions fp32,tf32,bf16,fp16] [--compile-precisions bf16] [--device cuda]
        [--preset paper] [--batch-size 1024]

For each scorer (contrastive d = 27 and 512, joint, classifier) on SetUnion27 and
SetShatter27, at each precision (and, compiled, at those of ``--compile-precisions``): the
examples/s of the trainer's own step and data stream, the model FLOPs per example (from the
config: ``train_flops_per_example``), MFU against the device's peak (``PEAK_FLOPS``), the
share of the time the loop waited for data, and the peak GPU memory. Prints a markdown
table, writes it as JSON, and projects the paper sweep's wall time from the fastest set-up
of each scorer. On CPU (``--device cpu --preset small``; a test does) the same code runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

from set_env.cli import make_parser
from train.config import TrainConfig
from train.sweep import AGENTS, GAMES, grid
from train.trainer import Trainer

ENVS = ("SetUnion27-v0", "SetShatter27-v0")
SCORERS = (("contrastive", 27), ("contrastive", 512), ("joint", None), ("classifier", None))
# Dense peak FLOP/s by device name (a substring of torch.cuda.get_device_name()) and
# precision; H100 and H200 SXM share their tensor cores. fp32 is the CUDA cores' rate.
PEAK_FLOPS = {
    "H200": {"fp32": 67e12, "tf32": 495e12, "bf16": 990e12, "fp16": 990e12},
    "H100": {"fp32": 67e12, "tf32": 495e12, "bf16": 990e12, "fp16": 990e12},
}


def peak_flops(device: torch.device, precision: str) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peaks[precision] for key, peaks in PEAK_FLOPS.items() if key in name), None)


def block_flops(config, rows: int, context: int, projected: int) -> int:
    """Forward FLOPs of one block (2 per multiply-add) computing ``rows`` output positions,
    each attending over ``context`` positions, whose keys and values come from ``projected``
    positions: per row the query and output projections (2 d^2 multiply-adds), the MLP
    (2 d d_ff) and attention's scores and weighted values (2 d context); per projected
    position its keys and values (2 d^2)."""
    d, d_ff = config.d_model, config.d_ff
    per_row = 2 * d * d + 2 * d * d_ff + 2 * d * context
    return 2 * (rows * per_row + projected * 2 * d * d)


def train_flops_per_example(scorer, length: int) -> int:
    """Training FLOPs per query (forward + backward = 3 x forward) of a built-in scorer for
    queries of ``length`` tokens (the padded length it computes on), as the scorers compute
    them: the encoder's last block only at the readout (but the keys and values of every
    position). The joint scorer's prefix form: the query's blocks but the last, the last
    one's keys and values of the query, and in every block the n_keys key positions, each
    attending to the query's 1 + length positions and itself; the first block's projections
    of the key positions are computed once per batch, so they are left out."""
    config, n_keys, d = scorer.config, scorer.spec.n_keys, scorer.config.d_model
    positions, layers = 1 + length, config.n_layers
    body = (layers - 1) * block_flops(config, positions, positions, positions)
    if scorer.name == "joint":
        query = body + block_flops(config, 0, 0, positions)
        keys = layers * block_flops(config, n_keys, positions + 1, n_keys)
        once_per_batch = 2 * n_keys * 3 * d * d  # the first block's q, k, v of the keys
        forward = query + keys - once_per_batch + 2 * n_keys * d  # and the read-out
    else:
        forward = body + block_flops(config, 1, positions, positions)
        if scorer.name == "contrastive":
            forward += 2 * d * config.dim + 2 * config.dim * n_keys
        else:
            forward += 2 * d * n_keys
    return 3 * forward


def measure(config: TrainConfig, steps: int, warmup: int) -> dict:
    """Examples/s, the data-wait share and the peak memory of ``steps`` training steps."""
    trainer = Trainer(config)
    device = trainer.device
    stream = trainer.stream()
    try:
        for _ in range(warmup):  # compilation, cuDNN and allocator warm-up
            trainer._train_step(next(stream))
        synchronize(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        waited, lengths, start = 0.0, [], time.perf_counter()
        for _ in range(steps):
            fetch = time.perf_counter()
            batch = next(stream)
            waited += time.perf_counter() - fetch
            lengths.append(batch.tokens.shape[1])
            trainer._train_step(batch)
        synchronize(device)
        elapsed = time.perf_counter() - start
    finally:
        stream.close()
    flops = train_flops_per_example(trainer.scorer, max(lengths))
    rate = steps * config.batch_size / elapsed
    peak = peak_flops(device, config.precision)
    return {
        "examples_per_s": rate,
        "train_flops_per_example": flops,
        "mfu": rate * flops / peak if peak else None,
        "data_wait": waited / elapsed,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30
        if device.type == "cuda"
        else None,
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_ups(args) -> list[TrainConfig]:
    compiled = {(p, True) for p in args.compile_precisions}
    modes = [(p, False) for p in args.precisions] + sorted(compiled)
    configs = []
    for env in ENVS:
        for agent, dim in SCORERS:
            for precision, compile_ in modes:
                configs.append(
                    TrainConfig(
                        env=env,
                        agent=agent,
                        dim=dim,
                        objective="infonce" if agent == "contrastive" else "ce",
                        preset=args.preset,
                        batch_size=args.batch_size,
                        precision=precision,
                        compile=compile_,
                        device=args.device,
                        eval_queries=64,
                    )
                )
    return configs


def project_sweep(rows: list[dict]) -> dict:
    """Hours of the paper sweep (``--preset paper``, every game) on this device, each run at
    the fastest measured set-up of its scorer: union's rate for the pair games (the 81-card
    union's too, its joint scorer scaled by 81 / 27 keys), shatter's for shatter, and
    d = 27's for the contrastive dims up to 81, d = 512's above."""
    best: dict[tuple, float] = {}
    for row in rows:
        key = (row["env"], row["agent"], row["dim"])
        best[key] = max(best.get(key, 0.0), row["examples_per_s"])
    seconds, runs = 0.0, grid("paper", GAMES, (), AGENTS, None)
    for run in (run.config for run in runs):
        env = "SetShatter27-v0" if run.env == "SetShatter27-v0" else "SetUnion27-v0"
        dim = None if run.dim is None else (27 if run.dim <= 81 else 512)
        rate = best.get((env, run.agent, dim))
        if rate is None:
            continue
        if run.env == "SetUnion81-v0" and run.agent == "joint":
            rate /= 3
        seconds += run.steps * run.batch_size / rate
    return {"hours": seconds / 3600, "runs": len(runs)}


def markdown(rows: list[dict]) -> str:
    lines = [
        "| env | scorer | precision | compile | examples/s | GFLOP/example | MFU | data wait "
        "| peak GiB |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        scorer = r["agent"] + (f" d={r['dim']}" if r["dim"] else "")
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "–"
        memory = f"{r['peak_memory_gib']:.1f}" if r["peak_memory_gib"] is not None else "–"
        lines.append(
            f"| {r['env']} | {scorer} | {r['precision']} | {'yes' if r['compile'] else 'no'} | "
            f"{r['examples_per_s']:,.0f} | {r['train_flops_per_example'] / 1e9:.3g} | {mfu} | "
            f"{r['data_wait']:.1%} | {memory} |"
        )
    return "\n".join(lines)


EXAMPLES = [
    "python -m benchmarks.gpu",
    "python -m benchmarks.gpu --precisions bf16 --compile-precisions '' --steps 10",
    "python -m benchmarks.gpu --device cpu --preset small --batch-size 64 --out cpu.json",
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = make_parser(
        "benchmarks.gpu",
        "Training throughput of the paper scorers on a GPU, and the paper sweep's projected time.",
        EXAMPLES,
    )
    parser.add_argument("--out", default="gpu_benchmark.json", help="the JSON file to write")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per set-up")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument(
        "--precisions", default="fp32,tf32,bf16,fp16", help="comma-separated precisions to time"
    )
    parser.add_argument(
        "--compile-precisions",
        default="bf16",
        help="comma-separated precisions also timed under torch.compile ('': none)",
    )
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu")
    parser.add_argument("--preset", default="paper", help="the scorers' size preset")
    parser.add_argument("--batch-size", type=int, default=1024, help="queries per step")
    args = parser.parse_args(argv)
    args.precisions = [p for p in args.precisions.split(",") if p]
    args.compile_precisions = [p for p in args.compile_precisions.split(",") if p]
    if args.steps < 1 or args.warmup < 1 or args.batch_size < 1:
        parser.error("--steps, --warmup and --batch-size must be positive")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as logdir:
        configs = set_ups(args)
        for config in tqdm(configs, desc="gpu benchmark", file=sys.stderr):
            config = dataclasses.replace(config, logdir=logdir)
            try:
                result = measure(config, args.steps, args.warmup)
            except ValueError as error:
                print(f"error: {error}", file=sys.stderr)
                raise SystemExit(2) from None
            rows.append(
                {
                    "env": config.env,
                    "agent": config.agent,
                    "dim": config.dim,
                    "precision": config.precision,
                    "compile": config.compile,
                    **result,
                }
            )
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    projection = project_sweep(rows)
    output = {
        "device": name,
        "batch_size": args.batch_size,
        "rows": rows,
        "paper_sweep": projection,
    }
    Path(args.out).write_text(json.dumps(output, indent=2))
    print(f"{name}, batch {args.batch_size}, preset {args.preset}\n")
    print(markdown(rows))
    print(
        f"\nThe paper sweep ({projection['runs']} runs) at these rates: about "
        f"{projection['hours']:.1f} hours on one such device (JSON: {args.out})"
    )


if __name__ == "__main__":
    main()
