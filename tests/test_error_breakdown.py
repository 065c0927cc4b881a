"""Where a reading's error lies (ecgdigit.error_breakdown): each kind of error lands in its class."""
import numpy as np
import pandas as pd

from ecgdigit.config import LEADS, lead_window
from ecgdigit.error_breakdown import CLASSES, image_errors, lead_errors, sample_classes, summarize

FS = 500


def _ecg(n: int, seed: int = 0) -> np.ndarray:
    """A spiky periodic trace: flat stretches and 1.5 mV QRS-like spikes every 0.8 s."""
    t = np.arange(n) / FS
    rng = np.random.default_rng(seed)
    phase = (t + rng.uniform(0, 0.8)) % 0.8
    return 1.5 * np.exp(-0.5 * ((phase - 0.4) / 0.012) ** 2) + 0.1 * np.sin(2 * np.pi * 0.3 * t)


def test_classes_edges_first_then_steep_flanks():
    truth = _ecg(1250)
    cls = sample_classes(truth, FS)
    assert (cls[:20] == CLASSES.index("edge")).all() and (cls[-20:] == CLASSES.index("edge")).all()
    steep = cls == CLASSES.index("steep")
    assert steep.any() and (np.abs(np.gradient(truth, 1 / FS))[steep] > 2.5).all()


def test_an_error_at_the_start_is_all_edge_and_a_flank_error_is_steep():
    truth = _ecg(1250)
    start = truth.copy()
    start[:10] -= 1.0  # the start transient read as the baseline
    le = lead_errors("V1", truth, start, FS)
    assert le.error["edge"] / sum(le.error.values()) > 0.95
    flank = truth.copy()
    cls = sample_classes(truth, FS)
    idx = np.flatnonzero(cls == CLASSES.index("steep"))
    flank[idx] += 0.2 * (-1.0) ** np.arange(len(idx))  # zero mean: the metric's offset removal leaves it alone
    le = lead_errors("V1", truth, flank, FS)
    assert le.error["steep"] / sum(le.error.values()) > 0.95


def test_gain_and_leads_under_10_db():
    truth = _ecg(1250, seed=3)
    tall = lead_errors("V2", truth, 1.25 * truth, FS)
    assert abs(tall.gain - 0.8) < 1e-6
    flat = lead_errors("V3", truth, np.zeros_like(truth), FS)
    assert flat.snr_db < 10
    b = summarize([tall, flat])
    assert b.n_leads == 2 and b.n_leads_under_10db == 1
    assert abs(sum(b.share.values()) - 1.0) < 1e-9


def test_image_errors_reads_the_truth_csv_layout():
    n = 10 * FS
    series = pd.DataFrame({lead: np.nan for lead in LEADS}, index=range(n))
    preds = {}
    for k, lead in enumerate(LEADS):
        a, b = lead_window(lead, FS)
        series.loc[a:b - 1, lead] = _ecg(b - a, seed=k)
        preds[lead] = series[lead].to_numpy()[a:b]
    leads = image_errors(series, preds, FS, "x")
    assert [le.lead for le in leads] == list(LEADS)
    assert all(le.snr_db == np.inf for le in leads)  # a perfect reading
