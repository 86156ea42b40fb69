"""Supervised training of a scorer: one precision code path, schedules, evaluation,
TensorBoard, atomic checkpoints, resume, and DDP under torchrun."""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch
import torch.distributed as dist
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from agents.base import (
    import_agent_module,
    make_with_preset,
    parse_overrides,
    resolve_device,
)
from agents.checkpoint import (
    CHECKPOINT,
    RUN_CONFIG,
    check_finite_weights,
    load,
    rebuild_scorer,
    run_folder,
    save,
    scorer_state,
)
from agents.precision import AUTOCAST_DTYPES, autocast
from eval import tags
from eval.harness import score_eval_set, summarize
from eval.markdown import markdown_table
from eval.sets import make_eval_set
from set_env.checks import excerpt
from set_env.files import write_json_atomic
from set_env.registry import canonical_env_id, make_env
from train.config import TrainConfig, create_run_dir, run_name
from train.data import Curriculum, QueryStream
from train.objectives import make_objective


class NonFiniteLoss(RuntimeError):
    """The loss, the gradients or the weights became NaN or infinite: the run stopped, and
    its checkpoint (if one was written) is the last good state."""


# What a resumed run may change: its length, where it runs and how often it reports.
RESUME_CHANGEABLE = ("steps", "device", "compile", "log_every", "eval_every", "logdir")


