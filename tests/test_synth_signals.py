import time

import numpy as np
import pytest
from scipy.signal import find_peaks

from ecgdigit.config import LEADS, SAMPLING_RATES
from ecgdigit.synth.signals import SignalParams, draw_params, simulate_record

QUIET = dict(emg_mv=0.0, wander_mv=0.0, powerline_mv=0.0)


def L(rec, name):
    return rec.signals[:, LEADS.index(name)].astype(np.float64)


@pytest.mark.parametrize("fs", SAMPLING_RATES)
def test_shape_dtype_and_lead_algebra(fs):
    rec = simulate_record(np.random.default_rng(fs), fs, record_id="abc")
    assert rec.record_id == "abc" and rec.fs == fs
    assert rec.signals.shape == (int(round(10 * fs)), 12)
    assert rec.signals.dtype == np.float32
    assert np.all(np.isfinite(rec.signals))
    # Einthoven and Goldberger, noise included
    assert np.max(np.abs(L(rec, "I") + L(rec, "III") - L(rec, "II"))) < 1e-5
    assert np.max(np.abs(L(rec, "aVR") + L(rec, "aVL") + L(rec, "aVF"))) < 1e-5
    assert np.max(np.abs(L(rec, "aVL") - (L(rec, "I") - L(rec, "III")) / 2)) < 1e-5
    assert np.max(np.abs(L(rec, "aVF") - (L(rec, "II") + L(rec, "III")) / 2)) < 1e-5


def test_same_seed_same_record_and_different_seeds_differ():
    a = simulate_record(np.random.default_rng(1), 500)
    b = simulate_record(np.random.default_rng(1), 500)
    c = simulate_record(np.random.default_rng(2), 500)
    assert np.array_equal(a.signals, b.signals)
    assert not np.allclose(a.signals, c.signals)


def test_realistic_amplitudes_over_many_records():
    rng = np.random.default_rng(10)
    r_v5, ptp_ii, avr_neg = [], [], []
    for _ in range(40):
        rec = simulate_record(rng, 250, conduction="normal", rhythm="sinus", voltage_scale=1.0, **QUIET)
        r_v5.append(max(L(rec, "V4").max(), L(rec, "V5").max()))
        ptp_ii.append(np.ptp(L(rec, "II")))
        avr = L(rec, "aVR")
        avr_neg.append(-avr.min() > avr.max())
    r_v5, ptp_ii = np.array(r_v5), np.array(ptp_ii)
    assert 0.8 < np.median(r_v5) < 2.6 and r_v5.max() < 4.0
    assert 0.5 < np.median(ptp_ii) < 2.5
    assert np.mean(avr_neg) > 0.7  # aVR mostly negative


def test_noise_and_wander_are_small():
    rng = np.random.default_rng(3)
    for _ in range(5):
        p = draw_params(rng, rhythm="sinus")
        clean = simulate_record(np.random.default_rng(5), 500, params=p, **QUIET)
        noisy = simulate_record(np.random.default_rng(5), 500, params=p)
        diff = noisy.signals.astype(np.float64) - clean.signals
        assert np.max(np.abs(diff)) < 0.6
        assert np.std(diff) < 0.2


def _rate(rec):
    """Beats per minute from the spatial QRS energy (independent of the lead polarities)."""
    e = np.sqrt(sum(np.gradient(L(rec, n)) ** 2 for n in ("I", "II", "V2", "V5")))
    peaks, _ = find_peaks(e, height=0.4 * e.max(), distance=int(0.2 * rec.fs))
    # merge the two slope peaks of one QRS
    qrs = peaks[np.r_[True, np.diff(peaks) > int(0.12 * rec.fs)]]
    return 60.0 * rec.fs / np.median(np.diff(qrs)), np.diff(qrs) / rec.fs


@pytest.mark.parametrize("hr", [45.0, 75.0, 150.0])
def test_heart_rate_is_respected(hr):
    rec = simulate_record(np.random.default_rng(int(hr)), 500, heart_rate=hr, rhythm="sinus",
                          conduction="normal", **QUIET)
    est, _ = _rate(rec)
    assert abs(est - hr) / hr < 0.08


def test_atrial_fibrillation_is_irregular():
    cv_af, cv_sinus = [], []
    for seed in range(4):
        af = simulate_record(np.random.default_rng(seed), 500, heart_rate=90, rhythm="afib",
                             conduction="normal", **QUIET)
        sr = simulate_record(np.random.default_rng(seed), 500, heart_rate=90, rhythm="sinus",
                             conduction="normal", **QUIET)
        rr_af, rr_sr = _rate(af)[1], _rate(sr)[1]
        cv_af.append(np.std(rr_af) / np.mean(rr_af))
        cv_sinus.append(np.std(rr_sr) / np.mean(rr_sr))
    assert np.mean(cv_af) > 0.08 > np.mean(cv_sinus)


def test_wide_qrs_modes_are_wider():
    def width(conduction):
        rec = simulate_record(np.random.default_rng(4), 1000, heart_rate=60, rhythm="sinus",
                              conduction=conduction, **QUIET)
        e = np.abs(np.gradient(L(rec, "V1"))) + np.abs(np.gradient(L(rec, "V6")))
        return np.mean(e > 0.15 * e.max())
    assert width("lbbb") > 1.3 * width("normal")
    assert width("rbbb") > 1.3 * width("normal")


def test_bad_arguments_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="unknown SignalParams"):
        simulate_record(rng, 500, heart_rte=60)
    with pytest.raises(ValueError, match="rhythm"):
        SignalParams(rhythm="vfib")
    with pytest.raises(ValueError, match="fs"):
        simulate_record(rng, 0)


def test_speed():
    rng = np.random.default_rng(0)
    simulate_record(rng, 500)
    t0 = time.perf_counter()
    for _ in range(20):
        simulate_record(rng, 500)
    per = (time.perf_counter() - t0) / 20
    assert per < 0.05, f"{per * 1000:.1f} ms per record"
