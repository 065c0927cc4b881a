"""The competition metric: host figures, hand-computed cases, and an independent slow reference."""
import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.signal

from ecgdigit import config, metric
from ecgdigit.metric import MetricError

CAPS = (config.PERFECT_SCORE_EARLY, config.PERFECT_SCORE)


# ---------------------------------------------------------------- helpers
def ecg_lead(fs=500, dur=10.0, bpm=70, phase=0.5, baseline=0.1):
    """ECG-like lead: Gaussian P/Q/R/S/T bumps at 70 bpm, R = 1 mV, on a 0.1 mV baseline."""
    t = np.arange(int(round(dur * fs))) / fs
    rr = 60.0 / bpm
    x = np.full_like(t, baseline)
    for beat in np.arange(-2, dur / rr + 2):
        t0 = beat * rr + phase
        for dt, amp, w in ((-0.2, 0.15, 0.025), (-0.03, -0.1, 0.008), (0.0, 1.0, 0.01),
                           (0.03, -0.25, 0.01), (0.25, 0.3, 0.04)):
            x += amp * np.exp(-0.5 * ((t - t0 - dt) / w) ** 2)
    return x


def lead_db(truth, pred, fs=500, cap=config.PERFECT_SCORE):
    s, n = metric.snr_per_lead(truth, pred, fs)
    return metric.to_db(metric.compute_snr(s, n, cap), cap)


def reference_powers(truth, pred, max_shift):
    """Slow reference written from the spec's Metric section (scipy correlate + Brent), one lead."""
    t = np.asarray(truth, float)
    p = np.asarray(pred, float)
    corr = scipy.signal.correlate(t - t.mean(), p - p.mean(), mode="full", method="direct")
    lags = scipy.signal.correlation_lags(t.size, p.size, mode="full")
    ok = np.abs(lags) <= max_shift
    best = corr[ok].max()
    lag = min((i for i in np.flatnonzero(corr == best)), key=lambda i: abs(lags[i]))
    k = int(lags[lag])
    aligned = np.concatenate([np.full(max(k, 0), np.nan), p[max(-k, 0):min(t.size - k, p.size)],
                              np.full(max(t.size - p.size - k, 0), np.nan)])
    v = scipy.optimize.minimize_scalar(lambda s: np.nansum((t - (aligned - s)) ** 2), method="brent").x
    aligned = np.nan_to_num(aligned - v, nan=0.0)
    return float(np.sum(t ** 2)), float(np.sum((t - aligned) ** 2)), k


def random_series(rng, fs):
    n = int(10 * fs)
    full = np.cumsum(rng.normal(0, 0.05, (n, 12)), axis=0) + np.sin(np.arange(n)[:, None] / fs * 7.0)
    df = pd.DataFrame(full, columns=list(config.LEADS))
    for lead in config.LEADS:
        a, b = config.lead_window(lead, fs)
        df.loc[np.r_[0:a, b:n], lead] = np.nan
    return df


def noisy_predictions(rng, series, fs, noise=0.1, max_shift=5):
    pred = {}
    for lead, w in metric.truth_windows(series, fs).items():
        k = int(rng.integers(-max_shift, max_shift + 1))
        pred[lead] = np.roll(w, k) + rng.normal(0, noise, w.size) + rng.normal(0, 0.3)
    return pred


