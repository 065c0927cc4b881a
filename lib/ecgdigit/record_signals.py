"""The 12 leads as a record holds them: one time grid at the chosen rate over the seconds the page
showed (10 s at 25 mm/s, 5 s at 50), each lead's values where the page printed it and NaN elsewhere.

Outside its printed window a short lead only holds the pipeline's filler (its edge value continued,
see Digitized); written into a record that filler would pass for measured signal, so it is left out.
So is a lead the reader found nothing for: the pipeline leaves it exactly 0.0 over the whole 10 s.
"""
from __future__ import annotations

import numpy as np

from .config import DURATION_S, LEADS, RHYTHM_LEAD, SHORT_LEAD_S, lead_column
from .digitized import Digitized


def printed_window_s(lead: str, digitized: Digitized | None = None) -> tuple[float, float] | None:
    """[start, end) seconds of the record that the page printed for the lead (the layout stage 2
    read with; without a reading, the competition's 3x4 + II rows); None: the page did not print it."""
    if digitized is None:
        if lead == RHYTHM_LEAD:
            return 0.0, DURATION_S
        col = lead_column(lead)
        return col * SHORT_LEAD_S, (col + 1) * SHORT_LEAD_S
    return digitized.printed_window(lead)


def unread_leads(digitized: Digitized) -> list[str]:
    """Leads left all zeros: a read trace is never exactly 0.0 at every sample."""
    return [lead for j, lead in enumerate(LEADS) if not np.any(digitized.signals[:, j])]


def record_signals(digitized: Digitized, fs: int) -> np.ndarray:
    """(round(shown s * fs), 12) float64 mV in config.LEADS order, NaN outside each printed window and
    for every unread lead. A page shows shown_s (Digitized.shown_s) of the record from its start: a
    50 mm/s page's record is 5 s long, not 10 s with a missing half.

    Not lead_rows(): that gives test.csv's rows, which start at the window's own start; a record's
    leads share one grid t = k / fs, and the two differ where 2.5 s * fs is not a whole number.
    """
    if fs <= 0:
        raise ValueError(f"sampling rate must be positive, got {fs}")
    n = int(round(digitized.shown_s * fs))
    t = np.arange(n, dtype=np.float64) / fs
    out = np.full((n, len(LEADS)), np.nan)
    unread = set(unread_leads(digitized))
    for j, lead in enumerate(LEADS):
        window = printed_window_s(lead, digitized)
        if lead in unread or window is None:
            continue
        src = digitized.lead(lead).astype(np.float64)
        t_src = np.arange(len(src), dtype=np.float64) / float(digitized.fs)
        t0, t1 = window
        # a nanosecond's slack: k / fs in floats may land a hair off a window edge that is a sample
        inside = (t >= t0 - 0.5e-9) & (t < t1 - 0.5e-9)
        out[inside, j] = np.interp(t[inside], t_src, src)
    out[~np.isfinite(out)] = np.nan
    return out
