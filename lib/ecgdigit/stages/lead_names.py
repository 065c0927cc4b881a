"""Stage 2: the printed lead names removed from the ink, the trace that crosses them kept.

A lead name sits in a known box under its segment's start (`PaperLayout.label_zone`), and the deep S
waves of V1-V3 often run through it: zeroing the whole box left those columns to gap filling (22 %
of realdev renders' error lay in such columns). A letter is a blob of ink inside the box that no
ink leaving the box by TEXT_REACH_MV joins; the trace always leaves it.

A letter touching the trace fuses with it, and then the whole box is zeroed as before. (Borrowing
the fused letter's shape from another name that begins the same way, 'V' of V4 from V1's box, was
tried: it explained 4 of 15 fused boxes on 12 realdev renders, +0.04 dB, and was not kept.)
"""
from __future__ import annotations

import cv2
import numpy as np

from ..config import PAGE, PaperLayout

TEXT_REACH_MV = 0.3  # ink running this far out of a name's box is the trace, not a letter
LETTER_LEVEL = 0.1  # ink that counts toward a letter's blob


def _letters_in(ink: np.ndarray, box: tuple[int, int, int, int], reach: int) -> tuple[int, np.ndarray]:
    """How many blobs lie inside the box that ink `reach` px outside it does not join, and their
    mask (of the box)."""
    x0, y0, x1, y1 = box
    cx0, cy0 = max(0, x0 - reach), max(0, y0 - reach)
    cx1, cy1 = min(ink.shape[1], x1 + reach), min(ink.shape[0], y1 + reach)
    n_lab, labels = cv2.connectedComponents((ink[cy0:cy1, cx0:cx1] >= LETTER_LEVEL).astype(np.uint8),
                                            connectivity=8)
    leaves = np.zeros(n_lab, bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        leaves[edge] = True
    leaves[0] = True  # paper
    in_box = labels[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
    inside = ~leaves[in_box]
    return len(np.unique(in_box[inside])), inside


def remove_lead_names(ink: np.ndarray, scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """`ink` (H, W) with every lead name's letters zeroed (in place, and returned): the blobs alone
    when there is one per letter, else (a letter fused with the trace) the whole box."""
    reach = int(np.ceil(TEXT_REACH_MV * layout.px_per_mv * scale))
    h, w = ink.shape
    for r, leads in enumerate(layout.rows):
        for c, name in enumerate(leads):
            x0, y0, x1, y1 = (v * scale for v in layout.label_zone(r, c))
            box = (min(w, max(0, int(x0))), min(h, max(0, int(y0))),
                   min(w, max(0, int(np.ceil(x1)))), min(h, max(0, int(np.ceil(y1)))))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            n_letters, letters = _letters_in(ink, box, reach)
            inside = ink[box[1]:box[3], box[0]:box[2]]
            inside[letters if n_letters == len(name) else slice(None)] = 0.0
    return ink
