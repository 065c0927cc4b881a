"""The training loop of every stage: one code path for the CPU, one GPU and torchrun DDP.

AdamW, linear warm-up then cosine decay, autocast + GradScaler on CUDA only, gradient clipping,
checkpoints (model, optimizer, scheduler, scaler, step, RNG states) every cfg.ckpt_every steps and
at the end, a JSONL log, validation on a fixed seeded synthetic hold-out, and the final fp16 weights
written with weights_io.save_weights (manifest: command, steps, data, hold-out scores).
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..models.stage_models import build_model
from ..models.weights_io import save_weights
from . import data as D
from .configs import StageTrainConfig
from .forward import unwrap
from .tasks import get_task

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"


@dataclass
class DistInfo:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainResult:
    stage: int
    steps: int
    final_loss: float
    holdout: dict
    checkpoint: Path
    log: Path
    weights: Path | None
    seconds_per_step: float
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------- setup
def dist_info() -> DistInfo:
    """From torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK); a single process otherwise."""
    return DistInfo(int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
                    int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(device: str | None, di: DistInfo) -> torch.device:
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", di.local_rank if di.enabled else 0)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def lr_factor(step: int, warmup: int, total: int, min_frac: float) -> float:
    """Linear warm-up to 1 over `warmup` steps, then cosine down to min_frac at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * p))


# Prior probability of a positive cell per dense head: starting the logits there (CenterNet's trick)
# keeps the first steps' focal/BCE losses from being dominated by the many easy negatives.
HEAD_PRIORS = {"keypoints": 0.01, "gridpoints": 0.01, "gridlines": 0.05, "traces": 0.02}


def init_head_biases(model: torch.nn.Module) -> None:
    heads = getattr(model, "heads", {})
    for name, prior in HEAD_PRIORS.items():
        head = heads[name] if name in heads else None
        if isinstance(head, torch.nn.Conv2d) and head.bias is not None:
            torch.nn.init.constant_(head.bias, -math.log((1 - prior) / prior))


