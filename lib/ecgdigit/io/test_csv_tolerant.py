"""test.csv read tolerantly, for the submission run: every (id, lead) it asks for gets rows.

The strict reader (competition_files.read_test_csv) rejects a file with a repeated row, a row count
that differs from 10*fs (//4), a lead spelled in another case... On Kaggle that rejection came before
the fallback submission was written, so one odd line cost the whole submission. Here each oddity is
repaired the least surprising way and reported as one problem line (naming the file, the kind and the
lines); only a file without usable id/lead and fs-or-number_of_rows columns is an error.

Repairs: column names matched ignoring case and spaces; a lead matched ignoring case (an unknown lead
is kept: its rows are written as fallback); a repeated (id, lead) listed once (the first); a
number_of_rows other than the expected one written AS GIVEN (the host scores the rows it asked for);
a missing/bad number_of_rows derived from fs, a missing/bad fs from the id's other rows or from
number_of_rows; a line with an empty id or lead, or with neither fs nor number_of_rows, skipped.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from .competition_files import TEST_COLUMNS, CompetitionFileError, _file_row, positive_int_mask

MAX_LINES_NAMED = 5  # lines quoted per kind of problem


def _positive_ints(col: pd.Series | None, n: int) -> np.ndarray:
    """Column -> int64 with 0 where missing, non-numeric, non-positive or not a whole number."""
    if col is None:
        return np.zeros(n, np.int64)
    values, ok = positive_int_mask(col)
    return np.where(ok, np.nan_to_num(values.to_numpy(np.float64)), 0).astype(np.int64)


_LEAD_BY_LOWER = {lead.lower(): lead for lead in config.LEADS}


def _canonical_lead(text: str) -> str | None:
    return _LEAD_BY_LOWER.get(text.strip().lower())


def _fs_from_rows(lead: str, n: int) -> int:
    """The fs whose expected row count is n (the inverse of config.number_of_rows)."""
    return int(round(n / config.DURATION_S * (1 if lead == config.RHYTHM_LEAD else 4)))


class _Problems:
    def __init__(self, path: Path):
        self.path = path
        self.lines: dict[str, list[int]] = defaultdict(list)
        self.examples: dict[str, str] = {}

    def add(self, kind: str, line: int | None, example: str = "") -> None:
        """line: the file's line number (1 = header); None where the parser does not say."""
        self.lines[kind].append(line)
        self.examples.setdefault(kind, example)

    def messages(self) -> list[str]:
        out = []
        for kind, lines in self.lines.items():
            known = [x for x in lines if x is not None]
            where = ""
            if known:
                where = " " + ", ".join(str(x) for x in known[:MAX_LINES_NAMED]) + (
                    ", ..." if len(known) > MAX_LINES_NAMED else "")
            example = f" (e.g. {self.examples[kind]})" if self.examples[kind] else ""
            out.append(f"{self.path}: {kind}: {len(lines)} line(s){where}{example}")
        return out


