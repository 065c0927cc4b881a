"""One synthetic competition image with its ground truth: signals -> clean page -> image type."""
from __future__ import annotations

import numpy as np

from ..config import IMAGE_TYPES, SAMPLING_RATES
from .degrade import degrade
from .realism import SIGNAL_REALISTIC, SignalRealism, apply_signal_realism
from .render import render_page
from .signals import simulate_record
from .truth import EcgRecord, RenderedPage, SyntheticImage


def random_record(rng: np.random.Generator, record_id: str = "0", fs: int | None = None,
                  realism: SignalRealism = SIGNAL_REALISTIC) -> EcgRecord:
    """A simulated record; `realism` (on by default) adds what real PTB-XL records carry (realism.py)."""
    rec = simulate_record(rng, int(fs or rng.choice(SAMPLING_RATES)), record_id)
    return apply_signal_realism(rec, rng, realism)


def make_image(record: EcgRecord, image_type: str, rng: np.random.Generator, page: RenderedPage | None = None,
               **degrade_kw) -> SyntheticImage:
    """The record drawn as `image_type`; pass `page` to reuse one render for several types."""
    if image_type not in IMAGE_TYPES:
        raise ValueError(f"unknown image type {image_type!r}; known: {sorted(IMAGE_TYPES)}")
    page = page if page is not None else render_page(record, rng)
    d = degrade(page.image, image_type, rng, **degrade_kw)
    return SyntheticImage(d.image, image_type, d.page_to_image, d.orientation, page, record)
