"""Bad input to set_env: every case is a ValueError whose message names the argument and
what is allowed, quotes at most an excerpt of the input, and comes before any large work."""

import os

import gymnasium as gym
import numpy as np
import pytest

import set_env
import set_env.__main__
from set_env import Deck, SetEnv, SetVectorEnv, games, make_game, parse_query
from set_env.__main__ import main
from set_env.checks import excerpt
from set_env.games import MAX_CELLS, MAX_PAIRS
from set_env.vector_env import MAX_ENVS

HUGE = 1_000_000  # characters of a long input
SHORT = 500  # characters an error message may take whatever the input


# --- 1. booleans are not key ids -------------------------------------------------------


@pytest.mark.parametrize("action", [True, False, np.bool_(True), np.array(True)])
def test_bool_actions_are_not_key_ids(action):
    env = SetEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an integer key id"):
        env.step(action)


def test_vector_env_refuses_bool_actions_in_key_mode():
    envs = SetVectorEnv(num_envs=3)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be 3 integer key ids"):
        envs.step(np.array([True, False, True]))
    envs.step(np.array([1, 0, 1]))  # the same ids as integers are fine


def test_bool_selections_stay_valid_in_subset_mode():
    env = SetEnv(action_mode="subset")
    _, info = env.reset(seed=0)
    assert env.step(info["positives"])[1] == 1.0


# --- 2. num_envs -----------------------------------------------------------------------


@pytest.mark.parametrize("num_envs", [True, np.bool_(True), 0, -1, 1.0, "2", MAX_ENVS + 1])
def test_num_envs_must_be_an_integer_within_the_bound(num_envs):
    bound = f"num_envs must be an integer from 1 to MAX_ENVS = {MAX_ENVS}"
    with pytest.raises(ValueError, match=bound):
        SetVectorEnv(num_envs=num_envs)
    with pytest.raises(ValueError, match="num_envs"):
        gym.make_vec("SetUnion27-v0", num_envs=num_envs)


def test_num_envs_bound_values():
    assert MAX_ENVS == 2**20
    assert SetVectorEnv(num_envs=MAX_ENVS).num_envs == MAX_ENVS  # nothing is drawn yet
    # A game whose queries are large allows fewer: one step's queries are one sample().
    game = make_game("shatter", Deck(6, 4))
    most = game.max_sample("attribute")
    with pytest.raises(ValueError, match=f"num_envs must be at most {most}.*MAX_CELLS"):
        SetVectorEnv(
            num_envs=most + 1, game="shatter", n_attributes=6, n_values=4, tokens="attribute"
        )


# --- 3. reset options ------------------------------------------------------------------


def _envs():
    return [SetEnv(), SetVectorEnv(num_envs=2)]


@pytest.mark.parametrize("options", ["a string", ["query"], 3, ("query", "(000 111)")])
def test_reset_options_must_be_none_or_a_dict(options):
    for env in _envs():
        with pytest.raises(ValueError, match="options must be None or a dict"):
            env.reset(seed=0, options=options)


def test_unknown_reset_options_name_the_allowed_ones():
    for env in _envs():
        with pytest.raises(ValueError, match=r"unknown reset option\(s\) 'qery'.*'query'"):
            env.reset(options={"qery": "(000 111)"})
        env.reset(seed=0, options={})  # empty and None are no options
        env.reset(options=None)


@pytest.mark.parametrize("seed", [True, -1, 1.5, "0", 2**63])
def test_bad_seeds_raise_value_error(seed):
    for env in _envs():
        with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63\) or None"):
            env.reset(seed=seed)
    # numpy integers are seeds like ints
    assert SetEnv().reset(seed=np.int64(4))[1]["query"] == SetEnv().reset(seed=4)[1]["query"]


# --- 4. unknown env kwargs -------------------------------------------------------------


def test_unknown_kwargs_name_themselves_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown keyword argument\(s\) 'foo'.*allowed: game"):
        gym.make("SetUnion27-v0", foo=1)
    with pytest.raises(ValueError, match=r"'foo'.*allowed: num_envs, game"):
        gym.make_vec("SetUnion27-v0", num_envs=2, foo=1)
    with pytest.raises(ValueError, match="'foo', 'bar'.*render_mode"):
        SetEnv(foo=1, bar=2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"game": ["union"]}, "game must be one of"),
        ({"split": ["train"]}, "split must be one of"),
        ({"action_mode": np.array(["key"])}, "action_mode must be one of"),
        ({"tokens": {"card"}}, "tokens must be one of"),
        ({"render_mode": ["ansi"]}, "render_mode must be one of"),
        ({"n_pairs": True}, "n_pairs must be an integer"),
        ({"n_attributes": 10**9}, "at most 4096 cards"),
        ({"n_values": np.bool_(True)}, "n_values must be an integer"),
    ],
)
def test_unhashable_or_odd_kwargs_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SetEnv(**kwargs)


# --- 5. the vector env poses queries ---------------------------------------------------

UNION_TEXTS = ["(112 0*2) | (0*1 201)", "(000 111)", "{000,012,222}", "<000 011> ^ (1*1 2*2)"]


