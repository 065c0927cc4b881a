"""Shipped weights -> the callables the pipeline's stages take (numpy in, numpy out), as StageModels.

A stage without weights in the manifest gets no callable, and the pipeline uses its classical
version. What each callable returns is fixed by the stage that calls it (models/stage_callables.py);
the frames the models' inputs and outputs live in are models/frames.py's, the ones they were
trained in.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from ..config import STAGE2_SCALE
from .frames import input_coords, letterbox
from .heatmaps import heatmap_peak, heatmap_peaks, sigmoid
from .stage_callables import StageModels
from .weights_io import WeightsError, load_stage_weights

logger = logging.getLogger(__name__)


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _to_tensor(imgs: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Equally sized RGB uint8 images -> (N, 3, H, W) float in 0..1 on device."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(imgs)))
    return x.permute(0, 3, 1, 2).to(device).float().div_(255.0)


class _StageModel:
    """One model on one device: inference_mode always, fp16 autocast on CUDA, the same code on CPU."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.model = model.to(device).eval()
        self.device = device

    def __call__(self, img: np.ndarray) -> dict[str, np.ndarray]:
        return self.batch([img])[0]

    @torch.inference_mode()
    def batch(self, imgs: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Equally sized images run as ONE forward pass; one output dict per image, in order."""
        if not imgs:
            return []
        shapes = {im.shape for im in imgs}
        if len(shapes) != 1:
            raise ValueError(f"a batch needs equally sized images, got shapes {sorted(shapes)}")
        x = _to_tensor(imgs, self.device)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.device.type == "cuda"):
            out = self.model(x)
        arrays = {k: v.float().cpu().numpy() for k, v in out.items()}
        return [{k: a[i] for k, a in arrays.items()} for i in range(len(imgs))]


def make_orientation_fn(m: _StageModel, side: int):
    """orientation(image) -> k; orientation.many(images) -> [k, ...] in one batch (every image is
    letterboxed to the same square, so any set of images batches)."""

    def orientation(image: np.ndarray) -> int:
        return orientation.many([image])[0]

    def many(images: list[np.ndarray]) -> list[int]:
        boxes = [letterbox(im, side)[0] for im in images]
        return [int(np.argmax(o["orientation"])) for o in m.batch(boxes)]

    orientation.many = many
    return orientation


def make_keypoint_fn(m: _StageModel, side: int, page_positions: np.ndarray, min_peak: float = 0.3):
    def keypoints(upright: np.ndarray):
        box, f = letterbox(upright, side)
        hm = sigmoid(m(box)["keypoints"])
        stride = box.shape[0] / hm.shape[1]
        img_pts, page_pts = [], []
        for k in range(hm.shape[0]):
            x, y, v = heatmap_peak(hm[k])
            if v >= min_peak:
                img_pts.append(input_coords(np.array([x, y]), stride))
                page_pts.append(page_positions[k])
        if len(img_pts) < 4:
            return None
        # letterbox: input = (image + 0.5) * f - 0.5
        return (np.asarray(img_pts) + 0.5) / f - 0.5, np.asarray(page_pts, np.float64)

    return keypoints


def make_grid_fn(m: _StageModel, min_peak: float = 0.3):
    def crossings(page: np.ndarray, px_per_mm: float) -> np.ndarray:
        hm = sigmoid(m(page)["gridpoints"][0])
        stride = page.shape[0] / hm.shape[0]
        win = max(3, int(px_per_mm * 5 / stride / 2) | 1)  # half a major square
        return input_coords(heatmap_peaks(hm, min_peak, win), stride)

    return crossings


def make_traces_fn(m: _StageModel, work_scale: float, read_scale: float):
    """Row ownership from the model at work_scale, multiplied into stage 2's ink at reading scale.

    The model says which row a dark pixel belongs to (where rows overlap, text, stains); the
    full-resolution pixels say exactly where it is.
    """
    def traces(rectified: np.ndarray, ink: np.ndarray) -> np.ndarray:
        f = work_scale / read_scale
        small = cv2.resize(rectified, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        prob = sigmoid(m(small)["traces"])
        h, w = ink.shape
        return np.stack([np.minimum(ink, cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) * 1.5) for p in prob])

    return traces


def reference_keypoints(entry: dict, names: tuple[str, ...]) -> np.ndarray:
    """(K, 2) page px of stage 0's key points, in its head's channel order, from its manifest entry
    (the trainer writes them there: training/tasks.py reference_keypoints)."""
    ref = entry.get("reference_keypoints")
    if not isinstance(ref, dict) or any(n not in ref for n in names):
        missing = sorted(set(names) - set(ref)) if isinstance(ref, dict) else "all"
        raise WeightsError(f"stage-0 weights {entry.get('file')}: the manifest entry lacks the key points' page "
                           f"positions ('reference_keypoints', missing {missing})")
    return np.array([ref[n] for n in names], np.float64)


def _stage0(m: _StageModel, cfg, entry: dict) -> StageModels:
    side = int(cfg.input_size[0])
    page_positions = reference_keypoints(entry, cfg.heads["keypoints"].names)
    return StageModels(orientation=make_orientation_fn(m, side),
                       keypoints=make_keypoint_fn(m, side, page_positions))


def _stage2(m: _StageModel, cfg, entry: dict) -> StageModels:
    # the page scale the model was trained at (older manifests kept it under 'training')
    work_scale = float(entry.get("train_scale") or entry.get("training", {}).get("train_scale") or 1.0)
    return StageModels(traces=make_traces_fn(m, work_scale, STAGE2_SCALE))


# Each stage's model -> the callables its stage takes (the runtime side of training/tasks.py's tasks).
PREDICTOR_BUILDERS = {
    0: _stage0,
    1: lambda m, cfg, entry: StageModels(grid=make_grid_fn(m)),
    2: _stage2,
}


def stage_predictors(stage: int, weights_dir: str | Path | None, dev: torch.device) -> StageModels:
    """The callables of one stage; none set when the manifest lists no model for it.
    Raises whatever stops the model from loading (WeightsError, a torch/timm error...)."""
    if stage not in PREDICTOR_BUILDERS:
        raise ValueError(f"no stage {stage}")
    loaded = load_stage_weights(stage, weights_dir, device=str(dev))
    if loaded is None:
        return StageModels()
    return PREDICTOR_BUILDERS[stage](_StageModel(loaded.model, dev), loaded.config, loaded.entry)


def load_stage_predictors(weights_dir: str | Path | None = None, device: str | None = None) -> StageModels:
    """The callables for every stage that has weights; none set when none are shipped (all classical).
    Any stage's load error propagates (models.stage_loading falls back per stage instead)."""
    dev = pick_device(device)
    out = StageModels()
    for stage in PREDICTOR_BUILDERS:
        out = out.merged(stage_predictors(stage, weights_dir, dev))
    logger.info("stage models loaded on %s: %s", dev, out.names() or "none (classical pipeline)")
    return out
