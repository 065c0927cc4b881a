"""The time-limited submission runner against a tiny synthetic competition folder (stub predictors)."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ecgdigit import config
from ecgdigit.digitized import Digitized
from ecgdigit.io.submission import expected_ids, read_submission, validate_submission
from ecgdigit.runner import RunReport, predict_records, run_submission

IDS = ("1001", "1002", "1003", "1004")
FS = (250, 500, 256, 250)


def make_competition(root: Path, ids=IDS, fs=FS) -> Path:
    """A competition folder laid out as Kaggle mounts it: test.csv + test/{id}.png (tiny images)."""
    (root / "test").mkdir(parents=True)
    rows = [(i, lead, f, config.number_of_rows(lead, f)) for i, f in zip(ids, fs) for lead in config.LEADS]
    pd.DataFrame(rows, columns=["id", "lead", "fs", "number_of_rows"]).to_csv(root / "test.csv", index=False)
    rng = np.random.default_rng(0)
    for i in ids:
        cv2.imwrite(str(root / "test" / f"{i}.png"), rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    return root


def ramp_predictor(image: np.ndarray) -> Digitized:
    """Non-zero, image-independent signals: distinguishes real predictions from the zero fallback."""
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    fs = 500.0
    t = np.arange(int(10 * fs)) / fs
    return Digitized(np.stack([np.sin(2 * np.pi * t) + 0.1 * (k + 1) for k in range(12)], 1), fs)


def values_by_image(path: Path) -> dict[str, np.ndarray]:
    sub = read_submission(path)
    image = sub["id"].str.split("_").str[0]
    return {i: sub["value"].to_numpy()[image.to_numpy() == i] for i in IDS}


def test_full_run_writes_every_id(tmp_path):
    comp = make_competition(tmp_path / "comp")
    out = tmp_path / "out" / "submission.csv"
    report = run_submission(comp, out, predictor=ramp_predictor, deadline_s=None, progress=False)
    assert isinstance(report, RunReport)
    test_df = pd.read_csv(comp / "test.csv", dtype={"id": str})
    validate_submission(out, test_df)
    sub = read_submission(out)
    assert sorted(sub["id"]) == sorted(expected_ids(test_df))
    assert (report.n_images, report.n_predicted, report.n_fallback) == (4, 4, 0)
    assert report.failures == []
    assert report.seconds_per_image > 0 and report.total_s >= report.seconds_per_image
    assert all(np.abs(v).max() > 0.05 for v in values_by_image(out).values())
    assert not list(out.parent.glob(".*tmp")), "temp files left behind"


def test_unreadable_image_falls_back_with_warning(tmp_path, caplog):
    comp = make_competition(tmp_path / "comp")
    (comp / "test" / "1002.png").write_bytes(b"not a png at all")
    (comp / "test" / "1003.png").unlink()
    calls = []

    def failing_on_last(image):
        calls.append(1)
        if len(calls) == 2:  # the 4th image (2nd readable one) breaks the predictor
            raise RuntimeError("boom")
        return ramp_predictor(image)

    out = tmp_path / "submission.csv"
    with caplog.at_level(logging.WARNING, logger="ecgdigit.runner"):
        report = run_submission(comp, out, predictor=failing_on_last, deadline_s=None, progress=False)
    validate_submission(out, pd.read_csv(comp / "test.csv", dtype={"id": str}))
    failed = dict(report.failures)
    assert set(failed) == {"1002", "1003", "1004"}
    assert "boom" in failed["1004"]
    text = caplog.text
    assert "1002.png" in text and "1003.png" in text, "the warning must name the unreadable file"
    values = values_by_image(out)
    assert np.abs(values["1001"]).max() > 0.05
    for i in ("1002", "1003", "1004"):
        assert np.all(values[i] == 0.0)
    assert report.n_predicted == 1 and report.n_fallback == 3


def test_fallback_file_exists_before_first_prediction(tmp_path):
    comp = make_competition(tmp_path / "comp")
    out = tmp_path / "submission.csv"
    test_df = pd.read_csv(comp / "test.csv", dtype={"id": str})
    seen = []

    def checking(image):
        if not seen:
            assert out.is_file(), "no fallback submission before the first prediction"
            validate_submission(out, test_df)
            assert np.all(read_submission(out)["value"].to_numpy() == 0.0)
        seen.append(1)
        return ramp_predictor(image)

    run_submission(comp, out, predictor=checking, deadline_s=None, progress=False)
    assert len(seen) == len(IDS)


def test_tiny_deadline_still_writes_every_id_in_time(tmp_path):
    comp = make_competition(tmp_path / "comp")
    out = tmp_path / "submission.csv"

    def slow(image):
        time.sleep(0.6)
        return ramp_predictor(image)

    deadline = 1.5
    t0 = time.monotonic()
    report = run_submission(comp, out, predictor=slow, deadline_s=deadline, progress=False)
    elapsed = time.monotonic() - t0
    assert elapsed < deadline + 0.5, f"took {elapsed:.2f} s for a {deadline} s budget"
    validate_submission(out, pd.read_csv(comp / "test.csv", dtype={"id": str}))
    assert report.stopped_by_deadline
    assert report.n_predicted < len(IDS) and report.n_fallback == len(IDS) - report.n_predicted
    assert all("deadline" in r for _, r in report.failures)


def test_flushes_while_predicting(tmp_path, monkeypatch):
    import ecgdigit.runner

    monkeypatch.setattr(ecgdigit.runner, "MAX_FLUSH_SHARE", 1.0)  # flushes may take any share here
    comp = make_competition(tmp_path / "comp")
    out = tmp_path / "submission.csv"
    snapshots = []

    def snapshotting(image):
        snapshots.append(values_by_image(out))
        time.sleep(0.05)
        return ramp_predictor(image)

    run_submission(comp, out, predictor=snapshotting, deadline_s=None, flush_every_s=0.0, progress=False)
    # with flush_every_s=0 the file holds image k's prediction before image k+1 starts
    assert np.abs(snapshots[-1]["1003"]).max() > 0.05
    assert np.all(snapshots[-1]["1004"] == 0.0)


def test_limit_and_predict_records(tmp_path):
    from ecgdigit.io.competition_files import CompetitionFolder

    comp = CompetitionFolder(make_competition(tmp_path / "comp"))
    res = predict_records(comp, ramp_predictor, limit=2, progress=False)
    assert list(res.predictions) == ["1001", "1002"]
    lead_ii = res.predictions["1002"]["II"]
    assert lead_ii.dtype == np.float32 and lead_ii.shape == (config.number_of_rows("II", 500),)
    assert [i for i, _ in res.failures] == ["1003", "1004"]


def test_zeros_predictor_env_needs_no_weights(tmp_path, monkeypatch):
    comp = make_competition(tmp_path / "comp")
    monkeypatch.setenv("ECGDIGIT_PREDICTOR", "zeros")
    out = tmp_path / "submission.csv"
    report = run_submission(comp, out, deadline_s=60, progress=False)
    assert report.n_predicted == 4 and report.n_fallback == 4
    monkeypatch.setenv("ECGDIGIT_PREDICTOR", "bogus")
    report = run_submission(comp, out, deadline_s=60, progress=False)
    assert report.n_predicted == 0 and "bogus" in report.failures[0][1]
    validate_submission(out, pd.read_csv(comp / "test.csv", dtype={"id": str}))


def test_competition_resolved_from_kaggle_mount(tmp_path, monkeypatch):
    make_competition(tmp_path / "input" / "competitions" / config.COMPETITION_SLUG)
    monkeypatch.delenv("ECGDIGIT_COMPETITION_DIR", raising=False)
    monkeypatch.setenv("ECGDIGIT_KAGGLE_INPUT", str(tmp_path / "input"))
    report = run_submission(None, tmp_path / "s.csv", predictor=ramp_predictor, progress=False)
    assert report.n_predicted == 4


def test_invalid_final_write_puts_the_fallback_back(tmp_path, monkeypatch):
    import ecgdigit.runner

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bad final file")

    monkeypatch.setattr(ecgdigit.runner, "_write_validated", broken)
    comp = make_competition(tmp_path / "comp")
    out = tmp_path / "submission.csv"
    report = run_submission(comp, out, predictor=ramp_predictor, progress=False)
    validate_submission(out, pd.read_csv(comp / "test.csv", dtype={"id": str}))
    assert np.all(read_submission(out)["value"].to_numpy() == 0.0)
    assert report.n_fallback == len(IDS) and "simulated" in report.failures[-1][1]


def test_odd_test_csv_is_repaired_warned_and_predicted(tmp_path, caplog):
    """What the strict reader rejected (a repeated line, an odd row count, a lead in another case)
    is written anyway: every requested (id, lead) once, the counts as given, a warning per kind."""
    comp = make_competition(tmp_path / "comp")
    lines = (comp / "test.csv").read_text().splitlines()
    lines[1] = lines[1].replace(",625", ",626")          # 1001 I: one row more than expected
    lines[14] = lines[14].replace(",II,", ",ii,")        # 1002 II in lower case
    lines.append(lines[20])                              # 1002 a repeated line
    (comp / "test.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "submission.csv"
    with caplog.at_level(logging.WARNING, logger="ecgdigit.runner"):
        report = run_submission(comp, out, predictor=ramp_predictor, progress=False)
    assert len(report.test_csv_problems) == 3
    for words in ("number_of_rows differs", "lead read ignoring case", "listed again"):
        assert words in caplog.text and any(words in p for p in report.test_csv_problems)
    ids = set(read_submission(out)["id"])
    assert "1001_625_I" in ids and "1002_0_II" in ids and "1002_0_ii" not in ids
    assert len(read_submission(out)) == sum(config.number_of_rows(lead, f) for f in FS for lead in config.LEADS) + 1
    assert (report.n_predicted, report.n_fallback) == (4, 0)


def test_stage_models_that_cannot_load_fall_back_per_stage(tmp_path, monkeypatch, caplog):
    """A torch/torchvision mismatch in one stage: that stage runs classical, named loudly; the
    other stages keep their models. strict raises, naming the stage and the error."""
    import json

    import pytest

    import ecgdigit.models.inference as inference
    from ecgdigit.models.stage_callables import StageModels
    from ecgdigit.models.stage_loading import StageLoadError, load_stage_models

    wdir = tmp_path / "w"
    wdir.mkdir()
    (wdir / "manifest.json").write_text(json.dumps({"format": 1, "weights": {
        "a.safetensors": {"file": "a.safetensors", "stage": 0},
        "b.safetensors": {"file": "b.safetensors", "stage": 2}}}))

    def fake(stage, weights_dir, dev):
        if stage == 0:
            raise RuntimeError("operator torchvision::nms does not exist")
        return StageModels(traces="model")

    monkeypatch.setattr(inference, "stage_predictors", fake)
    with caplog.at_level(logging.WARNING):
        models, failures = load_stage_models(wdir, "cpu")
    assert models == StageModels(traces="model")
    assert [f.stage for f in failures] == [0]
    assert "MODEL NOT LOADED: stage 0 model" in caplog.text and "torchvision::nms" in caplog.text
    assert "stage 0 runs its CLASSICAL version" in failures[0].message()
    with pytest.raises(StageLoadError, match=r"stage 0 model .*a\.safetensors.*torchvision::nms"):
        load_stage_models(wdir, "cpu", strict=True)

    monkeypatch.setitem(__import__("sys").modules, "ecgdigit.models.inference", None)  # the import fails
    models, failures = load_stage_models(wdir, "cpu")
    assert models == StageModels() and [f.stage for f in failures] == [0, 2]
    assert all("import failed" in f.error for f in failures)


def test_predictor_seams_are_typed():
    """What the runner runs here (a Predictor) and what it builds in workers (a PredictorFactory)."""
    import pytest

    from ecgdigit.pipeline import Pipeline
    from ecgdigit.predictor_spec import (FunctionPredictor, LoadedPredictor, Predictor, PredictorSpec, as_predictor,
                                         is_factory)

    pipeline = Pipeline()
    assert isinstance(pipeline, Predictor) and as_predictor(pipeline) is pipeline
    assert is_factory(PredictorSpec()) and not is_factory(pipeline) and not is_factory(ramp_predictor)
    wrapped = as_predictor(ramp_predictor)
    assert isinstance(wrapped, FunctionPredictor) and isinstance(wrapped, Predictor)
    out = wrapped.predict_many([np.zeros((4, 4, 3), np.uint8), None])
    assert out[0].signals.shape[1] == 12 and isinstance(out[1], Exception)  # a failure stays in its slot
    assert isinstance(LoadedPredictor(ramp_predictor).predictor, FunctionPredictor)
    with pytest.raises(TypeError, match="not a predictor"):
        as_predictor(42)
