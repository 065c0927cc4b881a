"""Validate a submission FILE against test.csv in bounded memory (the hidden test set: ~22 M rows).

Reading 22 M ids as one table of Python strings took ~8 GB. Here the file is read in chunks; each
chunk's ids are compared with the ids expected at the same positions, which is all a file written by
our writer (test.csv order) needs. Only when that comparison fails is the file read a second time,
order-free: every id is turned into its position in test.csv's expansion (image code, lead code,
row) and a one-byte-per-row table counts what was seen, which gives exact missing / duplicated /
unexpected counts with examples.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .submission import SUBMISSION_COLUMNS, SubmissionError

CHECK_CHUNK_ROWS = 1 << 20  # rows parsed per chunk: ~150 MB of strings at a time
N_EXAMPLES = 3


class _Expansion:
    """test.csv's expansion into submission ids, addressable by position without materializing it."""

    def __init__(self, test: pd.DataFrame):
        self.image = test["id"].astype(str).to_numpy(object)
        self.lead = test["lead"].astype(str).to_numpy(object)
        self.n = test["number_of_rows"].to_numpy(np.int64)
        self.end = np.cumsum(self.n)
        self.start = self.end - self.n
        self.total = int(self.end[-1]) if len(self.end) else 0
        self._row_text = np.array([str(i) for i in range(int(self.n.max()) if len(self.n) else 1)], dtype=object)

    def ids(self, a: int, b: int) -> np.ndarray:
        """The expected ids at positions a..b-1 (b clipped to the total), object array of str."""
        b = min(b, self.total)
        if b <= a:
            return np.array([], dtype=object)
        pos = np.arange(a, b, dtype=np.int64)
        k = np.searchsorted(self.end, pos, side="right")  # the test.csv row of each position
        rows = pos - self.start[k]
        return (self.image[k] + "_") + self._row_text[rows] + ("_" + self.lead[k])

    def keys(self, ids: pd.Series) -> np.ndarray:
        """Each id's position in the expansion, -1 where it is not one of test.csv's ids."""
        parts = ids.astype(str).str.rsplit("_", n=2, expand=True)
        if parts.shape[1] != 3:
            return np.full(len(ids), -1, np.int64)
        images = pd.Index(pd.unique(self.image))
        leads = pd.Index(pd.unique(self.lead))
        img = images.get_indexer(parts[0].fillna(""))
        led = leads.get_indexer(parts[2].fillna(""))
        pair = np.full((len(images), len(leads)), -1, np.int64)
        pair[images.get_indexer(self.image), leads.get_indexer(self.lead)] = np.arange(len(self.image))
        row = pd.to_numeric(parts[1], errors="coerce").to_numpy(np.float64)
        ok = (img >= 0) & (led >= 0) & np.isfinite(row)
        k = np.where(ok, pair[np.maximum(img, 0), np.maximum(led, 0)], -1)
        ok &= k >= 0
        r = np.where(ok, row, -1).astype(np.int64)
        ok &= (r >= 0) & (r < np.where(k >= 0, self.n[np.maximum(k, 0)], 0))
        # "X_007_II" is not "X_7_II": the host merges on the id text
        ok &= parts[1].fillna("").to_numpy(object) == self._row_text[np.clip(r, 0, len(self._row_text) - 1)]
        return np.where(ok, self.start[np.maximum(k, 0)] + r, -1)


def _chunks(path: Path, chunk_rows: int):
    """(ids: Series of str, values: float64 array, NaN where not a number) per chunk."""
    reader = pd.read_csv(path, dtype={"id": str}, keep_default_na=False, na_values=["", "nan", "NaN"],
                         chunksize=chunk_rows)
    for chunk in reader:
        values = pd.to_numeric(chunk["value"], errors="coerce")
        yield chunk["id"].astype(str), values.to_numpy(np.float64)


def _examples(values) -> list:
    return [str(v) for v in list(values)[:N_EXAMPLES]]


