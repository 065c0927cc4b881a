"""Layout detection: pages drawn without the calibration pulse get their signal span placed by the
trace itself; competition-look pages are left to the pulse registration."""
import dataclasses

import numpy as np
import pytest

from ecgdigit.config import LEADS, PAGE, lead_window, number_of_rows
from ecgdigit.digitized import lead_rows
from ecgdigit.metric import score_image
from ecgdigit.pipeline import Pipeline
from ecgdigit.stages.layout_detection import detect_layout, span_misfit
from ecgdigit.stages.layout_registration import shifted
from ecgdigit.synth.generate import make_image, random_record
from ecgdigit.synth.render import RenderStyle, render_page

SQ = PAGE.grid_major_px
# ECG-image-kit without the pulse: the trace starts where the pulse would have, no column ticks
NO_PULSE = dataclasses.replace(PAGE, signal_x0=PAGE.calib_x0)


def _no_pulse_image(seed, image_type="0001"):
    rng = np.random.default_rng(seed)
    rec = random_record(rng, str(seed))
    page = render_page(rec, rng, NO_PULSE, RenderStyle(show_calibration=False, show_ticks=False))
    im = make_image(rec, image_type, rng, page=page, orientation=0)
    # in the competition's frame the signal starts at PAGE.signal_x0: one square right of the physical page
    return rec, im, shifted(im.page_to_image, (-(PAGE.signal_x0 - PAGE.calib_x0), 0.0))


def test_span_misfit_counts_blank_inside_and_ink_outside():
    inked = np.zeros(100, bool)
    inked[20:80] = True
    assert span_misfit(inked, 20, 80, 5, 0, 100) == 0
    assert span_misfit(inked, 30, 90, 5, 0, 100) == 10 + 10 - 5  # 10 blank inside, 10 inked outside (5 free)
    assert span_misfit(inked, 10, 70, 5, 0, 100) == 10 + 10


@pytest.mark.parametrize("k", [-1, 0, 1])
def test_no_pulse_page_is_placed_by_its_signal_span(k):
    _, im, truth = _no_pulse_image(11)
    off = shifted(truth, (k * SQ, 0.0))
    found = detect_layout(off, im.image)
    assert found.kind == "signal span" and found.pulse_rows == 0
    np.testing.assert_allclose(found.shift_px, (-k * SQ, 0.0))


def test_competition_page_is_left_to_the_pulses():
    rng = np.random.default_rng(12)
    rec = random_record(rng, "12")
    im = make_image(rec, "0003", rng, orientation=0)
    found = detect_layout(im.page_to_image, im.image)
    assert found.kind == "competition" and found.pulse_rows >= 3 and found.shift_px == (0.0, 0.0)
    # its pulses' width says 25 mm/s: the layout read with is the competition's own, unchanged
    assert found.pulse_width_mm == pytest.approx(5.0, rel=0.15) and found.layout is PAGE


def test_pipeline_reads_a_no_pulse_colour_scan():
    rec, im, _ = _no_pulse_image(13, "0003")
    res = Pipeline().run(im.image)
    assert res.stage1.layout_found is not None and res.stage1.layout_found.kind == "signal span"
    preds = {lead: lead_rows(res.digitized, lead, rec.fs, number_of_rows(lead, rec.fs)) for lead in LEADS}
    truth = {lead: rec.signals[slice(*lead_window(lead, rec.fs)), k] for k, lead in enumerate(LEADS)}
    assert score_image(truth, preds, rec.fs).snr_db >= 15.0
