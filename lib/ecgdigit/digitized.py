"""The pipeline's output (12 leads over 10 s) and its conversion into each test.csv lead's rows."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import DURATION_S, LEADS, RHYTHM_LEAD, SHORT_LEAD_S, lead_column


@dataclass
class Digitized:
    """12 leads on a common time grid t = k / fs over 10 s, in mV.

    Every lead covers the whole 10 s but only its printed window is read from the page; the rest
    is whatever the pipeline filled in (`column_timing` says what).
    """

    signals: np.ndarray  # (n_samples, 12) float32, columns in config.LEADS order
    fs: float
    warnings: list[str] = field(default_factory=list)
    is_fallback: bool = False
    # True: every printed column showed the record's first 2.5 s (not consecutive windows), so each
    # short lead's printed samples sit at 0..2.5 s whatever column it was printed in
    simultaneous_columns: bool = False
    # lead -> [start, end) s of the record the page printed (stage 2 sets it from the layout it read
    # with; None: the competition's 3x4 + II windows)
    lead_windows: dict[str, tuple[float, float]] | None = None
    # seconds of the record the page showed from its start (PaperLayout.shown_s: 5 at 50 mm/s); the
    # signals still cover 10 s, filled after it (signal_assembly.fill_unshown)
    shown_s: float = DURATION_S
    # lead -> [first, last] s of the record where the page showed the lead's trace (inside its printed
    # window; a separator bar or the calibration pulse hides the rest); None: not recorded
    seen_spans: dict[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        self.signals = np.asarray(self.signals, dtype=np.float32)
        if self.signals.ndim != 2 or self.signals.shape[1] != len(LEADS):
            raise ValueError(f"signals must be (n, {len(LEADS)}), got {self.signals.shape}")

    @classmethod
    def fallback(cls, reason: str, fs: float = 500.0) -> "Digitized":
        """All zeros: the documented prediction for an image that cannot be read (about 0 dB)."""
        n = int(round(DURATION_S * fs))
        return cls(np.zeros((n, len(LEADS)), np.float32), fs, [reason], is_fallback=True)

    def lead(self, name: str) -> np.ndarray:
        return self.signals[:, LEADS.index(name)]

    def printed_start_s(self, column: int) -> float:
        """When (in the record) the short leads printed in `column` begin."""
        return printed_start_s(column, self.simultaneous_columns)

    def printed_window(self, lead: str) -> tuple[float, float] | None:
        """[start, end) s of the record the page printed for `lead`; None: not printed on this page."""
        if self.lead_windows is not None:
            return self.lead_windows.get(lead)
        if lead == RHYTHM_LEAD:
            return 0.0, DURATION_S
        t0 = self.printed_start_s(lead_column(lead))
        return t0, t0 + SHORT_LEAD_S

    def replace_signals(self, signals: np.ndarray, warnings: list[str] | None = None) -> "Digitized":
        return Digitized(signals, self.fs, list(self.warnings if warnings is None else warnings), self.is_fallback,
                         self.simultaneous_columns, self.lead_windows, self.shown_s, self.seen_spans)


def printed_start_s(column: int, simultaneous: bool) -> float:
    """When (in the record) a page's column `column` begins: c x 2.5 s on the competition's look, 0 s on
    a page whose columns all show the record's first 2.5 s."""
    return 0.0 if simultaneous else column * SHORT_LEAD_S


def lead_window_start_s(lead: str) -> float:
    return 0.0 if lead == RHYTHM_LEAD else lead_column(lead) * SHORT_LEAD_S


def lead_rows(digitized: Digitized, lead: str, fs: int, number_of_rows: int) -> np.ndarray:
    """The values test.csv asks for: number_of_rows samples at fs from the lead's window start.

    Linear interpolation of the pipeline's time grid; samples outside it hold the edge value.
    """
    t = lead_window_start_s(lead) + np.arange(number_of_rows, dtype=np.float64) / float(fs)
    src = digitized.lead(lead).astype(np.float64)
    t_src = np.arange(len(src), dtype=np.float64) / float(digitized.fs)
    out = np.interp(t, t_src, src)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
