"""What training one stage's model means, one StageTask per stage, registered in TASKS (the way timm
registers its models): the model's heads and preset, the synthetic sample it learns from, its loss,
its hold-out metrics and what its weights' manifest entry carries besides the architecture.

Everything else in training/ (configs, data, engine, cli) asks the stage's task and never switches
on the stage number; a new stage is one more register_task(...) here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from ..config import LEADS, PAGE, STAGE0_INPUT, STAGE1_SCALE, STAGE2_SCALE, LAYOUT_ROWS, number_of_rows
from ..digitized import lead_rows
from ..metric import score_records
from ..models.encoder_decoder import HeadSpec
from ..models.frames import input_coords
from ..models.heatmaps import heatmap_peak, heatmap_peaks, sigmoid
from ..models.stage_models import STAGES, ModelConfig
from ..stages.ink import ink_from_rgb
from ..stages.signal_assembly import assemble_leads
from ..stages.trace_reading import read_row_curves
from ..synth.truth import SyntheticImage
from . import targets as T
from .forward import predict
from .losses import heatmap_focal_loss, line_loss, orientation_loss, trace_loss

if TYPE_CHECKING:  # annotations only: configs.py builds its table from this module's presets
    from .configs import StageTrainConfig

VARIANTS = ("default", "tiny")
TINY_ENCODER = "test_efficientnet"  # timm's own test net: ~80k parameters, builds and runs in ms
TINY_INPUT = (64, 96)

# Class k: the image shows the upright page as np.rot90(page, k) (k counter-clockwise quarter turns);
# undo with np.rot90(image, -k).
ORIENTATION_CLASSES: tuple[str, ...] = ("rot0", "rot90", "rot180", "rot270")
# Corners of the printed signal area (clockwise from top-left, upright page), then the centres of the
# 12 short-lead labels in layout order (row by row); all in the stage-0 input frame.
KEYPOINT_NAMES: tuple[str, ...] = (
    ("area_top_left", "area_top_right", "area_bottom_right", "area_bottom_left")
    + tuple(f"label_{lead}" for row in LAYOUT_ROWS[:3] for lead in row)
)
GRIDLINE_NAMES: tuple[str, ...] = ("hlines", "vlines")
TRACE_ROW_NAMES: tuple[str, ...] = tuple(f"row{i}_{'_'.join(r)}" for i, r in enumerate(LAYOUT_ROWS))

Sample = T.Sample
LossTerms = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class StageTask:
    """One stage's training task. Callables take the stage's StageTrainConfig (cfg) where they need it."""

    stage: int
    heads: dict[str, HeadSpec]
    default_model: dict  # ModelConfig fields of the 'default' preset besides stage, name and heads
    loss_terms: LossTerms  # (outputs, targets) -> each named term of the loss
    loss_weights: dict[str, float]  # each term's default weight (cfg.loss_weights overrides)
    # (cfg, capture, rng, head stride) -> one training sample (input CHW, targets)
    sample: Callable[["StageTrainConfig", SyntheticImage, np.random.Generator, int], Sample]
    # (cfg, capture, rng, head stride) -> the hold-out's fixed input and the targets its metrics read
    holdout_sample: Callable[["StageTrainConfig", SyntheticImage, np.random.Generator, int], Sample]
    # (validator, model, device) -> the hold-out's metrics (engine.Validator holds the prepared samples)
    holdout_metrics: Callable[..., dict]
    # (cfg, rng) -> extra synth.generate.make_image keywords for a capture of this stage
    capture_kwargs: Callable[["StageTrainConfig", np.random.Generator], dict] = lambda cfg, rng: {}
    # (cfg, capture, rng) -> the capture a further sample of it is made from (None: the capture itself)
    another_capture: Callable[["StageTrainConfig", SyntheticImage, np.random.Generator], SyntheticImage] | None = None
    # () -> what the weights' manifest entry carries for inference besides the architecture
    manifest_fields: Callable[[], dict] = dict
    accepts_real_images: bool = False  # training.data.CompetitionSource can label this stage's targets
    data_note: str = ""  # appended to the data description in the manifest

    @property
    def out_stride(self) -> int:
        return int(self.default_model.get("decoder_out_stride", 2))

    def loss(self, out: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor],
             weights: dict | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss of the stage's outputs and each term's value (for the log)."""
        w = {**self.loss_weights, **(weights or {})}
        terms = self.loss_terms(out, tgt)
        total = sum(w[k] * t for k, t in terms.items())
        return total, {k: float(t.detach()) for k, t in terms.items()}


TASKS: dict[int, StageTask] = {}


def register_task(task: StageTask) -> StageTask:
    if task.stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {task.stage!r}")
    if task.stage in TASKS:
        raise ValueError(f"stage {task.stage} already has a task")
    TASKS[task.stage] = task
    return task


