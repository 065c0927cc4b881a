"""One network shape for all three stages: a timm encoder, a light U-Net decoder, named heads.

The encoder is any timm backbone built with ``features_only=True, pretrained=False`` (nothing is
ever downloaded; trained weights come from our own safetensors files). The decoder upsamples the
deepest features x2 per block, concatenating the encoder skip of the same stride, down to
``decoder_out_stride`` (2 by default to save compute). 'dense' heads are 1x1 convs on the decoder
output (logit maps); 'classify' heads pool the deepest features into class logits. Callers pass
0..1 float RGB; ImageNet normalization happens inside, so training and inference cannot disagree.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

HEAD_KINDS = ("dense", "classify")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class HeadSpec:
    """One named output. kind 'dense': (B, channels, h, w) logit maps at the decoder stride;
    kind 'classify': (B, channels) logits. names optionally labels each channel/class."""

    kind: str
    channels: int
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ValueError(f"head kind must be one of {HEAD_KINDS}, got {self.kind!r}")
        if int(self.channels) < 1:
            raise ValueError(f"head needs at least 1 channel, got {self.channels}")
        object.__setattr__(self, "names", tuple(self.names))
        if self.names and len(self.names) != self.channels:
            raise ValueError(f"head has {self.channels} channels but {len(self.names)} names")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "channels": int(self.channels), "names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict) -> "HeadSpec":
        return cls(kind=d["kind"], channels=int(d["channels"]), names=tuple(d.get("names", ())))


class ConvBnRelu(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    """x2 upsample, concat the skip of the new stride (if the encoder has one), two conv-bn-relu."""

    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.conv1 = ConvBnRelu(cin + skip, cout)
        self.conv2 = ConvBnRelu(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        size = skip.shape[-2:] if skip is not None else (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class EncoderDecoder(nn.Module):
    """timm encoder + U-Net decoder + named heads; forward(x in 0..1) -> {head name: logits}."""

    def __init__(
        self,
        encoder_name: str,
        heads: dict[str, HeadSpec],
        decoder_channels: tuple[int, ...] = (128, 64, 32, 16),
        in_chans: int = 3,
        decoder_out_stride: int = 2,
        upsample_to_input: bool = False,
        out_indices: tuple[int, ...] | None = None,
        encoder_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        if not heads:
            raise ValueError("EncoderDecoder needs at least one head")
        if decoder_out_stride < 1 or decoder_out_stride & (decoder_out_stride - 1):
            raise ValueError(f"decoder_out_stride must be a power of 2, got {decoder_out_stride}")
        self.heads_spec = {k: v if isinstance(v, HeadSpec) else HeadSpec.from_dict(v) for k, v in heads.items()}
        self.decoder_out_stride = int(decoder_out_stride)
        self.upsample_to_input = bool(upsample_to_input)

        kwargs = dict(encoder_kwargs or {})
        if out_indices is not None:
            kwargs["out_indices"] = tuple(out_indices)
        # pretrained=False always: the kit runs offline, and trained weights come from our files.
        self.encoder = timm.create_model(encoder_name, features_only=True, pretrained=False,
                                         in_chans=in_chans, **kwargs)
        chans = list(self.encoder.feature_info.channels())
        strides = list(self.encoder.feature_info.reduction())
        self.max_stride = strides[-1]
        skip_ch = {s: c for s, c in zip(strides[:-1], chans[:-1])}

        n_blocks = int(round(math.log2(self.max_stride / self.decoder_out_stride)))
        if self.max_stride <= self.decoder_out_stride or 2 ** n_blocks * self.decoder_out_stride != self.max_stride:
            raise ValueError(f"encoder {encoder_name!r} deepest stride {self.max_stride} cannot be decoded "
                             f"down to stride {self.decoder_out_stride}")
        if len(decoder_channels) != n_blocks:
            raise ValueError(f"decoder_channels has {len(decoder_channels)} entries but going from stride "
                             f"{self.max_stride} to {self.decoder_out_stride} takes {n_blocks} blocks")
        blocks, cin, s = [], chans[-1], self.max_stride
        for cout in decoder_channels:
            s //= 2
            blocks.append(DecoderBlock(cin, skip_ch.get(s, 0), int(cout)))
            cin = int(cout)
        self.decoder = nn.ModuleList(blocks)
        self._block_strides = [self.max_stride // 2 ** (i + 1) for i in range(n_blocks)]
        self._stride_to_index = {s: i for i, s in enumerate(strides[:-1])}

        self.heads = nn.ModuleDict()
        for name, spec in self.heads_spec.items():
            if spec.kind == "dense":
                self.heads[name] = nn.Conv2d(cin, spec.channels, 1)
            else:
                self.heads[name] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                                                 nn.Linear(chans[-1], spec.channels))
        # Non-persistent: normalization is architecture, not weights (and fp16 would round it).
        mean = torch.tensor(IMAGENET_MEAN if in_chans == 3 else (sum(IMAGENET_MEAN) / 3,) * in_chans)
        std = torch.tensor(IMAGENET_STD if in_chans == 3 else (sum(IMAGENET_STD) / 3,) * in_chans)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)

    @property
    def output_strides(self) -> dict[str, int | None]:
        """Stride of each dense head's output relative to the input (None for classify heads)."""
        s = 1 if self.upsample_to_input else self.decoder_out_stride
        return {k: (s if v.kind == "dense" else None) for k, v in self.heads_spec.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        # Pad (after normalization, so the pad is the mean colour) to a multiple of the deepest stride.
        ph, pw = -h % self.max_stride, -w % self.max_stride
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        feats = self.encoder(x)
        y = feats[-1]
        for block, s in zip(self.decoder, self._block_strides):
            i = self._stride_to_index.get(s)
            y = block(y, feats[i] if i is not None else None)
        s = self.decoder_out_stride
        y = y[..., : -(-h // s), : -(-w // s)]  # crop the pad: ceil(h / s) rows
        out: dict[str, torch.Tensor] = {}
        for name, spec in self.heads_spec.items():
            if spec.kind == "classify":
                out[name] = self.heads[name](feats[-1])
            else:
                d = self.heads[name](y)
                if self.upsample_to_input and s != 1:
                    # integer scale then crop keeps pixel centres aligned with the input's
                    d = F.interpolate(d, scale_factor=s, mode="bilinear", align_corners=False)[..., :h, :w]
                out[name] = d
        return out
