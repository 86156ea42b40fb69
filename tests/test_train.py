"""The trainer at tiny budgets: every agent x objective, resume, checkpoints, precision,
custom agents, bad input, the CLI, DDP, and one learning test."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import user_scorer
from user_scorer import BagScorer

import agents
from agents.checkpoint import CHECKPOINT, load, load_scorer, save
from set_env.registry import make_env
from set_env.vocab import PAD
from train.__main__ import main as cli
from train.config import TrainConfig
from train.data import Curriculum, QueryStream
from train.objectives import available, make_objective
from train.trainer import Distributed, NonFiniteLoss, Trainer, train


def tiny_config(tmp_path, **overrides) -> TrainConfig:
    values = dict(
        env="SetWildcard27-v0",
        agent="classifier",
        objective="ce",
        steps=6,
        batch_size=16,
        eval_every=3,
        eval_queries=64,
        log_every=1,
        warmup=2,
        logdir=str(tmp_path),
    )
    values.update(overrides)
    return TrainConfig(**values)


pytestmark = pytest.mark.usefixtures("small_agents")


@pytest.mark.parametrize("agent", ["contrastive", "joint", "classifier"])
@pytest.mark.parametrize("objective", ["infonce", "ce", "soft-ce"])
def test_every_agent_trains_with_every_objective(tmp_path, agent, objective):
    result = train(tiny_config(tmp_path, agent=agent, objective=objective, steps=3, eval_every=3))
    assert len(result["losses"]) == 3 and all(map(torch.isfinite, torch.tensor(result["losses"])))
    assert set(result) >= {"kl", "topk_overlap", "entropy_bits", "run_dir"}
    run_dir = Path(result["run_dir"])
    assert (run_dir / CHECKPOINT).is_file() and (run_dir / "config.json").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())


def test_run_directory_name(tmp_path):
    result = train(tiny_config(tmp_path, agent="contrastive", dim=5, objective="infonce", seed=3))
    name = Path(result["run_dir"]).name
    assert name.startswith("SetWildcard27-v0__contrastive-d5__infonce__s3__")
    joint = train(tiny_config(tmp_path, agent="joint", steps=1, eval_every=1))
    assert Path(joint["run_dir"]).name.startswith("SetWildcard27-v0__joint__ce__s0__")


def test_resumed_run_repeats_the_uninterrupted_losses(tmp_path, monkeypatch):
    whole = train(tiny_config(tmp_path / "a", steps=8, eval_every=4))
    # The same run killed during step 5, after its step-4 checkpoint.
    losses, train_step = [], Trainer._train_step

    def killed_at_step_5(self, batch):
        if self.step == 4:
            raise KeyboardInterrupt
        loss = train_step(self, batch)
        losses.append(loss[0])
        return loss

    monkeypatch.setattr(Trainer, "_train_step", killed_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path / "b", steps=8, eval_every=4))
    monkeypatch.setattr(Trainer, "_train_step", train_step)
    (run_dir,) = (tmp_path / "b").iterdir()
    rest = train(tiny_config(tmp_path / "b", steps=8, resume=str(run_dir)))
    assert rest["run_dir"] == str(run_dir)
    assert losses + rest["losses"] == whole["losses"]
    assert load(rest["run_dir"])["step"] == 8


def test_checkpoint_carries_the_scorer(tmp_path):
    result = train(tiny_config(tmp_path, agent="contrastive", dim=7, tokens="attribute"))
    state = load(result["run_dir"])
    assert state["agent"] == "contrastive" and state["agent_config"]["dim"] == 7
    assert state["env_kwargs"] == {"tokens": "attribute"}
    assert {"optimizer", "scheduler", "scaler", "rng", "step", "train_config"} <= set(state)
    scorer, _ = load_scorer(Path(result["run_dir"]) / CHECKPOINT)
    tokens = torch.zeros(2, scorer.spec.max_len, dtype=torch.long)
    assert scorer(tokens).shape == (2, 27)


ADAM_FIELDS = ("adam_beta1", "adam_beta2", "adam_eps")


def test_adams_settings_are_flags_recorded_with_the_run(tmp_path, capsys):
    cli(
        ["--env", "SetWildcard27-v0", "--agent", "classifier", "--objective", "ce"]
        + ["--steps", "1", "--eval-queries", "64", "--logdir", str(tmp_path)]
        + ["--adam-beta1", "0.8", "--adam-beta2", "0.95", "--adam-eps", "1e-8"]
    )
    run_dir = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"])
    recorded = json.loads((run_dir / "config.json").read_text())
    assert [recorded[name] for name in ADAM_FIELDS] == [0.8, 0.95, 1e-8]
    assert [load(run_dir)["train_config"][name] for name in ADAM_FIELDS] == [0.8, 0.95, 1e-8]
    (group, *_) = load(run_dir)["optimizer"]["param_groups"]
    assert group["betas"] == (0.8, 0.95) and group["eps"] == 1e-8


def test_a_run_saved_before_adams_settings_were_fields_resumes_with_the_defaults(tmp_path):
    result = train(tiny_config(tmp_path, steps=2, eval_every=2))
    state = load(result["run_dir"])
    for name in ADAM_FIELDS:
        del state["train_config"][name]
    save(state, result["run_dir"])
    trainer = Trainer(tiny_config(tmp_path, steps=4, resume=result["run_dir"]))
    assert [getattr(trainer.config, name) for name in ADAM_FIELDS] == [0.9, 0.98, 1e-6]
    assert trainer.run()["step"] == 4


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    result = train(tiny_config(tmp_path, steps=3, eval_every=3))
    path = Path(result["run_dir"]) / CHECKPOINT
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(ValueError, match="disk full"):
        train(tiny_config(tmp_path, steps=6, eval_every=3, resume=result["run_dir"]))
    assert path.read_bytes() == before  # the last good checkpoint survives


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    result = train(tiny_config(tmp_path, steps=3, eval_every=3))
    checkpoint = Path(result["run_dir"]) / CHECKPOINT
    before = checkpoint.read_bytes()
    trainer = Trainer(tiny_config(tmp_path, steps=6, resume=result["run_dir"]))
    with torch.no_grad():
        for parameter in trainer.scorer.parameters():
            parameter.fill_(float("nan"))
    with pytest.raises(NonFiniteLoss, match="step 4"):
        trainer.run()
    assert checkpoint.read_bytes() == before


def test_bf16_on_cpu(tmp_path):
    result = train(tiny_config(tmp_path, agent="joint", precision="bf16", objective="infonce"))
    assert all(torch.isfinite(torch.tensor(result["losses"])))


def test_compile(tmp_path):
    """--compile (torch.compile, about 30 s of compiling on a CPU) trains and checkpoints."""
    result = train(tiny_config(tmp_path, compile=True, steps=2, eval_every=2))
    scorer, _ = load_scorer(result["run_dir"])  # the plain module's weights were saved
    assert not any(key.startswith("_orig_mod") for key in scorer.state_dict())


def test_noam_schedule_and_grad_clip(tmp_path):
    result = train(tiny_config(tmp_path, schedule="noam", grad_clip=0.0, mask_duplicates=True))
    assert len(result["losses"]) == 6


def test_custom_agent_through_python_and_cli(tmp_path, capsys):
    result = train(tiny_config(tmp_path, agent="bag_test_scorer"))
    assert load(result["run_dir"])["agent"] == "bag_test_scorer"
    scorer, _ = load_scorer(result["run_dir"])
    assert isinstance(scorer, BagScorer)
    cli(
        [
            "--env",
            "SetClassic27-v0",
            "--agent",
            "bag_test_scorer",
            "--agent-module",
            user_scorer.__name__,
            "--objective",
            "soft-ce",
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--eval-every",
            "2",
            "--eval-queries",
            "32",
            "--logdir",
            str(tmp_path / "cli"),
        ]
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 4 and "kl" in summary


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--agent", "nope"], "unknown agent"),
        (["--env", "SetNope27-v0"], "SetNope27"),
        (["--objective", "mse"], "objective must be one of"),
        (["--agent", "contrastive", "--dim", "0"], "dim must be a positive"),
        (["--agent", "joint", "--dim", "8"], "dim"),
        (["--precision", "fp16"], "fp16 needs CUDA"),
        (["--device", "cuda"], "CUDA is not available"),
        (["--resume", "/nonexistent/run"], "no checkpoint"),
        (["--curriculum", "-1"], "curriculum must be an integer >= 0"),
        (["--env", "SetClassic27-v0", "--curriculum", "9"], "union and symdiff games"),
        (["--adam-beta2", "1"], "adam_beta2 must be in [0, 1)"),
        (["--adam-beta1", "-0.1"], "adam_beta1 must be a finite number >= 0"),
        (["--adam-eps", "0"], "adam_eps must be a finite number > 0"),
    ],
)
def test_cli_bad_input_is_a_one_line_error(tmp_path, capsys, arguments, message):
    if "cuda" in arguments and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_info:
        cli(arguments + ["--steps", "1", "--logdir", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and message in error


def test_the_objectives_are_a_registry_the_config_checks_against():
    assert available() == ("infonce", "ce", "soft-ce")
    assert make_objective("infonce", mask_duplicates=True).mask_duplicates
    with pytest.raises(ValueError, match="objective must be one of"):
        make_objective("mse")
    with pytest.raises(ValueError, match=r"one of \('infonce', 'ce', 'soft-ce'\)"):
        TrainConfig(objective="mse").validate()


def test_curriculum_grows_the_queries_from_one_pair(tmp_path):
    curriculum = Curriculum(make_env("SetSymDiff27-v0").unwrapped.game, 8)
    assert [curriculum(step).n_pairs for step in range(10)] == [1, 1, 2, 2, 4, 4, 8, 8, 8, 8]
    stream = QueryStream(curriculum, batch_size=4, seed=0)
    lengths = [int((next(stream).tokens != PAD).sum(dim=1).max()) for _ in range(10)]
    stream.close()
    assert lengths == [2, 2, 5, 5, 11, 11, 23, 23, 23, 23]  # 2 cards a pair, 1 operator between
    result = train(tiny_config(tmp_path, env="SetUnion27-v0", curriculum=4))
    assert result["step"] == 6 and len(result["losses"]) == 6


def test_resume_refuses_another_env_and_corrupt_files(tmp_path, capsys):
    result = train(tiny_config(tmp_path, steps=2, eval_every=2))
    with pytest.raises(SystemExit):
        cli(["--resume", result["run_dir"], "--env", "SetUnion27-v0", "--steps", "4"])
    assert "--env 'SetUnion27-v0' (the run's: 'SetWildcard27-v0')" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit):
        cli(["--resume", str(corrupt), "--steps", "4"])
    assert "unreadable" in capsys.readouterr().err


def test_an_objective_the_agent_cannot_serve(tmp_path):
    @agents.register("ce_only_test_scorer")
    class CeOnly(BagScorer):
        objectives = ("ce",)

    with pytest.raises(ValueError, match="cannot be trained with 'infonce'"):
        train(tiny_config(tmp_path, agent="ce_only_test_scorer", objective="infonce"))


def test_ddp_two_processes_on_cpu(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29531",
        "-m",
        "train",
        "--env",
        "SetWildcard27-v0",
        "--agent",
        "contrastive",
        "--dim",
        "4",
        "--objective",
        "infonce",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--eval-every",
        "3",
        "--eval-queries",
        "32",
        "--logdir",
        str(tmp_path),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(command, capture_output=True, text=True, timeout=240, env=environment)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1  # rank 0 alone writes
    assert load(runs[0])["step"] == 3


def _global_batch_gradients(rank: int, world: int, store: str, objective: str, out: str):
    """One DDP step of a linear scorer on rank ``rank``'s share of a fixed global batch."""
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=world
    )
    distributed = Distributed("cpu")
    gradients = _one_ddp_step(distributed, objective)  # its DDP wrapper is gone on return
    if rank == 0:
        torch.save(gradients, out)
    distributed.close()


