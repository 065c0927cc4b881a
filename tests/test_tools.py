"""The command-line tools run end to end on tiny settings (tools/ is not a package: loaded by path)."""
from __future__ import annotations

import re
import json
import math

import cv2
import numpy as np
import pandas as pd
import pytest

from ecgdigit.config import IMAGE_TYPES, LEADS
from ecgdigit.io.competition_files import CompetitionFolder, read_test_csv

from helpers import load_tool  # noqa: E402


def test_make_synthetic_competition_writes_a_readable_folder(tmp_path, capsys):
    tool = load_tool("make_synthetic_competition")
    out = tmp_path / "comp"
    summary = tool.main(["--out", str(out), "--n-train", "1", "--n-test", "2", "--train-types", "0001",
                         "--test-types", "0001,0003", "--seed", "5", "--max-side", "1400", "--quiet"])
    assert summary.n_images == 3
    assert "images/s" in capsys.readouterr().out
    test = read_test_csv(out / "test.csv")
    assert len(test) == 2 * len(LEADS)
    folder = CompetitionFolder(out)
    ids = folder.test_ids()
    assert len(ids) == 2 and folder.has_truth()
    assert sorted(folder.test_image_types().values()) == ["0001", "0003"]
    for i in ids:
        img = folder.test_image(i)
        assert img.ndim == 3 and img.dtype == np.uint8
    train = folder.train()
    assert len(train) == 1
    assert folder.train_image(str(train["id"].iloc[0]), "0001").shape == (1700, 2200, 3)


def test_make_synthetic_competition_rejects_unknown_type(tmp_path):
    tool = load_tool("make_synthetic_competition")
    with pytest.raises(SystemExit):
        tool.main(["--out", str(tmp_path / "x"), "--test-types", "0002", "--quiet"])


def test_bench_generator_reports_positive_rates(capsys):
    tool = load_tool("bench_generator")
    res = tool.main(["--n", "1", "--types", "0001,0003", "--max-side", "1400"])
    out = capsys.readouterr().out
    assert out.startswith("$ python tools/bench_generator.py --n 1")
    rows = res["rows"]
    assert [r.image_type for r in rows] == ["0001", "0003", "all"]
    assert all(r.n >= 1 and r.images_per_s > r.images_per_s_png > 0 for r in rows)
    assert rows[-1].n == 2


def test_bench_accuracy_tiny(tmp_path, capsys):
    tool = load_tool("bench_accuracy")
    out = tmp_path / "bench"
    argv = ["--classical", "--per-type", "1", "--types", "0001,0003", "--max-side", "1400", "--out", str(out),
            "--workers", "1", "--quiet"]
    summary = tool.main(argv)
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "$ python tools/bench_accuracy.py " + " ".join(argv)
    df = pd.read_csv(out / "bench_accuracy.csv", dtype={"id": str, "image_type": str})
    assert len(df) == 2
    assert sorted(df["image_type"].str.zfill(4)) == ["0001", "0003"]
    assert np.isfinite(df["oracle_snr_db"]).all() and np.isfinite(df["snr_db"]).all()
    assert (df["s_total"] > 0).all() and (df["oracle_s_total"] > 0).all()
    # the clean render is upright and found by the frame; its oracle read should be a real signal
    clean = df[df["image_type"].str.zfill(4) == "0001"].iloc[0]
    assert clean["oracle_snr_db"] > 5.0
    js = json.loads((out / "bench_accuracy.json").read_text())
    assert js["n_images"] == 2 and js["command"] == printed.splitlines()[0][2:]
    assert math.isfinite(js["score_db"]) and math.isfinite(js["oracle_score_db"])
    assert [r["image_type"] for r in js["per_type"]] == ["0001", "0003", "all"]
    assert summary["timing"]["s_total"]["p90"] >= summary["timing"]["s_total"]["p50"] > 0
    # the same options reuse the hold-out instead of writing it again
    root = next((out / "holdout").iterdir())
    mtime = (root / tool.HOLDOUT_MARKER).stat().st_mtime_ns
    opts = tool.holdout_options(1, ("0001", "0003"), tool.HOLDOUT_SEED, 1400, workers=1)
    assert tool.ensure_holdout(root, opts, progress=False) == (root, False)
    assert (root / tool.HOLDOUT_MARKER).stat().st_mtime_ns == mtime


def test_contact_sheet_grid_size(tmp_path, capsys):
    tool = load_tool("contact_sheet")
    path = tool.main(["--out", str(tmp_path / "sheet.png"), "--cell-width", "160", "--max-side", "1400"])
    img = cv2.imread(str(path))
    assert img is not None
    lay = tool.sheet_layout(len(IMAGE_TYPES), 3, 160)
    assert img.shape[:2] == lay.size
    assert lay.rows == 3 and lay.size[1] == 3 * 160 + 4 * tool.PAD
    # every cell holds an image (not the plain background)
    for k in range(len(IMAGE_TYPES)):
        r, c = divmod(k, 3)
        y = tool.PAD + r * (lay.cell_h + lay.caption_h + tool.PAD) + lay.caption_h
        x = tool.PAD + c * (160 + tool.PAD)
        assert img[y: y + lay.cell_h, x: x + 160].std() > 5.0


def test_bench_check_measures_a_fresh_process(capsys):
    from helpers import load_tool

    bench_check = load_tool("bench_check")
    assert bench_check.main(["--images", "3"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"3 images, ([\d,]+) rows.*check ([\d.]+) s, peak RSS ([\d.]+) GB", out)
    assert m, out
    test = bench_check.synthetic_test_csv(3)
    assert int(m.group(1).replace(",", "")) == int(test["number_of_rows"].sum())
    assert 0.01 < float(m.group(3)) < 3.0
