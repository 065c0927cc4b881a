"""The digitize command: WFDB records that PhysioNet's reader opens, one clear line per bad page, the
exit code rules, and pages of any size (../shared/realdev for the real page; skipped without it)."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgdigit.config import LEADS
from ecgdigit.digitize_cli import main as digitize_main
from ecgdigit.digitize_cli import unique_record_names
from ecgdigit.digitized import Digitized
from ecgdigit.io.competition_files import read_series_csv
from ecgdigit.io.page_files import expand_pages
from ecgdigit.io.signals_csv import write_signals_csv
from ecgdigit.io.wfdb_record import MAX_ABS_MV, record_name_for, write_wfdb_record
from ecgdigit.pipeline import Pipeline
from ecgdigit.record_signals import printed_window_s, record_signals

from helpers import REPO, load_tool

REALDEV = REPO.parent / "shared" / "realdev"
KAGGLE_LOOK = REALDEV / "renders_kaggle_look"
needs_realdev = pytest.mark.skipif(not KAGGLE_LOOK.is_dir(), reason=f"{KAGGLE_LOOK} not present")
# Lead II read back vs the truth, measured on the first 4 renders_kaggle_look pages: 0.980..0.996
# (the first page 0.986); a page read a square off or a lead mixed up falls far below.
II_CORRELATION_FLOOR = 0.9


# ---------------------------------------------------------------- bad pages, made on the spot
def write_bad_pages(folder):
    """{file name: words its line must hold} for pages that cannot be digitized (notes.txt: a folder
    does not list it, so callers name it)."""
    folder.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", np.random.default_rng(1).integers(0, 256, (400, 500, 3), dtype=np.uint8))
    (folder / "corrupt.png").write_bytes(png.tobytes()[:200])
    cv2.imwrite(str(folder / "blank.png"), np.full((900, 1200, 3), 255, np.uint8))
    cv2.imwrite(str(folder / "tiny.png"), np.random.default_rng(2).integers(0, 256, (80, 120, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image\n")
    # no grid, no trace: random pixels, and a light page with a few blots of ink
    cv2.imwrite(str(folder / "noise.png"), np.random.default_rng(5).integers(0, 256, (900, 1200, 3), dtype=np.uint8))
    blots = np.full((900, 1200, 3), 235, np.uint8)
    for k in range(6):
        cv2.circle(blots, (150 + 170 * k, 300 + 40 * k), 25, (40, 40, 40), -1)
    cv2.imwrite(str(folder / "blots.png"), blots)
    return {"corrupt.png": "not a readable image", "blank.png": "blank", "tiny.png": "too small",
            "notes.txt": "not a readable image", "noise.png": "not an ECG", "blots.png": "not an ECG"}


def skipped_lines(text: str) -> dict[str, str]:
    """file name -> its 'skipped <path>: <problem>' line."""
    out = {}
    for line in text.splitlines():
        if line.startswith("skipped "):
            path = line[len("skipped "):].split(": ", 1)[0]
            out[os.path.basename(path)] = line
    return out


# ---------------------------------------------------------------- the record's signals
def synthetic_digitized(fs: float = 393.7) -> Digitized:
    """Known leads on the pipeline's own grid (round(10 s * fs) samples at its reading rate)."""
    t = np.arange(int(round(10 * fs))) / fs
    return Digitized(np.stack([np.sin(2 * np.pi * (j + 1) * 0.3 * t) for j in range(len(LEADS))], 1), fs)


@pytest.mark.parametrize("fs", [500, 250, 1025])
def test_record_signals_hold_each_lead_only_in_its_printed_window(fs):
    d = synthetic_digitized()
    sig = record_signals(d, fs)
    assert sig.shape == (int(round(10 * fs)), len(LEADS))
    t = np.arange(len(sig)) / fs
    for j, lead in enumerate(LEADS):
        t0, t1 = printed_window_s(lead)
        inside = (t >= t0 - 1e-9) & (t < t1 - 1e-9)
        assert np.isfinite(sig[inside, j]).all() and np.isnan(sig[~inside, j]).all(), lead
        covered = inside & (t <= (len(d.signals) - 1) / d.fs)  # after the last sample: held, not interpolated
        expected = np.sin(2 * np.pi * (j + 1) * 0.3 * t[covered])
        assert np.abs(sig[covered, j] - expected).max() < 0.001, lead
    assert np.isfinite(sig[:, LEADS.index("II")]).all()
    assert np.isfinite(sig[:, LEADS.index("I")]).sum() == np.count_nonzero(t < 2.5)


