"""End to end on small synthetic competition folders: build_submission.py with untrained tiny models
for all three stages and with --classical, bad test images, and parity with the Kaggle notebook.

Expensive things (the folder, the weights, the model run) are module-scoped and built once.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgdigit import config
from ecgdigit.io.submission import expected_ids, read_submission, validate_submission

from helpers import REPO, load_script  # noqa: E402
SCORE_RE = re.compile(r"^score:\s*(\S+) dB", re.MULTILINE)


build_submission = load_script(REPO / "build_submission.py", "build_submission")


def write_folder(root: Path, n_test: int, seed: int) -> Path:
    from ecgdigit.synth.competition_writer import WriterOptions, write_competition

    write_competition(root, WriterOptions(n_train=0, n_test=n_test, test_types=("0001", "0003"),
                                          max_side=1400, seed=seed), progress=False)
    return root


def run_build(args: list[str]) -> tuple[int, str]:
    """build_submission.main(args) -> (exit code, what it printed)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = build_submission.main(args)
    return rc, buf.getvalue()


def printed_score(text: str) -> float:
    m = SCORE_RE.search(text)
    assert m, f"no score line in:\n{text}"
    return float(m.group(1))


def read_test_csv(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "test.csv", dtype={"id": str})


def values_by_image(path: Path) -> dict[str, np.ndarray]:
    sub = read_submission(path)
    image = sub["id"].str.rsplit("_", n=2).str[0].to_numpy()
    values = sub["value"].to_numpy()
    return {i: values[image == i] for i in pd.unique(image)}


# ---------------------------------------------------------------- shared fixtures
@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    """Untrained tiny models for stages 0, 1 and 2, saved as the trainer saves them."""
    import torch

    from ecgdigit.models.stage_models import build_model
    from ecgdigit.models.weights_io import read_manifest, save_weights
    from ecgdigit.training.tasks import get_task, preset

    wdir = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for stage in (0, 1, 2):
        # what the trainer writes: the task's manifest fields (stage 0: its key points' page positions)
        entry = {**get_task(stage).manifest_fields(), **({"train_scale": 0.25} if stage == 2 else {})}
        save_weights(build_model(preset(stage, "tiny")), wdir / f"stage{stage}_tiny", entry)
    assert sorted(e["stage"] for e in read_manifest(wdir)["weights"].values()) == [0, 1, 2]
    return wdir


@pytest.fixture(scope="module")
def folder2(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("comp2") / "comp", n_test=2, seed=11)


@pytest.fixture(scope="module")
def model_run(folder2, weights_dir, tmp_path_factory):
    """build_submission with the tiny models on the 2-image folder: (exit code, submission, stdout)."""
    out = tmp_path_factory.mktemp("out_models") / "submission.csv"
    rc, text = run_build(["--input", str(folder2), "--output", str(out), "--weights", str(weights_dir),
                          "--device", "cpu", "--quiet", "--workers", "2"])
    return rc, out, text


@pytest.fixture(scope="module")
def classical_run(folder2, tmp_path_factory):
    out = tmp_path_factory.mktemp("out_classical") / "classical.csv"
    rc, text = run_build(["--input", str(folder2), "--output", str(out), "--classical", "--quiet"])
    return rc, out, text


# ---------------------------------------------------------------- tests
def test_build_submission_with_untrained_tiny_models(model_run, folder2):
    rc, out, text = model_run
    assert rc == 0
    test_df = read_test_csv(folder2)
    validate_submission(out, test_df)
    assert len(read_submission(out)) == len(expected_ids(test_df))
    assert "score:" in text
    assert math.isfinite(printed_score(text))
    assert "(2 images, 2 predicted" in text, text


def test_build_submission_classical(folder2, model_run, classical_run):
    rc, out, text = classical_run
    assert rc == 0
    validate_submission(out, read_test_csv(folder2))
    assert math.isfinite(printed_score(text)), text
    # the weights were really used in the model run: its reading differs from the classical one
    assert out.read_bytes() != model_run[1].read_bytes()