def lr_factor(
    schedule: str,
    warmup: int,
    total: int,
    decay: float = 1.0,
    decay_every: int = 2000,
    decay_until: int | None = None,
):
    """The learning-rate multiplier of a step: linear warm-up to 1, then the schedule.

    noam is 1 at the end of the warm-up W: min(s / W, sqrt(W / s)), times ``decay`` for every
    ``decay_every`` steps past W, counted up to step ``decay_until``. With lr = (d_model W)^-0.5
    it is the study's d_model^-0.5 min(s^-0.5, s W^-1.5) and its extra step decay."""

    def noam(step: int) -> float:
        step = max(step, 1)
        base = min(step / max(warmup, 1), math.sqrt(max(warmup, 1) / step))
        decayed = min(step, decay_until or step) - warmup
        return base * decay ** max(decayed // decay_every, 0)

    def cosine(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return noam if schedule == "noam" else cosine


def rng_states() -> dict:
    """torch's global generators: the only global randomness a run uses (the data comes from
    per-step numpy Generators)."""
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    """Put back torch's global generators as ``rng_states`` saved them."""
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class _GatherWithGradient(torch.autograd.Function):
    """all_gather along dim 0 whose backward hands each rank the sum, over ranks, of the
    gradient of its own slice: every rank computes the same global loss, and DDP's average
    of the parameter gradients then gives that loss's gradient."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        gradient = gradient.contiguous()
        dist.all_reduce(gradient)
        return gradient.chunk(dist.get_world_size())[dist.get_rank()]


class Distributed:
    """torchrun's process group, or a single process."""

    def __init__(self, device: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if device.startswith("cuda") else "gloo"
            dist.init_process_group(backend)

    @property
    def main(self) -> bool:
        """Whether this is rank 0, the process that writes."""
        return self.rank == 0

    def share(self, batch_size: int) -> int:
        """This process's part of the global batch (the study's 1024 is global)."""
        if batch_size % self.world:
            raise ValueError(
                f"batch_size {batch_size} must be a multiple of the number of processes "
                f"({self.world} under torchrun)"
            )
        return batch_size // self.world

    def gather(self, tensor: torch.Tensor, differentiable: bool) -> torch.Tensor:
        """Concatenate every rank's tensor along dim 0 (keeping gradients if asked)."""
        if self.world == 1:
            return tensor
        if differentiable:
            return _GatherWithGradient.apply(tensor)
        parts = [torch.empty_like(tensor) for _ in range(self.world)]
        dist.all_gather(parts, tensor)
        return torch.cat(parts)

    def close(self) -> None:
        """Leave the process group once every rank got here (a no-op for one process).

        Drop every DistributedDataParallel wrapper first: one still alive (its reducer sits
        in reference cycles, hence the collect) keeps gloo's work until the interpreter's
        exit, where it aborts the process ("terminate called without an active exception")."""
        if self.world > 1 and dist.is_initialized():
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()


def training_device(config: TrainConfig, distributed: Distributed) -> torch.device:
    """The device of this process: ``config.device``, or this rank's GPU under torchrun."""
    device = resolve_device(config.device)
    if config.precision in ("fp16", "tf32") and device.type != "cuda":
        raise ValueError(f"precision {config.precision} needs CUDA; use bf16 or fp32 on CPU")
    if device.type == "cuda" and distributed.world > 1:
        return torch.device("cuda", distributed.local_rank)
    return device


def build_scorer(config: TrainConfig, env: gym.Env, resumed: dict | None) -> torch.nn.Module:
    """A resumed run's scorer as its checkpoint describes it (a later change of the presets
    cannot alter it); else the registered scorer at the config's preset, with ``dim``, when
    given, passed to the constructor, which refuses it if it has none."""
    if resumed is not None:
        return rebuild_scorer(resumed, config.resume, weights=False)
    dim = {} if config.dim is None else {"dim": config.dim}
    overrides = parse_overrides(config.agent_config)
    try:
        return make_with_preset(config.agent, env, config.preset, **dim, **overrides)
    except TypeError as error:  # a user class that takes other arguments
        raise ValueError(f"agent {config.agent!r}: {error}") from None


def _check_objective(scorer, objective: str) -> None:
    served = getattr(scorer, "objectives", None)
    if served is not None and objective not in served:
        raise ValueError(
            f"agent {scorer.name!r} cannot be trained with {objective!r}; it serves {served}"
        )


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's groups: weight decay on the weight matrices and embeddings (2-D and up), none
    on biases, LayerNorm gains, the key bias or a temperature, which it would only pull
    towards 0 (nanoGPT's rule)."""
    decayed, kept = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decayed if parameter.dim() >= 2 else kept).append(parameter)
    return [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": kept, "weight_decay": 0.0},
    ]


def given_fields(config: TrainConfig) -> set[str]:
    """The fields of ``config`` that differ from the defaults: those a caller set."""
    default = TrainConfig()
    return {
        field.name
        for field in dataclasses.fields(TrainConfig)
        if getattr(config, field.name) != getattr(default, field.name)
    }


def flag(name: str) -> str:
    """The CLI flag of a config field: ``lr_decay`` -> ``lr-decay``."""
    return name.replace("_", "-")


def resumed_config(config: TrainConfig, given: set[str], state: dict) -> TrainConfig:
    """The config of a run resumed from ``state``: its own settings, with only the fields of
    ``RESUME_CHANGEABLE`` taken from ``config``. ValueError if another given field differs
    from the run's, or if ``--steps`` is below the step the run has reached."""
    if "train_config" not in state:
        raise ValueError(
            f"{config.resume} is not a supervised run (an RL run of train.rl?): "
            "python -m train resumes only its own runs"
        )
    try:
        saved = TrainConfig(**state["train_config"])
    except TypeError as error:
        raise ValueError(
            f"checkpoint {config.resume}: its train_config is unusable ({error})"
        ) from None
    saved = dataclasses.replace(saved, env=canonical_env_id(saved.env))
    refused = [
        f"--{flag(name)} {excerpt(getattr(config, name))} (the run's: {getattr(saved, name)!r})"
        for name in sorted(given - set(RESUME_CHANGEABLE) - {"resume", "agent_module"})
        if getattr(config, name) != getattr(saved, name)
    ]
    if refused:
        allowed = ", ".join("--" + flag(name) for name in RESUME_CHANGEABLE)
        raise ValueError(
            f"a resumed run keeps its own settings, but {'; '.join(refused)} differ: start a new "
            f"run to change them (a resumed run may change only {allowed})"
        )
    changes = {name: getattr(config, name) for name in RESUME_CHANGEABLE if name in given}
    module = config.agent_module or saved.agent_module
    resumed = dataclasses.replace(saved, **changes, resume=config.resume, agent_module=module)
    if resumed.steps < state["step"]:
        raise ValueError(
            f"--steps {resumed.steps} is below the step the run has reached ({state['step']})"
        )
    return resumed


def settle_config(config: TrainConfig, given: set[str]) -> tuple[TrainConfig, dict | None]:
    """The run's validated config, and on resume the checkpoint, read once: the resumed run's
    settings merged with the ``given`` fields it may change. Imports the agent module first
    (the given one, else the one the checkpoint records)."""
    config = dataclasses.replace(config, env=canonical_env_id(config.env))
    if config.agent_module:
        import_agent_module(config.agent_module)
    checkpoint = None
    if config.resume:
        checkpoint = load(config.resume)
        config = dataclasses.replace(config, resume=str(run_folder(config.resume)))
        given_module = config.agent_module
        config = resumed_config(config, given, checkpoint)
        if config.agent_module and config.agent_module != given_module:
            import_agent_module(config.agent_module, recorded=True)
    config.validate()
    return config, checkpoint


class Trainer:
    """One run: ``Trainer(config).run()`` returns the final metrics and the run directory.

    ``given`` names the fields the caller set (the CLI's flags); by default, those that
    differ from the defaults. Only they may override a resumed run's settings."""

    def __init__(self, config: TrainConfig, given: set[str] | None = None):
        # The set-up in the order each step needs the ones before it (nanoGPT's train.py):
        # the run folder last, so that a run that fails to start leaves none.
        given = given_fields(config) if given is None else given
        self.config, checkpoint = settle_config(config, given)
        self._set_up_process()
        self._set_up_data()
        self._set_up_model(checkpoint)
        self._set_up_optimiser()
        self._resume(checkpoint)
        self.model = self._wrap_model()
        self.run_dir = self._run_dir()

    def _set_up_process(self) -> None:
        """This process's rank, device, share of the batch, seed and matmul precision."""
        config = self.config
        self.distributed = Distributed(config.device)
        self.device = training_device(config, self.distributed)
        self.rank_batch_size = self.distributed.share(config.batch_size)
        torch.manual_seed(config.seed)
        if self.device.type == "cuda":  # fp32 is exact; the others may round matmuls
            torch.backends.cuda.matmul.allow_tf32 = config.precision != "fp32"
            torch.backends.cudnn.allow_tf32 = config.precision != "fp32"

    def _set_up_data(self) -> None:
        """The env, its curriculum (the training stream is opened by ``run``) and the fixed
        evaluation set."""
        config = self.config
        self.env_kwargs = {"tokens": config.tokens}
        self.env = make_env(config.env, **self.env_kwargs)
        self.curriculum = Curriculum(self.env.unwrapped.game, config.curriculum)
        self.eval_set = make_eval_set(
            config.env,
            config.eval_queries,
            0,
            config.eval_distribution,
            self.env_kwargs,
            split=config.eval_split,
        )

    def _set_up_model(self, checkpoint: dict | None) -> None:
        """The scorer on its device (a resumed run's as its checkpoint describes it) and the
        objective it trains with."""
        config = self.config
        self.scorer = build_scorer(config, self.env, checkpoint).to(self.device)
        _check_objective(self.scorer, config.objective)
        self.dim = getattr(getattr(self.scorer, "config", None), "dim", None)
        self.objective = make_objective(config.objective, config.mask_duplicates)

    def _set_up_optimiser(self) -> None:
        """AdamW, its learning-rate schedule, and fp16's GradScaler (a no-op otherwise)."""
        config = self.config
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.scorer, config.weight_decay),
            lr=config.lr,
            betas=(config.adam_beta1, config.adam_beta2),
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        factor = lr_factor(
            config.schedule,
            config.warmup,
            config.steps,
            config.lr_decay,
            config.lr_decay_every,
            config.lr_decay_until,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")

    def _resume(self, checkpoint: dict | None) -> None:
        """Start at step 0, or where ``checkpoint`` left off: its weights, optimiser, schedule,
        scaler and generators. Only its metrics are kept (a finished run returns them)."""
        self.step, self.saved_step, self.resumed_metrics = 0, None, {}
        if checkpoint is None:
            return
        if checkpoint["agent"] != self.scorer.name:
            raise ValueError(
                f"checkpoint holds agent {checkpoint['agent']!r}, not {self.scorer.name!r}"
            )
        try:
            self.scorer.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.scheduler.load_state_dict(checkpoint["scheduler"])
            self.scaler.load_state_dict(checkpoint["scaler"])
            restore_rng_states(checkpoint["rng"])
            self.step = self.saved_step = checkpoint["step"]
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            detail = str(error).strip().splitlines()[-1][:200]
            raise ValueError(
                f"checkpoint {self.config.resume} cannot be resumed ({type(error).__name__}: "
                f"{detail})"
            ) from None
        self.resumed_metrics = checkpoint.get("metrics") or {}

    def _wrap_model(self) -> torch.nn.Module:
        """The scorer as the training steps call it: compiled if asked, in DDP under torchrun
        (both share the scorer's parameters, which the checkpoints save)."""
        model = self.scorer
        if self.config.compile:
            model = torch.compile(model)
        if self.distributed.world > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids)
        return model

    def _run_dir(self) -> Path:
        """The run's folder: the resumed one, or a new one under ``logdir`` (rank 0 creates it)."""
        config = self.config
        if config.resume:
            return Path(config.resume)
        name = run_name(config.env, config.agent, self.dim, config.objective, config.seed)
        if not self.distributed.main:
            return Path(config.logdir) / name  # only rank 0 writes
        return create_run_dir(config.logdir, name)

    def _checkpoint(self, metrics: dict | None) -> None:
        state = scorer_state(
            self.scorer, self.config.env, self.env_kwargs, self.config.agent_module
        )
        state.update(
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(),
            rng=rng_states(),
            step=self.step,
            objective=self.config.objective,
            train_config=dataclasses.asdict(self.config),
            metrics=metrics,
        )
        save(state, self.run_dir)
        self.saved_step = self.step

    def _non_finite(self, what: str, step: int) -> NonFiniteLoss:
        """The error that stops a run at ``step``, saying what is left on disk."""
        if self.saved_step is None:
            kept = "no checkpoint had been written"
        else:
            kept = f"{self.run_dir / CHECKPOINT} keeps the last good state (step {self.saved_step})"
        return NonFiniteLoss(f"{what} at step {step}; the run stopped and {kept}")

    def evaluate(self) -> dict[str, float]:
        """The mean metrics of the scorer on the run's evaluation set."""
        autocast = AUTOCAST_DTYPES[self.config.precision]
        return summarize(score_eval_set(self.scorer, self.eval_set, autocast_dtype=autocast))

    def run(self) -> dict:
        """Train to ``config.steps``; returns {"run_dir", "step", "losses", metrics...}."""
        config, main = self.config, self.distributed.main
        if self.step >= config.steps:  # a resumed run that is already complete
            self._leave_process_group()
            return {
                "run_dir": str(self.run_dir),
                "step": self.step,
                "losses": [],
                **self.resumed_metrics,
            }
        writer = self._open_writer() if main else None
        stream = self.stream()
        progress = tqdm(
            total=config.steps,
            initial=self.step,
            disable=not main,
            file=sys.stderr,
            desc=self.run_dir.name,
            dynamic_ncols=True,
        )
        losses, metrics, window = [], {}, []
        window_start, window_steps = time.perf_counter(), 0
        try:
            while self.step < config.steps:
                window.append(self._train_step(next(stream)))
                self.step += 1
                window_steps += 1
                progress.update(1)
                log = self.step % config.log_every == 0 or self.step == config.steps
                evaluate = self.step % config.eval_every == 0 or self.step == config.steps
                if not (log or evaluate):
                    continue
                values, window = self._read_window(window), []
                losses += [loss for loss, _ in values]
                if main and log:
                    elapsed = time.perf_counter() - window_start
                    rate = window_steps * config.batch_size / elapsed
                    self._log_step(writer, *values[-1], rate)
                    progress.set_postfix(loss=f"{values[-1][0]:.4f}")
                    window_start, window_steps = time.perf_counter(), 0
                if evaluate:
                    metrics = self._evaluate_and_save(writer)
                    if main:
                        progress.set_postfix(loss=f"{values[-1][0]:.4f}", kl=f"{metrics['kl']:.4f}")
        finally:
            stream.close()
            progress.close()
            if writer is not None:
                self._finish_writer(writer, metrics)
        # Only a run that got here leaves the group: after an error a peer may be inside a
        # collective, and the barrier would wait for it; the error ends the process anyway.
        self._leave_process_group()
        return {"run_dir": str(self.run_dir), "step": self.step, "losses": losses, **metrics}

    def _leave_process_group(self) -> None:
        self.model = self.scorer  # drops the DDP wrapper, which must go before its group
        self.distributed.close()

    def stream(self) -> QueryStream:
        """This process's training batches from the current step on (close it when done)."""
        config = self.config
        return QueryStream(
            self.curriculum,
            self.rank_batch_size,
            config.seed,
            config.tokens,
            self.distributed.rank,
            self.step,
            self.device,
            size_weighted=config.train_distribution == "size_weighted",
        )

    def _train_step(self, batch) -> torch.Tensor:
        """One update; returns (loss, gradient norm) as a (2,) tensor on the device, unread:
        reading it would make the host wait for the device every step."""
        config = self.config
        with autocast(self.device, AUTOCAST_DTYPES[config.precision]):
            logits = self.model(batch.tokens)  # (B, n_keys)
        keys, positives = batch.keys, batch.positives
        if config.objective == "infonce" and self.distributed.world > 1:
            # The global batch: every rank's queries against every rank's keys.
            logits = self.distributed.gather(logits, differentiable=True)
            keys = self.distributed.gather(keys, differentiable=False)
            positives = self.distributed.gather(positives, differentiable=False)
        loss = self.objective(logits, positives, keys)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        max_norm = config.grad_clip if config.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.scorer.parameters(), max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return torch.stack([loss.detach().float(), grad_norm.detach().float()])

    def _read_window(self, window: list[torch.Tensor]) -> list[tuple[float, float]]:
        """The (loss, gradient norm) of each step since the last read, in one transfer.
        NonFiniteLoss names the first step whose loss (or, without a GradScaler, which skips
        such steps itself, gradient norm) is not finite. Its update may have spoilt the
        weights in memory, but every read comes before an evaluation, and only an evaluation
        writes a checkpoint, so the one on disk stays the last good state."""
        values = torch.stack(window).tolist()
        first = self.step - len(values) + 1
        for offset, (loss, grad_norm) in enumerate(values):
            if not math.isfinite(loss):
                raise self._non_finite(f"non-finite loss ({loss})", first + offset)
            if not self.scaler.is_enabled() and not math.isfinite(grad_norm):
                raise self._non_finite(f"non-finite gradient norm ({grad_norm})", first + offset)
        return [tuple(pair) for pair in values]

    def _evaluate_and_save(self, writer) -> dict[str, float]:
        """Evaluate and checkpoint, unless the last update made the weights non-finite (then
        the run stops, and the checkpoint on disk stays the last good one)."""
        try:
            check_finite_weights(self.scorer.state_dict(), "scorer")
        except ValueError:
            raise self._non_finite("the update made the weights non-finite", self.step) from None
        metrics = self.evaluate() if self.distributed.main else {}
        if self.distributed.main:
            if not all(math.isfinite(value) for value in metrics.values()):
                raise self._non_finite(f"non-finite evaluation metrics {metrics}", self.step)
            for name, value in metrics.items():
                writer.add_scalar(tags.EVAL[name], value, self.step)
            self._checkpoint(metrics)
        if self.distributed.world > 1:
            dist.barrier()
        return metrics

    def _open_writer(self) -> SummaryWriter:
        config = dataclasses.asdict(self.config)
        write_json_atomic(self.run_dir / RUN_CONFIG, config)
        writer = SummaryWriter(str(self.run_dir))
        rows = [[key, str(value)] for key, value in config.items()]
        writer.add_text(tags.HPARAMS_TEXT, markdown_table(["parameter", "value"], rows), self.step)
        print(f"{self.scorer.name}: {self.scorer_parameters():,} parameters", file=sys.stderr)
        return writer

    def scorer_parameters(self) -> int:
        """The number of the scorer's parameters."""
        return sum(p.numel() for p in self.scorer.parameters())

    def _log_step(self, writer, loss: float, grad_norm: float, rate: float) -> None:
        writer.add_scalar(tags.LOSS, loss, self.step)
        writer.add_scalar(tags.LR, self.scheduler.get_last_lr()[0], self.step)
        writer.add_scalar(tags.EXAMPLES_PER_S, rate, self.step)
        writer.add_scalar(tags.GRAD_NORM, grad_norm, self.step)
        if self.scaler.is_enabled():
            writer.add_scalar(tags.LOSS_SCALE, self.scaler.get_scale(), self.step)

    def _finish_writer(self, writer, metrics: dict) -> None:
        if metrics:
            hparams = {
                k: v if isinstance(v, (int, float, str, bool)) else str(v)
                for k, v in dataclasses.asdict(self.config).items()
            }
            hparams["parameters"] = self.scorer_parameters()
            final = {f"hparams/{name}": value for name, value in metrics.items()}
            writer.add_hparams(hparams, final, run_name=".")
        writer.close()


def train(config: TrainConfig | None = None, **overrides) -> dict:
    """Run a training job from Python (notebooks): ``train(env="SetUnion27-v0", steps=100)``.

    Returns {"run_dir", "step", "losses" (this call's), "kl", "topk_overlap", "entropy_bits"}.
    A resumed run (``resume=RUN_DIR``) keeps its settings: only ``steps``, ``device``,
    ``compile``, ``log_every``, ``eval_every`` and ``logdir`` may differ from the run's.
    """
    base = config or TrainConfig()
    config = dataclasses.replace(base, **overrides)
    return Trainer(config, given_fields(base) | set(overrides)).run()
