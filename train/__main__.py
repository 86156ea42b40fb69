"""``python -m train``: supervised training of a scorer (``--help`` lists the arguments).

    python -m train --env SetUnion27-v0 --agent contrastive --dim 27 --objective infonce \\
        --preset small --steps 20000 --batch-size 1024 --precision bf16 --device cuda

Under ``torchrun --nproc_per_node=N -m train ...`` it trains with DDP.
"""

import argparse
import json
import sys

from train.config import TrainConfig, argument_parser
from train.sweep import die_with_parent
from train.trainer import NonFiniteLoss, Trainer


def build_parser() -> argparse.ArgumentParser:
    return argument_parser(
        TrainConfig, "python -m train", "Train a SET scorer with a supervised objective."
    )


def main(argv=None) -> None:
    die_with_parent()
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    given = {name: value for name, value in args.items() if value is not None}
    try:
        config = TrainConfig(**given)
        trainer = Trainer(config, set(given))
        result = trainer.run()
    except (ValueError, NonFiniteLoss) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if not trainer.distributed.main:
        return
    summary = {k: v for k, v in result.items() if k != "losses"}
    print(json.dumps(summary))
    print(f"TensorBoard: tensorboard --logdir {trainer.config.logdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
