"""``python -m train``: supervised training of a scorer (``--help`` lists the arguments).

    python -m train --env SetUnion27-v0 --agent contrastive --dim 27 --objective infonce \\
        --preset small --steps 20000 --batch-size 1024 --precision bf16 --device cuda

Under ``torchrun --nproc_per_node=N -m train ...`` it trains with DDP.
"""

import argparse
import dataclasses
import json
import sys
import typing

from train.config import TrainConfig, field_docs
from train.trainer import NonFiniteLoss, Trainer, with_resume_env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train", description="Train a SET scorer with a supervised objective."
    )
    docs = field_docs(TrainConfig)
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{docs.get(field.name, '')} (default: {field.default})"
        if hints[field.name] is bool:
            parser.add_argument(flag, action="store_true", default=None, help=help_text)
            continue
        kind = next(t for t in typing.get_args(hints[field.name]) or (hints[field.name],))
        parser.add_argument(flag, type=kind, default=None, help=help_text)
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    given = {name: value for name, value in args.items() if value is not None}
    try:
        config = with_resume_env(TrainConfig(**given), "env" in given)
        trainer = Trainer(config)
        result = trainer.run()
    except (ValueError, NonFiniteLoss) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if not trainer.distributed.main:
        return
    summary = {k: v for k, v in result.items() if k != "losses"}
    print(json.dumps(summary))
    print(f"TensorBoard: tensorboard --logdir {config.logdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