def _one_ddp_step(distributed: Distributed, objective: str) -> list[torch.Tensor]:
    torch.manual_seed(0)
    scorer = torch.nn.Linear(5, 7)
    features, keys = torch.randn(8, 5), torch.arange(8) % 7
    positives = torch.nn.functional.one_hot(keys, 7)
    share = distributed.share(len(keys))
    mine = slice(distributed.rank * share, (distributed.rank + 1) * share)
    model = torch.nn.parallel.DistributedDataParallel(scorer) if distributed.world > 1 else scorer
    logits = model(features[mine])
    gathered = distributed.gather(logits, differentiable=True)
    make_objective(objective)(gathered, positives, keys).backward()
    return [p.grad for p in scorer.parameters()]


@pytest.mark.parametrize("objective", ["infonce", "soft-ce"])
def test_ddp_gradient_is_the_global_batch_gradient(tmp_path, objective):
    gradients = {}
    for world in (1, 2):
        out = tmp_path / f"gradients-{world}.pt"
        store = tmp_path / f"store-{world}"
        args = (world, str(store), objective, str(out))
        torch.multiprocessing.spawn(_global_batch_gradients, args, nprocs=world)
        gradients[world] = torch.load(out, weights_only=True)
    for single, split in zip(gradients[1], gradients[2], strict=True):
        torch.testing.assert_close(split, single)


