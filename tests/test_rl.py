"""Scorers as stable-baselines3 policies: the policy, the RL trainer and its CLI, the
checkpoint it leaves, a user scorer as a policy, and one learning test."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv
from user_scorer import BagScorer

import agents
from agents.checkpoint import load_scorer
from agents.sb3 import ScorerPolicy
from eval.__main__ import main as eval_cli
from set_env.registry import make_env
from train.rl import SB3_MODEL, RLConfig, make_model, train_rl
from train.rl import main as rl_cli
from train.vec_env import VEC_ENVS, NativeVecEnv, make_sb3_vec_env


def tiny(tmp_path, **overrides) -> RLConfig:
    values = dict(
        env="SetWildcard27-v0",
        agent="classifier",
        timesteps=128,
        n_envs=4,
        n_steps=16,
        batch_size=32,
        n_epochs=1,
        eval_every=64,
        eval_queries=64,
        logdir=str(tmp_path),
    )
    values.update(overrides)
    return RLConfig(**values)


def policy_for(env_id: str, agent: str, **env_kwargs) -> ScorerPolicy:
    env = make_env(env_id, **env_kwargs)
    kwargs = {"agent": agent, "env_id": env_id, "env_kwargs": env_kwargs}
    return ScorerPolicy(env.observation_space, env.action_space, lambda _: 1e-3, **kwargs)


@pytest.mark.parametrize("agent", ["contrastive", "joint", "classifier"])
def test_action_logits_are_the_scorers_logits(small_agents, agent):
    policy = policy_for("SetUnion27-v0", agent)
    tokens = torch.as_tensor(make_env("SetUnion27-v0").observation_space.sample()[None])
    # SB3 hands Box observations over as floats; the policy casts them back to token ids.
    distribution = policy.get_distribution(tokens.float())
    expected = torch.log_softmax(policy.scorer(tokens), dim=-1)
    torch.testing.assert_close(distribution.distribution.logits, expected)
    assert not hasattr(policy, "action_net")  # nothing between the scorer and the actions


def test_the_scorer_keeps_its_own_initialisation(small_agents):
    torch.manual_seed(3)
    policy = policy_for("SetClassic27-v0", "joint")
    torch.manual_seed(3)
    scorer = agents.make("joint", "SetClassic27-v0")
    theirs = scorer.state_dict()
    for name, ours in policy.scorer.state_dict().items():
        torch.testing.assert_close(ours, theirs[name], msg=name)


def test_subset_actions_are_one_bernoulli_per_key(small_agents):
    policy = policy_for("SetShatter27-v0", "classifier", action_mode="subset")
    tokens = torch.as_tensor(make_env("SetShatter27-v0").observation_space.sample()[None])
    actions, values, log_prob = policy(tokens)
    assert actions.shape == (1, 27) and values.shape == (1, 1) and log_prob.shape == (1,)
    assert set(actions.unique().tolist()) <= {0.0, 1.0}


def test_spaces_must_match_the_env(small_agents):
    env = make_env("SetClassic27-v0", tokens="attribute")
    with pytest.raises(ValueError, match="observation_space"):
        ScorerPolicy(
            env.observation_space,
            env.action_space,
            lambda _: 1e-3,
            agent="classifier",
            env_id="SetClassic27-v0",
        )


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_run_leaves_an_evaluable_checkpoint_and_an_sb3_model(tmp_path, small_agents, algo):
    result = train_rl(tiny(tmp_path, algo=algo))
    run_dir = tmp_path / next(p.name for p in tmp_path.iterdir())
    assert result["run_dir"] == str(run_dir) and result["timesteps"] == 128
    assert {"checkpoint.pt", SB3_MODEL} <= {p.name for p in run_dir.iterdir()}
    scorer, state = load_scorer(run_dir / "checkpoint.pt")
    assert state["agent"] == "classifier" and state["step"] == 128
    assert state["metrics"]["kl"] == pytest.approx(result["kl"])
    model = PPO.load(run_dir / SB3_MODEL) if algo == "ppo" else None
    if model is not None:
        tokens = torch.as_tensor(make_env("SetWildcard27-v0").observation_space.sample()[None])
        torch.testing.assert_close(model.policy.scorer(tokens), scorer(tokens))


def test_eval_cli_reads_an_rl_checkpoint(tmp_path, small_agents, capsys):
    train_rl(tiny(tmp_path))
    capsys.readouterr()
    (run_dir,) = tmp_path.iterdir()
    eval_cli(["--checkpoint", str(run_dir / "checkpoint.pt"), "--queries", "64"])
    output = json.loads(capsys.readouterr().out)
    assert output["agent"] == "classifier" and output["objective"] == "ppo"
    assert 0 <= output["topk_overlap"] <= 1


def test_the_report_reads_an_rl_run_like_any_other(tmp_path, small_agents):
    from eval.report import collect

    result = train_rl(tiny(tmp_path))
    (found,), skipped = collect(tmp_path, queries=64)
    assert skipped == []
    assert (found.env, found.agent, str(found.run_dir)) == (
        "SetWildcard27-v0",
        "classifier",
        result["run_dir"],
    )


def test_eval_scalars_join_sb3s_tensorboard_run(tmp_path, small_agents):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train_rl(tiny(tmp_path))
    events = EventAccumulator(result["run_dir"])
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"eval/kl", "eval/topk_overlap", "eval/entropy_bits", "rollout/ep_rew_mean"} <= scalars
    assert [e.step for e in events.Scalars("eval/kl")] == [64, 128]
    assert events.Scalars("eval/kl")[-1].value == pytest.approx(result["kl"])


def test_user_registered_scorer_as_policy(tmp_path, capsys):
    arguments = ["--agent", "bag_test_scorer", "--env", "SetWildcard27-v0", "--timesteps", "64"]
    arguments += ["--n-envs", "2", "--n-steps", "16", "--batch-size", "16", "--eval-queries", "64"]
    rl_cli(arguments + ["--action-mode", "subset", "--logdir", str(tmp_path)])
    output = json.loads(capsys.readouterr().out)
    scorer, state = load_scorer(output["run_dir"])
    assert isinstance(scorer, BagScorer) and state["env_kwargs"]["action_mode"] == "subset"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--algo", "dqn"], "algo must be one of"),
        (["--action-mode", "pick"], "action_mode must be one of"),
        (["--agent", "nope"], "unknown agent 'nope'"),
        (["--env", "SetNope27-v0"], "SetNope27-v0"),
        (["--timesteps", "0"], "timesteps must be an integer >= 1"),
    ],
)
def test_cli_bad_input_is_a_one_line_error(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        rl_cli(arguments + ["--logdir", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error


def test_ppo_learns_classic_within_a_cpu_minute(tmp_path):
    """Mean reward of the last rollouts against the random policy's 1/27."""
    config = RLConfig(
        env="SetClassic27-v0",
        agent="classifier",
        timesteps=16384,
        n_envs=16,
        lr=1e-3,
        eval_queries=256,
        eval_every=16384,
        logdir=str(tmp_path),
    )
    result = train_rl(config)
    random_reward = 1 / 27
    print(f"PPO mean reward {result['mean_reward']:.3f}, random policy {random_reward:.3f}")
    assert result["mean_reward"] > 2.5 * random_reward


