"""Where a reading's error lies: per lead, after the metric's own shift and offset.

Each sample of a lead's window is put in one class, first match wins:
  edge  - within EDGE_S of the window's start or end (the calibration pulse, lead switches,
          the record's start transient);
  steep - the truth's slope on the page above STEEP_PX_PER_PX (QRS flanks: a sub-pixel error in x
          becomes pixels in y there);
  flat  - the rest (the body of the trace).
The shares of the squared error in each class, the least-squares gain truth/read (a gain below 1:
the reading is too tall) and the lead's own SNR tell which part of the reader to work on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import LEADS, PAGE, PaperLayout
from .metric import align_prediction, max_shift_samples, truth_windows

EDGE_S = 0.040
STEEP_PX_PER_PX = 1.0
CLASSES = ("edge", "steep", "flat")


@dataclass
class LeadErrors:
    lead: str
    snr_db: float
    gain: float  # least-squares truth ~ gain * read (both centred over the overlap)
    error: dict[str, float]  # class -> sum of squared error (mV^2)
    signal: float  # sum of truth^2, as the metric counts it


def sample_classes(truth: np.ndarray, fs: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """(n,) class index into CLASSES for every sample of one lead's window."""
    n = len(truth)
    t = np.arange(n) / fs
    slope_mv_s = np.abs(np.gradient(truth.astype(np.float64), 1.0 / fs)) if n > 1 else np.zeros(n)
    steep_mv_s = STEEP_PX_PER_PX * layout.px_per_s / layout.px_per_mv  # page px per px -> mV per s
    cls = np.full(n, CLASSES.index("flat"), np.int8)
    cls[slope_mv_s > steep_mv_s] = CLASSES.index("steep")
    cls[(t < EDGE_S) | (t > (n - 1) / fs - EDGE_S)] = CLASSES.index("edge")
    return cls


def lead_errors(lead: str, truth: np.ndarray, pred: np.ndarray, fs: float) -> LeadErrors:
    aligned = align_prediction(truth, pred, max_shift_samples(fs))
    valid = np.isfinite(aligned)
    resid = np.where(valid, truth - np.nan_to_num(aligned), truth)  # uncovered pads count as 0, as the metric
    cls = sample_classes(truth, fs)
    err = {c: float(np.sum(resid[cls == i] ** 2)) for i, c in enumerate(CLASSES)}
    signal = float(np.sum(truth ** 2))
    noise = sum(err.values())
    snr_db = float(10 * np.log10(signal / noise)) if noise > 0 and signal > 0 else (np.inf if signal > 0 else -np.inf)
    t, r = truth[valid] - truth[valid].mean(), aligned[valid] - aligned[valid].mean()
    gain = float(np.dot(t, r) / np.dot(r, r)) if np.dot(r, r) > 0 else np.nan
    return LeadErrors(lead, snr_db, gain, err, signal)


def image_errors(series: pd.DataFrame, preds: dict[str, np.ndarray], fs: int, image_id: str = "?") -> list[LeadErrors]:
    """Every lead of one image: series is the truth CSV (NaN outside short windows), preds lead -> window values."""
    tw = truth_windows(series, fs, image_id)
    return [lead_errors(lead, tw[lead], np.asarray(preds[lead], np.float64), fs) for lead in LEADS if lead in preds]


@dataclass
class Breakdown:
    share: dict[str, float]  # class -> fraction of all squared error
    median_gain: float
    n_leads: int
    n_leads_under_10db: int


def summarize(leads: list[LeadErrors]) -> Breakdown:
    total = {c: sum(le.error[c] for le in leads) for c in CLASSES}
    all_err = sum(total.values())
    share = {c: (total[c] / all_err if all_err > 0 else 0.0) for c in CLASSES}
    gains = np.array([le.gain for le in leads if np.isfinite(le.gain)])
    return Breakdown(share, float(np.median(gains)) if len(gains) else float("nan"), len(leads),
                     sum(le.snr_db < 10.0 for le in leads))