@pytest.mark.parametrize("tokens", ["card", "attribute"])
def test_vector_env_poses_one_query_per_sub_env(tokens):
    envs = SetVectorEnv(num_envs=len(UNION_TEXTS), tokens=tokens)
    single = SetEnv(tokens=tokens)
    obs, infos = envs.reset(seed=0, options={"query": tuple(UNION_TEXTS)})
    texts = envs.query_texts()
    for i, text in enumerate(UNION_TEXTS):
        single_obs, info = single.reset(options={"query": text})
        np.testing.assert_array_equal(obs[i], single_obs)
        np.testing.assert_array_equal(infos["positives"][i], info["positives"])
        assert infos["n_positives"][i] == info["n_positives"]
        assert texts[i] == info["query"]
    keys = infos["positives"].argmax(axis=1)
    _, rewards, _, _, step_infos = envs.step(keys)
    assert (rewards == 1.0).all() and step_infos["final_info"]["is_success"].all()
    np.testing.assert_array_equal(step_infos["final_obs"], obs)


def test_vector_env_poses_one_query_in_every_sub_env():
    envs = SetVectorEnv(num_envs=3, game="symdiff")
    obs, infos = envs.reset(options={"query": UNION_TEXTS[0]})
    assert envs.query_texts() == [parse_query(UNION_TEXTS[0], envs.deck).text] * 3
    assert (obs == obs[0]).all() and (infos["positives"] == infos["positives"][0]).all()
    assert not np.shares_memory(obs[0], obs[1])


def test_vector_env_draws_again_after_posed_queries():
    drawn = SetVectorEnv(num_envs=4)
    first, _ = drawn.reset(seed=7)
    posed = SetVectorEnv(num_envs=4)
    posed.reset(seed=7, options={"query": "(000 111)"})
    # Posing consumes no drawn queries: the next step serves the seed's first ones.
    np.testing.assert_array_equal(posed.step(np.zeros(4, int))[0], first)
    assert posed.query_texts() == drawn.query_texts()


def test_vector_env_posed_query_longer_than_drawn_card_rows():
    # Eight one-key subsets fit the 55 attribute tokens of union27 but take 39 card tokens,
    # more than a drawn union query's 23.
    keys = ("000", "001", "002", "010", "011", "012", "020", "021")
    text = " | ".join(f"{{{key}}}" for key in keys)
    envs = SetVectorEnv(num_envs=2, tokens="attribute")
    _, infos = envs.reset(options={"query": [text, "(000 111)"]})
    assert envs.query_texts() == [text, "(000 111)"]
    assert infos["n_positives"].tolist() == [8, 1]


@pytest.mark.parametrize(
    "query, message",
    [
        (["(000 111)"], "a list or tuple of num_envs = 2 strs"),
        (["(000 111)"] * 3, "a list or tuple of num_envs = 2 strs"),
        (np.array(["(000 111)"] * 2), "a list or tuple of num_envs = 2 strs"),
        (None, "a list or tuple of num_envs = 2 strs"),
        (["(000 111)", 5], r"options\['query'\]\[1\] must be a str"),
        (["(000 111)", "(000 11)"], r"options\['query'\]\[1\]: card '11'"),
        ("(000 111", "expected"),
    ],
)
def test_vector_env_bad_posed_queries(query, message):
    envs = SetVectorEnv(num_envs=2)
    with pytest.raises(ValueError, match=message):
        envs.reset(options={"query": query})


# --- 6. messages quote an excerpt ------------------------------------------------------


def test_excerpt_cuts_long_values_and_notes_their_length():
    assert excerpt("(000 111)") == "'(000 111)'"
    long = excerpt("x" * HUGE)
    assert len(long) < 100 and str(HUGE) in long
    assert len(excerpt(list(range(HUGE)))) < 100
    assert "too long" in excerpt(10**5000)  # past Python's int-to-str limit


def _long_input_cases():
    deck = Deck(3, 3)
    long_text = "(" + "0" * HUGE + " 111)"
    env, subset, envs = SetEnv(), SetEnv(action_mode="subset"), SetVectorEnv(num_envs=2)
    for each in (env, subset, envs):
        each.reset(seed=0)
    return {
        "parse garbage": lambda: parse_query("x" * HUGE, deck),
        "parse card": lambda: parse_query(long_text, deck),
        "parse tail": lambda: parse_query("(000 111)" + " |" * HUGE, deck),
        "card text": lambda: deck.card_id("0" * HUGE),
        "reset query": lambda: env.reset(options={"query": long_text}),
        "reset option key": lambda: env.reset(options={"q" * HUGE: 1}),
        "reset options": lambda: env.reset(options="o" * HUGE),
        "vector query": lambda: envs.reset(options={"query": ["(000 111)", long_text]}),
        "vector queries": lambda: envs.reset(options={"query": ["(000 111)"] * HUGE}),
        "kwarg name": lambda: SetEnv(**{"k" * HUGE: 1}),
        "kwarg value": lambda: SetEnv(game="g" * HUGE),
        "split": lambda: SetEnv(split="s" * HUGE),
        "tokens": lambda: SetEnv(tokens="t" * HUGE),
        "render_mode": lambda: SetEnv(render_mode="r" * HUGE),
        "vector render_mode": lambda: SetVectorEnv(render_mode="r" * HUGE),
        "key action": lambda: env.step("3" * HUGE),
        "subset action": lambda: subset.step(np.full(27, 2)),
        "huge int": lambda: SetEnv(n_pairs=10**5000),  # past Python's int-to-str limit
        "sample n": lambda: make_game("union", deck).sample("n" * HUGE, np.random.default_rng()),
    }


