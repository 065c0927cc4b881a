"""Every training setting of the three stage models, in one literal table: (stage, variant) -> config.

Variants: 'tiny' (CPU tests, seconds), 'cpu' (a small model that learns something useful on 2 CPU
cores in ~20-40 min), 'gpu' (the real models on one H100, ~10 min per stage). What a stage trains
(heads, samples, loss, metrics) is its task's (tasks.py); this table holds only the numbers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config import IMAGE_TYPES, PAGE, STAGE0_INPUT, STAGE1_SCALE, STAGE2_SCALE
from ..models.stage_models import ModelConfig
from .tasks import preset

TRAIN_VARIANTS = ("tiny", "cpu", "gpu")
# Harder captures are drawn more often: the clean render is nearly solved by the classical path.
TYPE_WEIGHTS: dict[str, float] = {"0001": 0.5, "0003": 1.0, "0004": 1.0, "0005": 2.0, "0006": 1.5,
                                  "0009": 1.5, "0010": 2.0, "0011": 1.0, "0012": 1.0}
assert set(TYPE_WEIGHTS) == set(IMAGE_TYPES)


@dataclass(frozen=True)
class DataConfig:
    """How synthetic training images and samples are made."""

    type_weights: dict = field(default_factory=lambda: dict(TYPE_WEIGHTS))
    image_size: tuple[int, int] | None = None  # degrade(size=...) override (tiny tests)
    max_side: int | None = None  # degrade(max_side=...): smaller captures are cheaper to make
    photometric: bool = True
    images_per_page: int = 1  # captures made from each rendered page (rendering is ~half an image's cost)
    samples_per_image: int = 1  # samples per capture: crops (stages 1, 2), extra quarter turns (stage 0)
    # stage 0: quarter-turn probabilities (upright dominates: the key-point head runs on upright images)
    orientation_probs: tuple[float, float, float, float] = (0.55, 0.15, 0.15, 0.15)
    heatmap_sigma: float = 1.5  # in output cells
    homography_noise: float = 0.004  # stage 1: corner jitter, fraction of the image's long side
    warp_shift_px: float = 2.0  # stage 2: rectification error (page px)
    warp_rot_deg: float = 0.1
    warp_scale: float = 0.002
    warp_wave_px: float = 0.7
    line_width: float = 1.0  # stage 1 grid-line target width, output cells


@dataclass(frozen=True)
class StageTrainConfig:
    stage: int
    variant: str
    model: ModelConfig
    scale: float  # page scale of stage 1/2 inputs (stage 0: unused)
    input_size: tuple[int, int]  # what one training sample is: letterbox square / crop (H, W)
    batch_size: int
    steps: int
    lr: float
    warmup_steps: int
    weight_decay: float = 0.01
    clip_grad: float = 1.0
    amp: bool = True  # used on CUDA only
    min_lr_frac: float = 0.05
    data: DataConfig = field(default_factory=DataConfig)
    workers: int = 2
    seed: int = 0
    holdout_n: int = 8
    holdout_seed: int = 10_000_019  # far from any training seed: the hold-out is never trained on
    val_every: int = 500
    ckpt_every: int = 200
    log_every: int = 10
    loss_weights: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d


def _model(stage: int, base: str, scale: float | None = None, **overrides) -> ModelConfig:
    m = preset(stage, base)
    if scale is not None:  # the nominal frame tells inference the scale the model was trained at
        overrides["input_size"] = PAGE.shape_at(scale)
    return dataclasses.replace(m, **overrides) if overrides else m


_TINY = dict(batch_size=2, steps=4, lr=3e-3, warmup_steps=1, workers=0, holdout_n=2, val_every=1000, ckpt_every=2,
             log_every=1, amp=False,
             data=DataConfig(image_size=(120, 160), photometric=False, samples_per_image=1, heatmap_sigma=1.0))
_SMALL = dict(encoder_name="resnet10t", decoder_channels=(64, 32, 24, 16))

TRAIN_CONFIGS: dict[tuple[int, str], StageTrainConfig] = {
    (0, "tiny"): StageTrainConfig(0, "tiny", _model(0, "tiny", input_size=(64, 64)), 1.0, (64, 64), **_TINY),
    (1, "tiny"): StageTrainConfig(1, "tiny", _model(1, "tiny", 0.1), 0.1, (64, 96), **_TINY),
    (2, "tiny"): StageTrainConfig(2, "tiny", _model(2, "tiny", 0.1), 0.1, (64, 96), **_TINY),

    (0, "cpu"): StageTrainConfig(
        0, "cpu", _model(0, "default", input_size=(256, 256), **_SMALL), 1.0, (256, 256),
        batch_size=8, steps=800, lr=2e-3, warmup_steps=50, workers=1, holdout_n=16, val_every=200,
        data=DataConfig(max_side=1024, heatmap_sigma=1.5, images_per_page=2, samples_per_image=2)),
    (1, "cpu"): StageTrainConfig(
        1, "cpu", _model(1, "default", STAGE1_SCALE, **_SMALL), STAGE1_SCALE, (192, 256),
        batch_size=8, steps=500, lr=2e-3, warmup_steps=40, workers=1, holdout_n=4, val_every=250,
        data=DataConfig(max_side=1344, images_per_page=2, samples_per_image=4, heatmap_sigma=1.0)),
    # scale 1.0: half the GPU resolution, ~3x cheaper per page, still sub-pixel reading
    (2, "cpu"): StageTrainConfig(
        2, "cpu", _model(2, "default", 1.0, encoder_name="resnet10t", decoder_channels=(64, 32, 24, 16, 16)),
        1.0, (128, 384),
        batch_size=8, steps=800, lr=2e-3, warmup_steps=50, workers=1, holdout_n=3, val_every=200,
        data=DataConfig(max_side=2200, images_per_page=2, samples_per_image=8)),

    # gpu: the presets' real models at the pipeline's resolutions
    (0, "gpu"): StageTrainConfig(
        0, "gpu", _model(0, "default"), 1.0, (STAGE0_INPUT, STAGE0_INPUT),
        batch_size=32, steps=1200, lr=1e-3, warmup_steps=100, workers=14, holdout_n=32, val_every=400,
        ckpt_every=400,
        data=DataConfig(max_side=2 * STAGE0_INPUT + 512, heatmap_sigma=2.0, images_per_page=2, samples_per_image=2)),
    (1, "gpu"): StageTrainConfig(
        1, "gpu", _model(1, "default", STAGE1_SCALE), STAGE1_SCALE, (512, 512),
        batch_size=24, steps=1200, lr=1e-3, warmup_steps=100, workers=14, holdout_n=16, val_every=400,
        ckpt_every=400, data=DataConfig(images_per_page=2, samples_per_image=4, heatmap_sigma=1.5)),
    (2, "gpu"): StageTrainConfig(
        2, "gpu", _model(2, "default", STAGE2_SCALE), STAGE2_SCALE, (256, 1024),
        batch_size=16, steps=3000, lr=1e-3, warmup_steps=150, workers=14, holdout_n=8, val_every=1000,
        ckpt_every=500, data=DataConfig(images_per_page=2, samples_per_image=8)),
}
assert {v for _, v in TRAIN_CONFIGS} == set(TRAIN_VARIANTS)


def stage_config(stage: int, variant: str) -> StageTrainConfig:
    """The training config of one stage for one variant."""
    if variant not in TRAIN_VARIANTS:
        raise ValueError(f"training variant must be one of {TRAIN_VARIANTS}, got {variant!r}")
    if (stage, variant) not in TRAIN_CONFIGS:
        raise ValueError(f"stage must be one of {sorted({s for s, _ in TRAIN_CONFIGS})}, got {stage!r}")
    return TRAIN_CONFIGS[stage, variant]


def with_overrides(cfg: StageTrainConfig, steps: int | None = None, batch_size: int | None = None,
                   workers: int | None = None) -> StageTrainConfig:
    """cfg with the command line's overrides (None keeps the table's value)."""
    kw = {k: v for k, v in (("steps", steps), ("batch_size", batch_size), ("workers", workers)) if v is not None}
    if "steps" in kw:
        s = kw["steps"]
        kw["warmup_steps"] = min(cfg.warmup_steps, max(1, s // 10))
    return dataclasses.replace(cfg, **kw)
