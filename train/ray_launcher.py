"""The sweep's Ray launcher (``python -m train.sweep ... --launcher ray``): each run is a Ray
task that asks for ``--gpus-per-run`` GPUs and ``--cpus-per-run`` CPUs, so that Ray places
one run per GPU of a machine, or across the nodes of a cluster.

A task finds its command when it starts, from what ``--out`` holds (``train.sweep.command``):
a finished run is skipped and an unfinished one resumed from its furthest checkpoint. So when
Ray retries a task whose worker was killed or whose node died, the retry resumes the run.
The task trains in a subprocess under the run's lock, its stderr in ``out/logs/<run>.log``,
as the local launcher does; the driver prints each run's ``done``/``FAILED`` line and keeps
one progress bar over runs. On a cluster, ``--out`` must be one shared folder, at the same
path on every node.

Ray is an optional extra (``pip install -e ".[ray]"``): it is imported only here, and only
when the launcher runs.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from pathlib import Path

from tqdm import tqdm

from train.sweep import (
    Run,
    failed_line,
    launch,
    log_path,
    progress_bar,
    relative_cost,
    skipped_line,
    try_lock,
)

MISSING = '--launcher ray needs Ray: pip install -e ".[ray]"'
# A task whose worker dies (killed, out of memory, its node lost) is run again this often.
MAX_RETRIES = 3
# How long a task waits for its run's lock: a retry may start while the training that its
# killed predecessor started is still exiting (it dies with the worker, but not at once),
# or, after a lost node, before the file server lets go of that node's lock (NFSv4: 90 s).
LOCK_WAIT = 120.0


def import_ray():
    """The ``ray`` module; ValueError naming the extra if it is not installed."""
    try:
        import ray
    except ImportError:
        raise ValueError(MISSING) from None
    return ray


def check_options(gpus: float, cpus: float) -> None:
    """ValueError for a ``--gpus-per-run`` or ``--cpus-per-run`` the launcher refuses, or
    for Ray missing. A run trains on one device: 0 GPUs (its CPUs), a share of one, or one;
    a run on several GPUs is ``torchrun``'s. Ray takes a fraction only below 1."""
    if not (math.isfinite(gpus) and 0 <= gpus <= 1):
        raise ValueError(
            f"--gpus-per-run must be 0 (CPUs only), a fraction (a shared GPU) or 1, got {gpus:g}; "
            "a run on several GPUs is torchrun's"
        )
    if not (math.isfinite(cpus) and cpus > 0) or (cpus > 1 and cpus != int(cpus)):
        raise ValueError(
            f"--cpus-per-run must be positive: a fraction below 1 or a whole number, got {cpus:g}"
        )
    import_ray()


def run_on_ray(
    runs: list[Run], out: Path, done: int, address: str | None, gpus: float, cpus: float
) -> int:
    """Train ``runs`` as Ray tasks on the cluster at ``address`` (None: a new local Ray
    instance, shut down at the end; a connection this process already has is used and left
    open): one progress bar over runs (``done`` of them already finished) and one line per
    run; returns how many failed. ValueError if the cluster cannot be reached, or (a local
    instance) lacks the GPUs or CPUs that a run asks for."""
    if not runs:
        progress_bar(done, 0).close()
        return 0
    ray = import_ray()
    started = connect(ray, address)
    try:
        check_resources(ray, gpus, cpus, local=started and address is None)
        return train_all(ray, runs, out.resolve(), done, gpus, cpus)
    finally:
        if started:
            ray.shutdown()