def check_submission_file(path: str | os.PathLike, test: pd.DataFrame, *,
                          chunk_rows: int = CHECK_CHUNK_ROWS) -> tuple[list[str], int, int]:
    """(problems, rows in the file, rows expected) of a submission file, read in chunks of chunk_rows;
    no problems: valid.

    Raises SubmissionError for a file that cannot be read as CSV or whose columns are not id,value.
    """
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: submission file not found")
    try:
        columns = list(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SubmissionError(f"{path}: cannot parse as CSV ({e})") from None
    if columns != list(SUBMISSION_COLUMNS):
        raise SubmissionError(f"{path}: columns must be exactly {list(SUBMISSION_COLUMNS)}, got {columns}")
    expansion = _Expansion(test)
    try:
        problems, n_rows = _check_in_order(path, expansion, chunk_rows)
        if problems is None:
            problems, n_rows = _check_any_order(path, expansion, chunk_rows)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SubmissionError(f"{path}: cannot parse as CSV ({e})") from None
    return problems, n_rows, expansion.total


def _value_problem(n_bad: int, bad_ids: list[str]) -> list[str]:
    return [f"{n_bad} non-finite or non-numeric value(s), e.g. ids {bad_ids}"] if n_bad else []


def _check_in_order(path: Path, expansion: _Expansion, chunk_rows: int) -> tuple[list[str] | None, int]:
    """Problems when every id sits at its test.csv position; None as soon as one does not."""
    pos = n_bad = 0
    bad_ids: list[str] = []
    for ids, values in _chunks(path, chunk_rows):
        want = expansion.ids(pos, pos + len(ids))
        if len(want) != len(ids) or not np.array_equal(ids.to_numpy(object), want):
            return None, 0
        bad = ~np.isfinite(values)
        if bad.any():
            n_bad += int(bad.sum())
            bad_ids += _examples(ids[bad][: N_EXAMPLES - len(bad_ids)])
        pos += len(ids)
    if pos != expansion.total:
        return None, 0
    return _value_problem(n_bad, bad_ids), pos


def _check_any_order(path: Path, expansion: _Expansion, chunk_rows: int) -> tuple[list[str], int]:
    seen = np.zeros(expansion.total, np.uint8)
    n_rows = n_dup = n_extra = n_bad = 0
    dup_ex: list[str] = []
    extra_ex: list[str] = []
    bad_ids: list[str] = []
    for ids, values in _chunks(path, chunk_rows):
        n_rows += len(ids)
        keys = expansion.keys(ids)
        extra = keys < 0
        if extra.any():
            n_extra += int(extra.sum())
            extra_ex += _examples(ids[extra][: N_EXAMPLES - len(extra_ex)])
        k = keys[~extra]
        order = np.argsort(k, kind="stable")
        again = np.zeros(len(k), bool)  # repeated inside this chunk, or already seen in an earlier one
        again[order[1:]] = k[order[1:]] == k[order[:-1]]
        again |= seen[k] > 0
        if again.any():
            n_dup += int(again.sum())
            dup_ex += _examples(pd.unique(ids[~extra][again])[: N_EXAMPLES - len(dup_ex)])
        seen[k] = 1
        bad = ~np.isfinite(values)
        if bad.any():
            n_bad += int(bad.sum())
            bad_ids += _examples(ids[bad][: N_EXAMPLES - len(bad_ids)])
    problems = []
    if n_dup:
        problems.append(f"{n_dup} duplicated id row(s), e.g. {dup_ex}")
    missing = np.flatnonzero(seen == 0)
    if len(missing):
        ex = [str(expansion.ids(int(p), int(p) + 1)[0]) for p in missing[:N_EXAMPLES]]
        problems.append(f"{len(missing)} missing id(s), e.g. {ex}")
    if n_extra:
        problems.append(f"{n_extra} unexpected id(s), e.g. {extra_ex}")
    return problems + _value_problem(n_bad, bad_ids), n_rows
