"""A native vector environment: one batched implementation serving ``num_envs`` queries."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from set_env.checks import check_no_unknown, check_reset_options, check_seed, excerpt, is_int
from set_env.deck import Deck
from set_env.env import (
    RESET_OPTIONS,
    as_array,
    check_env_options,
    jaccard,
    keyword_names,
    make_spaces,
    pose_query,
)
from set_env.games import make_game
from set_env.query import text_formatter, vocab
from set_env.vocab import PAD

_BLOCK_QUERIES = 16384  # queries drawn at once; a step then serves slices of them
MAX_ENVS = 1 << 20  # sub-environments: a step's arrays stay within a few hundred MiB


class SetVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of ``SetEnv`` as one batched environment.

    Every step ends every episode, so the vector env resets within the same step
    (``AutoresetMode.SAME_STEP``): ``step`` returns the next queries' observations and
    infos, with the answered queries' observations in ``info["final_obs"]`` (an array of
    shape (num_envs, max_len)) and their infos, ``is_success`` included, in
    ``info["final_info"]``. Every info key ``k`` comes with its ``_k`` mask (all True).
    Infos carry ``positives`` and ``n_positives``; the query texts, which would cost more
    than the step itself, come on demand from ``query_texts()``. Arguments are those of
    ``SetEnv`` plus ``num_envs`` (1 to ``MAX_ENVS``).

    ``reset(options={"query": q})`` poses queries as ``SetEnv``'s does: ``q`` is one text for
    every sub-environment, or a list or tuple of ``num_envs`` texts, one each. The next
    ``step`` answers them and serves freshly drawn queries.
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
        **unknown,
    ):
        check_no_unknown(unknown, keyword_names(SetVectorEnv.__init__))
        if not is_int(num_envs) or not 1 <= num_envs <= MAX_ENVS:
            raise ValueError(
                f"num_envs must be an integer from 1 to MAX_ENVS = {MAX_ENVS}, "
                f"got {excerpt(num_envs)}"
            )
        if render_mode is not None:
            raise ValueError(
                f"render_mode is not supported by the vector env (render a SetEnv), "
                f"got {excerpt(render_mode)}"
            )
        self.num_envs = int(num_envs)
        self.deck = Deck(n_attributes, n_values)
        self.game = make_game(game, self.deck, n_pairs)
        self.split, self.action_mode, self.tokens = check_env_options(split, action_mode, tokens)
        # Each step's queries come from one sample(), which bounds how many it returns.
        most_queries = self.game.max_sample(tokens)
        if self.num_envs > most_queries:
            raise ValueError(
                f"num_envs must be at most {most_queries} for {self.game!r} with "
                f"tokens={tokens!r} (the bound MAX_CELLS on one sample), got {self.num_envs}"
            )
        self.render_mode = None
        self.vocab = vocab(self.deck, tokens).tokens
        single_obs, single_action = make_spaces(self.game, action_mode, tokens)
        self.single_observation_space, self.single_action_space = single_obs, single_action
        self.observation_space = batch_space(single_obs, self.num_envs)
        self.action_space = batch_space(single_action, self.num_envs)
        self._steps_per_block = max(1, min(_BLOCK_QUERIES, most_queries) // self.num_envs)
        self._mask = np.ones(self.num_envs, dtype=bool)
        self._step = self._steps_per_block
        self._current = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """New queries for every sub-environment: drawn, or posed by ``options["query"]``."""
        options = check_reset_options(options, RESET_OPTIONS)
        seed = check_seed(seed, optional=True)
        super().reset(seed=seed)
        if seed is not None:
            self._step = self._steps_per_block  # queries drawn before a new seed are dropped
        if "query" in options:
            self._current = self._posed(options["query"])
        else:
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

    def _posed(self, posed) -> dict[str, np.ndarray]:
        """The current queries from ``options["query"]``: one text, or one per sub-env."""
        if isinstance(posed, str):
            query, observation = pose_query(posed, self.game, self.tokens, "options['query']")
            queries, observations = [query] * self.num_envs, [observation] * self.num_envs
        elif isinstance(posed, (list, tuple)) and len(posed) == self.num_envs:
            posed_pairs = [self._pose_one(text, i) for i, text in enumerate(posed)]
            queries, observations = (list(column) for column in zip(*posed_pairs, strict=True))
        else:
            raise ValueError(
                f"options['query'] must be a str or a list or tuple of num_envs = "
                f"{self.num_envs} strs, got {excerpt(posed)}"
            )
        # A posed query may hold more card tokens than a drawn one (attribute tokens fit
        # it), so its card tokens get their own width.
        width = max(len(query.card_tokens) for query in queries)
        card_tokens = np.full((self.num_envs, width), PAD, dtype=np.int64)
        for row, query in zip(card_tokens, queries, strict=True):
            row[: len(query.card_tokens)] = query.card_tokens
        return {
            "tokens": np.stack(observations),
            "positives": np.stack([query.positives for query in queries]),
            "n_positives": np.array([query.n_positives for query in queries], dtype=np.int64),
            "card_tokens": card_tokens,
        }

    def _pose_one(self, text, i: int):
        where = f"options['query'][{i}]"
        if not isinstance(text, str):
            raise ValueError(f"{where} must be a str, got {excerpt(text)}")
        try:
            return pose_query(text, self.game, self.tokens, "the text")
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from error

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
        keys = as_array(actions, "actions")
        n_keys = self.deck.n_keys
        # issubdtype(bool, integer) is False: a bool array is no array of key ids.
        if keys.shape != (self.num_envs,) or not np.issubdtype(keys.dtype, np.integer):
            raise ValueError(
                f"actions must be {self.num_envs} integer key ids (not bools), got shape "
                f"{keys.shape} of {keys.dtype}"
            )
        if keys.min() < 0 or keys.max() >= n_keys:
            raise ValueError(
                f"actions must be key ids in [0, {n_keys}), got {keys.min()}..{keys.max()}"
            )
        return keys

    def _check_selections(self, actions) -> np.ndarray:
        selection = as_array(actions, "actions")
        shape = (self.num_envs, self.deck.n_keys)
        if selection.shape != shape or not np.isin(selection, (0, 1)).all():
            raise ValueError(
                f"actions must be 0/1 selections of shape {shape}, got {selection.shape}"
            )
        return selection
