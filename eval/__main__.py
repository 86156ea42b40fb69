"""``python -m eval``: evaluate a checkpoint on a fixed held-out set; one JSON object on
stdout (everything else on stderr).

    python -m eval --checkpoint RUN_DIR/checkpoint.pt [--env ID] [--queries 5120] [--seed 0]
        [--query-distribution size_weighted|uniform] [--eval-split test|all] [--tensorboard]
        [--device cpu] [--agent-module MODULE] [--allow-other-env]
"""

import argparse
import json
import math
import sys

from agents.checkpoint import load_scorer, run_folder
from eval import tags
from eval.harness import evaluate
from eval.sets import DISTRIBUTIONS, SPLITS, check_queries
from set_env.checks import check_seed
from set_env.cli import make_parser

EXAMPLES = [
    "python -m eval --checkpoint runs/RUN_DIR",
    "python -m eval --checkpoint runs/RUN_DIR/checkpoint.pt --queries 20000 --tensorboard",
    "python -m eval --checkpoint runs/RUN_DIR --eval-split all --device cuda",
    "python -m eval --checkpoint runs/RUN_DIR --env SetUnion27-v0 --allow-other-env",
]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m eval``."""
    parser = make_parser(
        "eval",
        "Evaluate a checkpoint on a fixed held-out set: one JSON object on stdout.",
        EXAMPLES,
    )
    parser.add_argument("--checkpoint", required=True, help="a checkpoint.pt or its run folder")
    parser.add_argument(
        "--env", help="evaluate on this env id (default: the one the checkpoint was trained on)"
    )
    parser.add_argument(
        "--allow-other-env",
        action="store_true",
        help="evaluate on an --env other than the trained one, which is refused otherwise: "
        "its numbers would measure another game than the one the scorer learned",
    )
    parser.add_argument("--queries", type=int, default=5120, help="size of the test set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test set")
    parser.add_argument(
        "--query-distribution",
        choices=DISTRIBUTIONS,
        default="size_weighted",
        help="how the test set is drawn (size_weighted: the study's)",
    )
    parser.add_argument(
        "--eval-split",
        choices=SPLITS,
        default="test",
        help="test: held-out queries; all: any query, training ones included (the study's "
        "for classic and wildcard)",
    )
    parser.add_argument(
        "--tensorboard", action="store_true", help="also write eval/* into the run's TensorBoard"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--agent-module",
        help="a module that registers the checkpoint's agent (default: the one the checkpoint "
        "records)",
    )
    return parser


def main(argv=None) -> None:
    """``python -m eval``: print the evaluation as JSON; a bad argument is one error line."""
    args = build_parser().parse_args(argv)
    try:
        check_queries(args.queries)
        check_seed(args.seed)
        scorer, state = load_scorer(args.checkpoint, args.device, args.agent_module)
        result = evaluate(
            scorer,
            args.env,
            args.queries,
            args.seed,
            args.query_distribution,
            split=args.eval_split,
            checkpoint=state,
            allow_other_env=args.allow_other_env,
        )
        check_finite_result(result)
        if args.tensorboard:
            write_tensorboard(args.checkpoint, state, result)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(result, allow_nan=False))


def check_finite_result(result: dict) -> None:
    """ValueError for a NaN or infinite number anywhere in the result (NaN is not JSON)."""
    for name, value in result.items():
        if isinstance(value, dict):
            check_finite_result(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(
                f"the evaluation gave {name} = {value}: the scorer's logits are not finite"
            )


def write_tensorboard(checkpoint: str, state: dict, result: dict) -> None:
    """Write the evaluation's ``eval/`` scalars into the run, at its checkpoint's step."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir = run_folder(checkpoint)
    try:
        with SummaryWriter(str(run_dir)) as writer:
            for name, tag in tags.EVAL.items():
                writer.add_scalar(tag, result[name], state.get("step", 0))
    except OSError as error:
        raise ValueError(f"--tensorboard: cannot write into {run_dir}: {error}") from None
    print(f"wrote eval/* to {run_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
