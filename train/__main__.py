"""``python -m train``: supervised training of a scorer (``--help`` lists the arguments).

    python -m train --env SetUnion27-v0 --agent contrastive --dim 27 --objective infonce \\
        --preset small --steps 20000 --batch-size 1024 --precision bf16 --device cuda

Under ``torchrun --nproc_per_node=N -m train ...`` it trains with DDP.
"""

import argparse
import json
import sys

from train.config import TrainConfig, argument_parser, parse_given
from train.sweep import die_with_parent
from train.trainer import NonFiniteLoss, Trainer

EXAMPLES = [
    "python -m train --env SetUnion27-v0 --agent contrastive --dim 27 --steps 2000",
    "python -m train --env SetShatter27-v0 --agent joint --objective ce --device cuda "
    "--precision bf16",
    "python -m train --resume runs/RUN_DIR --steps 4000",
    "python -m train --agent my_scorer --agent-module my_pkg.my_agents",
    "torchrun --nproc_per_node=4 -m train --agent contrastive --batch-size 4096 --device cuda",
]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m train``, one flag per TrainConfig field."""
    return argument_parser(
        TrainConfig, "train", "Train a SET scorer with a supervised objective.", EXAMPLES
    )


def main(argv=None) -> None:
    """``python -m train``: train one run and print its final metrics as JSON."""
    die_with_parent()
    given = parse_given(build_parser(), argv)
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
