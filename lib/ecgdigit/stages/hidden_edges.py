"""A short lead's ends hidden under a separator bar, taken from the same lead's other beats.

ECG-image-kit draws a bar at every lead switch inside a row; it hides each lead's last and first
~20 ms (the bar, 6 px, plus its mask's margin), and the assembly carries the lead's edge slope across
them. Where a QRS falls on the switch that line misses it by up to 1 mV. The rhythm strip shows where
the beats are, so the hidden samples are read at the same place of the lead's other printed beats
(the fiducial: the strip's QRS nearest the edge), shifted to meet what was seen at the edge.
"""
from __future__ import annotations

import numpy as np

from ..config import LEADS, RHYTHM_LEAD
from ..digitized import Digitized
from .column_timing import r_peaks

# past the window's own edge too: resampling to the truth's fs reads a sample beyond it
HIDDEN_GUARD_S = 0.004
# the copy is shifted to meet the mean of this many seen samples at the edge (one sample alone carries
# its own reading error into every hidden one; not tuned)
EDGE_MATCH_SAMPLES = 3
# a longer hidden stretch is a misread (a lost path), not a bar: left to the assembly's own carry
# (one V2 hidden 0.36 s: -2.6 dB with it copied)
MAX_HIDDEN_S = 0.04
# copied only within this of the strip's QRS peak: elsewhere (P, T, baseline) 20 ms are smooth and the
# assembly's edge slope carries them as well, while another beat's wander and shape differ (synthetic
# hold-out 0011: 24.65 dB before, 24.22 copying everywhere, 24.72 with 0.06 s; renders 27.27 -> 27.25;
# 0.08 s read 27.25 / 24.68)
QRS_REACH_S = 0.06
# a beat this much earlier than the median RR is premature, most often ectopic (a PVC): its shape is
# not its neighbours', so it is neither copied into nor copied from (two realdev no-pulse renders of a
# record with a PVC on the 5 s switch lost 2 dB to a normal beat's QRS copied over it)
PREMATURE_FRAC = 0.2


def fill_hidden_edges(d: Digitized) -> Digitized:
    """Every short lead's hidden ends at a lead switch inside the record, from its other beats.

    Not the record's own first and last ms: the record starts with a transient and ends held flat
    (realdev renders' truth), not with a beat (copying there too: scans 18.42 -> 18.04 dB, one page
    -2.0 where a QRS copy replaced the held end).
    """
    strip = d.printed_window(RHYTHM_LEAD)
    if d.seen_spans is None or d.simultaneous_columns or strip is None or strip[1] - strip[0] < d.shown_s - 1e-6:
        return d  # the beats are found on a rhythm strip that spans the record
    sig = d.signals.copy()
    peaks = r_peaks(sig[:, LEADS.index(RHYTHM_LEAD)].astype(np.float64), d.fs)
    if len(peaks) < 2:
        return d
    for lead, seen in d.seen_spans.items():
        window = d.printed_window(lead)
        if lead == RHYTHM_LEAD or window is None:
            continue
        j = LEADS.index(lead)
        shown = _seen_samples(seen, d.fs)
        for hidden, edge in _hidden_ends(window, shown, d.fs, sig.shape[0], d.shown_s):
            est = beat_copy(sig[:, j], np.concatenate([hidden, edge]), peaks, shown, QRS_REACH_S * d.fs)
            if est is not None:
                sig[hidden, j] = est[:len(hidden)] + float(np.mean(sig[edge, j] - est[len(hidden):]))
    return d.replace_signals(sig)


def _seen_samples(seen: tuple[float, float], fs: float) -> tuple[int, int]:
    """[lo, hi) sample indices inside a seen span [first, last] s."""
    return int(np.ceil(seen[0] * fs - 1e-6)), int(np.floor(seen[1] * fs + 1e-6)) + 1


def _hidden_ends(window: tuple[float, float], shown: tuple[int, int], fs: float, n: int, record_s: float):
    """(hidden sample indices, seen edge sample indices) for each end of a lead's window that lies
    inside the record and was hidden for at most MAX_HIDDEN_S."""
    lo, hi = shown
    first = max(0, int(np.ceil((window[0] - HIDDEN_GUARD_S) * fs)))
    last = min(n, int(np.ceil((window[1] + HIDDEN_GUARD_S) * fs)))
    ends = []
    if window[0] > HIDDEN_GUARD_S:
        ends.append((np.arange(first, lo), np.arange(lo, min(hi, lo + EDGE_MATCH_SAMPLES))))
    if window[1] < record_s - HIDDEN_GUARD_S:
        ends.append((np.arange(hi, last), np.arange(max(lo, hi - EDGE_MATCH_SAMPLES), hi)))
    return [(h, e) for h, e in ends if 0 < len(h) <= MAX_HIDDEN_S * fs and len(e)]


def beat_copy(x: np.ndarray, block: np.ndarray, peaks: np.ndarray, shown: tuple[int, int],
              reach: float = np.inf) -> np.ndarray | None:
    """x at the samples `block`, read as the mean of x at the same offset from every other QRS peak
    where the whole block lies in the shown samples [lo, hi); None where no beat has it or the block
    lies further than `reach` samples from its nearest peak.

    One fiducial (the peak nearest the block) for the whole block keeps the copy continuous: per
    sample nearest peaks switch beats halfway between two QRS (0.3 mV steps; renders 26.65 dB
    with them, 27.27 without)."""
    k = int(np.abs(peaks - block.mean()).argmin())
    ref = peaks[k]
    normal = ~_premature(peaks)
    if np.abs(block - ref).min() > reach or not normal[k]:
        return None
    others = peaks[normal & (peaks != ref)]
    at = others[:, None] + (block - ref)[None, :]  # (other beats, block)
    inside = ((at >= shown[0]) & (at < shown[1])).all(axis=1)
    return x[at[inside]].mean(axis=0) if inside.any() else None


def _premature(peaks: np.ndarray) -> np.ndarray:
    """(len(peaks),) bool: the beat came PREMATURE_FRAC or more before the median RR after the one
    before it (the first beat has no RR: not premature)."""
    rr = np.diff(peaks)
    if len(rr) < 2:
        return np.zeros(len(peaks), bool)
    return np.r_[False, rr < (1.0 - PREMATURE_FRAC) * np.median(rr)]
