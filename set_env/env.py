"""The single-query SET environment."""

from __future__ import annotations

import inspect

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from set_env.checks import (
    check_choice,
    check_no_unknown,
    check_reset_options,
    check_seed,
    excerpt,
    is_int,
)
from set_env.deck import Deck
from set_env.games import Game, QueryBatch, check_split, make_game
from set_env.query import Query, parse_query, vocab
from set_env.render import render_ansi
from set_env.vocab import TOKEN_MODES

ACTION_MODES = ("key", "subset")
RENDER_MODES = ("ansi", "rgb_array")
RESET_OPTIONS = ("query",)
_BLOCK = 256  # queries drawn at once; a reset then costs a slice, not a numpy pipeline


def jaccard(selection: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Jaccard similarity of 0/1 selections with answers along the last axis (1.0 if both
    are empty, which an answer never is)."""
    both = np.logical_and(selection, positives).sum(axis=-1)
    either = np.logical_or(selection, positives).sum(axis=-1)
    return np.where(either > 0, both / np.maximum(either, 1), 1.0)


class SetEnv(gym.Env):
    """
    ## Description

    The extended SET card game of "Breaking Contrastive Models with the SET Card Game"
    (2021). Each episode is one query: a combination of SET card pairs, wildcards, set
    operations or an explicit subset, whose answer is a subset of the deck's cards (the
    *keys*). The agent picks a key (or a subset of keys) and is scored once.

    | game       | query                                             | answer                 |
    |------------|---------------------------------------------------|------------------------|
    | `classic`  | one pair of plain cards (repeats allowed)         | the card completing it |
    | `wildcard` | card 1 plain; card 2 each attribute a value or * | a sub-cube of the deck |
    | `union`    | `n_pairs` (8) wildcard pairs joined by union      | the union              |
    | `symdiff`  | 8 wildcard pairs, union or symmetric difference   | left to right          |
    | `shatter`  | an explicit subset, each key with probability 1/2 | that subset            |
    | `shared`   | an unordered pair of distinct plain cards         | the shared rule        |

    ## Observation Space

    The query as token ids padded with PAD (0) to a fixed length:
    `Box(0, vocab_size - 1, (max_len,), int64)`.

    | tokens        | vocabulary (`env.unwrapped.vocab`)                | 27 cards | 81 cards |
    |---------------|---------------------------------------------------|----------|----------|
    | `"card"`      | PAD, the five specials, then every card text      | 70       | 262      |
    |               | (wildcard cards included), one token each         |          |          |
    | `"attribute"` | PAD, the five specials, then one token per        | 18       | 22       |
    |               | (attribute, value or `*`)                         |          |          |
    | `"pair"`      | PAD, the five specials, then one token per        | 2086     | 32902    |
    |               | unordered pair of cards `(c1 c2)` (pair games)    |          |          |

    The specials are the operators `|` (union) and `^` (symmetric difference) and the
    markers `<` (shared-rule pair), `{` and `}` (explicit subset).

    ## Action Space

    `action_mode="key"`: `Discrete(n_keys)`, a key id. `action_mode="subset"`:
    `MultiBinary(n_keys)`, a selection of keys.

    ## Rewards

    `"key"`: 1.0 if the key is in the answer, else 0.0. `"subset"`: the Jaccard similarity of
    the selection with the answer.

    ## Episode End

    Every `step` ends the episode (`terminated=True`); call `reset` for the next query.

    ## Info

    `reset` and `step` return `"query"` (the canonical text), `"positives"` ((n_keys,) bool)
    and `"n_positives"`; `step` adds `"is_success"` (the key is an answer, or the selection is
    exactly the answer).

    ## Arguments

    * `game`: one of `classic`, `wildcard`, `union`, `symdiff`, `shatter`, `shared`.
    * `n_attributes`, `n_values`: the deck (3, 3 = 27 cards; 4, 3 = 81).
    * `n_pairs`: pairs in a `union` or `symdiff` query (default 8, at most `MAX_PAIRS`,
      256).
    * `split`: `"train"` (default), `"test"` (the ~10% held out by a hash of the query) or
      `None` (all queries).
    * `action_mode`: `"key"` (default) or `"subset"`.
    * `tokens`: `"card"` (default), `"attribute"`, or `"pair"` (every game but `shatter`:
      each pair term one token, a key `k` in the scorers' key positions the pair `(k k)`).
    * `render_mode`: `None`, `"ansi"` or `"rgb_array"`.

    Any other keyword argument, or a bad value of one of these, is a `ValueError` that
    names it and what is allowed. `reset` takes `options=None` or `{"query": text}`.

    ## Version History

    * v0: initial version (`tokens="pair"` added later; the draws are unchanged).
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 1}

    def __init__(
        self,
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
        check_no_unknown(unknown, keyword_names(SetEnv.__init__))
        self.deck = Deck(n_attributes, n_values)
        self.game: Game = make_game(game, self.deck, n_pairs)
        self.split, self.action_mode, self.tokens = check_env_options(split, action_mode, tokens)
        check_choice("render_mode", render_mode, (*RENDER_MODES, None))
        self.render_mode = render_mode
        self.vocab = vocab(self.deck, tokens).tokens
        self.observation_space, self.action_space = make_spaces(self.game, action_mode, tokens)
        self._block: QueryBatch | None = None
        self._texts: list[str] = []
        self._sizes: list[int] = []  # n_positives of the block's queries, as Python ints
        self._index = _BLOCK
        self._query = None  # (observation, positives, text, n_positives) of the current query
        self._live, self._action = False, None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode: the next query, or ``options={"query": text}`` to pose one."""
        options = check_reset_options(options, RESET_OPTIONS)
        seed = check_seed(seed, optional=True)
        super().reset(seed=seed)
        if seed is not None:
            self._index = _BLOCK  # a new seed must not serve queries drawn before it
        if "query" in options:
            self._query = self._posed(options["query"])
        else:
            self._query = self._next_query()
        self._live, self._action = True, None
        return self._query[0].copy(), self._info()

    def step(self, action):
        if not self._live:
            raise gym.error.ResetNeeded("step() needs a new query: call reset() first")
        observation, positives, _, _ = self._query
        if self.action_mode == "key":
            key = _check_key(action, self.deck.n_keys)
            reward = float(positives[key])
            success = reward == 1.0
        else:
            selection = _check_selection(action, self.deck.n_keys)
            reward = float(jaccard(selection, positives))
            success = bool(np.array_equal(selection.astype(bool), positives))
        self._live, self._action = False, action
        return observation.copy(), reward, True, False, self._info(is_success=success)

    def _info(self, **extra) -> dict:
        _, positives, text, size = self._query
        return {"query": text, "positives": positives.copy(), "n_positives": size, **extra}

    def _next_query(self):
        if self._index == _BLOCK:
            self._block = self.game.sample(_BLOCK, self.np_random, self.split, tokens=self.tokens)
            self._texts = self._block.texts()
            self._sizes = self._block.n_positives.tolist()
            self._index = 0
        i, self._index = self._index, self._index + 1
        return self._block.tokens[i], self._block.positives[i], self._texts[i], self._sizes[i]

    def _posed(self, text: str):
        query, observation = pose_query(text, self.game, self.tokens, "options['query']")
        return observation, query.positives, query.text, query.n_positives

    def render(self):
        if self.render_mode is None or self._query is None:
            return None
        query = parse_query(self._query[2], self.deck)
        if self.render_mode == "ansi":
            return render_ansi(query, self._action)
        from set_env.render import render_rgb  # Pillow's, imported only here

        env_id = self.spec.id if self.spec is not None else None
        return render_rgb(query, chosen=self._action, env_id=env_id)


def pose_query(text, game: Game, tokens: str, where: str) -> tuple[Query, np.ndarray]:
    """A posed query text -> the query and its observation, padded to the env's width;
    ``ValueError`` (naming ``where`` the text came from) if it does not parse or fit."""
    if not isinstance(text, str):
        raise ValueError(f"{where} must be a query text (a str), got {excerpt(text)}")
    width = game.max_len(tokens)
    # A card token is at most n_attributes + 2 characters of text ("(c1 "), a special at
    # most 3 (" | "), so a longer text cannot fit: refuse it before parsing megabytes.
    most_chars = (game.deck.n_attributes + 2) * width
    if len(text) > most_chars:
        raise ValueError(
            f"{where} is {len(text)} characters long: no query that fits this env's "
            f"observations of {width} tokens has more than {most_chars}"
        )
    query = parse_query(text, game.deck)
    query_tokens = query.tokens(tokens)
    if len(query_tokens) > width:
        raise ValueError(
            f"{where} needs {len(query_tokens)} tokens; this env's observations hold {width}"
        )
    observation = np.zeros(width, dtype=np.int64)
    observation[: len(query_tokens)] = query_tokens
    return query, observation


def keyword_names(function) -> tuple[str, ...]:
    """The keyword arguments ``function`` names (its ``**unknown`` catch left out)."""
    parameters = inspect.signature(function).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in parameters if p.kind in named and p.name != "self")


def make_spaces(game: Game, action_mode: str, tokens: str) -> tuple[spaces.Box, spaces.Space]:
    """The observation and action spaces of one environment."""
    size = len(vocab(game.deck, tokens))
    observation = spaces.Box(0, size - 1, (game.max_len(tokens),), np.int64)
    if action_mode == "key":
        return observation, spaces.Discrete(game.deck.n_keys)
    return observation, spaces.MultiBinary(game.deck.n_keys)


def check_env_options(split, action_mode, tokens) -> tuple:
    """The constructor's ``(split, action_mode, tokens)`` as given, once each is checked: a
    ``ValueError`` names the first one that is not allowed."""
    check_split(split)
    check_choice("action_mode", action_mode, ACTION_MODES)
    check_choice("tokens", tokens, TOKEN_MODES)
    return split, action_mode, tokens


def _check_key(action, n_keys: int) -> int:
    if is_int(action) and 0 <= action < n_keys:
        return int(action)
    # A 0-d integer array is a key id too; a bool (True == 1) is not.
    array = as_array(action, "action")
    if array.ndim != 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"action must be an integer key id in [0, {n_keys}) (not a bool), got {excerpt(action)}"
        )
    key = int(array)
    if not 0 <= key < n_keys:
        raise ValueError(f"action must be a key id in [0, {n_keys}), got {key}")
    return key


def _check_selection(action, n_keys: int) -> np.ndarray:
    selection = as_array(action, "action")
    if selection.shape != (n_keys,):
        raise ValueError(
            f"action must be a 0/1 selection of shape ({n_keys},), got shape {selection.shape}"
        )
    if not np.isin(selection, (0, 1)).all():
        raise ValueError(f"action must be a 0/1 selection, got {excerpt(selection)}")
    return selection


def as_array(value, argument: str) -> np.ndarray:
    """``np.asarray`` with its failures (ragged lists, odd objects) as a ``ValueError``."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{argument} must be array-like, got {excerpt(value)}") from error
