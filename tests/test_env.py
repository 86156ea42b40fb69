"""The environments: Gymnasium and stable-baselines3 checkers, seeding, step semantics,
registration, bad input, and the native vector env against single envs."""

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import set_env
from set_env import SetEnv, SetVectorEnv, parse_query


@pytest.mark.parametrize("env_id", set_env.ENV_IDS)
def test_gymnasium_and_sb3_checkers(env_id):
    pair = [] if "Shatter" in env_id else [{"tokens": "pair"}]
    for kwargs in ({}, {"action_mode": "subset", "tokens": "attribute"}, *pair):
        env = gym.make(env_id, **kwargs)
        check_env(env.unwrapped, skip_render_check=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # sb3's checker reports problems as warnings
            sb3_check_env(env.unwrapped)


@pytest.mark.parametrize("render_mode", ["ansi", "rgb_array"])
def test_checker_renders(render_mode):
    check_env(gym.make("SetSymDiff27-v0", render_mode=render_mode).unwrapped)


def test_spaces_and_public_attributes():
    env = gym.make("SetUnion81-v0")
    assert env.unwrapped.deck.n_keys == 81
    assert env.unwrapped.game.name == "union"
    assert env.action_space == gym.spaces.Discrete(81)
    space = env.observation_space
    assert space.dtype == np.int64 and space.shape == (23,)
    assert space.high.max() == len(env.unwrapped.vocab) - 1 == 5 + 4**4
    subset = gym.make("SetShatter27-v0", action_mode="subset", tokens="attribute")
    assert subset.action_space == gym.spaces.MultiBinary(27)
    assert subset.observation_space.shape == (1 + 27 * 3 + 1,)


def test_reset_step_info_and_reward():
    env = gym.make("SetUnion27-v0")
    obs, info = env.reset(seed=3)
    assert set(info) == {"query", "positives", "n_positives"}
    query = parse_query(info["query"], env.unwrapped.deck)
    np.testing.assert_array_equal(query.positives, info["positives"])
    np.testing.assert_array_equal(query.tokens("card"), obs[obs != 0])
    assert info["n_positives"] == info["positives"].sum()
    key = int(np.flatnonzero(~info["positives"])[0]) if not info["positives"].all() else 0
    obs2, reward, terminated, truncated, step_info = env.step(key)
    assert terminated and not truncated
    assert reward == float(info["positives"][key])
    assert step_info["is_success"] == (reward == 1.0)
    np.testing.assert_array_equal(obs, obs2)


def test_subset_reward_is_jaccard():
    env = gym.make("SetWildcard27-v0", action_mode="subset")
    _, info = env.reset(seed=0)
    answer = info["positives"]
    _, reward, _, _, step_info = env.step(answer.astype(np.int8))
    assert reward == 1.0 and step_info["is_success"]
    answer = env.reset()[1]["positives"]
    selection = np.zeros(27, dtype=np.int8)
    selection[np.flatnonzero(answer)[0]] = 1
    selection[np.flatnonzero(~answer)[0]] = 1
    _, reward, _, _, step_info = env.step(selection)
    assert reward == pytest.approx(1 / (answer.sum() + 1))
    assert not step_info["is_success"]


def test_same_seed_same_queries_and_new_seed_restarts():
    def texts(seed, n=300):
        env = gym.make("SetSymDiff27-v0")
        first = env.reset(seed=seed)[1]["query"]
        return [first] + [env.reset()[1]["query"] for _ in range(n)]

    assert texts(5) == texts(5)
    assert texts(5) != texts(6)
    env = gym.make("SetSymDiff27-v0")
    env.reset(seed=5)
    for _ in range(10):
        env.reset()
    assert env.reset(seed=5)[1]["query"] == texts(5)[0]


def test_test_split_env_serves_held_out_queries():
    for split, expected in (("train", False), ("test", True)):
        env = gym.make("SetClassic27-v0", split=split)
        env.reset(seed=0)
        for _ in range(50):
            obs, info = env.reset()
            query = parse_query(info["query"], env.unwrapped.deck)
            assert query.is_test == expected


def test_reset_can_pose_a_query():
    env = gym.make("SetUnion27-v0", tokens="attribute")
    obs, info = env.reset(seed=0, options={"query": "(112 0*2) | (0*1 201)"})
    assert info["query"] == "(0*2 112) | (0*1 201)"
    query = parse_query(info["query"], env.unwrapped.deck)
    np.testing.assert_array_equal(obs[: len(query.tokens("attribute"))], query.tokens("attribute"))
    with pytest.raises(ValueError, match="tokens"):
        gym.make("SetClassic27-v0").reset(options={"query": "(000 111) | (000 111)"})
    with pytest.raises(ValueError, match="expected"):
        env.reset(options={"query": "(000 111"})


def test_step_needs_reset():
    env = SetEnv()
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_values": 2}, "n_values"),
        ({"n_attributes": 9}, "4096"),
        ({"game": "poker"}, "game must be one of"),
        ({"game": "union", "n_pairs": 0}, "n_pairs"),
        ({"game": "classic", "n_pairs": 3}, "n_pairs applies"),
        ({"split": "validation"}, "split must be one of"),
        ({"action_mode": "keys"}, "action_mode must be one of"),
        ({"tokens": "word"}, "tokens must be one of"),
        ({"render_mode": "human"}, "render_mode must be one of"),
    ],
)
def test_bad_kwargs_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SetEnv(**kwargs)


