"""Write 12-lead signals as a WFDB record (.hea + .dat), the PhysioNet standard, with PhysioNet's own
`wfdb` package so that every WFDB reader (wfdb-python, the WFDB C library, PhysioNet's viewers) opens it."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# 1000 digital units per mV = 1 uV steps, as PTB-XL's records; format 16 holds +-32.767 mV with
# -32768 kept for missing samples (NaN in, NaN out)
ADC_GAIN_PER_MV = 1000.0
WFDB_FORMAT = "16"
MAX_ABS_MV = 32767 / ADC_GAIN_PER_MV
_NOT_ALLOWED_IN_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def record_name_for(stem: str) -> str:
    """A WFDB record name for a file stem: wfdb accepts only letters, digits, '-' and '_' there."""
    name = _NOT_ALLOWED_IN_NAME.sub("_", stem).strip("_")
    return name or "page"


def write_wfdb_record(out_dir: str | Path, record_name: str, signals_mv: np.ndarray, fs: int,
                      lead_names: list[str] | tuple[str, ...], comments: list[str] | None = None) -> Path:
    """signals_mv: (n_samples, n_leads) in mV, NaN where a lead has no value. Returns the .hea path."""
    import wfdb  # imported here: the Kaggle notebook imports every module but never writes records

    signals = np.asarray(signals_mv, dtype=np.float64)
    if signals.ndim != 2 or signals.shape[1] != len(lead_names):
        raise ValueError(f"signals must be (n, {len(lead_names)}), got {signals.shape}")
    if record_name != record_name_for(record_name):
        raise ValueError(f"record name {record_name!r}: only letters, digits, '-' and '_' are allowed")
    # format 16 cannot hold more; a reading that large is wrong anyway (ECGs stay within a few mV)
    signals = np.clip(signals, -MAX_ABS_MV, MAX_ABS_MV)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_leads = len(lead_names)
    # wfdb writes one comment per header line: a newline inside one would break the header
    comments = [" ".join(str(c).split()) for c in (comments or [])]
    wfdb.wrsamp(record_name, fs=fs, units=["mV"] * n_leads, sig_name=list(lead_names), p_signal=signals,
                fmt=[WFDB_FORMAT] * n_leads, adc_gain=[ADC_GAIN_PER_MV] * n_leads, baseline=[0] * n_leads,
                comments=comments, write_dir=str(out_dir))
    return out_dir / f"{record_name}.hea"