def get_task(stage: int) -> StageTask:
    try:
        return TASKS[stage]
    except KeyError:
        raise ValueError(f"stage must be one of {sorted(TASKS)}, got {stage!r}") from None


def preset(stage: int, variant: str = "default") -> ModelConfig:
    """The config of a stage's model. 'tiny' keeps the heads and strides but shrinks everything else."""
    task = get_task(stage)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == "tiny":
        full_res = task.out_stride == 1
        return ModelConfig(stage=stage, name=f"stage{stage}_tiny", encoder_name=TINY_ENCODER, heads=task.heads,
                           input_size=TINY_INPUT, decoder_channels=(16, 16, 8, 8, 8)[: 5 if full_res else 4],
                           decoder_out_stride=task.out_stride)
    return ModelConfig(stage=stage, name=f"stage{stage}", heads=task.heads, **task.default_model)


def stage_loss(stage: int, out: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor],
               weights: dict | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    return get_task(stage).loss(out, tgt, weights)


def _orientation_draw(cfg: StageTrainConfig, rng: np.random.Generator) -> int:
    probs = np.asarray(cfg.data.orientation_probs, np.float64)
    return int(rng.choice(4, p=probs / probs.sum()))


# ---------------------------------------------------------------- stage 0: orientation + key points
def reference_keypoints() -> dict:
    """Stage 0's manifest field: the page position of every key point, which inference fits its
    homography to (they are the same on every page: see targets.keypoint_page_positions)."""
    return {"reference_keypoints": dict(zip(KEYPOINT_NAMES, T.reference_keypoint_positions().tolist()))}


def _stage0_sample(cfg, syn, rng, stride) -> Sample:
    return T.stage0_sample(syn, cfg.input_size[0], stride, cfg.data.heatmap_sigma)


def _stage0_metrics(v, model, dev) -> dict:
    correct, errs = 0, []
    for x, tgt in v.prepared:
        out = predict(model, x, dev)
        correct += int(np.argmax(out["orientation"]) == int(tgt["orientation"]))
        for k in np.flatnonzero(tgt["keypoints_valid"] > 0):
            px, py, _ = heatmap_peak(out["keypoints"][k])
            p = input_coords(np.array([px, py]), v.stride)
            errs.append(float(np.hypot(*(p - tgt["keypoints_xy"][k]))))
    return {"orientation_acc": correct / len(v.prepared),
            "keypoint_err_px_median": float(np.median(errs)) if errs else float("nan"),
            "keypoint_err_px_mean": float(np.mean(errs)) if errs else float("nan"),
            "input_side": v.cfg.input_size[0]}


register_task(StageTask(
    stage=0,
    heads={"orientation": HeadSpec("classify", len(ORIENTATION_CLASSES), ORIENTATION_CLASSES),
           "keypoints": HeadSpec("dense", len(KEYPOINT_NAMES), KEYPOINT_NAMES)},
    # letterboxed square: any orientation
    default_model=dict(encoder_name="resnet18d", input_size=(STAGE0_INPUT, STAGE0_INPUT)),
    loss_terms=lambda out, tgt: {"orientation": orientation_loss(out["orientation"], tgt["orientation"]),
                                 "keypoints": heatmap_focal_loss(out["keypoints"], tgt["keypoints"])},
    loss_weights={"orientation": 1.0, "keypoints": 1.0},
    sample=_stage0_sample,
    holdout_sample=_stage0_sample,
    holdout_metrics=_stage0_metrics,
    capture_kwargs=lambda cfg, rng: {"orientation": _orientation_draw(cfg, rng)},
    # more orientation samples from one capture: turned to a freshly drawn class
    another_capture=lambda cfg, syn, rng: T.turned(syn, _orientation_draw(cfg, rng) - syn.orientation),
    manifest_fields=reference_keypoints,
))


# ---------------------------------------------------------------- stage 1: grid crossings and lines
def _stage1_sample(cfg, syn, rng, stride, crop=True) -> Sample:
    d = cfg.data
    return T.stage1_sample(syn, cfg.scale, cfg.input_size if crop else None, stride, d.heatmap_sigma,
                           d.homography_noise, rng, d.line_width)


def _stage1_metrics(v, model, dev) -> dict:
    found = total = matched = n_pred = 0
    errs = []
    radius = 0.35 * PAGE.grid_major_px * v.cfg.scale
    for x, tgt in v.prepared:
        out = predict(model, x, dev)
        pred = input_coords(heatmap_peaks(sigmoid(out["gridpoints"][0])), v.stride)
        truth = input_coords(heatmap_peaks(tgt["gridpoints"][0], 0.999), v.stride)
        total += len(truth)
        n_pred += len(pred)
        if len(pred) and len(truth):
            d = np.linalg.norm(truth[:, None] - pred[None], axis=2)
            near = d.min(axis=1)
            ok = near <= radius
            found += int(ok.sum())
            errs.extend((near[ok] / v.cfg.scale).tolist())
            matched += int((d.min(axis=0) <= radius).sum())
    return {"crossing_recall": found / max(1, total), "crossing_precision": matched / max(1, n_pred),
            "crossing_err_page_px_median": float(np.median(errs)) if errs else float("nan"),
            "n_truth": total}


