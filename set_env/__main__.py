"""``python -m set_env``: show one query of every game with its answer.

    python -m set_env [--seed 0] [--deck 27|81] [--png DIR]

``--png DIR`` also writes each query's rgb_array render to DIR/<env id>.png.
"""

import argparse
import pathlib

import gymnasium as gym

import set_env
from set_env.png import write_png


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Show one query of every SET game.")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first reset")
    parser.add_argument("--deck", type=int, choices=sorted(set_env.DECKS), default=27)
    parser.add_argument("--png", type=pathlib.Path, help="folder for rgb_array renders")
    args = parser.parse_args(argv)
    for game in set_env.GAME_IDS:
        env_id = set_env.env_id(game, args.deck)
        env = gym.make(env_id, render_mode="ansi")
        _, info = env.reset(seed=args.seed)
        key = int(info["positives"].argmax())
        env.step(key)
        print(f"== {env_id}\n{env.render()}")
        if args.png:
            args.png.mkdir(parents=True, exist_ok=True)
            picture = gym.make(env_id, render_mode="rgb_array")
            picture.reset(seed=args.seed)
            picture.step(key)
            write_png(args.png / f"{env_id}.png", picture.render())
    if args.png:
        print(f"pictures in {args.png}/")


if __name__ == "__main__":
    main()
