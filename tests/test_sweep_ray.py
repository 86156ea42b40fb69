"""The sweep's Ray launcher (``--launcher ray``): its flags, a two-run sweep on a local Ray
instance, a failed run among good ones, and a task killed mid-run that Ray retries and that
resumes from its checkpoint to the uninterrupted run's weights and metrics.

The Ray tests share one local instance (2 CPUs, no GPU, a small object store, no
dashboard), shut down at the end with every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from test_faults import alive, children

from agents.checkpoint import load, read_metadata
from train.config import TrainConfig
from train.sweep import Run, command, scan_runs
from train.sweep import main as sweep

RAY_REASON = 'the Ray launcher needs its extra: pip install -e ".[ray]"'
# A run of a few seconds: a tiny classifier, small batches and evaluation sets.
TINY = dict(
    env="SetShatter27-v0",
    agent="classifier",
    objective="ce",
    preset="small",
    agent_config="d_model=32,n_layers=1,n_heads=2,d_ff=64",
    batch_size=16,
    eval_queries=64,
)


def tiny_run(**overrides) -> Run:
    """A sweep run of the tiny classifier."""
    return Run(TrainConfig(**{**TINY, **overrides}))


def descendants(pid: int) -> set[int]:
    """The live processes below ``pid`` (the children of every thread, recursively)."""
    found, todo = set(), [pid]
    while todo:
        below = set(children(todo.pop())) - found
        todo += below
        found |= below
    return {child for child in found if alive(child)}


def cmdline(pid: int) -> list[str]:
    """A process's command line ([] once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def parent(pid: int) -> int:
    """A process's parent."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_until(condition, seconds: float, what: str):
    """Poll ``condition`` until it returns something true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def ray():
    """A local Ray instance for the module (CPU only, 2 CPUs, a small object store, no
    dashboard); at the end, shut down, with no process of it left."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    ray = pytest.importorskip("ray", reason=RAY_REASON)
    before = descendants(os.getpid())
    ray.init(
        num_cpus=2,
        num_gpus=0,
        object_store_memory=80 * 2**20,
        include_dashboard=False,
        logging_level="warning",
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()
    deadline = time.monotonic() + 30
    while (left := descendants(os.getpid()) - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left behind: {[' '.join(cmdline(pid))[:80] for pid in left]}"


# --- flags: one-line errors, exit status 2 (no Ray needed) ------------------------------


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--address", "auto"], "--address needs --launcher ray"),
        (["--gpus-per-run", "1"], "--gpus-per-run needs --launcher ray"),
        (["--launcher", "ray", "--gpus-per-run", "-1"], "--gpus-per-run must be 0"),
        (["--launcher", "ray", "--gpus-per-run", "2"], "a run on several GPUs is torchrun's"),
        (["--launcher", "ray", "--gpus-per-run", "nan"], "--gpus-per-run must be 0"),
        (["--launcher", "ray", "--cpus-per-run", "0"], "--cpus-per-run must be"),
        (["--launcher", "ray", "--cpus-per-run", "1.5"], "a fraction below 1 or a whole"),
        (["--launcher", "ray", "--jobs", "2"], "--jobs is the local launcher's"),
    ],
)
def test_bad_launcher_flags(tmp_path, cli_error, arguments, message):
    assert message in cli_error(sweep, ["--out", str(tmp_path), "--dry-run", *arguments])


def test_the_ray_launcher_without_ray_names_the_extra(tmp_path, cli_error, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray: ImportError
    error = cli_error(sweep, ["--out", str(tmp_path), "--launcher", "ray", "--dry-run"])
    assert error == 'error: --launcher ray needs Ray: pip install -e ".[ray]"'


def test_an_address_where_nothing_answers_is_an_error_at_once():
    from train.ray_launcher import check_reachable

    with pytest.raises(ValueError, match=r"^--address 127.0.0.1:1: no Ray cluster answers"):
        check_reachable("127.0.0.1:1", seconds=5)
    for left_to_ray in (None, "auto", "ray://127.0.0.1:1"):
        check_reachable(left_to_ray, seconds=5)


def test_a_task_given_a_gpu_trains_on_cuda(tmp_path):
    """The task itself, without Ray: given a GPU, its run's command asks for CUDA (which
    Ray's CUDA_VISIBLE_DEVICES makes the task's own GPU); a machine without one says so."""
    from train.ray_launcher import train_task

    succeeded, line = train_task(tiny_run(steps=2), tmp_path, gpu=True, threads=1)
    if torch.cuda.is_available():
        assert succeeded and line.startswith("done ")
        ((folder, config, _),) = scan_runs(tmp_path)
        assert config["device"] == "cuda"
    else:
        assert not succeeded and "CUDA is not available" in line


# --- on a local Ray instance ------------------------------------------------------------


def test_a_two_run_sweep_on_ray_trains_both_then_skips_both(ray, tmp_path, capsys):
    arguments = ["--out", str(tmp_path), "--games", "Shatter", "--agents", "classifier,contrastive"]
    arguments += ["--dims", "4", "--steps", "2", "--launcher", "ray"]
    arguments += ["--gpus-per-run", "0", "--cpus-per-run", "1"]
    sweep(arguments)
    err = capsys.readouterr().err
    done = sorted(line for line in err.splitlines() if line.startswith("done "))
    assert len(done) == 2 and "classifier__soft-ce" in done[0] and "contrastive-d4" in done[1]
    assert "ray: 2 CPUs, 0 GPUs on 1 node(s)" in err and "it/s" not in err  # no run's own bar
    assert all(load(folder)["step"] == 2 for folder, _, _ in scan_runs(tmp_path))
    assert len(list((tmp_path / "logs").iterdir())) == 2
    sweep(arguments)
    captured = capsys.readouterr()
    assert captured.out == "" and "2 runs, 2 already finished" in captured.err


def test_a_failed_run_is_one_line_with_its_log_and_stops_no_other(ray, tmp_path, capsys):
    from train.ray_launcher import run_on_ray

    good, bad = tiny_run(steps=2), tiny_run(steps=2, seed=1, device="cuda:99")
    assert run_on_ray([bad, good], tmp_path, 0, None, 0, 1) == 1
    lines = capsys.readouterr().err.splitlines()
    (failed,) = [line for line in lines if line.startswith("FAILED ")]
    assert bad.label in failed and "cuda:99" in failed
    assert f"(log: {tmp_path / 'logs'}" in failed
    assert any(line.startswith(f"done {good.label}") for line in lines)


def test_a_killed_task_is_retried_and_resumes_to_the_uninterrupted_result(ray, tmp_path):
    from train.ray_launcher import run_on_ray

    killed, other = tiny_run(steps=400, eval_every=20), tiny_run(steps=40, seed=1)
    # The uninterrupted run, beside the sweep, with the threads a task of 1 CPU gives it.
    out, reference_out = tmp_path / "sweep", tmp_path / "reference"
    out.mkdir(), reference_out.mkdir()
    reference = subprocess.Popen(
        command(killed, reference_out),
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result = {}
    sweeping = threading.Thread(
        target=lambda: result.update(failures=run_on_ray([killed, other], out, 0, None, 0, 1))
    )
    sweeping.start()

    def first_checkpoint() -> list[Path]:
        return [
            folder for folder, config, step in scan_runs(out) if killed.matches(config) and step
        ]

    (folder,) = wait_until(first_checkpoint, 120, "the first checkpoint")
    (trainer,) = wait_until(lambda: training_processes(out, killed), 10, "the training")
    worker = parent(trainer)
    assert "train_task" in " ".join(cmdline(worker))  # the Ray worker running the task
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: not alive(trainer), 10, "the training to die with its worker")
    cut_at = read_metadata(folder)["step"]
    assert 20 <= cut_at < 400, "not killed mid-run"

    sweeping.join(timeout=180)
    assert not sweeping.is_alive() and result["failures"] == 0
    resumed = [f for f, config, _ in scan_runs(out) if killed.matches(config)]
    assert resumed == [folder], "the retry started a new run instead of resuming this one"
    assert reference.wait(timeout=120) == 0
    (whole,) = [f for f, _, _ in scan_runs(reference_out)]
    after_retry, uninterrupted = load(folder), load(whole)
    assert after_retry["step"] == uninterrupted["step"] == 400
    assert after_retry["metrics"] == uninterrupted["metrics"]
    model = uninterrupted["model"]
    assert all(torch.equal(value, model[name]) for name, value in after_retry["model"].items())


def training_processes(out: Path, run: Run) -> list[int]:
    """The live ``python -m train`` processes training ``run`` under ``out``."""
    wanted = {("--logdir", str(out)), ("--seed", str(run.config.seed))}
    found = []
    for pid in (int(path.name) for path in Path("/proc").iterdir() if path.name.isdigit()):
        line = cmdline(pid)
        if (
            line[1:3] == ["-m", "train"]
            and wanted <= set(zip(line, line[1:], strict=False))
            and alive(pid)
        ):
            found.append(pid)
    return found