@pytest.mark.parametrize("vec_env, inner", [("native", NativeVecEnv), ("dummy", DummyVecEnv)])
def test_make_model_uses_the_chosen_vec_env(tmp_path, small_agents, vec_env, inner):
    model = make_model(tiny(tmp_path, n_envs=2, vec_env=vec_env))
    assert model.get_env().num_envs == 2 and isinstance(model.policy, ScorerPolicy)
    assert isinstance(model.get_env().unwrapped, inner)
    assert np.issubdtype(model.observation_space.dtype, np.integer)


@pytest.mark.parametrize("action_mode", ["key", "subset"])
def test_native_vec_env_steps_like_sb3s_dummy_vec_env(action_mode):
    """Same spaces, dtypes and per-env infos (less the query text) as DummyVecEnv; the
    answered query's observation as terminal_observation; VecMonitor's episode records."""
    kwargs = {"action_mode": action_mode}
    native, dummy = (make_sb3_vec_env("SetWildcard27-v0", 3, 5, kwargs, kind) for kind in VEC_ENVS)
    assert (native.observation_space, native.action_space) == (
        dummy.observation_space,
        dummy.action_space,
    )
    first = native.reset()
    assert first.dtype == dummy.reset().dtype
    assert first.shape == (3, *native.observation_space.shape)
    assert set(native.unwrapped.reset_infos[0]) == {"positives", "n_positives"}
    actions = np.stack([native.action_space.sample() for _ in range(3)])
    ours, theirs = native.step(actions), dummy.step(actions)
    for mine, other in zip(ours[1:3], theirs[1:3], strict=True):
        assert mine.dtype == other.dtype and mine.shape == other.shape
    assert ours[2].all()  # every step ends every episode
    assert [set(info) for info in ours[3]] == [set(info) - {"query"} for info in theirs[3]]
    np.testing.assert_array_equal(np.stack([i["terminal_observation"] for i in ours[3]]), first)
    assert [info["episode"]["r"] for info in ours[3]] == pytest.approx(ours[1])
    native.seed(7)
    again = native.reset()
    native.seed(7)
    np.testing.assert_array_equal(native.reset(), again)


def test_native_vec_env_is_one_batched_env():
    envs = NativeVecEnv(gym.make_vec("SetClassic27-v0", num_envs=4))
    assert envs.get_attr("action_mode", indices=[1, 2]) == ["key", "key"]
    assert envs.env_is_wrapped(Monitor) == [False] * 4
    envs.reset()
    texts = envs.env_method("query_texts", indices=0)
    assert len(texts) == 1 and len(texts[0]) == 4  # the batched env's method, called once
    envs.set_attr("split", "test")
    assert envs.vector_env.split == "test"
    with pytest.raises(ValueError, match="indices must be None or all of them"):
        envs.set_attr("split", "train", indices=[0])
    envs.set_options([{"query": texts[0][0]}, {}, {}, {}])  # one posed, three missing
    with pytest.raises(ValueError, match=r"options\['query'\]\[1\]"):
        envs.reset()


def test_sb3_evaluates_a_policy_on_the_native_vec_env(tmp_path, small_agents):
    model = make_model(tiny(tmp_path, n_envs=2))
    mean, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=8)
    assert 0 <= mean <= 1
