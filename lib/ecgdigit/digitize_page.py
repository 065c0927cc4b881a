"""One page in, its outputs out: read the image, run the pipeline, write the WFDB record, the CSV and
the overlay picture. Anything that stops a page is a PageError naming the file and what is wrong."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import __version__
from .config import LEADS, PAGE, PaperLayout
from .debug_plot import save_overlay
from .io.competition_files import CompetitionFileError, read_image
from .io.signals_csv import write_signals_csv
from .io.wfdb_record import write_wfdb_record
from .pipeline import Pipeline, UnreadableImage
from .record_signals import printed_window_s, record_signals, unread_leads


class PageError(Exception):
    """This page gets no outputs; the message is '<file>: <what is wrong>'."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class PageOutputs:
    record: Path  # the .hea; the .dat lies beside it
    csv: Path
    overlay: Path
    layout: str
    seconds: float
    warnings: list[str] = field(default_factory=list)  # the pipeline's, about single leads
    cautions: list[str] = field(default_factory=list)  # about the whole page: the record may be wrong


def read_page(path: Path) -> np.ndarray:
    """The kit's image reader (grey, RGBA and 16-bit become 8-bit RGB), its errors as PageError."""
    try:
        return read_image(path)
    except CompetitionFileError as exc:
        raise PageError(path, exc.problem) from None


NOT_ECG_BUSY_SHARE = 0.2  # pixels far from their neighbourhood's median over this share of a page: noise, not a trace on paper
MIN_TRACE_SHARE = 0.3  # where no grid was found, rows with ink in under this share of their columns hold no trace
NO_ROWS_FIT = 0.35  # a "grid" on which no arrangement's rows fit the ink under this (random pixels) is no ECG grid


