"""The lead arrangements the kit can read and draw: ONE table, LEAD_LAYOUTS.

An arrangement is which leads each printed row holds (a row of n leads splits the seconds the page
shows into n consecutive segments; a row of one lead is a rhythm strip over all of them: 10 s at
25 mm/s, 5 s at 50) and where the rows' baselines sit on the 200 dpi page frame. Everything else
about a page (calibration pulse at the start, the end or none; gain; paper speed) is measured per
page and set on the PaperLayout (`LeadLayout.page`). Stage 1 tries every
entry (`stages/layout_detection.py`), stage 2 reads with the one found, the generator draws any of
them; adding an arrangement is adding a line here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config import DURATION_S, LAYOUT_ROWS, LEADS, PAGE, RHYTHM_LEAD, PaperLayout

COMPETITION = "3x4+1"


def _even(first: float, step: float, n: int) -> tuple[float, ...]:
    return tuple(round(first + step * k, 2) for k in range(n))


@dataclass(frozen=True)
class LeadLayout:
    name: str
    rows: tuple[tuple[str, ...], ...]
    baselines_y: tuple[float, ...]  # page px (200 dpi frame), one per row

    def page(self, base: PaperLayout = PAGE, **changes) -> PaperLayout:
        """`base` (paper, grid, pulse, gain) with this arrangement's rows and baselines."""
        return dataclasses.replace(base, rows=self.rows, baselines_y=self.baselines_y, **changes)


LEAD_LAYOUTS: dict[str, LeadLayout] = {lay.name: lay for lay in (
    # the competition's (ECG-image-kit's): 3 rows of 4 leads, 2.5 s each, and a 10 s lead-II strip
    LeadLayout(COMPETITION, LAYOUT_ROWS, PAGE.baselines_y),
    # the same 3 rows and three rhythm strips (II, V1, V5: the usual choice of 12SL-style printers)
    LeadLayout("3x4+3", LAYOUT_ROWS[:3] + (("II",), ("V1",), ("V5",)), _even(500.0, 216.0, 6)),
    # two columns of six leads, 5 s each
    LeadLayout("6x2", (("I", "V1"), ("II", "V2"), ("III", "V3"), ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6")),
               _even(500.0, 216.0, 6)),
    # every lead over the whole 10 s, one row each
    LeadLayout("12x1", tuple((lead,) for lead in LEADS), _even(300.0, 118.0, 12)),
)}


def printed_segments(rows: tuple[tuple[str, ...], ...], shown_s: float = DURATION_S) -> list[tuple[int, int, str, float, float]]:
    """(row, column, lead, t0, t1) of every printed segment, page time in seconds; shown_s: what the
    page shows (PaperLayout.shown_s: 10 s at 25 mm/s, 5 s at 50)."""
    out = []
    for r, leads in enumerate(rows):
        n = len(leads)
        for c, lead in enumerate(leads):
            out.append((r, c, lead, c * shown_s / n, (c + 1) * shown_s / n))
    return out


def source_segments(rows: tuple[tuple[str, ...], ...], shown_s: float = DURATION_S) -> dict[str, tuple[int, int, float, float]]:
    """Per lead, the printed segment it is read from: its longest (a rhythm strip before a short
    copy; the first of equals): lead -> (row, column, t0, t1)."""
    best: dict[str, tuple[int, int, float, float]] = {}
    for r, c, lead, t0, t1 in printed_segments(rows, shown_s):
        if lead not in best or t1 - t0 > best[lead][3] - best[lead][2]:
            best[lead] = (r, c, t0, t1)
    return best


def columns_may_be_simultaneous(rows: tuple[tuple[str, ...], ...], shown_s: float = DURATION_S) -> bool:
    """Whether `stages/column_timing` can tell this arrangement's column timing: a 10 s lead-II strip
    and aVL and aVF printed together in the second of four 2.5 s columns (so not at 50 mm/s)."""
    src = source_segments(rows, shown_s)
    strip = src.get(RHYTHM_LEAD)
    quarter = (DURATION_S / 4, DURATION_S / 2)
    return (strip is not None and strip[3] - strip[2] == DURATION_S
            and all(lead in src and src[lead][2:] == quarter for lead in ("aVL", "aVF")))
