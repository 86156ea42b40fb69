"""Faults: a run never overwrites its last good checkpoint, never shares its folder, never
hangs on a dead producer; evaluation caches cannot lie; one damaged folder stops nothing;
a killed sweep leaves no orphan."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoint import CHECKPOINT, METADATA, load, read_metadata
from eval import sets
from eval.report import main as report_cli
from set_env import Deck, make_game
from train import train
from train.__main__ import main as train_cli
from train.config import TrainConfig, create_run_dir
from train.data import QueryStream
from train.sweep import Run, start, try_lock
from train.sweep import main as sweep_cli
from train.trainer import NonFiniteLoss, Trainer

pytestmark = pytest.mark.usefixtures("small_agents")
TINY = dict(
    env="SetWildcard27-v0",
    agent="classifier",
    objective="ce",
    batch_size=16,
    eval_queries=64,
    warmup=2,
)


def tiny(tmp_path, **overrides) -> dict:
    return {**TINY, "logdir": str(tmp_path), "steps": 2, "eval_every": 2, **overrides}


# --- the last good checkpoint ----------------------------------------------------------------


def test_an_update_that_makes_the_weights_nan_at_an_evaluation_step_saves_nothing(tmp_path):
    run_dir = Path(train(**tiny(tmp_path))["run_dir"])
    checkpoint, metadata = (run_dir / CHECKPOINT).read_bytes(), read_metadata(run_dir)
    trainer = Trainer(TrainConfig(**tiny(tmp_path, steps=4, resume=str(run_dir))))
    update = trainer._train_step

    def poisoned(batch):
        result = update(batch)
        if trainer.step == 3:  # the update of step 4, an evaluation step
            with torch.no_grad():
                next(trainer.scorer.parameters()).fill_(float("nan"))
        return result

    trainer._train_step = poisoned
    with pytest.raises(NonFiniteLoss, match="made the weights non-finite at step 4.*step 2"):
        trainer.run()
    assert (run_dir / CHECKPOINT).read_bytes() == checkpoint
    assert read_metadata(run_dir) == metadata and np.isfinite(metadata["metrics"]["kl"])


def test_a_nan_before_the_first_checkpoint_says_none_was_written(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_cli(
            ["--lr", "1e30", "--steps", "3", "--eval-every", "1", "--batch-size", "16"]
            + ["--eval-queries", "64", "--logdir", str(tmp_path)]
        )
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: non-finite") and "no checkpoint had been written" in error


def test_infinite_and_nan_settings_are_refused(capsys):
    for flag, value in (("--lr", "inf"), ("--grad-clip", "nan"), ("--weight-decay", "-1")):
        with pytest.raises(SystemExit):
            train_cli([flag, value, "--steps", "1", "--logdir", "/nonexistent"])
        assert f"{flag[2:].replace('-', '_')} must be a finite number" in capsys.readouterr().err


def test_a_folder_that_turns_read_only_mid_run_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    run_dir = Path(train(**tiny(tmp_path))["run_dir"])
    before = (run_dir / CHECKPOINT).read_bytes()

    mkstemp = tempfile.mkstemp

    def read_only(*args, prefix="", **kwargs):  # the checkpoint's write is the one refused
        if prefix.startswith(f".{CHECKPOINT}"):
            raise PermissionError(13, "Permission denied")
        return mkstemp(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(SystemExit):
        train_cli(["--resume", str(run_dir), "--steps", "4"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == f"error: cannot write {run_dir / CHECKPOINT}: Permission denied"
    assert (run_dir / CHECKPOINT).read_bytes() == before


# --- run folders of their own ----------------------------------------------------------------


def test_run_folders_are_created_exclusively(tmp_path):
    names = [create_run_dir(tmp_path, "run").name for _ in range(3)]
    assert names == ["run", "run-2", "run-3"]
    (tmp_path / "file").touch()
    with pytest.raises(ValueError, match="is not a folder"):
        create_run_dir(tmp_path / "file", "run")


def test_concurrent_identical_runs_do_not_share_a_folder(tmp_path):
    command = [sys.executable, "-m", "train", "--env", "SetClassic27-v0", "--agent", "classifier"]
    command += ["--objective", "ce", "--steps", "2", "--eval-every", "1", "--batch-size", "8"]
    command += ["--eval-queries", "16", "--logdir", str(tmp_path)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(command, env=environment, stderr=subprocess.PIPE) for _ in range(4)
    ]
    errors = [process.communicate()[1].decode() for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, errors
    runs = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert len(runs) == 4
    for run in runs:
        assert load(run)["step"] == 2 and len(list(run.glob("events.out.tfevents.*"))) == 2
        assert not list(run.glob(".*")), "no temporary file is left behind"


# --- nothing hangs ---------------------------------------------------------------------------


def test_a_failing_data_thread_ends_the_run_with_its_error():
    class Broken:
        def sample(self, *args, **kwargs):
            raise ValueError("the generator broke")

    stream = QueryStream(lambda step: Broken(), 4, seed=0)
    with pytest.raises(ValueError, match="the generator broke"):
        next(stream)
    stream.close()


def test_a_data_thread_that_died_silently_is_not_waited_on(monkeypatch):
    monkeypatch.setattr(QueryStream, "_produce", lambda self, step: None)
    stream = QueryStream(make_game("classic", Deck()), 4, seed=0)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="data thread stopped"):
        next(stream)
    assert time.monotonic() - started < 10


def test_a_negative_seed_fails_before_any_thread_starts(tmp_path):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63\)"):
        train(**tiny(tmp_path, seed=-1))
    result = subprocess.run(
        [sys.executable, "-m", "train", "--seed", "-1", "--steps", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: seed must be")


# --- evaluation sets that cannot be wrong ----------------------------------------------------


def test_a_cache_file_of_another_set_copied_over_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("SET_EVAL_CACHE", str(tmp_path))
    union = sets.make_eval_set("SetUnion27-v0", 64)
    (union_file,) = tmp_path.iterdir()
    classic = sets.make_eval_set("SetClassic27-v0", 256)
    (classic_file,) = set(tmp_path.iterdir()) - {union_file}
    union_file.write_bytes(classic_file.read_bytes())  # a valid file, of another key
    again = sets.make_eval_set("SetUnion27-v0", 64)
    assert len(again) == 64 and again.positives.shape == (64, 27)
    np.testing.assert_array_equal(again.tokens, union.tokens)
    assert not np.array_equal(classic.tokens[:64, :2], again.tokens[:, :2])


def test_an_empty_cache_file_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("SET_EVAL_CACHE", str(tmp_path))
    first = sets.make_eval_set("SetUnion27-v0", 64)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"")  # what a crash between create and write leaves
    np.testing.assert_array_equal(sets.make_eval_set("SetUnion27-v0", 64).tokens, first.tokens)
    assert path.stat().st_size > 0


def test_a_set_of_an_older_generator_is_redrawn(tmp_path, monkeypatch):
    monkeypatch.setenv("SET_EVAL_CACHE", str(tmp_path))
    sets.make_eval_set("SetShatter27-v0", 32)
    monkeypatch.setattr(sets, "GENERATOR_VERSION", sets.GENERATOR_VERSION + 1)
    sets.make_eval_set("SetShatter27-v0", 32)
    assert len(list(tmp_path.iterdir())) == 2  # keyed by the version: a new file


def test_an_empty_cache_variable_means_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SET_EVAL_CACHE", "")
    monkeypatch.setattr(sets, "DEFAULT_CACHE", tmp_path / "default")
    sets.make_eval_set("SetClassic27-v0", 16)
    assert [p.name for p in tmp_path.iterdir()] == ["default"]


def test_a_cache_variable_naming_a_file_is_a_value_error(tmp_path, monkeypatch):
    (tmp_path / "file").touch()
    monkeypatch.setenv("SET_EVAL_CACHE", str(tmp_path / "file"))
    with pytest.raises(ValueError, match="SET_EVAL_CACHE=.* is not a writable folder"):
        sets.make_eval_set("SetClassic27-v0", 16)


# --- one bad folder never stops the rest -----------------------------------------------------


def damage_folders(out: Path, good: Path) -> list[Path]:
    """Next to a good run: one with a truncated config.json, one with an unreadable
    checkpoint (and its metadata), one with metadata but garbage for a checkpoint."""
    truncated, unreadable, garbage = out / "truncated", out / "unreadable", out / "garbage"
    for folder in (truncated, unreadable, garbage):
        folder.mkdir()
    (truncated / "config.json").write_text('{"env": "SetShat')
    (unreadable / "config.json").write_text((good / "config.json").read_text())
    (unreadable / CHECKPOINT).write_bytes(b"\0" * 10)
    (garbage / "config.json").write_text((good / "config.json").read_text())
    (garbage / METADATA).write_text((good / METADATA).read_text())
    (garbage / CHECKPOINT).write_bytes(b"not a checkpoint")
    return [truncated, unreadable, garbage]


def test_the_sweep_and_the_report_skip_damaged_run_folders(tmp_path, capsys):
    good = Path(train(**tiny(tmp_path, env="SetShatter27-v0"))["run_dir"])
    truncated, unreadable, garbage = damage_folders(tmp_path, good)
    capsys.readouterr()
    sweep_cli(
        ["--out", str(tmp_path), "--games", "Shatter", "--agents", "classifier"]
        + ["--steps", "2", "--dry-run"]
    )
    captured = capsys.readouterr()
    assert f"warning: skipped damaged run folder {truncated}" in captured.err
    assert f"warning: skipped damaged run folder {unreadable}" in captured.err
    assert "1 runs, 0 already finished" in captured.err  # the good run has another objective
    report_cli([str(tmp_path), "--queries", "64"])
    captured = capsys.readouterr()
    assert f"warning: skipped {unreadable}" in captured.err
    assert f"warning: skipped {garbage}" in captured.err
    report = (tmp_path / "report.md").read_text()
    assert "Skipped: 2 run(s)" in report and "`garbage`" in report and "`unreadable`" in report


# --- a sweep's runs: one copy, and none outliving the sweep ------------------------------------


def test_a_run_another_sweep_is_training_is_skipped(tmp_path, capsys):
    run = Run(TrainConfig(env="SetShatter27-v0", agent="classifier", objective="soft-ce"))
    held = try_lock(tmp_path, run)
    assert held is not None and try_lock(tmp_path, run) is None
    assert start(run, tmp_path, dict(os.environ)) is None
    assert "another sweep is training it" in capsys.readouterr().err
    held.close()
    second = try_lock(tmp_path, run)
    assert second is not None
    second.close()


def children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (the sweep starts its runs from pool threads);
    a thread or process that ends while they are read has none."""
    found = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in path.read_text().split()]
        except FileNotFoundError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_a_sweep_ends_its_training_and_frees_the_run(tmp_path):
    sweep = subprocess.Popen(
        [sys.executable, "-m", "train.sweep", "--out", str(tmp_path), "--games", "Shatter"]
        + ["--agents", "classifier", "--steps", "100000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*/config.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    (child,) = children(sweep.pid)
    run = Run(TrainConfig(env="SetShatter27-v0", agent="classifier", objective="soft-ce"))
    assert try_lock(tmp_path, run) is None  # the training holds its run's lock
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.wait()
    deadline = time.monotonic() + 20
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child), "the training outlived its sweep"
    lock = None
    while lock is None and time.monotonic() < deadline:  # the kernel frees it as the run exits
        lock = try_lock(tmp_path, run)
        time.sleep(0.05)
    assert lock is not None  # a restarted sweep may train it again
    lock.close()
