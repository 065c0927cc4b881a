"""Real signals as the renderer's source: a folder of truth CSVs in the competition's train format.

Accepted layouts (12 lead columns, NaN outside each short lead's printed window, II complete):
  - realdev's / a synthetic hold-out's   DIR/test_truth/{id}.csv  (fs from DIR/test.csv)
  - a folder of such CSVs                DIR/{id}.csv             (fs from ../test.csv, else II's length / 10 s)
  - the competition's train set          DIR/train/{id}/{id}.csv  (fs from DIR/train.csv)
A short lead is only known inside its window; the renderer draws only that window on a page with
consecutive columns, so the rest is filled with the window's edge values (a flat line, never drawn).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DURATION_S, LEADS
from .truth import EcgRecord


def _fs_table(csv: Path) -> dict[str, int]:
    if not csv.is_file():
        return {}
    df = pd.read_csv(csv, dtype={"id": str})
    return {str(i): int(f) for i, f in df.groupby("id", sort=False)["fs"].first().items()}


def truth_files(folder: str | Path) -> list[tuple[str, Path, int | None]]:
    """(id, csv path, fs or None) of every truth CSV under `folder`, sorted by id."""
    root = Path(folder)
    if (root / "test_truth").is_dir():
        fs = _fs_table(root / "test.csv")
        items = [(p.stem, p, fs.get(p.stem)) for p in (root / "test_truth").glob("*.csv")]
    elif (root / "train").is_dir():
        fs = _fs_table(root / "train.csv")
        items = [(d.name, d / f"{d.name}.csv", fs.get(d.name)) for d in (root / "train").iterdir()
                 if (d / f"{d.name}.csv").is_file()]
    else:
        fs = _fs_table(root.parent / "test.csv")
        items = [(p.stem, p, fs.get(p.stem)) for p in root.glob("*.csv")]
    items = [it for it in items if it[0] != "image_types"]
    if not items:
        raise FileNotFoundError(f"{root}: no truth CSVs (test_truth/*.csv, train/*/*.csv or *.csv)")
    return sorted(items)


def load_truth_record(path: str | Path, record_id: str, fs: int | None = None) -> EcgRecord:
    """One truth CSV as a complete EcgRecord (gaps filled with each lead's nearest known value)."""
    df = pd.read_csv(path)
    missing = [ld for ld in LEADS if ld not in df.columns]
    if missing:
        raise ValueError(f"{path}: lead column(s) {missing} missing")
    sig = df[list(LEADS)].to_numpy(np.float64)
    if fs is None:
        fs = int(round(np.isfinite(sig[:, LEADS.index("II")]).sum() / DURATION_S))
    n = int(round(DURATION_S * fs))
    if sig.shape[0] < n:
        raise ValueError(f"{path}: {sig.shape[0]} rows, expected {n} (10 s at {fs} Hz)")
    sig = sig[:n]
    for j in range(12):
        ok = np.flatnonzero(np.isfinite(sig[:, j]))
        if ok.size == 0:
            sig[:, j] = 0.0
        elif ok.size < n:
            sig[:, j] = np.interp(np.arange(n), ok, sig[ok, j])  # flat beyond the window's ends
    return EcgRecord(str(record_id), int(fs), sig.astype(np.float32))


class TruthSignalSource:
    """Draws real records from a truth folder (see the module docstring) for the renderer."""

    def __init__(self, folder: str | Path):
        self.items = truth_files(folder)

    def __len__(self) -> int:
        return len(self.items)

    def record(self, k: int) -> EcgRecord:
        rid, path, fs = self.items[k]
        return load_truth_record(path, rid, fs)

    def draw(self, rng: np.random.Generator) -> EcgRecord:
        return self.record(int(rng.integers(len(self.items))))