@pytest.mark.parametrize("case", list(_long_input_cases()))
def test_messages_quote_at_most_an_excerpt_of_long_input(case):
    action = _long_input_cases()[case]
    with pytest.raises(ValueError) as raised:
        action()
    assert len(str(raised.value)) < SHORT, str(raised.value)[:SHORT]


# --- 7. resource limits ----------------------------------------------------------------


def test_n_pairs_is_bounded():
    assert MAX_PAIRS == 256
    with pytest.raises(ValueError, match="n_pairs must be an integer from 1 to MAX_PAIRS = 256"):
        gym.make("SetUnion27-v0", n_pairs=10**6)
    with pytest.raises(ValueError, match="MAX_PAIRS"):
        gym.make("SetSymDiff81-v0", n_pairs=MAX_PAIRS + 1)
    env = gym.make("SetSymDiff27-v0", n_pairs=MAX_PAIRS)
    assert env.observation_space.shape == (3 * MAX_PAIRS - 1,)
    env.reset(seed=0)


@pytest.mark.parametrize(
    "name, deck, tokens",
    [("union", Deck(3, 3), "card"), ("shatter", Deck(4, 3), "attribute")],
)
def test_sample_output_is_bounded(name, deck, tokens):
    assert MAX_CELLS == 2**28
    game = make_game(name, deck)
    most = game.max_sample(tokens)
    assert most == MAX_CELLS // (game.max_len(tokens) + deck.n_keys)
    rng = np.random.default_rng(0)
    for n in (most + 1, 10**12, np.int64(2**62)):
        bound = f"MAX_CELLS = {MAX_CELLS}: n must be at most {most}"
        with pytest.raises(ValueError, match=bound):
            game.sample(n, rng, tokens=tokens)
    assert len(game.sample(3, rng, tokens=tokens)) == 3


@pytest.mark.parametrize(
    "name, deck",
    [("classic", Deck(6, 4)), ("wildcard", Deck(5, 4)), ("shared", Deck(6, 4))],
)
def test_enumerate_refuses_decks_too_large_to_list(name, deck):
    with pytest.raises(ValueError, match=f"more than MAX_CELLS = {MAX_CELLS}"):
        make_game(name, deck).enumerate()


def test_enumerate_checks_its_arguments_before_any_work():
    game = make_game("classic", Deck(6, 4))  # too large: the argument errors come first
    with pytest.raises(ValueError, match="split must be one of"):
        game.enumerate(split="val")
    with pytest.raises(ValueError, match="tokens must be one of"):
        game.enumerate(tokens=["card"])


def test_sample_checks_its_other_arguments():
    game = make_game("union", Deck(3, 3))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n must be an integer"):
        game.sample(True, rng)
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
        game.sample(3, 0)
    with pytest.raises(ValueError, match="size_weighted must be a bool"):
        game.sample(3, rng, size_weighted="yes")
    with pytest.raises(ValueError, match="tokens must be one of"):
        game.sample(3, rng, tokens=["card"])


# --- 8. python -m set_env --png --------------------------------------------------------


def _main_error(capsys, png) -> str:
    with pytest.raises(SystemExit) as raised:
        main(["--png", str(png)])
    assert raised.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # the folder is checked before anything is shown
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_main_png_refuses_an_existing_file(tmp_path, capsys):
    path = tmp_path / "picture.png"
    path.write_text("not a folder")
    assert "not a folder" in _main_error(capsys, path)
    # A folder under a regular file cannot be made, even by root.
    assert "cannot create" in _main_error(capsys, path / "pictures")


def test_main_png_refuses_an_unwritable_folder(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("chmod does not stop this user (root) from writing")
        assert "not writable" in _main_error(capsys, folder)
    finally:
        folder.chmod(0o700)


def test_main_png_reports_an_unwritable_folder_even_to_root(tmp_path, capsys, monkeypatch):
    # Root writes through chmod 0o500, so stand in for the permission check itself.
    monkeypatch.setattr(set_env.__main__.os, "access", lambda path, mode: False)
    assert "not writable" in _main_error(capsys, tmp_path)


def test_main_png_reports_a_failed_write(tmp_path, capsys, monkeypatch):
    def refuse(path, image):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(set_env.__main__, "write_png", refuse)
    with pytest.raises(SystemExit) as raised:
        main(["--png", str(tmp_path)])
    assert raised.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write"), lines
    assert "Permission denied" in lines[0]


# --- 9. the generator version ----------------------------------------------------------


def test_generator_version_is_exported():
    assert set_env.GENERATOR_VERSION == games.GENERATOR_VERSION == 1
    assert "GENERATOR_VERSION" in set_env.__all__
