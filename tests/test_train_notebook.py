"""The training notebook executed headlessly (nbclient + ipykernel) on CPU against a bundle built by
tools/build_bundle.py and a synthetic competition, laid out as Kaggle mounts them; the stage, variant,
extra flags and the working folder are chosen by environment variables only."""
from __future__ import annotations

import json

from ecgdigit import config

from helpers import REPO, load_tool  # noqa: E402
from test_submission_notebook import cell_text, execute_notebook

build_bundle = load_tool("build_bundle")


def test_train_notebook_stage0_tiny_writes_checked_weights(tmp_path, monkeypatch):
    from test_runner import make_competition

    from ecgdigit.models.weights_io import MANIFEST_NAME, load_stage_model, sha256_file

    base = tmp_path / "input"
    make_competition(base / config.COMPETITION_SLUG)
    bundle = build_bundle.build_bundle(base / "datasets" / "someone" / config.BUNDLE_SLUG)
    bundle_before = {p: p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}
    for var in ("ECGDIGIT_COMPETITION_DIR", "ECGDIGIT_BUNDLE_DIR", "PYTHONPATH", "ECGDIGIT_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    working = tmp_path / "working"
    monkeypatch.setenv("ECGDIGIT_KAGGLE_INPUT", str(base))
    monkeypatch.setenv("ECGDIGIT_WORKING_DIR", str(working))
    monkeypatch.setenv("ECGDIGIT_TRAIN_STAGE", "0")
    monkeypatch.setenv("ECGDIGIT_TRAIN_VARIANT", "tiny")
    monkeypatch.setenv("ECGDIGIT_TRAIN_ARGS", "--steps 2 --workers 0 --device cpu")
    (tmp_path / "cwd").mkdir()
    nb = execute_notebook(REPO / "kernels" / "train" / "train.ipynb", tmp_path / "cwd",
                          extra_source="import ecgdigit.training.cli as m; print('FILE', m.__file__)")

    text = "\n".join(cell_text(c) for c in nb.cells)
    assert f"FILE {bundle}/lib/ecgdigit/training/cli.py" in text, "ecgdigit must come from the bundle"
    assert f"'--real-dir', '{base / config.COMPETITION_SLUG}'" in text, "the attached competition is found"
    assert "trained stage '0'" in text

    out = working / "weights"
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    entries = {name: e for name, e in manifest["weights"].items() if e.get("stage") == 0}
    assert len(entries) == 1, manifest
    (name, entry), = entries.items()
    assert entry["sha256"] == sha256_file(out / name)
    assert not any(e.get("stage") in (1, 2) for e in manifest["weights"].values()), "only stage 0 was asked"
    loaded = load_stage_model(0, out)
    assert loaded is not None
    model, cfg = loaded
    assert not model.training and cfg.to_dict() == entry["architecture"]
    assert entry["training"]["steps"] == 2, entry["training"]  # $ECGDIGIT_TRAIN_ARGS reached the trainer
    assert (working / "run" / "stage0").is_dir()
    # the notebook writes only to the working folder: the mounted bundle is left as it was
    assert {p: p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()} == bundle_before