@pytest.mark.parametrize("action", [-1, 27, 3.0, "3", [1, 2]])
def test_bad_key_actions_raise_value_error(action):
    env = SetEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be"):
        env.step(action)


@pytest.mark.parametrize("action", [np.ones(26), np.full(27, 2), np.zeros((27, 1))])
def test_bad_subset_actions_raise_value_error(action):
    env = SetEnv(action_mode="subset")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be"):
        env.step(action)


def test_render_ansi_names_the_cards_and_the_choice():
    env = gym.make("SetWildcard27-v0", render_mode="ansi")
    _, info = env.reset(seed=1)
    assert info["query"] in env.render()
    env.step(0)
    text = env.render()
    assert "chosen: 000" in text and "answer" in text
    assert any(colour in text for colour in ("red", "green", "purple", "any colour"))


def test_render_rgb_array_is_an_image():
    env = gym.make("SetUnion27-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


def test_make_with_module_prefix_imports_the_package():
    code = "import gymnasium as gym; e = gym.make('set_env:SetUnion27-v0'); print(e.spec.id)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "SetUnion27-v0"


# --- the native vector env -------------------------------------------------------------


def test_make_vec_uses_the_native_vector_env():
    envs = gym.make_vec("SetUnion27-v0", num_envs=16)
    assert isinstance(envs.unwrapped, SetVectorEnv)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    single = gym.make("SetUnion27-v0")
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    assert envs.observation_space.shape == (16, 23)


@pytest.mark.parametrize("action_mode", ["key", "subset"])
def test_vector_env_steps_like_single_envs(action_mode):
    n = 64
    envs = gym.make_vec("SetSymDiff27-v0", num_envs=n, action_mode=action_mode)
    single = gym.make("SetSymDiff27-v0", action_mode=action_mode).unwrapped
    obs, infos = envs.reset(seed=0)
    for _ in range(3):
        texts = envs.unwrapped.query_texts()
        actions = envs.action_space.sample()
        next_obs, rewards, terminated, truncated, infos2 = envs.step(actions)
        assert terminated.all() and not truncated.any()
        np.testing.assert_array_equal(infos2["final_obs"], obs)
        assert infos2["_final_obs"].all() and infos2["_final_info"].all()
        for i in range(n):
            # Replay the same query and action through a single env's step.
            query = parse_query(texts[i], single.deck)
            np.testing.assert_array_equal(query.tokens("card"), obs[i][obs[i] != 0])
            np.testing.assert_array_equal(query.positives, infos["positives"][i])
            single_obs, _ = single.reset(options={"query": texts[i]})
            np.testing.assert_array_equal(single_obs, obs[i])
            _, reward, _, _, info = single.step(actions[i])
            assert rewards[i] == reward
            assert infos2["final_info"]["is_success"][i] == info["is_success"]
        obs, infos = next_obs, infos2


def test_vector_env_seeding_and_distribution():
    def run(seed):
        envs = gym.make_vec("SetUnion27-v0", num_envs=32)
        obs, _ = envs.reset(seed=seed)
        return np.concatenate([obs] + [envs.step(np.zeros(32, int))[0] for _ in range(5)])

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))
    # The vector env draws from the same distribution as the single env.
    envs = gym.make_vec("SetUnion27-v0", num_envs=1000)
    _, infos = envs.reset(seed=0)
    single = gym.make("SetUnion27-v0")
    single.reset(seed=0)
    sizes = [single.reset()[1]["n_positives"] for _ in range(1000)]
    assert abs(infos["n_positives"].mean() - np.mean(sizes)) < 0.6


def test_vector_env_bad_actions():
    envs = SetVectorEnv(num_envs=4)
    with pytest.raises(gym.error.ResetNeeded):
        envs.step(np.zeros(4, int))
    envs.reset(seed=0)
    for actions in (np.zeros(3, int), np.array([0, 1, 2, 27]), np.zeros(4)):
        with pytest.raises(ValueError, match="actions must be"):
            envs.step(actions)
    with pytest.raises(ValueError, match="num_envs"):
        SetVectorEnv(num_envs=0)