def test_batch_must_split_evenly_over_processes():
    distributed = Distributed("cpu")
    distributed.world = 2
    assert distributed.share(8) == 4
    with pytest.raises(ValueError, match="batch_size 7 must be a multiple"):
        distributed.share(7)


def test_small_joint_scorer_learns_held_out_classic_pairs(tmp_path, monkeypatch):
    """The issue's learning test: the small joint scorer reaches KL < 0.05 on SetClassic27's
    test split (pairs never seen in training) within a CPU-minute (about 50 s on two cores).

    Card tokens cannot generalise to unseen pairs (each card is an atomic token), so this
    uses attribute tokens; weight decay turns memorising into the rule, which appears
    abruptly around step 400 (seeds 0 and 2 reach KL < 1e-3; seed 1 is still on its plateau
    at step 700: see the README)."""
    monkeypatch.setitem(  # undo the tiny presets of the other tests
        agents.scorer_class("joint").Config.presets,
        "small",
        dict(d_model=128, n_layers=2, n_heads=8, d_ff=256),
    )
    result = train(
        env="SetClassic27-v0",
        agent="joint",
        tokens="attribute",
        objective="ce",
        steps=700,
        batch_size=128,
        lr=1e-3,
        weight_decay=0.3,
        warmup=50,
        schedule="noam",
        seed=0,
        eval_every=10**6,
        eval_queries=512,
        log_every=100,
        logdir=str(tmp_path),
    )
    assert result["kl"] < 0.05 and result["topk_overlap"] > 0.99