def test_a_simultaneous_page_record_holds_every_short_lead_at_0_to_2_5_s():
    """Its later windows hold the pipeline's beat estimate, which a record must not pass off as read."""
    d = synthetic_digitized()
    d.simultaneous_columns = True
    sig = record_signals(d, 500)
    for lead in ("aVR", "V2", "V6"):
        col = sig[:, LEADS.index(lead)]
        assert np.isfinite(col[:1250]).all() and np.isnan(col[1250:]).all(), lead


def test_a_lead_the_reader_found_nothing_for_is_missing_not_zero():
    d = synthetic_digitized()
    d.signals[:, LEADS.index("V3")] = 0.0
    sig = record_signals(d, 500)
    assert np.isnan(sig[:, LEADS.index("V3")]).all()
    assert np.isfinite(sig[1250:2500, LEADS.index("aVF")]).all()


def test_wfdb_record_reads_back_with_nan_kept_and_values_clipped_to_format_16(tmp_path):
    sig = record_signals(synthetic_digitized(), 500)
    sig[100, 1] = 40.0  # beyond what format 16 at 1 uV per unit holds
    hea = write_wfdb_record(tmp_path, "rec-1_a", sig, 500, LEADS, ["from x.png", "two\nlines"])
    assert hea == tmp_path / "rec-1_a.hea" and (tmp_path / "rec-1_a.dat").is_file()
    rec = wfdb.rdrecord(str(tmp_path / "rec-1_a"))
    assert rec.sig_name == list(LEADS) and rec.units == ["mV"] * 12 and rec.fs == 500 and rec.sig_len == 5000
    assert rec.comments == ["from x.png", "two lines"]
    back = rec.p_signal
    assert np.array_equal(np.isnan(back), np.isnan(sig))
    finite = np.isfinite(sig)
    finite[100, 1] = False
    assert np.abs(back[finite] - sig[finite]).max() <= 0.0005 + 1e-9  # half of a 1 uV step
    assert back[100, 1] == pytest.approx(MAX_ABS_MV)


def test_record_names_are_what_wfdb_accepts_and_unique(tmp_path):
    assert record_name_for("scan 01 (copy)") == "scan_01_copy"
    assert record_name_for("ecg.page.2") == "ecg_page_2"
    assert record_name_for("***") == "page"
    with pytest.raises(ValueError, match="only letters"):
        write_wfdb_record(tmp_path, "a b", np.zeros((10, 12)), 500, LEADS)
    pages = [tmp_path / "a" / "p.png", tmp_path / "b" / "p.png", tmp_path / "P.jpg", tmp_path / "q r.png"]
    assert unique_record_names(pages) == ["p", "p-2", "P-3", "q_r"]


def test_signals_csv_reads_back_with_the_kits_own_reader(tmp_path):
    sig = record_signals(synthetic_digitized(), 500)
    path = write_signals_csv(tmp_path / "x.csv", sig, LEADS)
    back = read_series_csv(path).to_numpy()
    assert np.array_equal(np.isnan(back), np.isnan(sig))
    assert np.nanmax(np.abs(back - sig)) <= 0.00005 + 1e-9


