"""``python -m set_env``: show one query of every game with its answer.

    python -m set_env [--seed 0] [--deck 27|81] [--png DIR]

``--png DIR`` also writes each query's rgb_array render to DIR/<env id>.png.
"""

import argparse
import os
import pathlib
import sys

import gymnasium as gym

import set_env
from set_env.render import write_png


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Show one query of every SET game.")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the first reset")
    parser.add_argument("--deck", type=int, choices=sorted(set_env.DECKS), default=27)
    parser.add_argument("--png", type=pathlib.Path, help="folder for rgb_array renders")
    args = parser.parse_args(argv)
    if args.png:
        _prepare_folder(args.png)  # before any output: a bad folder fails at once
    for game in set_env.GAME_IDS:
        env_id = set_env.env_id(game, args.deck)
        env = gym.make(env_id, render_mode="ansi")
        _, info = env.reset(seed=args.seed)
        key = int(info["positives"].argmax())
        env.step(key)
        print(f"== {env_id}\n{env.render()}")
        if args.png:
            picture = gym.make(env_id, render_mode="rgb_array")
            picture.reset(seed=args.seed)
            picture.step(key)
            path = args.png / f"{env_id}.png"
            try:
                write_png(path, picture.render())
            except OSError as error:
                _fail(f"cannot write {path}: {error.strerror or error}")
    if args.png:
        print(f"pictures in {args.png}/")


def _seed(text: str) -> int:
    seed = int(text)  # argparse reports a ValueError here as an invalid value
    if seed < 0:
        raise argparse.ArgumentTypeError(f"seed must be an integer >= 0, got {seed}")
    return seed


def _prepare_folder(folder: pathlib.Path) -> None:
    """Create the --png folder, or exit with one line saying why it cannot hold pictures."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        _fail(f"--png {folder}: exists and is not a folder")
    except OSError as error:
        _fail(f"--png {folder}: cannot create the folder: {error.strerror or error}")
    if not os.access(folder, os.W_OK | os.X_OK):
        _fail(f"--png {folder}: the folder is not writable")


def _fail(message: str) -> None:
    """One line on stderr and exit status 2, argparse's status for bad arguments."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
