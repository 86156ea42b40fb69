"""Supervised training of a scorer: one precision code path, schedules, evaluation,
TensorBoard, atomic checkpoints, resume, and DDP under torchrun."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import gymnasium as gym
import torch
import torch.distributed as dist
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from agents.base import make_env, make_with_preset
from agents.checkpoint import CHECKPOINT, load, save_atomic, scorer_state
from eval import tags
from eval.harness import score_eval_set, summarize
from eval.sets import make_eval_set
from train.config import TrainConfig, run_name
from train.data import Curriculum, QueryStream
from train.objectives import make_objective

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run stopped and its checkpoint is the last good."""


def lr_factor(schedule: str, warmup: int, total: int):
    """The learning-rate multiplier of a step: linear warm-up to 1, then the schedule."""

    def noam(step: int) -> float:
        step = max(step, 1)
        return min(step / max(warmup, 1), math.sqrt(max(warmup, 1) / step))

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
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


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
        return self.rank == 0

    def gather(self, tensor: torch.Tensor, differentiable: bool) -> torch.Tensor:
        """Concatenate every rank's tensor along dim 0 (keeping gradients if asked)."""
        if self.world == 1:
            return tensor
        if differentiable:
            parts = torch.distributed.nn.functional.all_gather(tensor)
        else:
            parts = [torch.empty_like(tensor) for _ in range(self.world)]
            dist.all_gather(parts, tensor)
        return torch.cat(parts)

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def resolve_device(config: TrainConfig, distributed: Distributed) -> torch.device:
    if config.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {config.device!r} asked, but CUDA is not available here")
        if distributed.world > 1:
            return torch.device("cuda", distributed.local_rank)
    elif config.device != "cpu":
        raise ValueError(f"device must be cpu, cuda or cuda:N, got {config.device!r}")
    if config.precision == "fp16" and not config.device.startswith("cuda"):
        raise ValueError("precision fp16 needs CUDA; use bf16 or fp32 on CPU")
    return torch.device(config.device)


def build_scorer(config: TrainConfig, env: gym.Env) -> torch.nn.Module:
    """The registered scorer at the config's preset; ``dim``, when given, goes to the
    constructor, which refuses it if it has none."""
    dim = {} if config.dim is None else {"dim": config.dim}
    return make_with_preset(config.agent, env, config.preset, **dim)


def _check_objective(scorer, objective: str) -> None:
    served = getattr(scorer, "objectives", None)
    if served is not None and objective not in served:
        raise ValueError(
            f"agent {scorer.name!r} cannot be trained with {objective!r}; it serves {served}"
        )