def busy_share(rgb: np.ndarray) -> float:
    """Share of pixels more than 40 grey levels from their 5x5 median: a trace and grid lines on paper
    are a few % of a page, random pixels most of it (lighting does not count: it is smooth)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float((cv2.absdiff(grey, cv2.medianBlur(grey, 5)) > 40).mean())


def not_an_ecg(result) -> str | None:
    """Why the page is taken for something other than an ECG, or None. Only a page with no ECG grid
    AND no trace is refused: no grid found and little ink along the rows, or a page of noise (with
    or without a "grid" found in it). A faded real page can lack a visible grid and still read well,
    a damaged one can hold little trace: both are written, with a caution where there is no grid."""
    found = result.stage1.layout_found
    has_grid = result.stage1.found_grid
    if has_grid and (found is None or found.kind == "competition" or found.rows_fit >= NO_ROWS_FIT):
        return None
    no_grid = "no grid found" if not has_grid else f"no rows of trace on what looked like a grid (fit {found.rows_fit:.2f})"
    busy = busy_share(result.stage2.rectified[::4, ::4])  # about the image's own pixels: the reading page is upsampled
    if busy > NOT_ECG_BUSY_SHARE:
        return f"not an ECG: {no_grid}, and {busy:.0%} of it is noise-like where an ECG is a thin trace on paper"
    curves = result.stage2.curves
    share = float(np.mean([c.found.mean() for c in curves])) if curves else 0.0
    if not has_grid and share < MIN_TRACE_SHARE:
        return f"not an ECG: {no_grid} and no trace found (ink in {share:.0%} of the rows' signal columns)"
    return None


def page_cautions(result) -> list[str]:
    """What the record lacks, and signs that the page may not be an ECG at all. Not a refusal: a
    faded real page can lack a visible grid and still read well, so the record is written and the
    user told to look."""
    out = []
    unread = unread_leads(result.digitized)
    if unread:
        out.append(f"nothing read for lead(s) {', '.join(unread)}: missing (NaN) in the record")
    if result.stage1.found_grid:
        return out
    return out + [f"no ECG grid found on it (only {result.stage1.n_crossings} grid crossings; page outline "
                  f"from '{result.stage0.method}'): it may not be an ECG, check the overlay"]


def layout_used(result, requested: str) -> str:
    """The layout the page was read with: what stage 1's layout detection found (else what was
    assumed), and which time the columns show (stage 2's column timing)."""
    found = result.stage1.layout_found
    if found is not None:
        placed = found.describe()  # names the paper speed, measured or assumed
    elif requested == "competition":
        placed = f"competition (as asked), {PAGE.mm_per_s:g} mm/s"
    else:
        placed = f"competition (assumed: no grid map to find the layout on), {PAGE.mm_per_s:g} mm/s assumed"
    timing = result.stage2.column_timing
    return placed if timing is None or not timing.simultaneous else placed + "; columns simultaneous (all from 0 s)"


def read_with(result) -> PaperLayout:
    """The page layout stage 2 read with (stage 1's find, else the competition's)."""
    found = result.stage1.layout_found
    return found.layout if found is not None else PAGE


def record_comments(path: Path, layout: str, result, fs: int, cautions: list[str]) -> list[str]:
    """What a reader of the .hea needs to trust the record: where it came from and what is missing."""
    windows = ", ".join(f"{lead} {w[0]:g}-{w[1]:g} s" if w else f"{lead} not printed"
                        for lead in LEADS for w in [printed_window_s(lead, result.digitized)])
    speed = read_with(result).mm_per_s
    return [
        f"digitized from {path.name} by ecgdigit {__version__}, layout {layout}, "
        f"stage0 {result.stage0.method}, stage1 {result.stage1.method}",
        f"paper speed {speed:g} mm/s: the page shows the record's first {result.digitized.shown_s:g} s, "
        f"which this record covers",
        f"each lead holds values only where the page printed it ({windows}); elsewhere missing (NaN)",
        f"resampled to {fs} Hz from the page's {result.digitized.fs:g} Hz reading grid",
        *(f"caution: {c}" for c in cautions),
        *(f"warning: {w}" for w in result.digitized.warnings),
    ]


def digitize_page(pipeline: Pipeline, path: Path, out_dir: Path, record_name: str, fs: int,
                  requested_layout: str) -> PageOutputs:
    """out_dir/{record_name}.hea/.dat/.csv and {record_name}-overlay.png for the page at path.

    requested_layout: the --layout asked for ('auto' or 'competition'); named where nothing was found.
    """
    t0 = time.perf_counter()
    image = read_page(path)
    try:
        result = pipeline.run(image)
    except UnreadableImage as exc:
        raise PageError(path, str(exc)) from None
    except Exception as exc:  # a pipeline failure on one page must not stop the others
        raise PageError(path, f"digitizing failed ({type(exc).__name__}: {exc})") from None
    digitized = result.digitized
    refused = not_an_ecg(result)
    if refused is not None:
        raise PageError(path, refused)
    if digitized.is_fallback:
        raise PageError(path, "no signal could be read (" + "; ".join(digitized.warnings) + ")")
    signals = record_signals(digitized, fs)
    if not np.isfinite(signals).any():
        raise PageError(path, "no lead could be read on it")
    cautions = page_cautions(result)
    layout = layout_used(result, requested_layout)
    overlay_path = out_dir / f"{record_name}-overlay.png"
    try:
        overlay_path.unlink(missing_ok=True)  # an old picture must not pass for this run's (see below)
        comments = record_comments(path, layout, result, fs, cautions)
        record = write_wfdb_record(out_dir, record_name, signals, fs, LEADS, comments)
        csv = write_signals_csv(out_dir / f"{record_name}.csv", signals, LEADS)
        overlay = save_overlay(overlay_path, result.stage2.rectified, result.stage2.scale,
                               digitized, None, title=f"{path.name}: layout {layout}; blue = read",
                               layout=read_with(result))
    except Exception as exc:  # disk full, no permission, a value wfdb refuses: this page only
        raise PageError(path, f"writing its outputs to {out_dir} failed ({type(exc).__name__}: {exc})") from None
    if not overlay.is_file():  # cv2.imwrite reports failure by its return value only, which save_overlay drops
        raise PageError(path, f"the overlay picture could not be written to {overlay}")
    return PageOutputs(record, csv, overlay, layout, time.perf_counter() - t0,
                       list(digitized.warnings), cautions)
