"""The pair token mode: each pair of cards one token, the same queries and answers as card
tokens, refused where a game has no pairs or a deck too many of them."""

import json

import gymnasium as gym
import numpy as np
import pytest

import agents
from set_env import Deck, make_game, parse_query
from set_env.query import vocab
from set_env.vocab import CARD0, MAX_PAIR_VOCAB, PAD, SHARED_OPEN, SPECIALS
from train.__main__ import main as train_cli

PAIR_GAMES = ("classic", "wildcard", "union", "symdiff", "shared")


def decode(tokens: np.ndarray, deck: Deck) -> str:
    """A row of pair tokens back to its query text, through the vocabulary's texts."""
    texts, out, shared = vocab(deck, "pair").tokens, [], False
    for token in (int(t) for t in tokens if t != PAD):
        if token == SHARED_OPEN:
            shared = True
        elif token >= CARD0 and shared:
            out.append("<" + texts[token][1:-1] + ">")
            shared = False
        else:
            out.append(texts[token] if token >= CARD0 else SPECIALS[token].join("  "))
    return "".join(out)


@pytest.mark.parametrize("deck", [Deck(3, 3), Deck(4, 3)], ids=["27", "81"])
@pytest.mark.parametrize("game_name", PAIR_GAMES)
def test_pair_tokens_round_trip_to_the_card_tokens_queries(game_name, deck):
    game = make_game(game_name, deck)
    pair = game.sample(300, np.random.default_rng(1), split=None, tokens="pair")
    card = game.sample(300, np.random.default_rng(1), split=None, tokens="card")
    np.testing.assert_array_equal(pair.card_tokens, card.card_tokens)  # the same draws
    np.testing.assert_array_equal(pair.positives, card.positives)
    texts = pair.texts()
    assert pair.tokens.shape[1] == game.max_len("pair")
    for row, text, positives in zip(pair.tokens[:60], texts, pair.positives, strict=False):
        assert decode(row, deck) == text
        query = parse_query(decode(row, deck), deck)
        np.testing.assert_array_equal(query.positives, positives)
        width = len(query.tokens("pair"))
        np.testing.assert_array_equal(query.tokens("pair"), row[:width])


def test_pair_rows_are_shorter_and_name_each_pair():
    assert [make_game(g, Deck()).max_len("pair") for g in PAIR_GAMES] == [1, 1, 15, 15, 2]
    words = vocab(Deck(), "pair").tokens
    assert len(words) == len(SPECIALS) + 64 * 65 // 2 == 2086
    assert words[CARD0] == "(*** ***)" and words[-1] == "(222 222)"


def test_keys_are_their_own_pairs():
    spec = agents.ScorerSpec.of("SetClassic27-v0", tokens="pair")
    deck = Deck()
    for key in (0, 5, 26):
        text = vocab(deck, "pair").tokens[spec.key_tokens[key, 0]]
        card = deck.key_text(key)
        assert text == f"({card} {card})"
        assert np.flatnonzero(parse_query(text, deck).positives).tolist() == [key]


def test_games_and_decks_without_a_pair_form_refuse_it():
    no_pairs = r"the shatter game has no pairs; its token modes are \('card', 'attribute'\)"
    with pytest.raises(ValueError, match=no_pairs):
        gym.make("SetShatter27-v0", tokens="pair")
    with pytest.raises(ValueError, match=f"MAX_PAIR_VOCAB = {MAX_PAIR_VOCAB}"):
        gym.make("SetUnion27-v0", tokens="pair", n_attributes=6, n_values=4)
    env = gym.make("SetUnion27-v0", tokens="pair")
    with pytest.raises(ValueError, match="not explicit subsets"):
        env.reset(options={"query": "{000,001}"})


def test_envs_and_vector_envs_serve_pair_tokens():
    env = gym.make("SetSymDiff27-v0", tokens="pair")
    observation, info = env.reset(seed=3)
    assert decode(observation, Deck()) == info["query"]
    envs = gym.make_vec("SetUnion27-v0", num_envs=8, tokens="pair")
    observations, _ = envs.reset(seed=0)
    texts = envs.unwrapped.query_texts()
    assert [decode(row, Deck()) for row in observations] == texts
    observation, _ = env.reset(options={"query": "(000 111) ^ (0*1 222)"})
    assert decode(observation, Deck()) == "(000 111) ^ (0*1 222)"


@pytest.mark.usefixtures("small_agents")
@pytest.mark.parametrize("agent", ["contrastive", "joint", "classifier"])
def test_a_scorer_trains_in_pair_tokens_through_the_cli(tmp_path, capsys, agent):
    train_cli(
        ["--env", "SetUnion27-v0", "--tokens", "pair", "--agent", agent, "--objective"]
        + ["soft-ce", "--steps", "3", "--batch-size", "16", "--eval-queries", "64"]
        + ["--curriculum", "2", "--logdir", str(tmp_path)]
    )
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 3 and np.isfinite(result["kl"])


def test_rl_and_evaluation_take_pair_tokens(tmp_path, capsys, tiny_rl_run):
    from eval.__main__ import main as eval_cli

    run_dir = tiny_rl_run(tmp_path, env="SetWildcard27-v0", tokens="pair")
    capsys.readouterr()
    eval_cli(["--checkpoint", str(run_dir), "--queries", "32"])
    output = json.loads(capsys.readouterr().out)
    assert output["objective"] == "ppo" and np.isfinite(output["kl"])
