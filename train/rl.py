"""``python -m train.rl``: reinforcement learning of a scorer with stable-baselines3.

    python -m train.rl --env SetUnion27-v0 --algo ppo --agent joint --preset small \\
        --timesteps 100000 --n-envs 8 --logdir runs --seed 0 [--action-mode key|subset] \\
        [--vec-env native|dummy]

The policy is ``agents.sb3.ScorerPolicy``: the scorer's logits are the action logits. Every
step of an env is a whole episode (one query, one answer), so the defaults are short
rollouts and a few epochs over small minibatches, and the discount is irrelevant. The envs
are the library's batched ``SetVectorEnv`` through ``train.vec_env.NativeVecEnv`` (or SB3's
``DummyVecEnv`` with ``--vec-env dummy``).

The run directory (SB3's ``tensorboard_log`` layout: ``<logdir>/<run name>_1``) holds SB3's
TensorBoard scalars (``rollout/ep_rew_mean``, ``train/...``) and ours (``eval/kl``,
``eval/topk_overlap``, ``eval/entropy_bits``, from the evaluation harness after the first
update at least ``--eval-every`` timesteps past the last evaluation, and at the end: SB3's
``EveryNTimesteps``), ``checkpoint.pt`` in the supervised runs'
format (so ``python -m eval`` and the report read it) and SB3's ``sb3_model.zip``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback, CallbackList, EveryNTimesteps
from stable_baselines3.common.logger import configure
from tqdm import tqdm

from agents.base import import_agent_module, resolve_device
from agents.checkpoint import save, scorer_state
from agents.sb3 import ALGORITHMS, ScorerPolicy
from eval import tags
from eval.harness import score_eval_set, summarize
from eval.sets import MAX_QUERIES, make_eval_set
from set_env.checks import check_seed
from set_env.env import ACTION_MODES
from set_env.registry import canonical_env_id, make_env
from train.config import (
    TOKEN_MODES,
    argument_parser,
    check_at_least_one,
    check_at_most,
    check_choices,
    check_finite,
    create_run_dir,
    parse_given,
    run_name,
)
from train.vec_env import VEC_ENVS, make_sb3_vec_env

SB3_MODEL = "sb3_model.zip"
MAX_ENVS = 4096  # SB3's rollout buffer and dummy vec env grow with it, one Python env each
EXAMPLES = [
    "python -m train.rl --env SetUnion27-v0 --algo ppo --agent joint --timesteps 100000",
    "python -m train.rl --env SetClassic27-v0 --algo a2c --agent classifier --action-mode subset",
]


@dataclass
class RLConfig:
    env: str = "SetUnion27-v0"
    """Gymnasium id of the SET environment."""
    algo: str = "ppo"
    """ppo or a2c (stable-baselines3)."""
    agent: str = "joint"
    """Registered scorer name whose logits are the policy's action logits."""
    dim: int | None = None
    """Embedding dimension of agents that have one (contrastive); None: the agent's default."""
    preset: str = "small"
    """Agent size preset: small or paper."""
    timesteps: int = 100_000
    """Env steps in total; each is one query (one episode)."""
    n_envs: int = 8
    """Envs stepped together (one query each per step)."""
    vec_env: str = "native"
    """native: the library's batched SetVectorEnv, one numpy step for all envs (faster);
    dummy: SB3's DummyVecEnv of one Python env each (make_vec_env)."""
    logdir: str = "runs"
    """Folder that holds the run directories."""
    seed: int = 0
    """Seed of the envs, the policy's initialisation and the sampling."""
    action_mode: str = "key"
    """key: pick one key, reward 1 if it is an answer. subset: pick a set of keys (one
    Bernoulli per key), reward the Jaccard similarity with the answer."""
    tokens: str = "card"
    """Observation tokens of the env: card, attribute or pair (the pair games only)."""
    agent_module: str | None = None
    """A module to import first, which registers user scorers."""
    n_steps: int = 64
    """Steps per env in one rollout (a rollout holds n_steps * n_envs queries)."""
    batch_size: int = 64
    """PPO's minibatch size."""
    n_epochs: int = 4
    """PPO's passes over each rollout."""
    lr: float = 3e-4
    """Adam's learning rate."""
    ent_coef: float = 0.0
    """Entropy bonus (a positive value keeps the policy spread over the keys longer)."""
    eval_every: int = 10_000
    """Evaluate on the held-out set (and checkpoint) every this many timesteps (after the first
    update that many past the last evaluation), and at the end."""
    eval_queries: int = 1024
    """Size of the fixed held-out evaluation set (test split, size-weighted)."""
    device: str = "cpu"
    """cpu, cuda or cuda:N."""

    def validate(self) -> None:
        """ValueError naming the first field that is out of range."""
        choices = {"algo": tuple(ALGORITHMS), "vec_env": VEC_ENVS}
        check_choices(self, choices | {"action_mode": ACTION_MODES, "tokens": TOKEN_MODES})
        positive = ("timesteps", "n_envs", "n_steps", "batch_size", "n_epochs", "eval_every")
        check_at_least_one(self, positive + ("eval_queries",))
        check_at_most(self, {"n_envs": MAX_ENVS, "eval_queries": MAX_QUERIES})
        check_seed(self.seed)
        if self.dim is not None and self.dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {self.dim}")
        check_finite(self, positive=("lr",), non_negative=("ent_coef",))
        if self.algo == "ppo" and self.batch_size < 2:
            raise ValueError(
                f"ppo needs batch_size >= 2 (it normalises advantages), got {self.batch_size}"
            )
        if self.algo == "ppo" and self.n_steps * self.n_envs < 2:
            raise ValueError("ppo needs n_steps * n_envs >= 2 queries per rollout")
        resolve_device(self.device)

    @property
    def env_kwargs(self) -> dict:
        """The keyword arguments of the run's envs (token and action modes)."""
        return {"tokens": self.tokens, "action_mode": self.action_mode}

    def run_name(self) -> str:
        """``<env>__<agent>[-d<dim>]__<algo>__s<seed>__<time>``, like supervised runs."""
        return run_name(self.env, self.agent, self.dim, self.algo, self.seed)


