"""Stage 2's lead-name removal: letters go, the trace crossing their box stays."""
import cv2
import numpy as np

from ecgdigit.config import PAGE
from ecgdigit.stages.lead_names import remove_lead_names

S = 2.0


def _page_with_name(trace_x: float | None, fused: bool = False):
    """Ink of a page at reading scale: 'V1' as two blobs in its box under row 0's third segment,
    and (optionally) a deep S wave's two flanks running down through the box at trace_x."""
    h, w = int(PAGE.height * S), int(PAGE.width * S)
    ink = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = (v * S for v in PAGE.label_zone(0, 2))
    cy = int((y0 + y1) / 2)
    v_x, one_x = int(x0 + 12), int(x0 + 40)
    cv2.polylines(ink, [np.int32([[v_x, cy - 15], [v_x + 8, cy + 12], [v_x + 16, cy - 15]])], False, 255, 3)
    cv2.line(ink, (one_x, cy - 15), (one_x, cy + 12), 255, 3)
    trace = None
    if trace_x is not None:
        base = int(PAGE.baselines_y[0] * S)
        tx = int(trace_x if not fused else v_x + 16)  # fused: the flank runs into the V's right arm
        trace = np.int32([[tx - 40, base], [tx, base], [tx + 3, int(y1) + 30], [tx + 6, base], [tx + 60, base]])
        cv2.polylines(ink, [trace], False, 255, 3)
    return ink.astype(np.float32) / 255.0, (int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))), (v_x, one_x, cy)


def test_letters_alone_are_removed_and_the_trace_through_the_box_kept():
    ink, (x0, y0, x1, y1), (v_x, one_x, cy) = _page_with_name(trace_x=None)
    assert ink[y0:y1, x0:x1].sum() > 0
    out = remove_lead_names(ink.copy(), S)
    assert out[y0:y1, x0:x1].sum() == 0

    ink, (x0, y0, x1, y1), (v_x, one_x, cy) = _page_with_name(trace_x=(x0 + x1) / 2 + 20)
    out = remove_lead_names(ink.copy(), S)
    box = out[y0:y1, x0:x1]
    assert box[:, v_x - x0 - 3:v_x - x0 + 20].sum() == 0 and box[:, one_x - x0 - 3:one_x - x0 + 4].sum() == 0
    tx = int((x0 + x1) / 2 + 20) - x0
    assert box[:, tx - 2:tx + 10].sum() > 0.8 * ink[y0:y1, x0 + tx - 2:x0 + tx + 10].sum()  # the S wave stays


def test_a_letter_fused_with_the_trace_zeroes_the_whole_box():
    ink, (x0, y0, x1, y1), _ = _page_with_name(trace_x=0, fused=True)
    out = remove_lead_names(ink.copy(), S)
    assert out[y0:y1, x0:x1].sum() == 0
    assert out.sum() > 0  # outside the box the trace is untouched
