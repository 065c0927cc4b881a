"""Competition files: readers' validation, image decoding, folder layout, Kaggle resolution."""
import cv2
import numpy as np
import pandas as pd
import pytest

from ecgdigit import config
from ecgdigit.io.competition_files import (
    CompetitionFileError, CompetitionFolder, CompetitionNotFoundError, read_image, read_series_csv,
    read_test_csv, read_train_csv,
)


def write_test_csv(path, ids_fs=(("0042", 250), ("7", 500))):
    rows = [(i, lead, fs, config.number_of_rows(lead, fs)) for i, fs in ids_fs for lead in config.LEADS]
    pd.DataFrame(rows, columns=["id", "lead", "fs", "number_of_rows"]).to_csv(path, index=False)
    return rows


def series_frame(fs, seed=0):
    n = 10 * fs
    data = np.random.default_rng(seed).normal(0, 0.3, (n, 12))
    df = pd.DataFrame(data, columns=list(config.LEADS))
    for lead in config.LEADS:
        a, b = config.lead_window(lead, fs)
        df.loc[np.r_[0:a, b:n], lead] = np.nan
    return df


def save_rgb_png(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "comp"
    root.mkdir()
    pd.DataFrame({"id": ["0100", "200"], "fs": [250, 500], "sig_len": [2500, 5000]}).to_csv(
        root / "train.csv", index=False)
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 200  # red, to catch BGR/RGB swaps
    save_rgb_png(root / "train" / "0100" / "0100-0001.png", img)
    series_frame(250).to_csv(root / "train" / "0100" / "0100.csv", index=False)
    write_test_csv(root / "test.csv", (("9", 250), ("3", 250)))
    save_rgb_png(root / "test" / "9.png", img)
    return root


# ---------------------------------------------------------------- csv readers
def test_read_test_csv_ok_and_ids_kept_as_str(tmp_path):
    rows = write_test_csv(tmp_path / "test.csv")
    df = read_test_csv(tmp_path / "test.csv")
    assert list(df.columns) == ["id", "lead", "fs", "number_of_rows"]
    assert df["id"].iloc[0] == "0042" and len(df) == len(rows)
    assert df["number_of_rows"].tolist() == [r[3] for r in rows]


@pytest.mark.parametrize("mutate, match", [
    (lambda df: df.drop(columns="fs"), "missing column"),
    (lambda df: df.assign(lead=df["lead"].replace("V4", "V7")), "unknown lead 'V7'"),
    (lambda df: df.assign(fs=df["fs"].where(df.index != 3, 0)), "line 5.*positive integer, got 0 "),
    (lambda df: df.assign(number_of_rows=df["number_of_rows"].where(df.index != 1, 123)), "line 3.*expected 2500"),
    (lambda df: pd.concat([df, df.iloc[[0]]]), "appears twice"),
])
def test_read_test_csv_errors_name_file_and_row(tmp_path, mutate, match):
    write_test_csv(tmp_path / "test.csv")
    mutate(pd.read_csv(tmp_path / "test.csv", dtype={"id": str})).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(CompetitionFileError, match=match) as e:
        read_test_csv(tmp_path / "bad.csv")
    assert "bad.csv" in str(e.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(CompetitionFileError, match="not found"):
        read_train_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CompetitionFileError, match="empty"):
        read_test_csv(tmp_path / "empty.csv")


def test_read_train_csv(tmp_path, folder):
    df = read_train_csv(folder / "train.csv")
    assert df["id"].tolist() == ["0100", "200"] and df["fs"].dtype.kind == "i"
    (tmp_path / "t.csv").write_text("id,fs,sig_len\n1,abc,10\n")
    with pytest.raises(CompetitionFileError, match="line 2.*'fs'"):
        read_train_csv(tmp_path / "t.csv")


def test_read_series_csv(tmp_path):
    src = series_frame(250)
    src.to_csv(tmp_path / "s.csv", index=False)
    df = read_series_csv(tmp_path / "s.csv")
    assert list(df.columns) == list(config.LEADS)
    np.testing.assert_allclose(df.to_numpy(), src.to_numpy(), equal_nan=True)
    a, b = config.lead_window("V3", 250)
    assert df["V3"].iloc[a:b].notna().all() and df["V3"].isna().sum() == 2500 - (b - a)
    src.drop(columns="aVL").to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(CompetitionFileError, match="aVL"):
        read_series_csv(tmp_path / "m.csv")
    (tmp_path / "x.csv").write_text(",".join(config.LEADS) + "\n" + ",".join(["1"] * 11 + ["oops"]) + "\n")
    with pytest.raises(CompetitionFileError, match="line 2: lead V6"):
        read_series_csv(tmp_path / "x.csv")


# ---------------------------------------------------------------- images
def test_read_image_colour_gray_rgba(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (15, 25, 3), dtype=np.uint8)
    save_rgb_png(tmp_path / "c.png", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "c.png"), rgb)
    gray = rgb[..., 1].copy()
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    got = read_image(tmp_path / "g.png")
    assert got.shape == (15, 25, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[..., 0], gray)
    bgra = np.dstack([cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), np.full((15, 25), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb)


def test_read_image_errors(tmp_path):
    with pytest.raises(CompetitionFileError, match="missing.png.*not found"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not an image at all")
    with pytest.raises(CompetitionFileError, match="text.png"):
        read_image(tmp_path / "text.png")
    save_rgb_png(tmp_path / "full.png", np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8))
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CompetitionFileError, match="trunc.png"):
        read_image(tmp_path / "trunc.png")