def test_expand_pages_lists_folder_images_and_names_what_is_missing(tmp_path):
    pages = tmp_path / "pages"
    (pages / "sub").mkdir(parents=True)
    for name in ("b.PNG", "a.jpg", "c.tif", "d.txt", "sub/e.png"):
        (pages / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    listed = expand_pages([pages, pages / "a.jpg", pages / "d.txt", tmp_path / "nope.png", tmp_path / "empty"])
    assert [p.name for p in listed.pages] == ["a.jpg", "b.PNG", "c.tif", "d.txt"]
    problems = {p.name: why for p, why in listed.problems}
    assert problems == {"nope.png": "no such file or folder",
                        "empty": "folder holds no image files (.png, .jpg, .jpeg, .tif, .tiff, .bmp)"}


# ---------------------------------------------------------------- the command
@needs_realdev
def test_python_m_ecgdigit_digitize_writes_a_record_wfdb_reads_and_skips_bad_pages(tmp_path):
    page = sorted((KAGGLE_LOOK / "test").glob("*.png"))[0]
    expect = write_bad_pages(tmp_path / "bad")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    proc = subprocess.run([sys.executable, "-m", "ecgdigit", "digitize", str(page), str(tmp_path / "bad"),
                           str(tmp_path / "bad" / "notes.txt"), "--out", str(out), "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rec = wfdb.rdrecord(str(out / page.stem))
    assert (rec.n_sig, rec.fs, rec.sig_len) == (12, 500, 5000)
    assert rec.sig_name == list(LEADS) and rec.units == ["mV"] * 12
    sig = rec.p_signal
    for j, lead in enumerate(LEADS):
        t0, t1 = printed_window_s(lead)
        window = sig[int(t0 * 500):int(t1 * 500), j]
        assert np.isfinite(window).all() and np.ptp(window) > 0.2, lead  # a read QRS, not a flat line
    truth = pd.read_csv(KAGGLE_LOOK / "test_truth" / f"{page.stem}.csv")["II"].to_numpy()
    corr = np.corrcoef(sig[:, LEADS.index("II")], truth)[0, 1]
    assert corr > II_CORRELATION_FLOOR, corr
    csv = read_series_csv(out / f"{page.stem}.csv").to_numpy()
    assert np.nanmax(np.abs(csv - sig)) < 0.001
    overlay = cv2.imread(str(out / f"{page.stem}-overlay.png"))
    assert overlay is not None and overlay.shape[1] == 2200
    assert f"ok {page}: layout competition (pulse in " in proc.stdout and "digitized 1 of 7 page(s)" in proc.stdout
    lines = skipped_lines(proc.stderr)
    for name, words in expect.items():
        assert words in lines[name], (name, lines.get(name))
        assert not (out / f"{name.split('.')[0]}.hea").exists()


def test_no_readable_page_exits_1_naming_every_file(tmp_path, capsys):
    expect = write_bad_pages(tmp_path / "bad")
    rc = digitize_main([str(tmp_path / "bad"), str(tmp_path / "bad" / "notes.txt"), str(tmp_path / "missing.png"), "--out", str(tmp_path / "out"),
                        "--classical", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    lines = skipped_lines(err)
    for name, words in expect.items():
        assert words in lines[name], (name, lines.get(name))
    assert "no such file or folder" in lines["missing.png"]
    assert not list(tmp_path.rglob("*.hea"))


def test_a_pipeline_error_is_one_line_for_that_page(tmp_path, capsys, monkeypatch):
    page = tmp_path / "page.png"
    cv2.imwrite(str(page), np.random.default_rng(3).integers(0, 256, (600, 800, 3), dtype=np.uint8))

    def broken_run(self, image, **kwargs):
        raise RuntimeError("grid exploded")

    monkeypatch.setattr(Pipeline, "run", broken_run)
    rc = digitize_main([str(page), "--out", str(tmp_path / "out"), "--classical", "--quiet"])
    assert rc == 1
    assert f"skipped {page}: digitizing failed (RuntimeError: grid exploded)" in capsys.readouterr().err


def test_nothing_to_do_and_bad_setup_exit_codes(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert digitize_main([str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--classical"]) == 1
    assert "no page to digitize" in capsys.readouterr().err
    page = tmp_path / "p.png"
    cv2.imwrite(str(page), np.zeros((300, 300, 3), np.uint8))
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "manifest.json").write_text("{not json")
    bad_weights = [str(page), "--out", str(tmp_path / "o"), "--weights", str(tmp_path / "weights")]
    assert digitize_main(bad_weights) == 1  # the stages run classical (said first); the blank page is skipped
    assert "MODEL NOT LOADED" in capsys.readouterr().err
    assert digitize_main(bad_weights + ["--strict-weights"]) == 2
    assert "cannot load the pipeline" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        digitize_main([str(page), "--out", str(tmp_path / "o"), "--fs", "0"])


@pytest.mark.parametrize("layout, find_layout", [("auto", True), ("competition", False)])
def test_layout_option_reaches_the_pipeline(layout, find_layout, tmp_path):
    from ecgdigit.digitize_cli import load_pipeline, parse_args

    args = parse_args(["p.png", "--out", str(tmp_path), "--layout", layout, "--classical"])
    assert load_pipeline(args).options.find_layout is find_layout
    args = parse_args(["p.png", "--out", str(tmp_path), "--layout", layout, "--device", "cpu"])
    assert load_pipeline(args).options.find_layout is find_layout


def test_module_entry_point_lists_commands_and_rejects_unknown_ones():
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    run = lambda *a: subprocess.run([sys.executable, "-m", "ecgdigit", *a], capture_output=True, text=True, env=env)  # noqa: E731
    assert run("--help").returncode == 0 and "digitize" in run("--help").stdout
    bad = run("frobnicate")
    assert bad.returncode == 2 and "unknown command 'frobnicate'" in bad.stderr


# ---------------------------------------------------------------- pages of any size
@needs_realdev
def test_pages_600_to_4000_px_wide_and_non_pages_each_get_a_record_or_a_line(tmp_path, capsys):
    tool = load_tool("bench_digitize")
    page = sorted((KAGGLE_LOOK / "test").glob("*.png"))[0]
    rows = tool.main(["--page", str(page), "--widths", "600,4000", "--extras", "noise,tiny,corrupt",
                      "--out", str(tmp_path)])
    by_file = {r.file: r for r in rows}
    assert set(by_file) == {"page-w600.png", "page-w4000.png", "noise-w1600.png", "tiny-w150.png", "corrupt-w800.png"}
    assert by_file["page-w600.png"].outcome == by_file["page-w4000.png"].outcome == "record"
    assert "too small" in by_file["tiny-w150.png"].detail
    assert "not a readable image" in by_file["corrupt-w800.png"].detail
    # random pixels hold no grid and no trace: one line saying so, never a record passed off as a reading
    assert by_file["noise-w1600.png"].outcome == "reason" and "not an ECG: no grid found" in by_file["noise-w1600.png"].detail
    for name in ("page-w600.png", "page-w4000.png"):
        assert "CAUTION" not in by_file[name].detail
        assert by_file[name].ii_r > II_CORRELATION_FLOOR, (name, by_file[name].ii_r)
    assert "s per page" in capsys.readouterr().out


def test_the_package_imports_without_wfdb():
    """The Kaggle bundle imports every module on an image that may lack wfdb: only writing needs it."""
    code = ("import sys; sys.modules['wfdb'] = None\n"
            "import ecgdigit.__main__, ecgdigit.digitize_cli, ecgdigit.digitize_page, ecgdigit.io.wfdb_record\n"
            "try:\n    import wfdb\nexcept ImportError:\n    print('blocked')\n")
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "blocked", proc.stderr


def test_an_output_folder_that_cannot_be_written_is_one_line_per_page(tmp_path, capsys):
    from ecgdigit.synth.generate import random_record
    from ecgdigit.synth.render import render_page

    page = tmp_path / "page.png"
    rng = np.random.default_rng(4)
    cv2.imwrite(str(page), render_page(random_record(rng, "4", fs=500), rng).image[:, :, ::-1])
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    rc = digitize_main([str(page), "--out", str(blocker), "--classical", "--quiet"])
    assert rc == 1
    assert f"skipped {page}: writing its outputs to {blocker} failed" in capsys.readouterr().err


def test_the_layout_named_is_the_one_found_else_the_one_assumed():
    from types import SimpleNamespace

    from ecgdigit.digitize_page import layout_used
    from ecgdigit.stages.column_timing import ColumnTiming
    from ecgdigit.stages.layout_detection import LayoutFound

    found = LayoutFound("signal span", (39.0, 0.0), 0, 3.0)
    consecutive = SimpleNamespace(column_timing=ColumnTiming(False, 0.99, 0.1))
    simultaneous = SimpleNamespace(column_timing=ColumnTiming(True, 0.1, 0.99))
    page = SimpleNamespace(stage1=SimpleNamespace(layout_found=found), stage2=consecutive)
    assert layout_used(page, "auto") == found.describe()
    page.stage2 = simultaneous
    assert layout_used(page, "auto") == found.describe() + "; columns simultaneous (all from 0 s)"
    none = SimpleNamespace(stage1=SimpleNamespace(layout_found=None), stage2=consecutive)
    assert layout_used(none, "competition") == "competition (as asked), 25 mm/s"
    assert layout_used(none, "auto").startswith("competition (assumed") and layout_used(none, "auto").endswith("25 mm/s assumed")