class Trainer:
    """One run: ``Trainer(config).run()`` returns the final metrics and the run directory."""

    def __init__(self, config: TrainConfig):
        if config.agent_module:
            importlib.import_module(config.agent_module)
        self.resumed = load(config.resume) if config.resume else None
        if self.resumed is not None:
            config = self._resumed_config(config)
        config.validate()
        self.config = config
        self.distributed = Distributed(config.device)
        self.device = resolve_device(config, self.distributed)
        torch.manual_seed(config.seed)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        env_kwargs = {"tokens": config.tokens}
        self.env = make_env(config.env, **env_kwargs)
        self.env_kwargs = env_kwargs
        self.curriculum = Curriculum(self.env.unwrapped.game, config.curriculum)
        self.scorer = build_scorer(config, self.env).to(self.device)
        _check_objective(self.scorer, config.objective)
        self.dim = getattr(getattr(self.scorer, "config", None), "dim", None)
        self.objective = make_objective(config.objective, config.mask_duplicates)
        self.optimizer = torch.optim.AdamW(
            self.scorer.parameters(),
            lr=config.lr,
            betas=(0.9, 0.98),
            eps=1e-6,
            weight_decay=config.weight_decay,
        )
        factor = lr_factor(config.schedule, config.warmup, config.steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.step = 0
        if self.resumed is not None:
            self._restore(self.resumed)
            self.run_dir = Path(config.resume)
        else:
            self.run_dir = Path(config.logdir) / run_name(
                config.env, config.agent, self.dim, config.objective, config.seed
            )
        self.model = self.scorer
        if config.compile:
            self.model = torch.compile(self.model)
        if self.distributed.world > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids)
        self.eval_set = make_eval_set(
            config.env, config.eval_queries, 0, config.eval_distribution, env_kwargs
        )

    def _resumed_config(self, config: TrainConfig) -> TrainConfig:
        saved = TrainConfig(**self.resumed["train_config"])
        if config.env != saved.env:
            raise ValueError(
                f"checkpoint {config.resume} was trained on {saved.env}, not {config.env}"
            )
        # A resumed run keeps its own settings; only the length and the machine may change.
        return dataclasses.replace(
            saved,
            steps=config.steps,
            device=config.device,
            resume=config.resume,
            agent_module=config.agent_module or saved.agent_module,
        )

    def _restore(self, state: dict) -> None:
        if state["agent"] != self.scorer.name:
            raise ValueError(f"checkpoint holds agent {state['agent']!r}, not {self.scorer.name!r}")
        self.scorer.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng_states(state["rng"])
        self.step = state["step"]

    def _checkpoint(self, metrics: dict | None) -> None:
        state = scorer_state(self.scorer, self.config.env, self.env_kwargs)
        state.update(
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(),
            rng=rng_states(),
            step=self.step,
            train_config=dataclasses.asdict(self.config),
            metrics=metrics,
        )
        save_atomic(state, self.run_dir / CHECKPOINT)

    def evaluate(self) -> dict[str, float]:
        autocast = AUTOCAST_DTYPES[self.config.precision]
        return summarize(score_eval_set(self.scorer, self.eval_set, autocast_dtype=autocast))

    def run(self) -> dict:
        """Train to ``config.steps``; returns {"run_dir", "step", "losses", metrics...}."""
        config, main = self.config, self.distributed.main
        writer = self._open_writer() if main else None
        stream = QueryStream(
            self.curriculum,
            config.batch_size,
            config.seed,
            config.tokens,
            self.distributed.rank,
            self.step,
            self.device,
        )
        progress = tqdm(
            total=config.steps,
            initial=self.step,
            disable=not main,
            file=sys.stderr,
            desc=self.run_dir.name,
            dynamic_ncols=True,
        )
        losses, metrics = [], {}
        window_start, window_steps = time.perf_counter(), 0
        try:
            while self.step < config.steps:
                loss, grad_norm = self._train_step(next(stream))
                self.step += 1
                window_steps += 1
                losses.append(loss)
                progress.update(1)
                if main and (self.step % config.log_every == 0 or self.step == config.steps):
                    elapsed = time.perf_counter() - window_start
                    rate = window_steps * config.batch_size * self.distributed.world / elapsed
                    self._log_step(writer, loss, grad_norm, rate)
                    progress.set_postfix(loss=f"{loss:.4f}")
                    window_start, window_steps = time.perf_counter(), 0
                if self.step % config.eval_every == 0 or self.step == config.steps:
                    metrics = self._evaluate_and_save(writer)
                    if main:
                        progress.set_postfix(loss=f"{loss:.4f}", kl=f"{metrics['kl']:.4f}")
        finally:
            stream.close()
            progress.close()
            if writer is not None:
                self._finish_writer(writer, metrics)
            self.distributed.close()
        return {"run_dir": str(self.run_dir), "step": self.step, "losses": losses, **metrics}

    def _train_step(self, batch) -> tuple[float, float]:
        config = self.config
        autocast_dtype = AUTOCAST_DTYPES[config.precision]
        autocast = (
            torch.autocast(self.device.type, dtype=autocast_dtype)
            if autocast_dtype
            else nullcontext()
        )
        with autocast:
            logits = self.model(batch.tokens)  # (B, n_keys)
        keys, positives = batch.keys, batch.positives
        if config.objective == "infonce" and self.distributed.world > 1:
            # The global batch: every rank's queries against every rank's keys.
            logits = self.distributed.gather(logits, differentiable=True)
            keys = self.distributed.gather(keys, differentiable=False)
            positives = self.distributed.gather(positives, differentiable=False)
        loss = self.objective(logits, positives, keys)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(
                f"non-finite loss ({loss.item()}) at step {self.step + 1}; the run stopped and "
                f"{self.run_dir / CHECKPOINT} keeps the last good state"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        max_norm = config.grad_clip if config.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.scorer.parameters(), max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.item(), float(grad_norm)

    def _evaluate_and_save(self, writer) -> dict[str, float]:
        metrics = self.evaluate() if self.distributed.main else {}
        if self.distributed.main:
            for name, value in metrics.items():
                writer.add_scalar(tags.EVAL[name], value, self.step)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._checkpoint(metrics)
        if self.distributed.world > 1:
            dist.barrier()
        return metrics

    def _open_writer(self) -> SummaryWriter:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = dataclasses.asdict(self.config)
        (self.run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        writer = SummaryWriter(str(self.run_dir))
        rows = "\n".join(f"|{key}|{value}|" for key, value in config.items())
        writer.add_text(tags.HPARAMS_TEXT, "|parameter|value|\n|-|-|\n" + rows, self.step)
        print(f"{self.scorer.name}: {self.scorer_parameters():,} parameters", file=sys.stderr)
        return writer

    def scorer_parameters(self) -> int:
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


def with_resume_env(config: TrainConfig, env_given: bool) -> TrainConfig:
    """A resumed run trains its checkpoint's env unless another was named (then: an error)."""
    if config.resume and not env_given:
        return dataclasses.replace(config, env=load(config.resume)["train_config"]["env"])
    return config


def train(config: TrainConfig | None = None, **overrides) -> dict:
    """Run a training job from Python (notebooks): ``train(env="SetUnion27-v0", steps=100)``.

    Returns {"run_dir", "step", "losses" (this call's), "kl", "topk_overlap", "entropy_bits"}.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    config = with_resume_env(config, "env" in overrides)
    return Trainer(config).run()
