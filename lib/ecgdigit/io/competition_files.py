"""Readers for the competition's files and the folder layout that holds them.

Layout (Kaggle's, plus two extras only our synthetic folders carry):
    root/train.csv, root/train/{id}/{id}-{type}.png, root/train/{id}/{id}.csv,
    root/test.csv, root/test/{id}.png,
    root/test_truth/{id}.csv, root/test_truth/image_types.csv   (synthetic folders only)
Every reader turns bad input into a CompetitionFileError naming the file and the problem.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .. import config

logger = logging.getLogger(__name__)

TRAIN_COLUMNS = ("id", "fs", "sig_len")
TEST_COLUMNS = ("id", "lead", "fs", "number_of_rows")  # also the marker of a competition folder
IMAGE_TYPES_COLUMNS = ("id", "image_type")
ENV_COMPETITION_DIR = "ECGDIGIT_COMPETITION_DIR"
ENV_KAGGLE_INPUT = "ECGDIGIT_KAGGLE_INPUT"
SCAN_DEPTH = 3  # how deep under /kaggle/input a competition folder may sit


class CompetitionFileError(ValueError):
    """A competition file is missing or malformed; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CompetitionNotFoundError(FileNotFoundError):
    """No competition folder could be resolved; the message lists every place tried."""


# ---------------------------------------------------------------- csv helpers
def _read_csv(path: str | os.PathLike, dtype: dict | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise CompetitionFileError(path, "file not found")
    try:
        return pd.read_csv(path, dtype=dtype)
    except pd.errors.EmptyDataError:
        raise CompetitionFileError(path, "file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise CompetitionFileError(path, f"cannot parse as CSV ({e})") from None


def _require_columns(df: pd.DataFrame, columns, path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise CompetitionFileError(path, f"missing column(s) {missing}; found {list(df.columns)}")


def _file_row(index: int) -> int:
    """Line number in the file of a 0-based data row (line 1 is the header)."""
    return int(index) + 2


def positive_int_mask(col: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(the column as numbers, where each is a positive whole number): fs and number_of_rows' rule."""
    values = pd.to_numeric(col, errors="coerce")
    v = values.to_numpy(np.float64)
    return values, np.isfinite(v) & (v > 0) & (v == np.floor(v))


def _positive_int_column(df: pd.DataFrame, col: str, path: Path) -> pd.Series:
    values, ok = positive_int_mask(df[col])
    bad = pd.Series(~ok, index=values.index)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        got = df[col].iloc[i]
        got = got.item() if isinstance(got, np.generic) else got  # -5, not np.int64(-5)
        raise CompetitionFileError(
            path, f"line {_file_row(i)}: column {col!r} must be a positive integer, got {got!r}"
            f" ({int(bad.sum())} bad row(s))")
    return values.astype(np.int64)


def _id_column(df: pd.DataFrame, path: Path) -> pd.Series:
    ids = df["id"]
    bad = ids.isna() | (ids.astype(str).str.strip() == "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise CompetitionFileError(path, f"line {_file_row(i)}: empty id")
    return ids.astype(str).str.strip()


# ---------------------------------------------------------------- readers
def read_train_csv(path: str | os.PathLike) -> pd.DataFrame:
    """train.csv -> DataFrame[id: str, fs: int, sig_len: int]."""
    path = Path(path)
    df = _read_csv(path, dtype={"id": str})
    _require_columns(df, TRAIN_COLUMNS, path)
    out = pd.DataFrame({
        "id": _id_column(df, path),
        "fs": _positive_int_column(df, "fs", path),
        "sig_len": _positive_int_column(df, "sig_len", path),
    })
    dup = out["id"].duplicated()
    if dup.any():
        raise CompetitionFileError(path, f"duplicated id(s) {out['id'][dup].unique()[:5].tolist()}")
    return out.reset_index(drop=True)


def read_test_csv(path: str | os.PathLike) -> pd.DataFrame:
    """test.csv -> DataFrame[id: str, lead: str, fs: int, number_of_rows: int], validated."""
    path = Path(path)
    df = _read_csv(path, dtype={"id": str, "lead": str})
    _require_columns(df, TEST_COLUMNS, path)
    out = pd.DataFrame({
        "id": _id_column(df, path),
        "lead": df["lead"].astype(str).str.strip(),
        "fs": _positive_int_column(df, "fs", path),
        "number_of_rows": _positive_int_column(df, "number_of_rows", path),
    })
    bad_lead = ~out["lead"].isin(config.LEADS)
    if bad_lead.any():
        i = int(np.flatnonzero(bad_lead.to_numpy())[0])
        raise CompetitionFileError(
            path, f"line {_file_row(i)}: unknown lead {out['lead'].iloc[i]!r}; expected one of {config.LEADS}")
    expected = np.array([config.number_of_rows(lead, fs) for lead, fs in zip(out["lead"], out["fs"])],
                        dtype=np.int64)
    wrong = out["number_of_rows"].to_numpy() != expected
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise CompetitionFileError(
            path, f"line {_file_row(i)}: id {out['id'].iloc[i]} lead {out['lead'].iloc[i]} fs {out['fs'].iloc[i]}"
            f" has number_of_rows {out['number_of_rows'].iloc[i]}, expected {expected[i]}"
            f" ({int(wrong.sum())} inconsistent row(s))")
    dup = out.duplicated(["id", "lead"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise CompetitionFileError(
            path, f"line {_file_row(i)}: (id, lead) = ({out['id'].iloc[i]}, {out['lead'].iloc[i]}) appears twice")
    n_fs = out.groupby("id", sort=False)["fs"].nunique()
    if (n_fs > 1).any():
        raise CompetitionFileError(path, f"id(s) with several fs values: {n_fs[n_fs > 1].index[:5].tolist()}")
    return out.reset_index(drop=True)


def read_series_csv(path: str | os.PathLike) -> pd.DataFrame:
    """A ground-truth series CSV -> DataFrame with the 12 lead columns (config.LEADS order), float64.

    Short leads hold NaN outside their own 2.5 s window; that is kept as is.
    """
    path = Path(path)
    df = _read_csv(path)
    _require_columns(df, config.LEADS, path)
    out = {}
    for lead in config.LEADS:
        col = pd.to_numeric(df[lead], errors="coerce")
        bad = col.isna() & df[lead].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise CompetitionFileError(
                path, f"line {_file_row(i)}: lead {lead} value {df[lead].iloc[i]!r} is not a number")
        out[lead] = col.astype(np.float64)
    return pd.DataFrame(out, columns=list(config.LEADS))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Any image file -> (H, W, 3) RGB uint8; grayscale/RGBA/16-bit are converted."""
    path = Path(path)
    if not path.is_file():
        raise CompetitionFileError(path, "image file not found")
    try:
        raw = np.fromfile(path, dtype=np.uint8)  # fromfile + imdecode: works with any path characters
    except OSError as e:
        raise CompetitionFileError(path, f"cannot read image file ({e})") from None
    if raw.size == 0:
        raise CompetitionFileError(path, "image file is empty")
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)  # None for non-images and truncated files
    if img is None:
        raise CompetitionFileError(path, "not a readable image (corrupt, truncated or not an image)")
    if img.dtype != np.uint8:  # 16-bit PNGs
        img = (img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max) + 0.5).astype(np.uint8) \
            if np.issubdtype(img.dtype, np.integer) else np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)  # alpha dropped: competition PNGs are opaque
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def _is_competition_test_csv(path: Path) -> bool:
    """The marker: a test.csv whose header holds id, lead, fs, number_of_rows."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            header = f.readline()
    except OSError:
        return False
    cols = {c.strip().strip('"') for c in header.strip().split(",")}
    return set(TEST_COLUMNS) <= cols


# ---------------------------------------------------------------- the folder
@dataclass
class CompetitionFolder:
    """A competition folder (Kaggle's mount, or one of our synthetic copies)."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # -- paths
    @property
    def train_csv_path(self) -> Path:
        return self.root / "train.csv"

    @property
    def test_csv_path(self) -> Path:
        return self.root / "test.csv"

    @property
    def truth_dir(self) -> Path:
        return self.root / "test_truth"

    def train_image_path(self, image_id: str, image_type: str) -> Path:
        return self.root / "train" / str(image_id) / f"{image_id}-{image_type}.png"

    def train_series_path(self, image_id: str) -> Path:
        return self.root / "train" / str(image_id) / f"{image_id}.csv"

    def test_image_path(self, image_id: str) -> Path:
        return self.root / "test" / f"{image_id}.png"

    def test_truth_path(self, image_id: str) -> Path:
        return self.truth_dir / f"{image_id}.csv"

    # -- readers
    def train(self) -> pd.DataFrame:
        return read_train_csv(self.train_csv_path)

    def test(self) -> pd.DataFrame:
        return read_test_csv(self.test_csv_path)

    def test_tolerant(self) -> tuple[pd.DataFrame, list[str]]:
        """test.csv with its oddities repaired, and one problem line per kind (io.test_csv_tolerant)."""
        from .test_csv_tolerant import read_test_csv_tolerant  # here: that module imports this one

        return read_test_csv_tolerant(self.test_csv_path)

    def train_image(self, image_id: str, image_type: str) -> np.ndarray:
        if image_type not in config.IMAGE_TYPES:
            raise ValueError(f"unknown image type {image_type!r}; expected one of {list(config.IMAGE_TYPES)}")
        return read_image(self.train_image_path(image_id, image_type))

    def train_series(self, image_id: str) -> pd.DataFrame:
        return read_series_csv(self.train_series_path(image_id))

    def test_image(self, image_id: str) -> np.ndarray:
        return read_image(self.test_image_path(image_id))

    def test_ids(self) -> list[str]:
        """Unique image ids in test.csv order."""
        return list(pd.unique(self.test()["id"]))

    def has_truth(self) -> bool:
        return self.truth_dir.is_dir()

    def test_truth(self, image_id: str) -> pd.DataFrame:
        return read_series_csv(self.test_truth_path(image_id))

    def test_image_types(self) -> dict[str, str]:
        """image id -> image type key from test_truth/image_types.csv; empty if there is none."""
        path = self.truth_dir / "image_types.csv"
        if not path.is_file():
            return {}
        df = _read_csv(path, dtype={"id": str, "image_type": str})
        _require_columns(df, IMAGE_TYPES_COLUMNS, path)
        return dict(zip(df["id"].astype(str), df["image_type"].astype(str).str.zfill(4)))

    # -- discovery
    @classmethod
    def resolve(cls, explicit: str | os.PathLike | None = None) -> "CompetitionFolder":
        """Find the competition folder: explicit path, then $ECGDIGIT_COMPETITION_DIR, then Kaggle's mounts."""
        tried: list[str] = []
        if explicit is not None:
            p = Path(explicit)
            if p.is_dir():
                return cls(p)
            raise CompetitionNotFoundError(f"competition folder given explicitly does not exist: {p}")
        env = os.environ.get(ENV_COMPETITION_DIR)
        if env:
            p = Path(env)
            if p.is_dir():
                return cls(p)
            raise CompetitionNotFoundError(f"${ENV_COMPETITION_DIR} points to a missing folder: {p}")
        tried.append(f"${ENV_COMPETITION_DIR} (unset)")
        base = Path(os.environ.get(ENV_KAGGLE_INPUT) or config.KAGGLE_INPUT)
        for cand in (base / config.COMPETITION_SLUG, base / "competitions" / config.COMPETITION_SLUG):
            tried.append(str(cand))
            if (cand / "test.csv").is_file():
                logger.info("competition folder: %s", cand)
                return cls(cand)
        tried.append(f"any folder under {base} (depth <= {SCAN_DEPTH}) with a test.csv holding {TEST_COLUMNS}")
        found = _scan_for_marker(base, SCAN_DEPTH)
        if found is not None:
            logger.info("competition folder (found by its test.csv): %s", found)
            return cls(found)
        raise CompetitionNotFoundError("no competition folder found; tried:\n  " + "\n  ".join(tried))


def _scan_for_marker(base: Path, depth: int) -> Path | None:
    """Breadth-first, sorted (deterministic) search for a folder whose test.csv has the marker columns."""
    level = [base]
    for _ in range(depth):
        nxt = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=True):
                    p = Path(e.path)
                    if (p / "test.csv").is_file() and _is_competition_test_csv(p / "test.csv"):
                        return p
                    nxt.append(p)
        level = nxt
    return None
