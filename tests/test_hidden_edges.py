"""hidden_edges: a short lead's ends hidden under a separator bar are read from its other beats."""

import numpy as np

from ecgdigit.config import DURATION_S, LEADS, PAGE
from ecgdigit.digitized import Digitized
from ecgdigit.stages.hidden_edges import MAX_HIDDEN_S, beat_copy, fill_hidden_edges
from ecgdigit.stages.signal_assembly import assemble_leads
from ecgdigit.stages.trace_reading import RowCurve, signal_columns

FS = 200.0
HIDDEN_S = 0.02  # what a bar hides of each lead at a switch


def _beats(t, first, rr, shape):
    """A periodic wave: shape(t - beat) summed over beats at first + k rr."""
    return sum(shape(t - b) for b in np.arange(first, DURATION_S + rr, rr))


def _qrs(dt):
    return 1.5 * np.exp(-0.5 * (dt / 0.012) ** 2)


def _v_wave(dt):  # a biphasic chest-lead QRS and a T wave
    return -0.9 * dt / 0.012 * np.exp(-0.5 * (dt / 0.012) ** 2) + 0.3 * np.exp(-0.5 * ((dt - 0.25) / 0.04) ** 2)


def _page(hidden_s=HIDDEN_S):
    """A 3x4 + II page's reading whose beats put a QRS on the switch at 7.5 s: V1 (5-7.5 s) and V4
    (7.5-10 s) hide `hidden_s` at that switch, each carried flat across it from its seen edge."""
    t = np.arange(int(DURATION_S * FS)) / FS
    truth = np.zeros((len(t), len(LEADS)))
    truth[:, LEADS.index("II")] = _beats(t, 0.29, 0.8, _qrs)  # beats at ..., 6.69, 7.49 s
    for lead in ("V1", "V4"):
        truth[:, LEADS.index(lead)] = _beats(t, 0.29, 0.8, _v_wave)
    read = truth.copy()
    windows = {"II": (0.0, DURATION_S), "V1": (5.0, 7.5), "V4": (7.5, 10.0)}
    seen = {"II": (0.005, DURATION_S - 0.005), "V1": (5.0 + hidden_s, 7.5 - hidden_s), "V4": (7.5 + hidden_s, 10.0 - 0.005)}
    for lead in ("V1", "V4"):
        j = LEADS.index(lead)
        a, b = seen[lead]
        read[t < a, j] = read[np.searchsorted(t, a), j]
        read[t > b, j] = read[np.searchsorted(t, b, side="right") - 1, j]
    d = Digitized(read.astype(np.float32), FS, lead_windows=windows, seen_spans=seen)
    return t, truth, d


def test_a_qrs_hidden_at_a_lead_switch_is_read_from_the_leads_other_beats():
    t, truth, d = _page()
    out = fill_hidden_edges(d)
    for lead, hidden in (("V1", (t > 7.48) & (t < 7.5)), ("V4", (t >= 7.5) & (t < 7.52))):
        j = LEADS.index(lead)
        before = np.abs(d.signals[hidden, j] - truth[hidden, j]).max()
        after = np.abs(out.signals[hidden, j] - truth[hidden, j]).max()
        assert before > 0.3 and after < 0.02, (lead, before, after)


def test_only_hidden_samples_at_a_switch_inside_the_record_change():
    t, truth, d = _page()
    out = fill_hidden_edges(d)
    changed = np.abs(out.signals - d.signals).max(axis=0) > 1e-6
    assert [LEADS[j] for j in np.flatnonzero(changed)] == ["V1", "V4"]
    for lead in ("V1", "V4"):
        j = LEADS.index(lead)
        a, b = d.seen_spans[lead]
        seen = (t >= a) & (t <= b)
        np.testing.assert_array_equal(out.signals[seen, j], d.signals[seen, j])
    # V4's end is the record's end: no beat follows it to copy from
    j = LEADS.index("V4")
    np.testing.assert_array_equal(out.signals[t > 9.99, j], d.signals[t > 9.99, j])


def test_a_hidden_stretch_longer_than_a_bar_is_left_to_the_assembly():
    _, _, d = _page(hidden_s=MAX_HIDDEN_S + 0.02)
    np.testing.assert_array_equal(fill_hidden_edges(d).signals, d.signals)


def test_a_simultaneous_page_or_one_without_a_rhythm_strip_is_left_alone():
    _, _, d = _page()
    sim = Digitized(d.signals, d.fs, simultaneous_columns=True, lead_windows=d.lead_windows, seen_spans=d.seen_spans)
    np.testing.assert_array_equal(fill_hidden_edges(sim).signals, d.signals)
    short_ii = dict(d.lead_windows, II=(0.0, 2.5))
    no_strip = Digitized(d.signals, d.fs, lead_windows=short_ii, seen_spans=d.seen_spans)
    np.testing.assert_array_equal(fill_hidden_edges(no_strip).signals, d.signals)


def test_beat_copy_uses_one_fiducial_for_the_whole_block():
    x = np.arange(100, dtype=float)
    peaks = np.array([10, 40, 70])
    # the block straddles the midpoint between two peaks: all of it is copied from the same beats
    est = beat_copy(x, np.array([53, 54, 55, 56, 57]), peaks, (0, 50))
    np.testing.assert_allclose(np.diff(est), 1.0)
    assert beat_copy(x, np.array([95, 96]), peaks, (90, 100)) is None


def test_assembly_records_where_each_lead_was_seen():
    scale = 2.0
    xs = signal_columns(scale).astype(float)
    curves = []
    for r, base in enumerate(PAGE.baselines_y):
        found = np.ones(len(xs), bool)
        found[(xs / scale > PAGE.time_to_x(7.5) - 4) & (xs / scale < PAGE.time_to_x(7.5) + 4)] = False  # a bar
        curves.append(RowCurve(r, xs, np.full(len(xs), base * scale), found))
    d = assemble_leads(curves, scale)
    a, b = d.seen_spans["V1"]
    assert 5.0 <= a < 5.01 and 7.47 < b < 7.49
    a, b = d.seen_spans["V4"]
    assert 7.51 < a < 7.53 and b > 9.99


def test_a_hidden_end_far_from_any_qrs_keeps_the_assemblys_carry():
    x = np.arange(100, dtype=float)
    peaks = np.array([10, 40, 70])
    assert beat_copy(x, np.array([53, 54]), peaks, (0, 50), reach=5) is None
    assert beat_copy(x, np.array([43, 44]), peaks, (0, 40), reach=5) is not None


def test_a_premature_beat_is_neither_copied_into_nor_from():
    """A PVC's shape is not its neighbours': a hidden end at a premature beat keeps the assembly's
    carry, and no other beat's copy averages a premature one in."""
    peaks = np.array([100, 500, 900, 1150, 1700, 2100])  # 1150 comes 250 samples after 900: premature
    x = np.zeros(2500)
    x[peaks + 5] = 1.0  # every beat's shape: 1.0 five samples after its peak
    x[1150 + 5] = -3.0  # ... but the premature one's
    shown = (0, 2500)
    assert beat_copy(x, np.arange(1150, 1160), peaks, shown) is None
    est = beat_copy(x, np.arange(1700, 1710), peaks, shown)
    np.testing.assert_allclose(est[5], 1.0)  # the mean over 100, 500, 900, 2100: no -3.0 in it