def test_one_worker_writes_the_same_bytes_as_two(model_run, folder2, weights_dir, tmp_path):
    """The models' torch threads (all cores in one worker, one each in two) and the order images
    finish in must not change a byte of the file."""
    out = tmp_path / "one.csv"
    rc, text = run_build(["--input", str(folder2), "--output", str(out), "--weights", str(weights_dir),
                          "--device", "cpu", "--quiet", "--workers", "1"])
    assert rc == 0 and "with 1 worker(s)" in text and "with 2 worker(s)" in model_run[2]
    assert out.read_bytes() == model_run[1].read_bytes()


def corrupt_copy(weights_dir: Path, dest: Path) -> Path:
    """The weights folder with every weights file truncated (its manifest unchanged)."""
    import shutil

    shutil.copytree(weights_dir, dest)
    for f in dest.glob("*.safetensors"):
        f.write_bytes(f.read_bytes()[:1000])
    return dest


def test_unloadable_models_run_classical_loudly(classical_run, folder2, weights_dir, tmp_path, capsys):
    """Every model unloadable: the run is the classical one, byte for byte, with a warning per stage
    printed first, never silently zeros; --strict-weights stops with exit 3 and the fallback in place."""
    broken = corrupt_copy(weights_dir, tmp_path / "weights")
    out = tmp_path / "s.csv"
    rc, text = run_build(["--input", str(folder2), "--output", str(out), "--weights", str(broken), "--quiet",
                          "--limit", "1"])  # one image is enough to compare, and half the time
    assert rc == 0
    warnings = [line for line in text.splitlines() if line.startswith("WARNING: ")]
    assert text.splitlines()[:3] == warnings and len(warnings) == 3, text
    for stage in (0, 1, 2):
        assert any(f"stage {stage} model {broken}/stage{stage}_tiny.safetensors could not be loaded" in w
                   and "sha256" in w and f"stage {stage} runs its CLASSICAL version" in w for w in warnings)
    first = str(read_test_csv(folder2)["id"].iloc[0])
    lines = [line for line in out.read_text().splitlines() if line.startswith(f"{first}_")]
    assert lines and lines == [line for line in classical_run[1].read_text().splitlines()
                               if line.startswith(f"{first}_")]
    assert np.abs(np.array([float(line.split(",")[1]) for line in lines])).max() > 0.0

    strict = tmp_path / "strict.csv"
    rc = build_submission.cli(["--input", str(folder2), "--output", str(strict), "--weights", str(broken),
                               "--quiet", "--strict-weights", "--workers", "1"])
    assert rc == 3
    err = capsys.readouterr().err
    assert "--strict-weights" in err and "stage0_tiny.safetensors" in err
    validate_submission(strict, read_test_csv(folder2))
    assert np.all(read_submission(strict)["value"].to_numpy() == 0.0)


