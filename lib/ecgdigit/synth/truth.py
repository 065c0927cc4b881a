"""Ground truth the synthetic generator gives for every image: what each stage needs to learn."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import LEADS, PAGE, PaperLayout, lead_window
from ..geometry.coordinate_map import CoordinateMap
from ..lead_layouts import source_segments


@dataclass
class EcgRecord:
    """A 10 s, 12-lead recording in mV; every lead is complete (the printout shows only windows)."""

    record_id: str
    fs: int
    signals: np.ndarray  # (n_samples, 12) float32, columns in config.LEADS order

    @property
    def n_samples(self) -> int:
        return self.signals.shape[0]

    def lead(self, name: str) -> np.ndarray:
        return self.signals[:, LEADS.index(name)]

    def to_competition_frame(self) -> pd.DataFrame:
        """As train/{id}/{id}.csv holds it: NaN outside each short lead's own 2.5 s window."""
        out = np.full_like(self.signals, np.nan, dtype=np.float64)
        for k, name in enumerate(LEADS):
            a, b = lead_window(name, self.fs)
            out[a:b, k] = self.signals[a:b, k]
        return pd.DataFrame(out, columns=list(LEADS))


@dataclass
class RenderedPage:
    """The clean page (type 0001) and where everything was drawn, in 200 dpi page pixels."""

    image: np.ndarray  # (1700, 2200, 3) uint8 RGB
    traces: list[np.ndarray]  # per printed row, (k, 2) float32 polyline (x, y) as drawn
    label_boxes: dict[str, tuple[float, float, float, float]]  # "{row}_{col}_{lead}" -> x0, y0, x1, y1
    layout: PaperLayout = field(default_factory=lambda: PAGE)

    def printed_windows(self) -> dict[str, tuple[float, float]]:
        """lead -> [start, end) s of the record drawn as the lead's longest segment (what a reader can
        get back), columns drawn consecutive: 0-10 s for the competition's lead II, 0-5 s at 50 mm/s."""
        return {lead: (t0, t1) for lead, (_r, _c, t0, t1) in source_segments(self.layout.rows, self.layout.shown_s).items()}


@dataclass
class SyntheticImage:
    """One competition image with its full ground truth."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, as the competition's PNG would hold it
    image_type: str  # key of config.IMAGE_TYPES
    page_to_image: CoordinateMap  # page px -> image px (includes the orientation turn)
    orientation: int  # quarter turns (np.rot90 sense) applied to the page; 0 = upright
    page: RenderedPage
    record: EcgRecord
