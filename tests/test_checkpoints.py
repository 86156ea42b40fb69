"""Checkpoints are data, never code: a malicious file runs nothing at any entry point, a
damaged one is refused, and the metadata beside each checkpoint needs no weights."""

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoint import (
    CHECKPOINT,
    METADATA,
    RUN_CONFIG,
    iter_runs,
    load,
    load_scorer,
    read_metadata,
    save,
    write_json_atomic,
)
from agents.sb3 import load_model
from eval.__main__ import main as eval_cli
from eval.analysis import main as analysis_cli
from eval.report import main as report_cli
from train import train
from train.__main__ import main as train_cli
from train.rl import SB3_MODEL
from train.sweep import main as sweep_cli

pytestmark = pytest.mark.usefixtures("small_agents")


class Payload:
    """What an attacker pickles: unpickling it creates ``path`` (here harmless; in the wild a
    shell command)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def tiny_run(tmp_path, **overrides) -> Path:
    config = dict(
        env="SetShatter27-v0",
        agent="contrastive",
        dim=4,
        objective="soft-ce",
        steps=2,
        batch_size=16,
        eval_every=2,
        eval_queries=64,
        logdir=str(tmp_path),
    )
    return Path(train(**{**config, **overrides})["run_dir"])


def plant_malicious_checkpoint(run_dir: Path, marker: Path) -> None:
    """Replace a run's checkpoint by one that runs code when unpickled; keep its metadata
    (saying it stopped at step 1), as an attacker who copied a real run folder would."""
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    state["payload"] = Payload(marker)
    torch.save(state, run_dir / CHECKPOINT)
    metadata = json.loads((run_dir / METADATA).read_text())
    write_json_atomic(run_dir / METADATA, {**metadata, "step": 1})


def test_a_malicious_checkpoint_runs_nothing_at_any_entry_point(tmp_path, capsys, cli_error):
    runs = tmp_path / "runs"
    run_dir = tiny_run(runs)
    marker = tmp_path / "pwned"
    plant_malicious_checkpoint(run_dir, marker)
    capsys.readouterr()
    refused = "could run code"

    assert refused in cli_error(eval_cli, ["--checkpoint", str(run_dir)])
    assert refused in cli_error(train_cli, ["--resume", str(run_dir), "--steps", "4"])
    report = cli_error(report_cli, [str(runs), "--queries", "64"])
    assert "no usable run" in report
    with pytest.raises(ValueError, match=refused):
        load_scorer(run_dir)
    # The sweep reads the metadata only: it plans to resume the run and loads nothing.
    sweep_args = ["--out", str(runs), "--games", "Shatter", "--agents", "contrastive"]
    sweep_cli([*sweep_args, "--dims", "4", "--steps", "2", "--dry-run"])
    assert f"--resume {run_dir}" in capsys.readouterr().out
    # Analysis overlays the metadata's KL without touching the weights.
    analysis_cli(
        ["free-embedding", "--env", "SetShatter27-v0", "--dims", "4"]
        + ["--queries", "16", "--steps", "2", "--sweep", str(runs)]
    )
    assert json.loads(capsys.readouterr().out)["sweep"] == {"4": pytest.approx(0.6, abs=0.2)}
    assert not marker.exists()


def test_the_sweep_reports_a_malicious_checkpoint_as_a_failed_run(tmp_path, capsys):
    run_dir = tiny_run(tmp_path, steps=1, eval_every=1)
    marker = tmp_path.parent / f"{tmp_path.name}-pwned"
    plant_malicious_checkpoint(run_dir, marker)
    with pytest.raises(SystemExit) as exit_info:
        sweep_cli(
            ["--out", str(tmp_path), "--games", "Shatter", "--agents", "contrastive"]
            + ["--dims", "4", "--steps", "2"]
        )
    assert exit_info.value.code == 1
    assert "1 run(s) failed" in capsys.readouterr().err
    assert not marker.exists()


def test_checkpoints_hold_only_tensors_and_plain_data(tmp_path, rl_run):
    run_dir = tiny_run(tmp_path)
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)  # would raise otherwise
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "sha256"} <= set(state)
    torch.load(rl_run / CHECKPOINT, weights_only=True)


def test_metadata_beside_the_checkpoint_needs_no_weights(tmp_path):
    run_dir = tiny_run(tmp_path)
    metadata = read_metadata(run_dir)
    state = load(run_dir)
    assert metadata["step"] == state["step"] == 2
    assert metadata["metrics"] == state["metrics"] and metadata["sha256"] == state["sha256"]
    assert "model" not in metadata and metadata["train_config"]["dim"] == 4
    (run_dir / METADATA).write_text('{"format": ')
    with pytest.raises(ValueError, match="unreadable"):
        read_metadata(run_dir)


def test_iter_runs_reads_each_run_folder_from_its_json_files(tmp_path):
    good = tiny_run(tmp_path)
    (tmp_path / "not-a-run").mkdir()
    started = tmp_path / "started"
    started.mkdir()
    write_json_atomic(started / RUN_CONFIG, {"env": "SetShatter27-v0"})
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / CHECKPOINT).write_bytes(b"")  # a checkpoint without its metadata
    runs = {run.path.name: run for run in iter_runs(tmp_path)}
    assert set(runs) == {good.name, "started", "damaged"}
    assert runs[good.name].metadata["step"] == 2 and runs[good.name].error is None
    assert runs[good.name].config["dim"] == 4 and runs[good.name].has_checkpoint
    assert runs["started"].metadata is None and not runs["started"].has_checkpoint
    assert runs["damaged"].error and "no checkpoint.json" in runs["damaged"].error


def test_a_damaged_checkpoint_is_refused(tmp_path):
    run_dir = tiny_run(tmp_path)
    path = run_dir / CHECKPOINT
    weight = load(path)["model"]["key_embedding"].numpy().tobytes()
    data = bytearray(path.read_bytes())
    start = data.find(weight)
    assert start > 0  # torch stores tensors uncompressed
    data[start : start + 64] = bytes(b ^ 0xFF for b in data[start : start + 64])
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged"):
        load(path)
    with pytest.raises(ValueError, match="damaged"):
        load_scorer(run_dir)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda state: state.pop("agent_config"), "lacks \\['agent_config'\\]"),
        (lambda state: state.update(format=1), "not a checkpoint of this library"),
    ],
)
def test_checkpoints_missing_keys_or_of_another_format(tmp_path, change, message):
    run_dir = tiny_run(tmp_path)
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    change(state)
    torch.save(state, run_dir / CHECKPOINT)
    with pytest.raises(ValueError, match=message):
        load(run_dir)


def test_weights_of_the_wrong_shape_are_a_value_error(tmp_path):
    run_dir = tiny_run(tmp_path)
    state = load(run_dir)
    state["agent_config"]["dim"] = 5  # the weights are of dim 4
    save(state, run_dir)
    with pytest.raises(ValueError, match="weights do not fit agent 'contrastive'"):
        load_scorer(run_dir)


def test_non_finite_weights_are_never_saved(tmp_path):
    run_dir = tiny_run(tmp_path)
    before = (run_dir / CHECKPOINT).read_bytes()
    state = load(run_dir)
    state["model"]["bias"][0] = float("nan")
    with pytest.raises(ValueError, match="weight 'bias' is not finite; nothing was saved"):
        save(state, run_dir)
    assert (run_dir / CHECKPOINT).read_bytes() == before


def rewrite_data(zip_path: Path, change) -> None:
    """Rewrite the JSON ``data`` entry of an SB3 zip through ``change(data)``."""
    with zipfile.ZipFile(zip_path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    change(data)
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)


def test_sb3_models_load_without_unpickling(rl_run, tmp_path):
    model = load_model(rl_run / SB3_MODEL)
    saved = load(rl_run)["model"]
    for name, value in model.policy.scorer.state_dict().items():
        assert torch.equal(value, saved[name])
    action, _ = model.predict(np.zeros(model.observation_space.shape, dtype=np.int64))
    assert 0 <= int(action) < 27


def test_a_malicious_sb3_zip_runs_nothing(rl_run, tmp_path):
    marker = tmp_path / "pwned"
    payload = {":serialized:": __import__("base64").b64encode(pickle.dumps(Payload(marker)))}
    payload[":serialized:"] = payload[":serialized:"].decode()
    zip_path = rl_run / SB3_MODEL
    # A payload in an entry the loader rebuilds is never read ...
    rewrite_data(zip_path, lambda data: data.update(policy_class=payload))
    load_model(zip_path)
    assert not marker.exists()
    # ... and one in any other entry is refused.
    rewrite_data(zip_path, lambda data: data.update(extra=payload))
    with pytest.raises(ValueError, match=r"pickled entries \['extra'\]; refused"):
        load_model(zip_path)
    assert not marker.exists()
