"""Each stage's model loaded on its own: one that cannot be loaded leaves that stage classical, LOUDLY.

A torch/torchvision mismatch ("operator torchvision::nms does not exist", raised when timm imports
torchvision) or a corrupt weights file used to stop the whole predictor, and the Kaggle run went on
with all-zero fallbacks: a scored ~0 dB submission with rc 0. The classical version of a stage is far
better than zeros, so non-strict loading keeps it and returns the failure for the run report and the
log; strict loading (--strict-weights) raises StageLoadError instead.

This module imports no torch at import time: the import itself may be what fails.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..config import paths
from .stage_callables import StageModels

logger = logging.getLogger(__name__)

STAGES = (0, 1, 2)
MANIFEST_NAME = "manifest.json"  # = weights_io.MANIFEST_NAME (that module imports torch)


class StageLoadError(RuntimeError):
    """Strict loading: a stage listed in the weights manifest could not be loaded."""


@dataclass(frozen=True)
class StageLoadFailure:
    stage: int
    source: str  # the weights file, or the manifest when the stage's file is unknown
    error: str

    def message(self) -> str:
        return (f"stage {self.stage} model {self.source} could not be loaded ({self.error}): "
                f"stage {self.stage} runs its CLASSICAL version")


def listed_stages(weights_dir: Path) -> dict[int, str]:
    """stage -> weights file named in weights_dir/manifest.json (the newest per stage), read as JSON
    only; {} without a manifest. Raises ValueError for an unreadable manifest."""
    path = weights_dir / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())["weights"].values()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"weights manifest {path} unreadable: {e!r}") from None
    newest: dict[int, dict] = {}
    for e in entries:
        if isinstance(e, dict) and e.get("stage") in STAGES:
            if e["stage"] not in newest or e.get("saved_at", "") > newest[e["stage"]].get("saved_at", ""):
                newest[e["stage"]] = e
    return {stage: str(weights_dir / str(e.get("file", "?"))) for stage, e in sorted(newest.items())}


def load_stage_models(weights_dir: str | Path | None = None, device: str | None = None, *,
                      strict: bool = False) -> tuple[StageModels, list[StageLoadFailure]]:
    """(the stages' model callables, the stages that could not be loaded). Non-strict: a failed stage
    is absent from the callables (the pipeline runs its classical version) and is logged as a WARNING
    naming the file and the error. strict: any failure raises StageLoadError naming them all."""
    weights_dir = Path(weights_dir) if weights_dir is not None else paths().weights
    try:
        listed = listed_stages(weights_dir)
    except ValueError as e:
        failures = [StageLoadFailure(stage, str(weights_dir / MANIFEST_NAME), str(e)) for stage in STAGES]
        return _finish(StageModels(), failures, strict)
    if not listed:
        logger.info("no weights listed in %s: every stage runs its classical version", weights_dir)
        return StageModels(), []
    try:
        # imported here, not at the top: torch, timm and torchvision load with it, and a broken stack
        # must cost the models only
        from .inference import pick_device, stage_predictors
        dev = pick_device(device)
    except Exception as e:  # a broken torch stack costs the models, not the run
        failures = [StageLoadFailure(stage, source, f"import failed: {e!r}") for stage, source in listed.items()]
        return _finish(StageModels(), failures, strict)
    models = StageModels()
    failures = []
    for stage, source in listed.items():
        try:
            models = models.merged(stage_predictors(stage, weights_dir, dev))
        except Exception as e:
            failures.append(StageLoadFailure(stage, source, repr(e)))
    logger.info("stage models loaded on %s: %s", dev, models.names() or "none")
    return _finish(models, failures, strict)


def _finish(models: StageModels, failures: list[StageLoadFailure],
            strict: bool) -> tuple[StageModels, list[StageLoadFailure]]:
    if failures and strict:
        raise StageLoadError("--strict-weights: " + "; ".join(f.message() for f in failures))
    for f in failures:
        logger.warning("MODEL NOT LOADED: %s", f.message())
    return models, failures
