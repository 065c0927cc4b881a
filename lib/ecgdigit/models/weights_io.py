"""Model weights on disk: fp16 safetensors files plus one manifest.json per weights folder.

The manifest maps each file name to its stage, its architecture (a ModelConfig dict), sha256, size
and how it was trained, so a weight file always travels with the architecture that reads it and a
truncated or swapped file is caught before inference.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ecgdigit import config as _config
from ecgdigit.models.encoder_decoder import EncoderDecoder
from ecgdigit.models.stage_models import ModelConfig, build_model

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
WEIGHTS_SUFFIX = ".safetensors"
MANIFEST_FORMAT = 1
FP16_MAX = 65504.0


class WeightsError(RuntimeError):
    """A weights file or manifest is missing, corrupt, or does not match what was expected."""


def weights_file(path: str | Path) -> Path:
    """path with the .safetensors suffix added unless it already has it (names may contain dots)."""
    p = Path(path)
    return p if p.name.endswith(WEIGHTS_SUFFIX) else p.with_name(p.name + WEIGHTS_SUFFIX)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(weights_dir: str | Path) -> dict:
    """The manifest of a weights folder; an empty one if the folder has none."""
    path = Path(weights_dir) / MANIFEST_NAME
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "weights": {}}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot read weights manifest {path}: {e}") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("weights"), dict):
        raise WeightsError(f"weights manifest {path} has no 'weights' mapping")
    return manifest


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _fp16_state(model: nn.Module) -> dict[str, torch.Tensor]:
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu")
        if v.is_floating_point():
            peak = v.abs().max().item() if v.numel() else 0.0
            if not peak <= FP16_MAX:  # also catches NaN: a diverged run must not be saved silently
                raise WeightsError(f"tensor {k} does not fit fp16 (max |v| {peak:.3g})")
            v = v.to(torch.float16)
        state[k] = v.contiguous().clone()  # clone: safetensors refuses tensors sharing storage
    return state


def save_weights(model: nn.Module, path_without_ext: str | Path, manifest_entry: dict | None = None) -> dict:
    """Write model's weights as fp16 safetensors and record them in the folder's manifest.json.

    manifest_entry may hold 'architecture' (a ModelConfig or its dict; defaults to model.model_config),
    'training' ({command, steps, data, holdout}) and any extra keys, kept as given. Returns the entry.
    """
    entry = dict(manifest_entry or {})
    arch = entry.pop("architecture", None) or getattr(model, "model_config", None)
    if arch is None:
        raise WeightsError("save_weights needs the architecture: pass manifest_entry['architecture'] "
                           "or a model made by build_model")
    cfg = arch if isinstance(arch, ModelConfig) else ModelConfig.from_dict(arch)
    path = weights_file(path_without_ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "pt", "stage": str(cfg.stage), "architecture": json.dumps(cfg.to_dict())}
    _write_atomic(path, lambda p: save_file(_fp16_state(model), str(p), metadata=metadata))

    training = dict(entry.pop("training", {}) or {})
    for key in ("command", "steps", "data", "holdout"):
        training.setdefault(key, None)
    record = {
        "file": path.name, "stage": cfg.stage, "architecture": cfg.to_dict(),
        "input_size": list(cfg.input_size), "dtype": "float16",
        "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
        "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "training": training, **entry,
    }
    manifest = read_manifest(path.parent)
    manifest["format"] = MANIFEST_FORMAT
    manifest["weights"][path.name] = record
    _write_atomic(path.parent / MANIFEST_NAME,
                  lambda p: p.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n"))
    logger.info("saved %s (stage %d, %.1f MB, sha256 %s)", path, cfg.stage, record["size_bytes"] / 1e6,
                record["sha256"][:12])
    return record


def load_weights(model: nn.Module, path: str | Path, expected_sha256: str | None = None) -> nn.Module:
    """Load a safetensors file into model (in place), casting each tensor to the model's dtype.

    A missing file, a sha256 other than expected_sha256, an unreadable file or keys/shapes that do not
    fit the model raise WeightsError naming the file.
    """
    path = weights_file(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise WeightsError(f"weights file {path} has sha256 {actual}, expected {expected_sha256} "
                               "(truncated, replaced or stale file?)")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"cannot read weights file {path}: {e}") from e
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(f"weights file {path} does not fit the model: {len(missing)} missing keys "
                           f"{missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}")
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        k = bad[0]
        raise WeightsError(f"weights file {path} does not fit the model: {len(bad)} shape mismatches, "
                           f"e.g. {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
    model.load_state_dict({k: v.to(dtype=own[k].dtype, device=own[k].device) for k, v in state.items()})
    return model


@dataclass
class StageWeights:
    """A stage's model loaded from a weights folder, with the config and manifest entry it came with."""

    model: EncoderDecoder  # in eval mode, on the device asked for
    config: ModelConfig
    entry: dict  # the manifest entry: what inference needs besides the architecture (train_scale, ...)


def load_stage_model(stage: int, weights_dir: str | Path | None = None,
                     device: str | torch.device = "cpu") -> tuple[EncoderDecoder, ModelConfig] | None:
    """(model, config) of load_stage_weights(); None when the folder has no model for the stage."""
    loaded = load_stage_weights(stage, weights_dir, device)
    return None if loaded is None else (loaded.model, loaded.config)


def load_stage_weights(stage: int, weights_dir: str | Path | None = None,
                       device: str | torch.device = "cpu") -> StageWeights | None:
    """The stage's model in eval mode, rebuilt from the manifest and loaded with its checked weights.

    None when the folder has no manifest entry for the stage (the caller falls back to classical
    methods). With several entries for a stage, the most recently saved one wins.
    """
    weights_dir = Path(weights_dir) if weights_dir is not None else _config.paths().weights
    manifest = read_manifest(weights_dir)
    entries = [e for e in manifest["weights"].values() if e.get("stage") == stage]
    if not entries:
        logger.info("no stage-%d weights in %s", stage, weights_dir / MANIFEST_NAME)
        return None
    entry = max(entries, key=lambda e: e.get("saved_at", ""))
    if len(entries) > 1:
        logger.info("stage %d: %d weight files in %s, using the newest %s", stage, len(entries),
                    weights_dir, entry.get("file"))
    if "file" not in entry or "architecture" not in entry:
        raise WeightsError(f"manifest {weights_dir / MANIFEST_NAME}: stage-{stage} entry lacks 'file' or "
                           "'architecture'")
    try:
        cfg = ModelConfig.from_dict(entry["architecture"])
    except (ValueError, TypeError, KeyError) as e:
        raise WeightsError(f"manifest {weights_dir / MANIFEST_NAME}: bad architecture for "
                           f"{entry['file']}: {e}") from e
    model = build_model(cfg)
    load_weights(model, weights_dir / entry["file"], expected_sha256=entry.get("sha256"))
    return StageWeights(model.to(device).eval(), cfg, entry)
