"""``python -m set_env``: show one query of every game with its answer, in words and, with
``--png DIR``, as pictures (DIR/<env id>.png, the env's rgb_array render).

Each game shows the query of the first seed from ``--seed`` on whose query shows what the
game is: a ``*`` for wildcard, several answer keys (at most half the deck) for union,
symdiff (with a ``^``) and shatter; any query for classic and shared.
"""

import argparse
import os
import pathlib
import sys

import gymnasium as gym

import set_env
from set_env.cli import make_parser
from set_env.render import write_png

EXAMPLES = [
    "python -m set_env",
    "python -m set_env --deck 81 --seed 7",
    "python -m set_env --png docs/images",
]


# What the shown query of a game has, so that it shows what the game is; any query of
# classic or shared does (a pair of its kind).
FEATURES = {
    "wildcard": "a *",
    "union": "several answer keys, at most half the deck",
    "symdiff": "a ^ and several answer keys, at most half the deck",
    "shatter": "several answer keys, at most half the deck",
}


def main(argv=None) -> None:
    args = _parser().parse_args(argv)
    if args.png:
        _prepare_folder(args.png)  # before any output: a bad folder fails at once
    for game in set_env.GAME_IDS:
        env_id = set_env.env_id(game, args.deck)
        env = gym.make(env_id, render_mode="ansi")
        seed, info = showcase_seed(env, game, args.seed)
        key = int(info["positives"].argmax())
        env.step(key)
        print(f"== {env_id}, seed {seed}{_why(game, args.seed)}")
        print(env.render())
        if args.png:
            _write_picture(env_id, seed, key, args.png / f"{env_id}.png")
    if args.png:
        print(f"pictures in {args.png}/")


def showcase_seed(env: gym.Env, game: str, first: int) -> tuple[int, dict]:
    """The first seed from ``first`` on whose query shows what ``game`` is, and the info of
    ``env`` reset with it."""
    seed = first
    while True:
        _, info = env.reset(seed=seed)
        if shows_its_game(game, info["query"], info["n_positives"], env.unwrapped.deck.n_keys):
            return seed, info
        seed += 1


def shows_its_game(game: str, text: str, n_positives: int, n_keys: int) -> bool:
    """Whether a query of ``game`` has ``FEATURES[game]`` (if the game has an entry)."""
    several = 1 < n_positives <= n_keys // 2
    if game == "wildcard":
        return "*" in text
    if game == "symdiff":
        return "^" in text and several
    if game in ("union", "shatter"):
        return several
    return True  # a classic or a shared query is always a pair of its kind


def _why(game: str, first: int) -> str:
    if game not in FEATURES:
        return ""
    return f" (the first from {first} whose query has {FEATURES[game]})"


def _parser():
    description = "Show one query of every SET game with its answer, in words and pictures."
    parser = make_parser("set_env", description, EXAMPLES)
    parser.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="the first seed tried: each game shows the query of the first seed from here on "
        "that shows what the game is (a * for wildcard, several answer keys for union, "
        "symdiff and shatter)",
    )
    parser.add_argument(
        "--deck",
        type=int,
        choices=sorted(set_env.DECKS),
        default=27,
        help="the deck: 27 cards (colour, fill, shape) or 81 (and count)",
    )
    parser.add_argument(
        "--png",
        type=pathlib.Path,
        metavar="DIR",
        help="also draw each query with its answer and the chosen key as DIR/<env id>.png "
        "(the env's rgb_array render; needs Pillow)",
    )
    return parser


def _write_picture(env_id: str, seed: int, key: int, path: pathlib.Path) -> None:
    picture = gym.make(env_id, render_mode="rgb_array")
    picture.reset(seed=seed)
    picture.step(key)
    try:
        write_png(path, picture.render())
    except OSError as error:
        _fail(f"cannot write {path}: {error.strerror or error}")


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