def connect(ray, address: str | None) -> bool:
    """Join the Ray cluster at ``address`` or start a local instance; False if this process
    was connected already. ValueError if no cluster answers at ``address``."""
    if ray.is_initialized():
        return False
    check_reachable(address)
    try:
        # Quiet: the sweep prints its own lines; each run's output goes to its log.
        ray.init(address=address or "local", logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "no answer"
        raise ValueError(f"--address {address}: {reason}") from None
    return True


def check_reachable(address: str | None, seconds: float = 10.0) -> None:
    """ValueError if ``address`` is a HOST:PORT where nothing answers within ``seconds``:
    Ray itself would try to reach it for minutes. Other addresses (auto, ray://...) are left
    to Ray."""
    host, _, port = (address or "").rpartition(":")
    if not host or "/" in host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as error:
        raise ValueError(f"--address {address}: no Ray cluster answers there ({error})") from None


def check_resources(ray, gpus: float, cpus: float, local: bool) -> None:
    """Say in one line what the cluster offers. ValueError if a local instance (whose
    resources cannot grow) has fewer GPUs or CPUs than one run asks for; a cluster gets a
    warning only, since an autoscaler may add the nodes."""
    offered = ray.cluster_resources()
    has_gpus, has_cpus = offered.get("GPU", 0), offered.get("CPU", 0)
    nodes = sum(node["Alive"] for node in ray.nodes())
    print(f"ray: {has_cpus:g} CPUs, {has_gpus:g} GPUs on {nodes} node(s)", file=sys.stderr)
    if has_gpus >= gpus and has_cpus >= cpus:
        return
    problem = (
        f"a run asks for {gpus:g} GPU(s) and {cpus:g} CPU(s) (--gpus-per-run, --cpus-per-run), "
        f"and Ray has {has_gpus:g} and {has_cpus:g}"
    )
    if local:
        raise ValueError(f"{problem}; --gpus-per-run 0 trains on CPUs")
    print(f"warning: {problem}: the runs wait for a node that has them", file=sys.stderr)


def train_all(ray, runs: list[Run], out: Path, done: int, gpus: float, cpus: float) -> int:
    """Submit one task per run, the longest first, and report each as it ends; returns how
    many failed. An interrupted sweep cancels the tasks, which ends their training."""
    task = ray.remote(train_task).options(num_gpus=gpus, num_cpus=cpus, max_retries=MAX_RETRIES)
    threads = max(1, math.floor(cpus))
    queue = sorted(runs, key=relative_cost, reverse=True)
    refs = {task.remote(run, out, gpus > 0, threads): run for run in queue}
    progress = progress_bar(done, len(runs))
    pending, failures = list(refs), 0
    try:
        while pending:
            (ready,), pending = ray.wait(pending, num_returns=1)
            run = refs[ready]
            try:
                succeeded, message = ray.get(ready)
            except ray.exceptions.RayError as error:
                succeeded, message = False, failed_line(run, reason(error), log_path(out, run))
            if message:
                tqdm.write(message, file=sys.stderr)
            failures += not succeeded
            progress.update(1)
    finally:
        for ref in pending:  # empty unless interrupted
            ray.cancel(ref, force=True)
        progress.close()
    return failures


def reason(error: Exception) -> str:
    """A Ray error in one line: a task's own exception by its last line (``ValueError:
    ...``), any other (a worker or node lost after the last retry) by its type and first."""
    from ray.exceptions import RayTaskError

    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or ["no message"]
    if isinstance(error, RayTaskError):
        return lines[-1]
    return f"{type(error).__name__}: {lines[0]}"


def train_task(run: Run, out: Path, gpu: bool, threads: int) -> tuple[bool, str | None]:
    """A Ray task: train ``run`` under ``out`` in a subprocess (on the task's GPU if ``gpu``,
    with ``threads`` threads) until it ends, resuming it from its furthest checkpoint there.
    Returns whether it succeeded and the line that says how it ended (None: it was finished
    already). The training dies with this worker (``train.sweep.die_with_parent``)."""
    lock = wait_for_lock(out, run, LOCK_WAIT)
    if lock is None:
        return True, skipped_line(run)
    environment = {
        **os.environ,  # with the CUDA_VISIBLE_DEVICES that Ray set for this task
        "OMP_NUM_THREADS": str(threads),
        "SET_SWEEP_PARENT": str(os.getpid()),
    }
    training = launch(run, out, environment, lock, ("--device", "cuda") if gpu else ())
    return (True, None) if training is None else training.outcome()


def wait_for_lock(out: Path, run: Run, seconds: float):
    """``run``'s lock (``train.sweep.try_lock``), tried for up to ``seconds``; None if another
    process holds it all that time."""
    deadline = time.monotonic() + seconds
    while (lock := try_lock(out, run)) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    return lock
