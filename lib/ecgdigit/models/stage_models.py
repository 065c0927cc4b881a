"""The stage models' configs (JSON-able, stored in the weights manifest) and their builder.

stage 0 (whole image, low-res): page orientation (4 quarter turns) + keypoint heatmaps.
stage 1 (normalized page at STAGE1_SCALE): major grid crossings + horizontal/vertical grid lines.
stage 2 (rectified page at STAGE2_SCALE): one trace probability map per printed row.
Each stage's heads and presets are its training task's (training/tasks.py); inference rebuilds a
model from the config its manifest entry holds, so it needs nothing from training.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields

from torch import nn

from ecgdigit.models.encoder_decoder import EncoderDecoder, HeadSpec

logger = logging.getLogger(__name__)

STAGES = (0, 1, 2)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a stage model's architecture (weights excluded).

    input_size (H, W) is the nominal frame the model is trained and run at; the network itself takes
    any size (padded inside to its deepest stride), dense outputs are ceil(H / stride) x ceil(W / stride).
    """

    stage: int
    name: str
    encoder_name: str
    heads: dict[str, HeadSpec]
    input_size: tuple[int, int]
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16)
    decoder_out_stride: int = 2
    upsample_to_input: bool = False
    in_chans: int = 3
    out_indices: tuple[int, ...] | None = None
    encoder_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        object.__setattr__(self, "heads", {k: v if isinstance(v, HeadSpec) else HeadSpec.from_dict(v)
                                           for k, v in self.heads.items()})
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "decoder_channels", tuple(int(v) for v in self.decoder_channels))
        if self.out_indices is not None:
            object.__setattr__(self, "out_indices", tuple(int(v) for v in self.out_indices))
        if len(self.input_size) != 2:
            raise ValueError(f"input_size must be (H, W), got {self.input_size}")

    def to_dict(self) -> dict:
        """Plain JSON types only; from_dict(to_dict(c)) == c."""
        return {
            "stage": self.stage, "name": self.name, "encoder_name": self.encoder_name,
            "heads": {k: v.to_dict() for k, v in self.heads.items()},
            "input_size": list(self.input_size), "decoder_channels": list(self.decoder_channels),
            "decoder_out_stride": self.decoder_out_stride, "upsample_to_input": self.upsample_to_input,
            "in_chans": self.in_chans,
            "out_indices": None if self.out_indices is None else list(self.out_indices),
            "encoder_kwargs": dict(self.encoder_kwargs),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown} (written by a newer kit?)")
        missing = sorted(f.name for f in fields(cls) if f.name in ("stage", "name", "encoder_name", "heads",
                                                                       "input_size") and f.name not in d)
        if missing:
            raise ValueError(f"ModelConfig dict lacks required fields {missing}")
        return cls(**d)


def build_model(config: ModelConfig) -> EncoderDecoder:
    """A freshly initialised (never pretrained) model; config is kept as model.model_config."""
    model = EncoderDecoder(
        config.encoder_name, heads=config.heads, decoder_channels=config.decoder_channels,
        in_chans=config.in_chans, decoder_out_stride=config.decoder_out_stride,
        upsample_to_input=config.upsample_to_input, out_indices=config.out_indices,
        encoder_kwargs=config.encoder_kwargs)
    model.model_config = config
    logger.debug("built %s: %d parameters", config.name, count_parameters(model))
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
