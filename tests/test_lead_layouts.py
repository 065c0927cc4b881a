"""Lead arrangements (lead_layouts.LEAD_LAYOUTS): every one the kit claims is drawn by the generator,
found by layout detection (arrangement, the calibration pulse's side, the gain from its height) and
read back by the pipeline."""

import numpy as np
import pytest

from ecgdigit.config import LEADS, PAGE
from ecgdigit.digitized import Digitized
from ecgdigit.lead_layouts import COMPETITION, LEAD_LAYOUTS, columns_may_be_simultaneous, source_segments
from ecgdigit.pipeline import Pipeline
from ecgdigit.record_signals import record_signals
from ecgdigit.stages.layout_detection import detect_layout, nearest_gain
from ecgdigit.stages.layout_registration import shifted
from ecgdigit.stages.lead_physics import reconcile_limb_leads
from ecgdigit.synth.generate import make_image, random_record
from ecgdigit.synth.render import RenderStyle, arranged_layout, render_page
from helpers import load_tool


def _page(arrangement, pulse, gain, seed, image_type="0001"):
    rng = np.random.default_rng(seed)
    rec = random_record(rng, str(seed), fs=500)
    layout = arranged_layout(arrangement, pulse, gain)
    page = render_page(rec, rng, layout, RenderStyle(show_calibration=pulse != "none"))
    im = make_image(rec, image_type, rng, page=page, orientation=0)
    # in the frame the kit reads in, the signal starts at PAGE.signal_x0
    return rec, im, shifted(im.page_to_image, (layout.signal_x0 - PAGE.signal_x0, 0.0))


def test_every_arrangement_prints_each_lead_once_as_its_source():
    for name, lay in LEAD_LAYOUTS.items():
        assert set(source_segments(lay.rows)) == set(LEADS), name
        assert len(lay.baselines_y) == len(lay.rows) and list(lay.baselines_y) == sorted(lay.baselines_y)
    assert LEAD_LAYOUTS[COMPETITION].page() == PAGE  # the competition's page is config.PAGE, unchanged
    assert columns_may_be_simultaneous(LEAD_LAYOUTS["3x4+1"].rows) and columns_may_be_simultaneous(LEAD_LAYOUTS["3x4+3"].rows)
    assert not columns_may_be_simultaneous(LEAD_LAYOUTS["6x2"].rows)
    assert [nearest_gain(g) for g in (4.6, 9.0, 11.5, 18.0)] == [5.0, 10.0, 10.0, 20.0]


def test_a_6x2_reading_records_5_s_windows_and_reconciles_limb_leads_there():
    fs, n = 500.0, 5000
    rng = np.random.default_rng(0)
    i, ii = rng.normal(size=n), rng.normal(size=n)
    limb = {"I": i, "II": ii, "III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}
    sig = np.zeros((n, 12), np.float32)
    for lead, v in limb.items():
        sig[:, LEADS.index(lead)] = v
    noisy = (sig + 0.1 * rng.normal(size=sig.shape)).astype(np.float32)
    windows = {lead: (0.0, 5.0) if k < 6 else (5.0, 10.0) for k, lead in enumerate(LEADS)}
    d = reconcile_limb_leads(Digitized(noisy, fs, lead_windows=windows))
    first = slice(0, 2500)
    assert np.abs(d.signals[first, :6] - sig[first, :6]).std() < 0.8 * np.abs(noisy[first, :6] - sig[first, :6]).std()
    np.testing.assert_array_equal(d.signals[2500:, :6], noisy[2500:, :6])  # nothing printed there to reconcile
    rs = record_signals(d, 500)
    assert np.isfinite(rs[:2500, 0]).all() and np.isnan(rs[2500:, 0]).all()
    assert np.isnan(rs[:2500, 6]).all() and np.isfinite(rs[2500:, 6]).all()


# every arrangement, the pulse at either end or none, every gain the kit reads
CASES = [
    ("3x4+1", "end", 10.0), ("3x4+1", "end", 20.0), ("3x4+1", "start", 5.0),
    ("3x4+3", "end", 10.0), ("3x4+3", "none", 10.0),
    ("6x2", "start", 10.0), ("6x2", "end", 5.0), ("6x2", "none", 10.0),
    ("12x1", "end", 5.0), ("12x1", "start", 5.0),
]


@pytest.mark.parametrize("arrangement,pulse,gain", CASES)
def test_each_generated_layout_is_found_on_its_true_geometry(arrangement, pulse, gain):
    _, im, frame = _page(arrangement, pulse, gain, seed=31)
    found = detect_layout(frame, im.image)
    assert found.kind == "signal span"
    assert (found.arrangement, found.pulse_side) == (arrangement, pulse)
    assert found.shift_px == (0.0, 0.0)
    if pulse != "none":
        assert found.layout.mm_per_mv == gain and found.pulse_height_mm == pytest.approx(gain, rel=0.1)


# SNR floors about 3 dB under what `python -m pytest -s tests/test_lead_layouts.py -k pipeline` measured
# on these pages (23.70, 25.62, 16.29, 9.59 dB): rows packed tighter (6, 12) cross each other's tall
# waves, and 12x1's aVR starts on the row above's stroke here
READ_CASES = {
    "3x4+1": ("end", 10.0, 20.5),
    "3x4+3": ("end", 10.0, 22.5),
    "6x2": ("start", 5.0, 13.0),
    "12x1": ("end", 5.0, 6.5),
}


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline.load()


@pytest.mark.parametrize("arrangement", list(READ_CASES))
def test_the_pipeline_finds_and_reads_each_generated_layout(pipeline, arrangement):
    pulse, gain, floor = READ_CASES[arrangement]
    rec, im, _ = _page(arrangement, pulse, gain, seed=41, image_type="0003")
    res = pipeline.run(im.image)
    found = res.stage1.layout_found
    assert found is not None and (found.arrangement, found.pulse_side, found.layout.mm_per_mv) == (arrangement, pulse, gain)
    snr = load_tool("bench_layouts").printed_snr_db(rec.signals, res.digitized, rec.fs)
    print(f"{arrangement}: {found.describe()}: {snr:.2f} dB")
    assert snr >= floor