def _stage1_loss(out, tgt) -> dict:
    v = tgt.get("valid")
    return {"gridpoints": heatmap_focal_loss(out["gridpoints"], tgt["gridpoints"], v),
            "gridlines": line_loss(out["gridlines"], tgt["gridlines"], v)}


register_task(StageTask(
    stage=1,
    heads={"gridpoints": HeadSpec("dense", 1, ("major_crossings",)),
           "gridlines": HeadSpec("dense", len(GRIDLINE_NAMES), GRIDLINE_NAMES)},
    default_model=dict(encoder_name="resnet18d", input_size=PAGE.shape_at(STAGE1_SCALE)),
    loss_terms=_stage1_loss,
    loss_weights={"gridpoints": 1.0, "gridlines": 0.5},
    sample=_stage1_sample,
    holdout_sample=lambda cfg, syn, rng, stride: _stage1_sample(cfg, syn, rng, stride, crop=False),
    holdout_metrics=_stage1_metrics,
))


# ---------------------------------------------------------------- stage 2: one trace map per printed row
def _stage2_sample(cfg, syn, rng, stride) -> Sample:
    d = cfg.data
    warp = T.SmoothWarp.random(rng, d.warp_shift_px, d.warp_rot_deg, d.warp_scale, d.warp_wave_px)
    return T.stage2_sample(syn, cfg.scale, cfg.input_size, stride, rng, warp)


def _stage2_holdout_sample(cfg, syn, rng, stride) -> Sample:
    """The whole page, no rectification error: the metric is the competition score of its reading."""
    x, _ = T.stage2_sample(syn, cfg.scale, None, 1, rng, warp=None)
    return x, {}


def _read(v, probs, fs: int) -> dict[str, np.ndarray]:
    dig = assemble_leads(read_row_curves(probs, v.cfg.scale), v.cfg.scale)
    return {lead: lead_rows(dig, lead, fs, number_of_rows(lead, fs)) for lead in LEADS}


def _score(v, preds: dict) -> dict:
    truths = {f"h{i}": (it.syn.record.to_competition_frame(), it.syn.record.fs) for i, it in enumerate(v.items)}
    rep = score_records(preds, truths)
    return {"snr_db": float(rep.score_db), "snr_db_mean_per_image": float(rep.per_image["snr_db"].mean())}


def _stage2_metrics(v, model, dev) -> dict:
    tile = max(64, v.cfg.input_size[0] * 2)
    preds, ink_preds = {}, {}
    baseline = v.cache.get("ink_baseline")  # the model-free reading does not change between validations
    for i, ((x, _), it) in enumerate(zip(v.prepared, v.items)):
        out = predict(model, x, dev, tile_h=tile)["traces"]
        probs = sigmoid(out)
        if v.stride > 1:
            probs = np.repeat(np.repeat(probs, v.stride, 1), v.stride, 2)[:, : x.shape[1], : x.shape[2]]
        preds[f"h{i}"] = _read(v, probs, it.syn.record.fs)
        if baseline is None:
            ink = ink_from_rgb((x.transpose(1, 2, 0) * 255).astype(np.uint8))
            ink_preds[f"h{i}"] = _read(v, [ink] * probs.shape[0], it.syn.record.fs)
    if baseline is None:
        baseline = v.cache["ink_baseline"] = _score(v, ink_preds)["snr_db"]
    res = _score(v, preds)
    res["snr_db_classical_ink"] = baseline  # the model-free reading of the same pages
    res["scale"] = v.cfg.scale
    return res


register_task(StageTask(
    stage=2,
    heads={"traces": HeadSpec("dense", len(TRACE_ROW_NAMES), TRACE_ROW_NAMES)},
    # decodes to full resolution: trace position errors of one pixel cost dB directly
    default_model=dict(encoder_name="resnet34d", input_size=PAGE.shape_at(STAGE2_SCALE),
                       decoder_channels=(256, 128, 64, 32, 16), decoder_out_stride=1),
    loss_terms=lambda out, tgt: {"traces": trace_loss(out["traces"], tgt["traces"], tgt.get("valid"))},
    loss_weights={"traces": 1.0},
    sample=_stage2_sample,
    holdout_sample=_stage2_holdout_sample,
    holdout_metrics=_stage2_metrics,
    accepts_real_images=True,
    data_note=f" (pipeline reads at {STAGE2_SCALE})",
))
