"""The same signals as a CSV in the competition's train-CSV shape (one column per lead, mV, an empty
cell where a lead has no value), so that spreadsheet users and the kit's own readers open it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_signals_csv(path: str | Path, signals_mv: np.ndarray, lead_names: list[str] | tuple[str, ...]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 4 decimals = 0.1 uV: finer than the record's 1 uV steps, so the CSV loses nothing the record keeps
    pd.DataFrame(np.asarray(signals_mv, dtype=np.float64), columns=list(lead_names)).to_csv(
        path, index=False, float_format="%.4f")
    return path
