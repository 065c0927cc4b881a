"""image -> stage 0 -> stage 1 -> stage 2 -> 12 leads. Entry points: Pipeline.predict(image), and
Pipeline.predict_many(images) (stage 0's orientation model batched, the same numbers)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .config import PAGE, STAGE1_SCALE, STAGE2_SCALE, PaperLayout
from .digitized import Digitized
from .geometry.coordinate_map import CoordinateMap
from .lead_layouts import COMPETITION
from .models.stage_callables import StageModels
from .models.stage_loading import load_stage_models
from .stages.stage0_normalize import Stage0Result, normalize, outline_homographies
from .stages.stage1_rectify import Stage1Result, rectify
from .stages.layout_detection import MIN_FIT
from .stages.stage2_read import Stage2Result, read_traces, rectify_for_reading

logger = logging.getLogger(__name__)

MIN_IMAGE_SIDE = 200  # smaller than this cannot hold a readable ECG
OTHER_GEOMETRY_FIT_GAIN = 0.1  # another page outline's geometry is taken where its rows fit this much better


class UnreadableImage(ValueError):
    """The image cannot be digitized (blank, too small, ...); the caller uses the fallback."""


@dataclass
class PipelineResult:
    stage0: Stage0Result
    stage1: Stage1Result
    stage2: Stage2Result
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def digitized(self) -> Digitized:
        return self.stage2.digitized


@dataclass
class PipelineOptions:
    stage1_scale: float = STAGE1_SCALE
    stage2_scale: float = STAGE2_SCALE
    reconcile_limb_leads: bool = True
    layout: PaperLayout = PAGE
    # True: find this page's layout (calibration pulse or none, where the signal starts) after stage 1
    # instead of assuming `layout` everywhere; False: the competition's look exactly
    find_layout: bool = True


def check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UnreadableImage(f"expected an RGB uint8 image, got shape {image.shape} dtype {image.dtype}")
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise UnreadableImage(f"image too small to hold an ECG: {image.shape[1]}x{image.shape[0]} px")
    if float(image[:: 8, :: 8].std()) < 2.0:
        raise UnreadableImage("image is blank (no contrast)")


class Pipeline:
    """The three stages, each with a model where weights are loaded, else its classical version."""

    def __init__(self, models: StageModels | None = None, options: PipelineOptions | None = None):
        self.models = models if models is not None else StageModels()
        self.options = options or PipelineOptions()
        self.load_failures: list = []  # models.stage_loading.StageLoadFailure: stages left classical

    @classmethod
    def load(cls, weights_dir=None, device: str | None = None, *, strict_weights: bool = False,
             **options) -> "Pipeline":
        """The stages' models from weights_dir (default weights/). A model that cannot be loaded
        leaves its stage classical, with a warning and an entry in .load_failures; strict_weights:
        raise models.stage_loading.StageLoadError instead."""
        models, failures = load_stage_models(weights_dir, device, strict=strict_weights)
        pipeline = cls(models, PipelineOptions(**options))
        pipeline.load_failures = failures
        return pipeline

    def run(self, image: np.ndarray, oracle_page_to_image: CoordinateMap | None = None,
            orientation: int | None = None) -> PipelineResult:
        """All intermediate results; with an oracle map stages 0 and 1 are replaced by the truth.

        orientation: stage 0's quarter turns when already known (predict_many's batched model);
        None -> stage 0 finds it (model where loaded, else classical).
        """
        check_image(image)
        o = self.options
        t = {}
        t0 = time.perf_counter()
        if oracle_page_to_image is not None:
            s0 = Stage0Result(0, image, np.eye(3), "oracle")
            s1 = Stage1Result(oracle_page_to_image, "oracle", 0, 0.0)
        else:
            orientation_fn = self.models.orientation if orientation is None else (lambda _: orientation)
            s0 = normalize(image, o.layout, keypoint_fn=self.models.keypoints, orientation_fn=orientation_fn)
            t["stage0"] = time.perf_counter() - t0
            s1 = rectify(s0.upright, s0.H, o.layout, o.stage1_scale, crossing_fn=self.models.grid,
                        find_layout=o.find_layout)
            if self._other_geometry_may_fit_better(s1):
                s0, s1 = self._best_geometry(s0, s1)
            t["stage1"] = time.perf_counter() - t0 - t["stage0"]
        t1 = time.perf_counter()
        rectified = rectify_for_reading(s0.upright, s1.page_to_image, o.stage2_scale)
        layout = s1.layout_found.layout if s1.layout_found is not None else o.layout
        # a trace model knows the competition's rows only
        traces_fn = self.models.traces if layout.rows == o.layout.rows else None
        s2 = read_traces(rectified, o.stage2_scale, layout, row_prob_fn=traces_fn,
                         reconcile=o.reconcile_limb_leads)
        t["stage2"] = time.perf_counter() - t1
        for warning in s2.digitized.warnings:
            logger.warning("%s", warning)
        return PipelineResult(s0, s1, s2, t)

    def _other_geometry_may_fit_better(self, s1: Stage1Result) -> bool:
        """Stage 0's key-point model and the classical page finder know the competition's page:
        where stage 1 found no grid map or another layout, the rows may lie squares from where
        that homography put them."""
        found = s1.layout_found
        return self.options.find_layout and (found is None or found.kind != "competition")

    def _best_geometry(self, s0: Stage0Result, s1: Stage1Result) -> tuple[Stage0Result, Stage1Result]:
        """Stage 1 again from each classical page outline (stage0_normalize.outline_homographies);
        one is kept where it shows another arrangement than the competition's whose rows fit
        clearly better than what stage 0's homography gave (or where that gave no grid map)."""
        o = self.options
        for method, H in outline_homographies(s0.upright, o.layout):
            if method == s0.method:
                continue
            alt1 = rectify(s0.upright, H, o.layout, o.stage1_scale, crossing_fn=self.models.grid,
                           find_layout=o.find_layout)
            found, alt = s1.layout_found, alt1.layout_found
            if alt is None:
                continue
            # a page read as the competition's arrangement keeps its geometry: the competition path
            # (pulses or not) reads exactly as it did without the retry
            better = (alt.kind != "competition" and alt.arrangement != COMPETITION
                      and alt.rows_fit >= (MIN_FIT if found is None else found.rows_fit + OTHER_GEOMETRY_FIT_GAIN))
            if better:
                logger.info("stage 0: the %s geometry fits the layout better (%s)", method, alt.describe())
                s0, s1 = Stage0Result(s0.orientation, s0.upright, H, method, s0.orientation_scores), alt1
        return s0, s1

    def predict(self, image: np.ndarray) -> Digitized:
        return self.run(image).digitized

    def batch_orientations(self, images: list[np.ndarray]) -> list[int | None]:
        """Stage 0's orientation for all images in one model batch; None per image where there is no
        batched model (or it failed): run() then finds it per image as predict() does."""
        many = getattr(self.models.orientation, "many", None)
        if many is None or not images:
            return [None] * len(images)
        try:
            return [int(k) for k in many(images)]
        except Exception as exc:  # the per-image path still works: a batch problem costs speed only
            logger.warning("batched orientation failed, per image instead: %r", exc)
            return [None] * len(images)

    def predict_many(self, images: list[np.ndarray]) -> list[Digitized | Exception]:
        """predict() for each image, the orientation model run once for all; an image that fails
        gets its exception (UnreadableImage, ...) in its slot and the others go on."""
        out: list[Digitized | Exception | None] = [None] * len(images)
        ok: list[int] = []
        for i, image in enumerate(images):
            try:
                check_image(image)
                ok.append(i)
            except Exception as exc:
                out[i] = exc
        for i, k in zip(ok, self.batch_orientations([images[i] for i in ok])):
            try:
                out[i] = self.run(images[i], orientation=k).digitized
            except Exception as exc:  # this image only
                logger.warning("image %d of the batch failed: %r", i, exc)
                out[i] = exc
        return out  # type: ignore[return-value]