def _to(tgt: dict, dev: torch.device) -> dict:
    return {k: v.to(dev, non_blocking=True) for k, v in tgt.items()}


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, model, opt, sched, scaler, step: int, cfg: StageTrainConfig) -> None:
    state = {"model": unwrap(model).state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "scaler": scaler.state_dict(), "step": int(step), "config": cfg.to_dict(),
             "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model, opt, sched, scaler, cfg: StageTrainConfig) -> int:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("config", {}).get("model") != cfg.model.to_dict():
        raise ValueError(f"checkpoint {path} was made for another architecture; use --no-resume or another --out")
    unwrap(model).load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    rng = state.get("rng", {})
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "numpy" in rng:
        np.random.set_state(rng["numpy"])
    if "python" in rng:
        random.setstate(rng["python"])
    return int(state["step"])


# ---------------------------------------------------------------- validation
class Validator:
    """The fixed hold-out of a stage, prepared once, and its task's metrics for a model."""

    def __init__(self, cfg: StageTrainConfig, n: int | None = None):
        self.cfg = cfg
        self.task = get_task(cfg.stage)
        self.items = D.holdout_set(cfg, n)
        self.stride = D.head_stride(cfg)
        self.prepared = [self.task.holdout_sample(cfg, it.syn, np.random.default_rng(it.seed + 1), self.stride)
                         for it in self.items]
        self.cache: dict = {}  # what a task's metrics compute once per hold-out (stage 2: the ink baseline)

    def describe(self) -> str:
        return f"{len(self.items)} synthetic images, seeds {self.cfg.holdout_seed}..{self.cfg.holdout_seed + len(self.items) - 1}"

    def __call__(self, model, dev: torch.device) -> dict:
        if not self.items:
            return {}
        model = unwrap(model)
        was_training = model.training
        try:
            return self.task.holdout_metrics(self, model, dev)
        finally:
            model.train(was_training)


# ---------------------------------------------------------------- the loop
def train(cfg: StageTrainConfig, out_dir: str | Path, device: str | None = None, resume: bool = True,
          weights_dir: str | Path | None = None, command: str | None = None, progress: bool = True,
          validate: bool = True, save_final_weights: bool = True, extra_source=None,
          extra_fraction: float = 0.0) -> TrainResult:
    """Train one stage per cfg; see the module docstring. Returns what was done and the hold-out scores."""
    task = get_task(cfg.stage)
    di = dist_info()
    dev = resolve_device(device, di)
    if di.enabled and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    out_dir = Path(out_dir)
    ckpt_path, log_path = out_dir / CHECKPOINT_NAME, out_dir / LOG_NAME
    if di.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts them)
    model = build_model(cfg.model)
    init_head_biases(model)
    model = model.to(dev)
    use_amp = bool(cfg.amp and dev.type == "cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps, cfg.min_lr_frac))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step = 0
    if resume and ckpt_path.is_file():
        step = load_checkpoint(ckpt_path, model, opt, sched, scaler, cfg)
        if di.is_main:
            logger.info("resumed stage %d from %s at step %d", cfg.stage, ckpt_path, step)
    elif di.is_main and log_path.exists() and not resume:
        log_path.unlink()
    if di.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)

    validator = Validator(cfg) if (validate and di.is_main and cfg.holdout_n > 0) else None
    stream = D.SyntheticStream(cfg, start_step=step, rank=di.rank, extra_source=extra_source,
                               extra_fraction=extra_fraction)
    loader = DataLoader(stream, batch_size=cfg.batch_size, num_workers=cfg.workers, collate_fn=D.collate,
                        pin_memory=dev.type == "cuda", prefetch_factor=4 if cfg.workers else None)
    history: list[dict] = []
    log_f = open(log_path, "a") if di.is_main else None

    def log(rec: dict) -> None:
        history.append(rec)
        if log_f is not None:
            log_f.write(json.dumps(rec) + "\n")
            log_f.flush()

    bar = None
    if di.is_main and progress and step < cfg.steps:
        bar = tqdm(total=cfg.steps, initial=step, desc=f"stage {cfg.stage} ({cfg.variant})", dynamic_ncols=True)
    model.train()
    t_train, n_timed, last_loss = 0.0, 0, float("nan")
    it = iter(loader)
    try:
        while step < cfg.steps:
            t0 = time.perf_counter()
            x, tgt = next(it)
            x, tgt = x.to(dev, non_blocking=True), _to(tgt, dev)
            with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=use_amp):
                out = model(x)
            loss, terms = task.loss(out, tgt, cfg.loss_weights)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"stage {cfg.stage}: non-finite loss at step {step}: {terms}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            dt = time.perf_counter() - t0
            if step > 1 or cfg.steps == 1:  # the first step pays for worker start-up
                t_train += dt
                n_timed += 1
            last_loss = float(loss.detach())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}")
            if di.is_main and (step % cfg.log_every == 0 or step == cfg.steps):
                log({"step": step, "loss": last_loss, **{f"loss_{k}": v for k, v in terms.items()},
                     "lr": opt.param_groups[0]["lr"], "grad_norm": float(gnorm), "sec_per_step": dt})
            if di.is_main and step % cfg.ckpt_every == 0 and step < cfg.steps:
                save_checkpoint(ckpt_path, model, opt, sched, scaler, step, cfg)
            if validator is not None and step % cfg.val_every == 0 and step < cfg.steps:
                log({"step": step, "holdout": validator(model, dev)})
            if di.enabled and (step % cfg.ckpt_every == 0 or step % cfg.val_every == 0):
                dist.barrier()  # keep ranks together while rank 0 writes / validates
    finally:
        if bar is not None:
            bar.close()
        del it

    holdout: dict = {}
    weights_path = None
    if di.is_main:
        save_checkpoint(ckpt_path, model, opt, sched, scaler, step, cfg)
        if validator is not None:
            holdout = validator(model, dev)
            log({"step": step, "holdout": holdout, "final": True})
        if save_final_weights:
            wdir = Path(weights_dir) if weights_dir is not None else out_dir / "weights"
            sps = t_train / max(1, n_timed)
            entry = {"architecture": cfg.model, "train_scale": cfg.scale, **task.manifest_fields(),
                     "training": {"command": command or " ".join(sys.argv), "steps": step,
                                  "data": D.describe(cfg), "holdout": {**holdout, "set": validator.describe()
                                                                       if validator else None},
                                  "variant": cfg.variant, "batch_size": cfg.batch_size, "lr": cfg.lr,
                                  "world_size": di.world_size, "device": str(dev),
                                  "seconds_per_step": sps, "final_loss": last_loss}}
            rec = save_weights(unwrap(model), wdir / f"stage{cfg.stage}_{cfg.variant}", entry)
            weights_path = wdir / rec["file"]
    if log_f is not None:
        log_f.close()
    if di.enabled:
        dist.barrier()
    return TrainResult(cfg.stage, step, last_loss, holdout, ckpt_path, log_path, weights_path,
                       t_train / max(1, n_timed), history)