# ---------------------------------------------------------------- the host's own docstring figures
HOST_IDS = ([f"343_{r}_{lead}" for lead in ("I", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
             for r in range(3)] + [f"343_{r}_II" for r in range(12)])
HOST_VALUES = [0.1, 0.3, 0.4, 0.6, 0.6, 0.4, 0.2, 0.3, 0.4, 0.5, 0.2, 0.7, 0.2, 0.3, 0.4, 0.8, 0.6, 0.7, 0.2,
               0.3, -0.1, 0.5, 0.6, 0.7, 0.2, 0.9, 0.4, 0.5, 0.6, 0.7, 0.1, 0.3, 0.4, 0.6, 0.6, 0.4, 0.2,
               0.3, 0.4, 0.5, 0.2, 0.7, 0.2, 0.3, 0.4]


def test_host_docstring_scores():
    sol = pd.DataFrame({"id": HOST_IDS, "fs": 1, "value": HOST_VALUES})
    sub = sol.copy()
    assert metric.score(sub, sol, 384).score_db == pytest.approx(25.8433, abs=1e-4)
    sub.loc[0, "value"] = 0.9
    assert metric.score(sub, sol, 384).score_db == pytest.approx(13.6291, abs=1e-4)
    sub.loc[4, "value"] = 0.3
    assert metric.score(sub, sol, 384).score_db == pytest.approx(13.0576, abs=1e-4)
    zero = sol.assign(value=0.0)
    assert metric.score(sub, zero, 384).score_db == -384  # signal 0 -> snr 0 -> floor
    assert metric.score(zero, zero, 384).score_db == pytest.approx(25.8433, abs=1e-4)  # noise 0 -> cap


@pytest.mark.parametrize("truth, pred, shift, expected", [
    ([0, 1, 2, 1, 0], [0, 1, 2, 1, 0], 10, [0, 1, 2, 1, 0]),
    ([0, 1, 2, 1, 0], [10, 11, 12, 11, 10], 10, [0, 1, 2, 1, 0]),
    ([0, 0, 1, 2, 1, 0, 0], [1, 2, 1, 0, 0, 0, 0], 10, [np.nan, np.nan, 1, 2, 1, 0, 0]),
    ([0, 0, 0, 0, 1, 2, 1], [1, 2, 1, 0, 0, 0, 0], 10, [np.nan] * 4 + [1, 2, 1]),
])
def test_host_docstring_alignment(truth, pred, shift, expected):
    got = metric.align_prediction(np.array(truth, float), np.array(pred, float), shift)
    np.testing.assert_allclose(got, expected, equal_nan=True, atol=1e-12)


# ---------------------------------------------------------------- against an independent reference
@pytest.mark.parametrize("n, max_shift", [(40, 8), (600, 50), (2500, 100)])  # direct and FFT paths
def test_matches_slow_reference(n, max_shift):
    rng = np.random.default_rng(n)
    for _ in range(6):
        t = np.cumsum(rng.normal(0, 0.1, n)) + rng.normal(0, 0.5)
        k = int(rng.integers(-max_shift - 5, max_shift + 6))
        p = np.roll(t, k) * rng.uniform(0.8, 1.2) + rng.normal(0, 0.05, n) + rng.normal(0, 1)
        s_ref, n_ref, lag_ref = reference_powers(t, p, max_shift)
        s, noise, lag = metric._powers_batch(t[None], p[None], max_shift)
        assert lag[0] == lag_ref
        assert s[0] == pytest.approx(s_ref, rel=1e-12)
        assert noise[0] == pytest.approx(n_ref, rel=1e-7)


def test_tie_takes_smallest_abs_lag_then_negative():
    t = np.array([0, 0, 0, 1, 1, 0, 0, 0.0])
    p = np.array([0, 0, 1, 0, 0, 1, 0, 0.0])
    corr = scipy.signal.correlate(t - t.mean(), p - p.mean())
    lags = scipy.signal.correlation_lags(8, 8)
    assert corr[lags == -1] == corr[lags == 1] == corr.max()  # a genuine tie
    _, _, lag = metric._powers_batch(t[None], p[None], 3)
    assert lag[0] == -1 == reference_powers(t, p, 3)[2]
    _, _, lag = metric._powers_batch(t[None], np.zeros((1, 8)), 3)  # all lags tie -> 0
    assert lag[0] == 0


# ---------------------------------------------------------------- hand-computed cases
@pytest.mark.parametrize("cap", CAPS)
def test_perfect_prediction_hits_cap(cap):
    x = ecg_lead(fs=250)
    truth = {lead: x[:config.number_of_rows(lead, 250)] * (1 + i / 10) for i, lead in enumerate(config.LEADS)}
    res = metric.score_image(truth, {k: v.copy() for k, v in truth.items()}, 250, perfect_score=cap)
    assert res.snr_linear == cap
    assert res.snr_db == pytest.approx(10 * np.log10(cap))
    assert all(v == 0 for v in res.lags.values())


def test_constant_offset_not_punished():
    x = ecg_lead()
    assert lead_db(x, x + 0.7) == pytest.approx(60.0)  # capped: the offset is removed exactly
    assert lead_db(x, x - 3.0, cap=384) == pytest.approx(10 * np.log10(384))


@pytest.mark.parametrize("k", [1, 7, 60])
def test_shift_sign_and_pad_energy(k):
    x = ecg_lead()
    n = x.size
    delayed = np.concatenate([np.full(k, 5.0), x[:-k]])  # prediction late by k samples
    s, noise, lag = metric._powers_batch(x[None], delayed[None], 100)
    assert lag[0] == -k  # realigned: aligned[j] = pred[j + k]
    assert s[0] == pytest.approx(np.sum(x ** 2))
    assert noise[0] == pytest.approx(np.sum(x[n - k:] ** 2), rel=1e-9)  # the uncovered end costs its energy
    early = np.concatenate([x[k:], np.full(k, -5.0)])  # prediction early by k samples
    s, noise, lag = metric._powers_batch(x[None], early[None], 100)
    assert lag[0] == k
    assert noise[0] == pytest.approx(np.sum(x[:k] ** 2), rel=1e-9)


def test_shift_beyond_window_is_not_realigned():
    x = ecg_lead(fs=250)
    _, _, lag = metric._powers_batch(x[None], np.roll(x, 80)[None], metric.max_shift_samples(250))
    assert abs(lag[0]) <= 50


def test_zero_prediction_about_zero_db():
    x = ecg_lead()
    expected = 10 * np.log10(np.sum(x ** 2) / np.sum((x - x.mean()) ** 2))  # offset fit leaves the mean
    assert lead_db(x, np.zeros_like(x)) == pytest.approx(expected, abs=1e-9)
    xc = x - x.mean()
    assert lead_db(xc, np.zeros_like(xc)) == pytest.approx(0.0, abs=1e-9)


def test_gaussian_noise_known_power():
    fs = 500
    t = np.arange(10 * fs) / fs
    x = np.sin(2 * np.pi * 1.3 * t) * 0.8  # power 0.32
    rng = np.random.default_rng(1)
    sigma = 0.1
    got = lead_db(x, x + rng.normal(0, sigma, x.size))
    assert got == pytest.approx(10 * np.log10(0.32 / sigma ** 2), abs=0.3)


def test_reference_figures_ecg_like_500hz():
    """The spec's figures for a 500 Hz ECG-like lead. They depend on the waveform (the energy of the
    uncovered end; mean vs variance for the gain error), so the tolerance is 1.5 dB."""
    x = ecg_lead()
    rng = np.random.default_rng(0)

    def delayed(k):
        return np.concatenate([np.full(k, x[0]), x[:-k]])

    assert lead_db(x, delayed(1)) == pytest.approx(44.0, abs=1.5)
    assert lead_db(x, delayed(20)) == pytest.approx(31.0, abs=1.5)
    assert lead_db(x, delayed(100)) == pytest.approx(12.9, abs=1.5)
    assert lead_db(x, 1.05 * x) == pytest.approx(28.5, abs=1.5)
    assert lead_db(x, x + rng.normal(0, 0.05, x.size)) == pytest.approx(13.3, abs=1.5)
    # ordering does not depend on the waveform
    assert lead_db(x, delayed(1)) > lead_db(x, delayed(20)) > lead_db(x, delayed(100))


# ---------------------------------------------------------------- records, long format, errors
def test_score_records_equals_host_format_score():
    rng = np.random.default_rng(3)
    truths, preds, long_truth, long_sub = {}, {}, [], []
    for i, fs in enumerate((250, 256, 250)):
        image_id = str(1000 + i)
        series = random_series(rng, fs)
        truths[image_id] = (series, fs)
        preds[image_id] = noisy_predictions(rng, series, fs, noise=0.05 * (i + 1))
        long_truth.append(metric.long_truth_from_series(image_id, series, fs))
        long_sub.append(pd.DataFrame({
            "id": [f"{image_id}_{r}_{lead}" for lead in config.LEADS for r in range(preds[image_id][lead].size)],
            "value": np.concatenate([preds[image_id][lead] for lead in config.LEADS])}))
    rec = metric.score_records(preds, truths)
    sub = pd.concat(long_sub).sample(frac=1.0, random_state=0)  # row order must not matter
    host = metric.score(sub, pd.concat(long_truth))
    assert host.score_db == pytest.approx(rec.score_db, abs=1e-9)
    np.testing.assert_allclose(host.per_image.set_index("id").loc[rec.per_image["id"], "snr_linear"],
                               rec.per_image["snr_linear"], rtol=1e-9)
    lin = rec.per_image["snr_linear"].to_numpy()
    assert rec.score_db == pytest.approx(10 * np.log10(lin.mean()))
    assert len(set(np.round(lin, 6))) == 3  # the images really differ


def test_short_leads_use_their_window_only():
    rng = np.random.default_rng(4)
    fs = 250
    series = random_series(rng, fs)
    windows = metric.truth_windows(series, fs)
    for lead in config.LEADS:
        a, b = config.lead_window(lead, fs)
        assert windows[lead].size == config.number_of_rows(lead, fs) == b - a
        np.testing.assert_array_equal(windows[lead], series[lead].to_numpy()[a:b])
    rep = metric.score_records({"7": windows}, {"7": (series, fs)}, perfect_score=384)
    assert rep.score_db == pytest.approx(10 * np.log10(384))
    bad = dict(windows, V6=series["V6"].to_numpy()[:config.number_of_rows("V6", fs)])  # wrong quarter: NaN
    with pytest.raises(MetricError, match="V6"):
        metric.score_records({"7": bad}, {"7": (series, fs)})


def test_missing_lead_error_or_fill():
    rng = np.random.default_rng(5)
    series = random_series(rng, 250)
    pred = metric.truth_windows(series, 250)
    del pred["aVL"]
    with pytest.raises(MetricError, match="aVL"):
        metric.score_records({"1": pred}, {"1": (series, 250)})
    rep = metric.score_records({"1": pred}, {"1": (series, 250)}, fill_missing=0.0)
    assert rep.per_image["snr_linear"].iloc[0] < config.PERFECT_SCORE


def _host_frames(rng, fs=250):
    series = random_series(rng, fs)
    truth = metric.long_truth_from_series("55", series, fs)
    sub = truth[["id", "value"]].copy()
    sub["value"] += rng.normal(0, 0.01, len(sub))
    return truth, sub


def test_nan_or_inf_in_submission_is_error():
    truth, sub = _host_frames(np.random.default_rng(6))
    for bad in (np.nan, np.inf):
        s = sub.copy()
        s.loc[17, "value"] = bad
        with pytest.raises(MetricError):
            metric.score(s, truth)
    with pytest.raises(MetricError):
        metric.score_image({"I": np.ones(5)}, {"I": np.array([1, 2, np.nan, 4, 5.0])}, 1, require_all_leads=False)


def test_incomplete_lead_ii_is_error():
    truth, sub = _host_frames(np.random.default_rng(7))
    assert metric.score(sub, truth).score_db > 20
    drop = sub["id"].str.endswith("_II") & sub["id"].str.startswith("55_24")
    with pytest.raises(MetricError, match="lead II"):
        metric.score(sub[~drop], truth)
    wrong_fs = truth.assign(fs=251)
    with pytest.raises(MetricError, match="fs"):
        metric.score(sub, wrong_fs)


def test_missing_lead_in_host_format_is_error():
    truth, sub = _host_frames(np.random.default_rng(8))
    with pytest.raises(MetricError, match="V3"):
        metric.score(sub[~sub["id"].str.endswith("_V3")], truth)


def test_score_image_checks_lengths():
    x = {lead: np.ones(config.number_of_rows(lead, 250)) for lead in config.LEADS}
    y = dict(x, V1=np.ones(10))
    with pytest.raises(MetricError, match="V1"):
        metric.score_image(x, y, 250)
