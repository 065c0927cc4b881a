"""Scoring a written submission against a folder's truth, overall and per image type."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import IMAGE_TYPES, PERFECT_SCORE, PERFECT_SCORE_EARLY
from .io.competition_files import CompetitionFolder
from .io.submission import read_submission, split_ids
from .metric import ScoreReport, score_records


@dataclass
class Evaluation:
    score_db: float  # the competition's score (10 log10 of the mean linear SNR)
    score_db_early_cap: float  # the same with the early copies' cap of 384
    per_image: pd.DataFrame  # id, image_type, snr_db, snr_linear
    per_type: pd.DataFrame  # image_type, name, n, score_db, mean_image_db


def submission_predictions(sub: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """image id -> lead -> values in row order, from a submission frame."""
    parts = split_ids(sub["id"])
    frame = pd.DataFrame({"image": parts["image_id"].astype(str), "lead": parts["lead"].astype(str),
                          "row": parts["row"].astype(np.int64), "value": sub["value"].to_numpy(np.float64)})
    frame = frame.sort_values(["image", "lead", "row"], kind="stable")
    out: dict[str, dict[str, np.ndarray]] = {}
    for (image, lead), g in frame.groupby(["image", "lead"], sort=False):
        out.setdefault(image, {})[lead] = g["value"].to_numpy()
    return out


def per_type_table(per_image: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for t, g in per_image.groupby("image_type", sort=True):
        lin = g["snr_linear"].to_numpy(np.float64)
        rows.append({"image_type": t, "name": IMAGE_TYPES.get(t, "?"), "n": len(g),
                     "score_db": float(10 * np.log10(max(lin.mean(), 1e-12))),
                     "mean_image_db": float(g["snr_db"].mean())})
    return pd.DataFrame(rows, columns=["image_type", "name", "n", "score_db", "mean_image_db"])


def evaluate_predictions(folder: CompetitionFolder, predictions: dict, ids: list[str] | None = None) -> Evaluation:
    test = folder.test()
    fs_of = test.groupby("id", sort=False)["fs"].first().to_dict()
    ids = ids if ids is not None else folder.test_ids()
    truths = {i: (folder.test_truth(i), int(fs_of[i])) for i in ids}
    reports: dict[float, ScoreReport] = {cap: score_records(predictions, truths, perfect_score=cap, fill_missing=0.0)
                                         for cap in (PERFECT_SCORE, PERFECT_SCORE_EARLY)}
    per_image = reports[PERFECT_SCORE].per_image[["id", "snr_db", "snr_linear"]].copy()
    types = folder.test_image_types()
    per_image.insert(1, "image_type", [types.get(str(i), "unknown") for i in per_image["id"]])
    return Evaluation(reports[PERFECT_SCORE].score_db, reports[PERFECT_SCORE_EARLY].score_db, per_image,
                      per_type_table(per_image))


def evaluate_submission(folder: CompetitionFolder, submission_path) -> Evaluation:
    """Score exactly what was written, as Kaggle would."""
    return evaluate_predictions(folder, submission_predictions(read_submission(submission_path)))


def format_evaluation(ev: Evaluation) -> str:
    lines = [f"score: {ev.score_db:.2f} dB (cap 1e6); {ev.score_db_early_cap:.2f} dB (cap 384)",
             f"{'type':6} {'name':18} {'n':>3} {'score dB':>9} {'mean img dB':>12}"]
    for r in ev.per_type.itertuples():
        lines.append(f"{r.image_type:6} {r.name:18} {r.n:>3} {r.score_db:>9.2f} {r.mean_image_db:>12.2f}")
    return "\n".join(lines)
