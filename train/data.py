"""The training stream: train-split queries (size-weighted, or uniform over the distinct
ones) with one positive key each.

Step ``s`` of rank ``r`` draws its batch from ``default_rng([seed, r, s])``, so a batch
depends on nothing but its step: a resumed run replays the same data, and a background
thread can prepare batches ahead without changing them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from set_env.games import Game


class Batch(NamedTuple):
    tokens: torch.Tensor  # (B, L) int64
    positives: torch.Tensor  # (B, n_keys) bool
    keys: torch.Tensor  # (B,) int64: one positive key per query


class Curriculum:
    """The game of each step: over the first ``steps`` steps a union or symdiff game's queries
    grow from one pair to its ``n_pairs`` in equal stages; afterwards (and for every other
    game) the game itself. Learning the pair rule on one pair first is what lets a CPU learn
    the eight-pair games in minutes."""

    def __init__(self, game: Game, steps: int):
        if steps and not game.takes_pairs:
            raise ValueError(
                f"curriculum applies to the union and symdiff games, not {game.name!r}"
            )
        self.game, self.steps = game, steps
        pairs = doublings(game.n_pairs) if steps else []
        self.stages = [type(game)(game.deck, n) for n in pairs]

    def __call__(self, step: int) -> Game:
        if step >= self.steps:
            return self.game
        return self.stages[step * len(self.stages) // self.steps]


def doublings(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    sizes = [1 << i for i in range(n.bit_length()) if 1 << i < n]
    return sizes + [n]


def draw_batch(
    game: Game,
    batch_size: int,
    rng: np.random.Generator,
    tokens: str,
    size_weighted: bool = True,
):
    """Numpy arrays of one training batch."""
    batch = game.sample(batch_size, rng, split="train", size_weighted=size_weighted, tokens=tokens)
    # A uniform positive key per query: the largest of uniform noise on the positives.
    noise = np.where(batch.positives, rng.random(batch.positives.shape), -1.0)
    return batch.tokens, batch.positives, noise.argmax(axis=1)


class QueryStream:
    """Iterates training batches from ``start_step`` on, prepared by a background thread and
    moved to ``device`` (through pinned memory on CUDA). ``game`` is a game, or a function of
    the step that gives one (a ``Curriculum``); ``size_weighted`` as in ``Game.sample``."""

    def __init__(
        self,
        game: Game | Callable[[int], Game],
        batch_size: int,
        seed: int,
        tokens: str = "card",
        rank: int = 0,
        start_step: int = 0,
        device: torch.device | str = "cpu",
        prefetch: int = 4,
        size_weighted: bool = True,
    ):
        self.game_at = game if callable(game) else lambda step: game
        self.batch_size, self.tokens, self.size_weighted = batch_size, tokens, size_weighted
        self.seed, self.rank, self.device = seed, rank, torch.device(device)
        self._ready: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(start_step,), daemon=True)
        self._thread.start()

    def _produce(self, step: int) -> None:
        """Prepare batches until closed; any failure is handed to the consumer, which raises
        it, and ends the thread."""
        try:
            while not self._stop.is_set():
                self._hand_over(self._tensors(step))
                step += 1
        except Exception as error:
            self._hand_over(error)

    def _tensors(self, step: int) -> list[torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.rank, step])
        arrays = draw_batch(
            self.game_at(step), self.batch_size, rng, self.tokens, self.size_weighted
        )
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        return [t.pin_memory() for t in tensors] if self.device.type == "cuda" else tensors

    def _hand_over(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        while True:
            try:
                tensors = self._ready.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._thread.is_alive():  # never wait on a producer that is gone
                    raise RuntimeError("the data thread stopped without a batch") from None
        if isinstance(tensors, Exception):
            raise tensors
        return Batch(*(t.to(self.device, non_blocking=True) for t in tensors))

    def close(self) -> None:
        """Stop the data thread (waiting for it at most 5 s)."""
        self._stop.set()
        self._thread.join(timeout=5)