def test_bad_images_keep_the_fallback_and_are_named(tmp_path, caplog):
    folder = write_folder(tmp_path / "comp", n_test=3, seed=5)
    test_df = read_test_csv(folder)
    ids = [str(i) for i in pd.unique(test_df["id"])]
    truncated, deleted, good = ids
    png = folder / "test" / f"{truncated}.png"
    data = png.read_bytes()
    png.write_bytes(data[: len(data) // 2])
    (folder / "test" / f"{deleted}.png").unlink()

    out = tmp_path / "out" / "submission.csv"
    with caplog.at_level(logging.WARNING):
        rc, text = run_build(["--input", str(folder), "--output", str(out), "--classical", "--quiet"])
    assert rc == 0
    validate_submission(out, test_df)
    values = values_by_image(out)
    assert set(values) == set(ids)
    assert np.all(values[truncated] == 0.0) and np.all(values[deleted] == 0.0)
    assert np.abs(values[good]).max() > 0.0, "the readable image must still be predicted"
    assert "(3 images, 1 predicted, 2 fallback)" in text, text
    said = text + caplog.text
    for image_id in (truncated, deleted):
        assert f"test/{image_id}.png" in said, f"{image_id} not named in:\n{said}"
    assert f"fallback {good}" not in text
    assert math.isfinite(printed_score(text))


def test_notebook_matches_build_submission(model_run, folder2, weights_dir, tmp_path, monkeypatch):
    """Same folder, same weights (shipped inside the bundle): byte-identical submission files."""
    from helpers import load_tool
    from test_submission_notebook import cell_text, execute_notebook

    build_bundle = load_tool("build_bundle")
    base = tmp_path / "input"
    bundle = build_bundle.build_bundle(base / "datasets" / "someone" / config.BUNDLE_SLUG, weights_dir=weights_dir)
    assert (bundle / "weights" / "manifest.json").is_file()
    for var in ("ECGDIGIT_BUNDLE_DIR", "ECGDIGIT_WEIGHTS", "PYTHONPATH", "ECGDIGIT_DEADLINE_S"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "working" / "submission.csv"
    monkeypatch.setenv("ECGDIGIT_KAGGLE_INPUT", str(base))
    monkeypatch.setenv("ECGDIGIT_COMPETITION_DIR", str(folder2))
    monkeypatch.setenv("ECGDIGIT_OUTPUT", str(out))
    monkeypatch.setenv("ECGDIGIT_PREDICTOR", "pipeline")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # build_submission ran on the CPU
    (tmp_path / "cwd").mkdir()
    nb = execute_notebook(REPO / "kernels" / "submission.ipynb", tmp_path / "cwd",
                          extra_source="import os; print('WEIGHTS', os.environ['ECGDIGIT_WEIGHTS'])")
    text = "\n".join(cell_text(c) for c in nb.cells)
    assert f"WEIGHTS {bundle / 'weights'}" in text, "the notebook must use the bundle's weights"
    assert "n_images=2, n_predicted=2" in text, text[-3000:]
    validate_submission(out, read_test_csv(folder2))
    expected = model_run[1]
    if out.read_bytes() != expected.read_bytes():  # say where, not just that
        a, b = read_submission(expected), read_submission(out)
        diff = (a["id"] != b["id"]) | (a["value"] != b["value"])
        pytest.fail(f"notebook and build_submission differ in {int(diff.sum())} rows, e.g.\n"
                    f"{pd.concat([a[diff].head(), b[diff].head()], axis=1)}")


def test_a_broken_test_csv_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "test").mkdir()
    (tmp_path / "test.csv").write_text("id,lead\n1,I\n")
    assert build_submission.cli(["--input", str(tmp_path), "--output", str(tmp_path / "s.csv"),
                                 "--classical", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "test.csv") in err and "number_of_rows" in err
    assert not (tmp_path / "s.csv").exists()  # nothing says how many rows to write


def test_an_odd_test_csv_still_gets_its_fallback_file(tmp_path, capsys):
    """The strict reader's rejections (a repeated line, a row count one off for fs 1025, a lead in
    another case) no longer cost the submission: the file is written, then exit 2 names them."""
    (tmp_path / "test").mkdir()
    lines = [f"7,{lead},1025,{config.number_of_rows(lead, 1025)}" for lead in config.LEADS]
    lines[0] = "7,I,1025,2563"
    lines[4] = lines[4].replace("aVL", "avl")
    (tmp_path / "test.csv").write_text("\n".join(["id,lead,fs,number_of_rows", *lines, lines[5]]) + "\n")
    out = tmp_path / "s.csv"
    assert build_submission.cli(["--input", str(tmp_path), "--output", str(out), "--classical", "--quiet"]) == 2
    err = capsys.readouterr().err
    for words in ("number_of_rows differs", "lead read ignoring case", "listed again", "not scored"):
        assert words in err, err
    sub = read_submission(out)
    assert len(sub) == sum(config.number_of_rows(lead, 1025) for lead in config.LEADS) + 1
    assert "7_2562_I" in set(sub["id"]) and "7_0_aVL" in set(sub["id"])
