"""A native vector environment: one batched implementation serving ``num_envs`` queries."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from set_env.deck import Deck
from set_env.env import _check_options, jaccard, make_spaces
from set_env.games import make_game
from set_env.query import text_formatter, vocab

_BLOCK_QUERIES = 16384  # queries drawn at once; a step then serves slices of them


class SetVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of ``SetEnv`` as one batched environment.

    Every step ends every episode, so the vector env resets within the same step
    (``AutoresetMode.SAME_STEP``): ``step`` returns the next queries' observations and
    infos, with the answered queries' observations in ``info["final_obs"]`` (an array of
    shape (num_envs, max_len)) and their infos, ``is_success`` included, in
    ``info["final_info"]``. Every info key ``k`` comes with its ``_k`` mask (all True).
    Infos carry ``positives`` and ``n_positives``; the query texts, which would cost more
    than the step itself, come on demand from ``query_texts()``. Arguments are those of
    ``SetEnv`` plus ``num_envs``.
    """

    metadata = {
        "render_modes": [],
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        game: str = "union",
        n_attributes: int = 3,
        n_values: int = 3,
        n_pairs: int | None = None,
        split: str | None = "train",
        action_mode: str = "key",
        tokens: str = "card",
        render_mode: str | None = None,
    ):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if render_mode is not None:
            raise ValueError("render_mode is not supported by the vector env; render a SetEnv")
        self.num_envs = int(num_envs)
        self.deck = Deck(n_attributes, n_values)
        self.game = make_game(game, self.deck, n_pairs)
        self.split, self.action_mode, self.tokens = _check_options(split, action_mode, tokens)
        self.render_mode = None
        self.vocab = vocab(self.deck, tokens).tokens
        single_obs, single_action = make_spaces(self.game, action_mode, tokens)
        self.single_observation_space, self.single_action_space = single_obs, single_action
        self.observation_space = batch_space(single_obs, self.num_envs)
        self.action_space = batch_space(single_action, self.num_envs)
        self._steps_per_block = max(1, _BLOCK_QUERIES // self.num_envs)
        self._mask = np.ones(self.num_envs, dtype=bool)
        self._step = self._steps_per_block
        self._current = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._step = self._steps_per_block  # queries drawn before a new seed are dropped
        self._current = self._next_queries()
        return self._current["tokens"], self._infos(self._current)

    def step(self, actions):
        if self._current is None:
            raise gym.error.ResetNeeded("step() needs queries: call reset() first")
        answered = self._current
        positives = answered["positives"]
        if self.action_mode == "key":
            keys = self._check_keys(actions)
            success = positives[np.arange(self.num_envs), keys]
            rewards = success.astype(np.float64)
        else:
            selection = self._check_selections(actions)
            rewards = jaccard(selection, positives)
            success = (selection.astype(bool) == positives).all(axis=1)
        final_info = self._infos(answered)
        final_info["is_success"], final_info["_is_success"] = success, self._mask
        self._current = self._next_queries()
        infos = self._infos(self._current)
        infos["final_obs"], infos["_final_obs"] = answered["tokens"], self._mask
        infos["final_info"], infos["_final_info"] = final_info, self._mask
        terminated = np.ones(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        return self._current["tokens"], rewards, terminated, truncated, infos

    def _next_queries(self) -> dict[str, np.ndarray]:
        if self._step == self._steps_per_block:
            n = self._steps_per_block * self.num_envs
            batch = self.game.sample(n, self.np_random, self.split, tokens=self.tokens)
            self._block = {
                "tokens": batch.tokens,
                "positives": batch.positives,
                "n_positives": batch.n_positives,
                "card_tokens": batch.card_tokens,
            }
            self._step = 0
        rows = slice(self._step * self.num_envs, (self._step + 1) * self.num_envs)
        self._step += 1
        return {name: values[rows] for name, values in self._block.items()}

    def _infos(self, queries: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        infos = {}
        for name in ("positives", "n_positives"):
            infos[name], infos[f"_{name}"] = queries[name], self._mask
        return infos

    def query_texts(self) -> list[str]:
        """The canonical texts of the current queries, one per sub-environment."""
        if self._current is None:
            raise gym.error.ResetNeeded("no queries yet: call reset() first")
        return text_formatter(self.deck).texts(self._current["card_tokens"]).tolist()

    def _check_keys(self, actions) -> np.ndarray:
        keys = np.asarray(actions)
        n_keys = self.deck.n_keys
        if keys.shape != (self.num_envs,) or not np.issubdtype(keys.dtype, np.integer):
            raise ValueError(
                f"actions must be {self.num_envs} integer key ids, got shape {keys.shape} "
                f"of {keys.dtype}"
            )
        if keys.min() < 0 or keys.max() >= n_keys:
            raise ValueError(
                f"actions must be key ids in [0, {n_keys}), got {keys.min()}..{keys.max()}"
            )
        return keys

    def _check_selections(self, actions) -> np.ndarray:
        selection = np.asarray(actions)
        shape = (self.num_envs, self.deck.n_keys)
        if selection.shape != shape or not np.isin(selection, (0, 1)).all():
            raise ValueError(
                f"actions must be 0/1 selections of shape {shape}, got {selection.shape}"
            )
        return selection