class EveryNTimestepsAfterUpdate(EveryNTimesteps):
    """SB3's ``EveryNTimesteps``, checked between an update and the next rollout rather than
    mid-rollout (where the weights are a rollout behind ``num_timesteps``), and triggered
    once more when training ends."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        super()._on_step()

    def _on_training_end(self) -> None:
        self._on_event()


class EvaluateAndCheckpoint(BaseCallback):
    """Each call evaluates the policy's scorer through the harness on the held-out set, logs
    ``eval/*`` into SB3's TensorBoard run and writes ``checkpoint.pt``."""

    def __init__(self, config: RLConfig):
        super().__init__()
        self.config = config
        self.eval_set = make_eval_set(
            config.env, config.eval_queries, 0, env_kwargs=config.env_kwargs
        )
        self.metrics: dict[str, float] = {}

    def _on_step(self) -> bool:
        scorer = self.model.policy.scorer
        self.metrics = summarize(score_eval_set(scorer, self.eval_set))
        for name, value in self.metrics.items():
            self.logger.record(tags.EVAL[name], value)
        self.logger.dump(self.num_timesteps)  # SB3 would dump them a rollout later
        config = self.config
        state = scorer_state(scorer, config.env, config.env_kwargs, config.agent_module)
        state.update(
            step=self.num_timesteps,
            objective=config.algo,
            rl_config=dataclasses.asdict(config),
            metrics=self.metrics,
        )
        save(state, Path(self.logger.get_dir()))
        return True


class ProgressBar(BaseCallback):
    """A bar of the timesteps on stderr, named after the run, with the last evaluation's KL.
    Not SB3's ``progress_bar=True``: that needs ``rich`` and draws on stdout, where
    ``python -m train.rl`` prints its JSON."""

    def __init__(self, evaluation: EvaluateAndCheckpoint):
        super().__init__()
        self.evaluation = evaluation

    def _on_training_start(self) -> None:
        self.bar = tqdm(
            total=self.locals["total_timesteps"] - self.model.num_timesteps,
            desc=Path(self.logger.get_dir()).name,
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_rollout_start(self) -> None:
        self._show_kl()

    def _on_training_end(self) -> None:
        self._show_kl()
        self.bar.close()

    def _show_kl(self) -> None:
        if self.evaluation.metrics:
            self.bar.set_postfix(kl=f"{self.evaluation.metrics['kl']:.4f}")


def make_model(config: RLConfig):
    """The SB3 algorithm with a ScorerPolicy on ``config.vec_env``'s vec env of
    ``config.env``, logging into a new run folder of its own (SB3's layout,
    ``<logdir>/<run name>_1``)."""
    make_env(config.env, **config.env_kwargs).close()  # a bad id or kwarg: a ValueError
    envs = make_sb3_vec_env(
        config.env, config.n_envs, config.seed, config.env_kwargs, config.vec_env
    )
    policy_kwargs = {
        "agent": config.agent,
        "env_id": config.env,
        "env_kwargs": config.env_kwargs,
        "preset": config.preset,
        "agent_config": {} if config.dim is None else {"dim": config.dim},
        "agent_module": config.agent_module,
    }
    algo_kwargs = {"n_steps": config.n_steps, "gamma": 1.0, "gae_lambda": 1.0}
    if config.algo == "ppo":
        algo_kwargs.update(batch_size=config.batch_size, n_epochs=config.n_epochs)
    try:
        model = ALGORITHMS[config.algo](
            ScorerPolicy,
            envs,
            learning_rate=config.lr,
            ent_coef=config.ent_coef,
            policy_kwargs=policy_kwargs,
            seed=config.seed,
            device=config.device,
            verbose=0,
            **algo_kwargs,
        )
    except AssertionError as error:  # SB3 checks its arguments with asserts
        raise ValueError(f"{config.algo}: {error}") from None
    # A folder created exclusively: two runs started in the same second never share one.
    run_dir = create_run_dir(config.logdir, f"{config.run_name()}_1")
    model.set_logger(configure(str(run_dir), ["tensorboard"]))
    return model


def train_rl(config: RLConfig | None = None, **overrides) -> dict:
    """Train from Python: ``train_rl(env="SetClassic27-v0", timesteps=1024)``. Returns
    {"run_dir", "timesteps", "mean_reward" (the last rollouts'), "kl", "topk_overlap",
    "entropy_bits"}."""
    config = dataclasses.replace(config or RLConfig(), **overrides)
    config.validate()
    config = dataclasses.replace(config, env=canonical_env_id(config.env))
    if config.agent_module:
        import_agent_module(config.agent_module)
    model = make_model(config)
    evaluation = EvaluateAndCheckpoint(config)
    evaluate_every = EveryNTimestepsAfterUpdate(config.eval_every, evaluation)
    model.learn(config.timesteps, callback=CallbackList([evaluate_every, ProgressBar(evaluation)]))
    run_dir = Path(model.logger.get_dir())
    try:
        model.save(run_dir / SB3_MODEL)
    except OSError as error:
        raise ValueError(f"cannot write {run_dir / SB3_MODEL}: {error}") from None
    # float(): VecMonitor's episode rewards are numpy float32s, which JSON cannot write
    rewards = [float(episode["r"]) for episode in model.ep_info_buffer]
    return {
        "run_dir": str(run_dir),
        "timesteps": model.num_timesteps,
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        **evaluation.metrics,
    }


def main(argv=None) -> None:
    """``python -m train.rl``: train one RL run and print its final metrics as JSON."""
    parser = argument_parser(
        RLConfig, "train.rl", "Train a SET scorer as an SB3 policy (PPO or A2C).", EXAMPLES
    )
    given = parse_given(parser, argv)
    try:
        result = train_rl(RLConfig(**given))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(result))
    print(f"TensorBoard: tensorboard --logdir {result['run_dir']}", file=sys.stderr)


if __name__ == "__main__":
    main()
