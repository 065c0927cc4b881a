"""What the stages' models give the pipeline: one typed callable per job, held in StageModels.

A field left None means no model for that job (none shipped, or it could not be loaded): the stage
runs its classical version. Imports no torch: the pipeline and the loader's failure path use it
where torch may be missing or broken.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np


class OrientationFn(Protocol):
    """image -> quarter turns k (the image shows the upright page as np.rot90(page, k))."""

    def __call__(self, image: np.ndarray) -> int: ...


class KeypointFn(Protocol):
    """upright image -> (image points (N, 2), their page points (N, 2)), or None when under 4 were found."""

    def __call__(self, upright: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None: ...


class GridFn(Protocol):
    """normalized page, its px per mm -> (N, 2) major-grid crossings in its pixels."""

    def __call__(self, page: np.ndarray, px_per_mm: float) -> np.ndarray: ...


class TracesFn(Protocol):
    """rectified page, its ink map (H, W) -> one ink map per printed row, (rows, H, W) in 0..1."""

    def __call__(self, rectified: np.ndarray, ink: np.ndarray) -> np.ndarray: ...


@dataclass
class StageModels:
    orientation: OrientationFn | None = None  # stage 0; may also have .many(images) -> [k, ...] (one batch)
    keypoints: KeypointFn | None = None  # stage 0
    grid: GridFn | None = None  # stage 1
    traces: TracesFn | None = None  # stage 2

    def names(self) -> list[str]:
        """The jobs that have a model, sorted (for logs and summaries)."""
        return sorted(f.name for f in fields(self) if getattr(self, f.name) is not None)

    def merged(self, other: "StageModels") -> "StageModels":
        """These models with other's set fields added (other wins where both have one)."""
        return StageModels(**{f.name: getattr(other, f.name) if getattr(other, f.name) is not None
                              else getattr(self, f.name) for f in fields(self)})
