"""The submission notebook executed headlessly (nbclient + ipykernel) against a synthetic competition
folder and a bundle built by tools/build_bundle.py, laid out as Kaggle mounts them; every path is
redirected by environment variables only, and the predictor is the documented no-weights "zeros"."""
from __future__ import annotations

from pathlib import Path

import pytest

from ecgdigit import config

from helpers import REPO, load_tool  # noqa: E402


build_bundle = load_tool("build_bundle")


def execute_notebook(path: Path, cwd: Path, extra_source: str | None = None):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if extra_source:
        nb.cells.append(nbformat.v4.new_code_cell(extra_source))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def cell_text(cell) -> str:
    return "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


@pytest.fixture
def kaggle_input(tmp_path, monkeypatch):
    """/kaggle/input as Kaggle mounts it: the competition under its slug, the bundle under datasets/<owner>/."""
    from test_runner import IDS, make_competition

    base = tmp_path / "input"
    make_competition(base / config.COMPETITION_SLUG)
    build_bundle.build_bundle(base / "datasets" / "someone" / config.BUNDLE_SLUG)
    for var in ("ECGDIGIT_COMPETITION_DIR", "ECGDIGIT_BUNDLE_DIR", "PYTHONPATH", "ECGDIGIT_DEADLINE_S"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ECGDIGIT_KAGGLE_INPUT", str(base))
    monkeypatch.setenv("ECGDIGIT_OUTPUT", str(tmp_path / "working" / "submission.csv"))
    return base, tmp_path / "working" / "submission.csv", IDS


def test_submission_notebook_runs_offline_from_the_bundle(kaggle_input, tmp_path, monkeypatch):
    import pandas as pd
    from ecgdigit.io.submission import read_submission, validate_submission

    base, out, ids = kaggle_input
    monkeypatch.setenv("ECGDIGIT_PREDICTOR", "zeros")  # no weights needed: every image Digitized.fallback
    (tmp_path / "cwd").mkdir()
    nb = execute_notebook(REPO / "kernels" / "submission.ipynb", tmp_path / "cwd",
                          extra_source="import ecgdigit.runner; print('FILE', ecgdigit.runner.__file__)")
    test_df = pd.read_csv(base / config.COMPETITION_SLUG / "test.csv", dtype={"id": str})
    validate_submission(out, test_df)
    assert set(read_submission(out)["id"].str.split("_").str[0]) == set(ids)
    text = "\n".join(cell_text(c) for c in nb.cells)
    bundle_lib = base / "datasets" / "someone" / config.BUNDLE_SLUG / "lib"
    assert f"FILE {bundle_lib}/ecgdigit/runner.py" in text, "ecgdigit must come from the bundle"
    assert "n_images=4, n_predicted=4" in text

    # a second run with a tiny time budget: slow predictor, still every id, finished in time
    # (one worker at 3 s per image: the 4 images cannot finish in the budget however fast workers start)
    monkeypatch.setenv("ECGDIGIT_PREDICTOR", "zeros:3.0")
    monkeypatch.setenv("ECGDIGIT_WORKERS", "1")
    budget = 4.0
    monkeypatch.setenv("ECGDIGIT_DEADLINE_S", str(budget))
    out.unlink()
    nb = execute_notebook(REPO / "kernels" / "submission.ipynb", tmp_path / "cwd")
    validate_submission(out, test_df)
    code = [c for c in nb.cells if c.cell_type == "code"]
    start = pd.Timestamp(code[0].metadata.execution["iopub.execute_input"])
    end = pd.Timestamp(code[-1].metadata.execution["shell.execute_reply"])
    assert (end - start).total_seconds() < budget + 0.5, (start, end)
    text = cell_text(code[-1])
    assert "stopped_by_deadline=True" in text and "n_predicted=4" not in text


def test_submission_notebook_with_packed_bundle_and_env_override(kaggle_input, tmp_path, monkeypatch):
    """The bundle as uploaded (lib.zip, weights.zip) left packed, found through $ECGDIGIT_BUNDLE_DIR."""
    import shutil

    import pandas as pd
    from ecgdigit.io.submission import validate_submission

    base, out, _ = kaggle_input
    built = base / "datasets" / "someone" / config.BUNDLE_SLUG
    packed = tmp_path / "elsewhere" / "bundle"
    packed.mkdir(parents=True)
    for path in sorted(built.iterdir()):  # as `kaggle datasets version -r zip` uploads it: root files, folder zips
        if path.is_dir():
            shutil.make_archive(str(packed / path.name), "zip", path)
        elif path.name != "dataset-metadata.json":
            shutil.copy(path, packed)
    shutil.rmtree(built)  # only the packed copy can serve the import now
    monkeypatch.setenv("ECGDIGIT_BUNDLE_DIR", str(packed))
    monkeypatch.setenv("ECGDIGIT_PREDICTOR", "zeros")
    nb = execute_notebook(REPO / "kernels" / "submission.ipynb", tmp_path,
                          extra_source="import ecgdigit.runner; print('FILE', ecgdigit.runner.__file__)")
    validate_submission(out, pd.read_csv(base / config.COMPETITION_SLUG / "test.csv", dtype={"id": str}))
    text = cell_text(nb.cells[-1])
    assert "FILE " in text and "ecgdigit-bundle-" in text and "/lib/ecgdigit/runner.py" in text
