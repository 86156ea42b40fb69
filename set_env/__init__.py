"""The extended SET card game as Gymnasium environments (numpy + gymnasium only).

``import set_env`` registers twelve ids, ``Set<Game><27|81>-v0``: e.g.
``gym.make("SetUnion27-v0")`` or ``gym.make_vec("SetUnion27-v0", num_envs=1024)``.
"""

from gymnasium.envs.registration import register

from set_env.deck import Deck
from set_env.env import SetEnv
from set_env.games import GAMES, GENERATOR_VERSION, Game, QueryBatch, make_game
from set_env.query import Query, Term, parse_query
from set_env.vector_env import SetVectorEnv
from set_env.vocab import Vocab, is_test_query

GAME_IDS = {
    "classic": "Classic",
    "wildcard": "Wildcard",
    "union": "Union",
    "symdiff": "SymDiff",
    "shatter": "Shatter",
    "shared": "Shared",
}
DECKS = {27: (3, 3), 81: (4, 3)}


def env_id(game: str, n_keys: int = 27) -> str:
    """The registered id of a game on the 27- or 81-card deck, e.g. ``SetUnion27-v0``."""
    return f"Set{GAME_IDS[game]}{n_keys}-v0"


ENV_IDS = [env_id(game, n_keys) for game in GAME_IDS for n_keys in DECKS]

for _game in GAME_IDS:
    for _n_keys, (_attributes, _values) in DECKS.items():
        register(
            id=env_id(_game, _n_keys),
            entry_point="set_env.env:SetEnv",
            vector_entry_point="set_env.vector_env:SetVectorEnv",
            kwargs={"game": _game, "n_attributes": _attributes, "n_values": _values},
        )

__all__ = [
    "DECKS",
    "ENV_IDS",
    "GAMES",
    "GENERATOR_VERSION",
    "Deck",
    "Game",
    "Query",
    "QueryBatch",
    "SetEnv",
    "SetVectorEnv",
    "Term",
    "Vocab",
    "env_id",
    "is_test_query",
    "make_game",
    "parse_query",
]