def read_test_csv_tolerant(path: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
    """test.csv -> (DataFrame[id: str, lead: str, fs: int, number_of_rows: int], problem lines).

    No problems: the same table as the strict reader. Raises CompetitionFileError only when the file
    cannot be read at all or lacks id, lead, or both fs and number_of_rows.
    """
    path = Path(path)
    if not path.is_file():
        raise CompetitionFileError(path, "file not found")
    problems = _Problems(path)
    bad_lines: list[str] = []

    def skip_bad_line(fields: list[str]) -> None:  # more fields than the header: skipped, reported
        bad_lines.append(",".join(fields))

    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, engine="python", on_bad_lines=skip_bad_line)
    except pd.errors.EmptyDataError:
        raise CompetitionFileError(path, "file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise CompetitionFileError(path, f"cannot parse as CSV ({e})") from None
    for fields in bad_lines:
        problems.add("line with more fields than the header, skipped", None, repr(fields[:60]))

    columns = {str(c).strip().lower(): c for c in raw.columns}
    found = {name: raw[columns[name]] if name in columns else None for name in TEST_COLUMNS}
    if found["id"] is None or found["lead"] is None or (found["fs"] is None and found["number_of_rows"] is None):
        raise CompetitionFileError(
            path, f"no usable test.csv columns: needs id, lead and fs or number_of_rows; found {list(raw.columns)}")
    renamed = [c for c in raw.columns if str(c).strip().lower() in TEST_COLUMNS and c != str(c).strip().lower()]
    if renamed:
        problems.add("column name(s) read ignoring case/spaces", 1, repr(renamed))
    for name in ("fs", "number_of_rows"):
        if found[name] is None:
            problems.add(f"column {name!r} missing, derived for every row", 1)

    n = len(raw)
    ids = found["id"].astype(str).str.strip().to_numpy(object)
    lead_text = found["lead"].astype(str).to_numpy(object)
    fs = _positive_ints(found["fs"], n)
    nrows = _positive_ints(found["number_of_rows"], n)
    # an id's fs from its other lines, where a line's own is missing
    id_fs: dict[str, int] = {}
    for i, f in zip(ids, fs):
        if f > 0:
            id_fs.setdefault(i, int(f))

    rows: list[tuple[str, str, int, int]] = []
    first_line: dict[tuple[str, str], int] = {}
    fs_seen: dict[str, set[int]] = defaultdict(set)
    id_line: dict[str, int] = {}
    for k in range(n):
        line = _file_row(k)
        image_id, given_lead = ids[k], lead_text[k].strip()
        if not image_id or not given_lead:
            problems.add("empty id or lead, line skipped", line)
            continue
        lead = _canonical_lead(given_lead)
        if lead is None:
            lead = given_lead
            problems.add("unknown lead, its rows written as fallback", line, repr(given_lead))
        elif lead != given_lead:
            problems.add("lead read ignoring case", line, f"{given_lead!r} -> {lead!r}")
        f, m = int(fs[k]), int(nrows[k])
        if f <= 0 and found["fs"] is not None:
            f = id_fs.get(image_id, 0)
            if f <= 0 and m > 0:
                f = _fs_from_rows(lead, m)
            problems.add("fs missing or not a positive integer, taken from the id's other lines or number_of_rows",
                         line, repr(found["fs"].iloc[k]))
        elif f <= 0:
            f = id_fs.get(image_id, 0) or (_fs_from_rows(lead, m) if m > 0 else 0)
        if f <= 0:
            problems.add("neither fs nor number_of_rows usable, line skipped", line)
            continue
        expected = config.number_of_rows(lead, f)
        if m <= 0:
            if found["number_of_rows"] is not None:
                problems.add("number_of_rows missing or not a positive integer, derived from fs", line,
                             repr(found["number_of_rows"].iloc[k]))
            m = expected
        elif m != expected:
            problems.add("number_of_rows differs from the expected count, written as given", line,
                         f"id {image_id} lead {lead} fs {f}: {m}, expected {expected}")
        key = (image_id, lead)
        if key in first_line:
            problems.add("(id, lead) listed again, kept once (its first line)", line,
                         f"({image_id}, {lead}) first on line {first_line[key]}")
            continue
        first_line[key] = line
        id_line.setdefault(image_id, line)
        fs_seen[image_id].add(f)
        rows.append((image_id, lead, f, m))
    for image_id, rates in fs_seen.items():
        if len(rates) > 1:
            problems.add("id with several fs values, each lead read at its own", id_line[image_id],
                         f"{image_id}: {sorted(rates)}")
    out = pd.DataFrame(rows, columns=list(TEST_COLUMNS))
    out["fs"] = out["fs"].astype(np.int64)
    out["number_of_rows"] = out["number_of_rows"].astype(np.int64)
    if out.empty:
        raise CompetitionFileError(path, "no usable line: " + "; ".join(problems.messages()))
    return out, problems.messages()