# ---------------------------------------------------------------- folder
def test_folder_layout(folder):
    f = CompetitionFolder(folder)
    assert f.train()["id"].tolist() == ["0100", "200"]
    assert f.train_image("0100", "0001")[0, 0].tolist() == [200, 0, 0]
    assert f.train_series("0100").shape == (2500, 12)
    assert f.test_ids() == ["9", "3"]  # test.csv order, unique
    assert f.test_image("9").shape == (20, 30, 3)
    assert f.test_image_path("3") == folder / "test" / "3.png"
    with pytest.raises(CompetitionFileError, match="3.png"):
        f.test_image("3")
    assert not f.has_truth() and f.test_image_types() == {}
    (folder / "test_truth").mkdir()
    series_frame(250, seed=3).to_csv(folder / "test_truth" / "9.csv", index=False)
    pd.DataFrame({"id": ["9", "3"], "image_type": ["0005", "0001"]}).to_csv(
        folder / "test_truth" / "image_types.csv", index=False)
    assert f.has_truth()
    assert f.test_truth("9").shape == (2500, 12)
    assert f.test_image_types() == {"9": "0005", "3": "0001"}


def test_resolve_explicit_and_env(folder, monkeypatch, tmp_path):
    monkeypatch.delenv("ECGDIGIT_COMPETITION_DIR", raising=False)
    monkeypatch.setenv("ECGDIGIT_KAGGLE_INPUT", str(tmp_path / "no_kaggle"))
    assert CompetitionFolder.resolve(folder).root == folder
    assert CompetitionFolder.resolve(str(folder)).root == folder
    with pytest.raises(CompetitionNotFoundError, match="explicitly"):
        CompetitionFolder.resolve(tmp_path / "absent")
    monkeypatch.setenv("ECGDIGIT_COMPETITION_DIR", str(folder))
    assert CompetitionFolder.resolve().root == folder
    monkeypatch.setenv("ECGDIGIT_COMPETITION_DIR", str(tmp_path / "absent"))
    with pytest.raises(CompetitionNotFoundError, match="ECGDIGIT_COMPETITION_DIR"):
        CompetitionFolder.resolve()


@pytest.mark.parametrize("sub", [config.COMPETITION_SLUG, f"competitions/{config.COMPETITION_SLUG}",
                                 "datasets/someone/renamed-copy"])
def test_resolve_kaggle_mounts(tmp_path, monkeypatch, sub):
    monkeypatch.delenv("ECGDIGIT_COMPETITION_DIR", raising=False)
    base = tmp_path / "input"
    # decoys the scan must skip: a test.csv without the marker columns, and a plain folder
    (base / "aaa-other").mkdir(parents=True)
    (base / "aaa-other" / "test.csv").write_text("id,target\n1,2\n")
    (base / "bbb-bundle" / "weights").mkdir(parents=True)
    target = base / sub
    target.mkdir(parents=True)
    write_test_csv(target / "test.csv")
    monkeypatch.setenv("ECGDIGIT_KAGGLE_INPUT", str(base))
    assert CompetitionFolder.resolve().root == target


def test_resolve_not_found_lists_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("ECGDIGIT_COMPETITION_DIR", raising=False)
    base = tmp_path / "input"
    (base / "a" / "b" / "c" / "d").mkdir(parents=True)
    write_test_csv(base / "a" / "b" / "c" / "d" / "test.csv")  # depth 4: too deep
    monkeypatch.setenv("ECGDIGIT_KAGGLE_INPUT", str(base))
    with pytest.raises(CompetitionNotFoundError) as e:
        CompetitionFolder.resolve()
    msg = str(e.value)
    assert config.COMPETITION_SLUG in msg and "competitions" in msg and "depth <= 3" in msg
