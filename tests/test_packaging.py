"""Kaggle packaging: the bundle tool, the generated notebooks, the metadata files, and the REAL kaggle
CLI against a stub HTTP server on 127.0.0.1 (no network)."""
from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ecgdigit import config

from helpers import REPO, load_tool  # noqa: E402
OWNER = "your-kaggle-username"  # the placeholder owner the README tells to change (tools/build_notebooks.py --owner)


build_bundle = load_tool("build_bundle")
build_notebooks = load_tool("build_notebooks")


# ================================================================ (a) the bundle
def make_fake_repo(root: Path) -> Path:
    """A tiny repo shaped like ours: a package importing only the stdlib, weights with a manifest."""
    pkg = root / "lib" / "ecgdigit"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('__version__ = "9.9"\n')
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "mod.py").write_text("import json\nVALUE = 3\n")
    (pkg / "table.json").write_text('{"a": 1}\n')
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0junk")
    (pkg / "scratch.ipynb").write_text("{}")
    weights = root / "weights"
    weights.mkdir()
    (weights / "stage0.safetensors").write_bytes(bytes(range(256)) * 4)
    (weights / "unlisted.bin").write_bytes(b"old")
    (weights / "manifest.json").write_text(json.dumps({"stage0": {"file": "stage0.safetensors", "sha256": "x"}}))
    (root / "datasets_meta").mkdir()
    shutil.copy(REPO / "datasets_meta" / "dataset-metadata.json", root / "datasets_meta")
    (root / "tools").mkdir()
    shutil.copy(REPO / build_bundle.BOOTSTRAP_SOURCE, root / build_bundle.BOOTSTRAP_SOURCE)
    return root


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_bundle_deterministic_checked_and_tamper_detected(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    a = build_bundle.build_bundle(tmp_path / "a", repo=repo)
    b = build_bundle.build_bundle(tmp_path / "b", repo=repo)
    assert tree_bytes(a) == tree_bytes(b), "two builds of the same tree differ"
    files = sorted(tree_bytes(a))
    assert files == ["BUNDLE_MANIFEST.json", "dataset-metadata.json", "ecgdigit_bootstrap.py",
                     "lib/ecgdigit/__init__.py", "lib/ecgdigit/sub/__init__.py", "lib/ecgdigit/sub/mod.py",
                     "lib/ecgdigit/table.json", "weights/manifest.json", "weights/stage0.safetensors"]
    assert (a / "ecgdigit_bootstrap.py").read_bytes() == (repo / build_bundle.BOOTSTRAP_SOURCE).read_bytes()
    manifest = json.loads((a / "BUNDLE_MANIFEST.json").read_text())
    assert [f["path"] for f in manifest["files"]] == sorted(f for f in files if f not in build_bundle.UNLISTED)
    assert all(f["size"] == (a / f["path"]).stat().st_size for f in manifest["files"])
    report = build_bundle.check_bundle(a, repo=repo)
    assert report.ok, report.problems

    (a / "lib" / "ecgdigit" / "sub" / "mod.py").write_text("import json\nVALUE = 4\n")
    (a / "weights" / "stage0.safetensors").unlink()
    (a / "lib" / "ecgdigit" / "stray.py").write_text("")
    problems = "\n".join(build_bundle.check_bundle(a, repo=repo).problems)
    assert "lib/ecgdigit/sub/mod.py: size/sha256 differ" in problems
    assert "weights/stage0.safetensors: listed in the manifest but missing" in problems
    assert "lib/ecgdigit/stray.py: present but not in the manifest" in problems
    assert build_bundle.main(["--check", "--out", str(a)]) == 1

    (repo / build_bundle.BOOTSTRAP_SOURCE).unlink()
    with pytest.raises(build_bundle.BundleError, match="kaggle_bootstrap.py"):
        build_bundle.build_bundle(tmp_path / "c", repo=repo)


def test_bundle_check_writes_no_bytecode_and_fails_on_caches(tmp_path, capsys):
    """The check imports every module from the bundle: that must leave no __pycache__ behind, and a
    cache or hidden file that is there (not in the manifest) fails --check, named."""
    repo = make_fake_repo(tmp_path / "repo")
    bundle = build_bundle.build_bundle(tmp_path / "bundle", repo=repo)
    before = sorted(tree_bytes(bundle))
    assert build_bundle.check_bundle(bundle, repo=repo).ok
    assert sorted(tree_bytes(bundle)) == before, "the import check wrote files into the bundle"
    assert build_bundle.main(["--check", "--out", str(bundle)]) == 0
    assert sorted(tree_bytes(bundle)) == before

    (bundle / "lib" / "ecgdigit" / "sub" / "__pycache__").mkdir()
    (bundle / "lib" / "ecgdigit" / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (bundle / "weights" / ".DS_Store").write_bytes(b"x")
    assert build_bundle.main(["--check", "--out", str(bundle)]) == 1
    err = capsys.readouterr().err
    assert "lib/ecgdigit/sub/__pycache__/mod.cpython-311.pyc: present but not in the manifest" in err
    assert "weights/.DS_Store: present but not in the manifest" in err


def test_bundle_import_check_sees_no_source_tree(tmp_path):
    """A module that imports something only the source tree has must fail the check."""
    repo = make_fake_repo(tmp_path / "repo")
    (repo / "lib" / "helper_outside_package.py").write_text("X = 1\n")
    (repo / "lib" / "ecgdigit" / "sub" / "needs_helper.py").write_text("import helper_outside_package\n")
    bundle = build_bundle.build_bundle(tmp_path / "bundle", repo=repo)
    report = build_bundle.check_bundle(bundle, repo=repo)
    assert not report.ok and "ecgdigit.sub.needs_helper" in "\n".join(report.problems)


def test_bundle_tolerates_missing_weights_and_copies_wheel_dir(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    shutil.rmtree(repo / "weights")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "timm-1.0.31-py3-none-any.whl").write_bytes(b"PK fake")
    bundle = build_bundle.build_bundle(tmp_path / "bundle", repo=repo, wheel_dir=wheels)
    names = sorted(tree_bytes(bundle))
    assert not any(n.startswith("weights/") for n in names)
    assert "wheels/timm-1.0.31-py3-none-any.whl" in names
    assert build_bundle.check_bundle(bundle, repo=repo, import_check=False).ok


def test_weight_manifest_formats(tmp_path):
    (tmp_path / "a.safetensors").write_bytes(b"a")
    (tmp_path / "b.safetensors").write_bytes(b"b")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format": 1, "weights": {"a.safetensors": {"sha256": "x", "stage": 0},
                                                              "b.safetensors": {"heads": {"files": 3}}}}))
    assert build_bundle.weight_files(tmp_path) == ["a.safetensors", "b.safetensors"]
    manifest.write_text(json.dumps({"weights": {"a.safetensors": {}, "gone.safetensors": {}}}))
    with pytest.raises(build_bundle.BundleError, match="gone.safetensors"):
        build_bundle.weight_files(tmp_path)
    manifest.write_text(json.dumps({"files": [{"path": "b.safetensors"}]}))
    assert build_bundle.weight_files(tmp_path) == ["b.safetensors"]


def test_real_bundle_builds_deterministically_and_imports(tmp_path):
    a = build_bundle.build_bundle(tmp_path / "a")
    b = build_bundle.build_bundle(tmp_path / "b")
    assert (a / "BUNDLE_MANIFEST.json").read_bytes() == (b / "BUNDLE_MANIFEST.json").read_bytes()
    paths = [f["path"] for f in json.loads((a / "BUNDLE_MANIFEST.json").read_text())["files"]]
    assert "lib/ecgdigit/runner.py" in paths and "lib/ecgdigit/config.py" in paths
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in paths)
    report = build_bundle.check_bundle(a)  # every submodule imports from the bundle alone
    assert report.ok, report.problems
    left = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if "__pycache__" in p.parts)
    assert not left, f"the self-check left caches in the bundle: {left[:5]}"


def test_publish_command():
    assert build_bundle.publish_command(Path("b"), "notes", new=False) == [
        "kaggle", "datasets", "version", "-p", "b", "-m", "notes", "-r", "zip"]
    assert build_bundle.publish_command(Path("b"), None, new=True)[:3] == ["kaggle", "datasets", "create"]
    with pytest.raises(build_bundle.BundleError):
        build_bundle.publish_command(Path("b"), None, new=False)


# ================================================================ (a') the bootstrap shipped at the bundle's root
kaggle_bootstrap = load_tool("kaggle_bootstrap")


def test_bootstrap_constants_match_the_kit():
    """The bootstrap is stdlib-only (it runs before ecgdigit is importable), so it repeats two names."""
    assert kaggle_bootstrap.BUNDLE_SLUG == config.BUNDLE_SLUG
    assert kaggle_bootstrap.MARKER == build_bundle.MANIFEST_NAME
    assert kaggle_bootstrap.FILE_NAME == build_bundle.BOOTSTRAP_NAME
    tree = ast.parse((REPO / build_bundle.BOOTSTRAP_SOURCE).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_bootstrap_search_order(tmp_path, monkeypatch):
    base = tmp_path / "input"
    monkeypatch.delenv("ECGDIGIT_BUNDLE_DIR", raising=False)
    monkeypatch.setenv("ECGDIGIT_KAGGLE_INPUT", str(base))
    with pytest.raises(FileNotFoundError, match="attach the ecgdigit-bundle dataset"):
        kaggle_bootstrap.find_bundle()

    def bundle_at(rel: str) -> Path:
        (base / rel).mkdir(parents=True)
        (base / rel / "BUNDLE_MANIFEST.json").write_text("{}")
        return base / rel

    other = bundle_at("x/renamed")  # any folder with the marker, 1-3 deep
    bundle_at("a/b/c/d")  # too deep to be searched
    assert kaggle_bootstrap.find_bundle() == other
    under_owner = bundle_at(f"datasets/someone/{config.BUNDLE_SLUG}")
    assert kaggle_bootstrap.find_bundle() == under_owner
    direct = bundle_at(config.BUNDLE_SLUG)
    assert kaggle_bootstrap.find_bundle() == direct
    monkeypatch.setenv("ECGDIGIT_BUNDLE_DIR", str(other))
    assert kaggle_bootstrap.find_bundle() == other
    monkeypatch.setenv("ECGDIGIT_BUNDLE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"\$ECGDIGIT_BUNDLE_DIR=.* holds no BUNDLE_MANIFEST.json"):
        kaggle_bootstrap.find_bundle()
    with pytest.raises(FileNotFoundError, match="no ecgdigit/__init__.py"):
        kaggle_bootstrap.find_lib([other])


# ================================================================ (b) notebooks
def test_notebooks_are_generated_and_not_stale():
    assert build_notebooks.stale(REPO) == [], "run python tools/build_notebooks.py"
    for src, dst in build_notebooks.NOTEBOOKS.items():
        text = (REPO / dst).read_text()
        assert build_notebooks.render((REPO / src).read_text()) == text  # reproducible
        nb = json.loads(text)
        assert [c["id"] for c in nb["cells"]] == [f"cell-{i:02d}" for i in range(len(nb["cells"]))]
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None


def test_notebook_check_fails_on_changed_source(tmp_path):
    for rel in [*build_notebooks.NOTEBOOKS, *build_notebooks.NOTEBOOKS.values()]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    assert build_notebooks.main(["--check", "--root", str(tmp_path)]) == 0
    src = tmp_path / "kernels" / "submission.py"
    src.write_text(src.read_text() + "\n# %%\nprint('new cell')\n")
    assert build_notebooks.main(["--check", "--root", str(tmp_path)]) == 1
    assert build_notebooks.stale(tmp_path) == ["kernels/submission.ipynb"]
    assert build_notebooks.main(["--root", str(tmp_path)]) == 0
    assert build_notebooks.main(["--check", "--root", str(tmp_path)]) == 0


# ================================================================ (c) metadata keys and values
KAGGLE_API_SOURCE = Path(importlib.util.find_spec("kaggle").submodule_search_locations[0]) \
    / "api" / "kaggle_api_extended.py"


def keys_read(function_names: tuple[str, ...], var: str = "meta_data") -> set[str]:
    """String keys the kaggle CLI reads from its metadata dict in the named KaggleApi methods:
    get_or_default/get_or_fail/get_bool(var, "k"), var.get("k") and var["k"] (parsed, not imported)."""
    tree = ast.parse(KAGGLE_API_SOURCE.read_text())
    keys: set[str] = set()
    for fn in ast.walk(tree):
        if not (isinstance(fn, ast.FunctionDef) and fn.name in function_names):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                args = node.args
                if (node.func.attr in ("get_or_default", "get_or_fail", "get_bool") and len(args) >= 2
                        and isinstance(args[0], ast.Name) and args[0].id == var
                        and isinstance(args[1], ast.Constant)):
                    keys.add(args[1].value)
                if (node.func.attr == "get" and isinstance(node.func.value, ast.Name)
                        and node.func.value.id == var and args and isinstance(args[0], ast.Constant)):
                    keys.add(args[0].value)
            if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == var
                    and isinstance(node.slice, ast.Constant)):
                keys.add(node.slice.value)
    return keys


KERNEL_KEYS = keys_read(("kernels_push",))
DATASET_KEYS = keys_read(("dataset_create_new", "dataset_create_version"))
KERNEL_METADATA_FILES = ("kernel-metadata.json", "kernels/train/kernel-metadata.json")


def test_known_keys_were_found_in_the_cli_source():
    # sanity of the parser itself: the keys the spec names must be among those found
    assert {"id", "title", "code_file", "language", "kernel_type", "enable_internet", "enable_gpu",
            "dataset_sources", "competition_sources", "is_private"} <= KERNEL_KEYS
    assert {"id", "title", "licenses", "subtitle", "description", "keywords"} <= DATASET_KEYS


@pytest.mark.parametrize("rel", KERNEL_METADATA_FILES)
def test_kernel_metadata_keys_and_values(rel):
    path = REPO / rel
    meta = json.loads(path.read_text())
    assert set(meta) <= KERNEL_KEYS, f"{rel}: keys the CLI ignores: {set(meta) - KERNEL_KEYS}"
    assert meta["language"] == "python" and meta["kernel_type"] == "notebook"
    assert meta["enable_internet"] is False and meta["enable_gpu"] is True and meta["is_private"] is True
    assert (path.parent / meta["code_file"]).is_file() and meta["code_file"].endswith(".ipynb")
    owner, slug = meta["id"].split("/")
    assert owner == OWNER and len(meta["title"]) >= 5
    assert slug == meta["title"].lower().replace(" ", "-"), "the CLI warns when the title does not give the id"
    bundle_id = json.loads((REPO / "datasets_meta" / "dataset-metadata.json").read_text())["id"]
    assert meta["dataset_sources"] == [bundle_id]
    assert meta["competition_sources"] == [config.COMPETITION_SLUG]


def test_dataset_metadata_keys_and_values():
    meta = json.loads((REPO / "datasets_meta" / "dataset-metadata.json").read_text())
    assert set(meta) <= DATASET_KEYS, f"keys the CLI ignores: {set(meta) - DATASET_KEYS}"
    owner, slug = meta["id"].split("/")
    assert owner == OWNER and slug == config.BUNDLE_SLUG and 6 <= len(slug) <= 50
    assert 6 <= len(meta["title"]) <= 50
    assert len(meta["licenses"]) == 1 and set(meta["licenses"][0]) == {"name"}
    assert 20 <= len(meta.get("subtitle", "x" * 20)) <= 80


def test_set_owner_rewrites_every_id(tmp_path):
    for rel in build_notebooks.METADATA_FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    build_notebooks.set_owner("alice", tmp_path)
    for rel in build_notebooks.METADATA_FILES:
        meta = json.loads((tmp_path / rel).read_text())
        assert meta["id"].startswith("alice/")
        assert all(s.startswith("alice/") for s in meta.get("dataset_sources", []))


# ================================================================ (d) the real kaggle CLI against a stub
STUB_SUBMIT_MESSAGE = "Successfully submitted to PhysioNet - Digitization of ECG Images"
STUB_SUBMISSION_REF = 424242


class StubKaggle(ThreadingHTTPServer):
    """Answers the few API calls `kernels push`, `datasets version` and `competitions submit -k` make;
    records every request."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.requests: list[tuple[str, str, bytes]] = []  # (method, path, body)
        self.lock = threading.Lock()

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()

    def calls(self) -> list[str]:
        return [f"{m} {p}" for m, p, _ in self.requests]


class _StubHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    return out
                out += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, payload: dict | None = None) -> None:
        data = json.dumps(payload or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        path = urlsplit(self.path).path  # through the proxy the request line holds the absolute URL
        body = self._body()
        server: StubKaggle = self.server  # type: ignore[assignment]
        with server.lock:
            server.requests.append((self.command, path, body))
            n = len(server.requests)
        if path.endswith("/kernels.KernelsApiService/SaveKernel"):
            self._reply(200, {"ref": "/code/x", "url": "http://localhost/code/x", "versionNumber": 1})
        elif path.endswith("/blobs.BlobApiService/StartBlobUpload"):
            self._reply(200, {"token": f"tok{n}", "createUrl": f"http://localhost/upload/tok{n}"})
        elif path.startswith("/upload/") and self.command == "PUT":
            self._reply(200, {})
        elif path.endswith("/datasets.DatasetApiService/CreateDatasetVersion"):
            self._reply(200, {"ref": "x/y", "url": "http://localhost/datasets/x/y", "status": "ok"})
        elif path.endswith("/competitions.CompetitionApiService/CreateCodeSubmission"):
            self._reply(200, {"message": STUB_SUBMIT_MESSAGE, "ref": STUB_SUBMISSION_REF})
        elif path.endswith("/competitions.CompetitionApiService/GetSubmissionLimits"):
            self._reply(200, {"numToday": 1, "numTotal": 1, "numAllowedNow": 4})
        else:
            self._reply(404, {"code": 404, "message": f"stub does not know {path}"})

    do_POST = do_PUT = do_GET = _handle


def run_kaggle(args: list[str], stub: StubKaggle, tmp: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The installed CLI (python -m kaggle) with every network path redirected to the stub."""
    home = tmp / "home"
    (home / ".kaggle").mkdir(parents=True, exist_ok=True)
    (tmp / "tmpdir").mkdir(exist_ok=True)
    proxy = f"http://127.0.0.1:{stub.server_address[1]}"
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith("KAGGLE")}
    env.update(KAGGLE_API_ENVIRONMENT="LOCALHOST", HTTP_PROXY=proxy, http_proxy=proxy, NO_PROXY="", no_proxy="",
               KAGGLE_USERNAME="stubuser", KAGGLE_KEY="0" * 32, HOME=str(home),
               KAGGLE_CONFIG_DIR=str(home / ".kaggle"), TMPDIR=str(tmp / "tmpdir"))
    return subprocess.run([sys.executable, "-m", "kaggle", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def copy_submission_kernel(dst: Path) -> Path:
    dst.mkdir(parents=True)
    shutil.copy(REPO / "kernel-metadata.json", dst)
    (dst / "kernels").mkdir()
    shutil.copy(REPO / "kernels" / "submission.ipynb", dst / "kernels")
    return dst


def push_kernel(folder: Path, tmp_path: Path) -> dict:
    """`kaggle kernels push -p folder` against the stub: it succeeds with exactly one SaveKernel
    request, whose JSON body is returned."""
    with StubKaggle() as stub:
        r = run_kaggle(["kernels", "push", "-p", str(folder)], stub, tmp_path, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Kernel push error" not in r.stdout
    assert stub.calls() == ["POST /api/v1/kernels.KernelsApiService/SaveKernel"], stub.calls()
    return json.loads(stub.requests[0][2])


def test_cli_kernels_push_sends_our_metadata(tmp_path):
    folder = copy_submission_kernel(tmp_path / "k")
    body = push_kernel(folder, tmp_path)
    meta = json.loads((REPO / "kernel-metadata.json").read_text())
    assert body["slug"] == meta["id"] and body["newTitle"] == meta["title"]
    assert body["language"] == "python" and body["kernelType"] == "notebook"
    assert body.get("enableInternet", False) is False  # proto3: a false bool is left out of the JSON
    assert body["enableGpu"] is True and body["isPrivate"] is True
    assert body["datasetDataSources"] == meta["dataset_sources"]
    assert body["competitionDataSources"] == [config.COMPETITION_SLUG]
    nb = json.loads(body["text"])
    ours = json.loads((REPO / "kernels" / "submission.ipynb").read_text())
    assert [c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in nb["cells"]] == \
        ["".join(c["source"]) for c in ours["cells"]]
    assert all(c.get("outputs", []) == [] for c in nb["cells"])

    # the contrast that makes the check above meaningful: without the key the CLI turns internet ON
    meta.pop("enable_internet")
    (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    with StubKaggle() as stub:
        run_kaggle(["kernels", "push", "-p", str(folder)], stub, tmp_path, cwd=tmp_path)
    assert json.loads(stub.requests[0][2])["enableInternet"] is True


def test_cli_kernels_push_sends_the_training_kernel(tmp_path):
    """`kaggle kernels push -p kernels/train`: the training kernel's metadata and its notebook, no outputs."""
    folder = tmp_path / "train"
    shutil.copytree(REPO / "kernels" / "train", folder)
    body = push_kernel(folder, tmp_path)
    meta = json.loads((REPO / "kernels" / "train" / "kernel-metadata.json").read_text())
    bundle_id = json.loads((REPO / "datasets_meta" / "dataset-metadata.json").read_text())["id"]
    assert body["slug"] == meta["id"] and body["newTitle"] == meta["title"]
    assert body["slug"] != json.loads((REPO / "kernel-metadata.json").read_text())["id"], "not the submission"
    assert body["language"] == "python" and body["kernelType"] == "notebook"
    assert body["enableGpu"] is True and body.get("enableInternet", False) is False
    assert body["datasetDataSources"] == [bundle_id]
    assert body["competitionDataSources"] == [config.COMPETITION_SLUG]
    nb = json.loads(body["text"])
    ours = json.loads((REPO / "kernels" / "train" / "train.ipynb").read_text())
    assert [c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in nb["cells"]] == \
        ["".join(c["source"]) for c in ours["cells"]]
    assert any("ecgdigit.training.cli" in "".join(c["source"]) for c in nb["cells"])
    assert all(c.get("outputs", []) == [] for c in nb["cells"])


def test_cli_datasets_version_uploads_every_bundle_file(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "timm-1.0.31-py3-none-any.whl").write_bytes(b"PK fake wheel")
    bundle = build_bundle.build_bundle(tmp_path / "bundle", repo=repo, wheel_dir=wheels)
    with StubKaggle() as stub:
        r = run_kaggle(["datasets", "version", "-p", str(bundle), "-m", "test notes", "-r", "zip"],
                       stub, tmp_path, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = stub.calls()
    assert calls[-1] == "POST /api/v1/datasets.DatasetApiService/CreateDatasetVersion", calls
    starts = [(m, p, b) for m, p, b in stub.requests if p.endswith("/StartBlobUpload")]
    puts = {p.rsplit("/", 1)[1]: b for m, p, b in stub.requests if m == "PUT"}
    # each upload: StartBlobUpload, then the PUT of its bytes, all before CreateDatasetVersion
    for i, (m, p, _) in enumerate(stub.requests[:-1]):
        if p.endswith("/StartBlobUpload"):
            assert stub.requests[i + 1][0] == "PUT"
    names = {json.loads(b)["name"]: puts[f"tok{stub.requests.index((m, p, b)) + 1}"] for m, p, b in starts}
    assert set(names) == {"BUNDLE_MANIFEST.json", "ecgdigit_bootstrap.py", "lib.zip", "weights.zip", "wheels.zip"}
    uploaded = {name: names[name] for name in ("BUNDLE_MANIFEST.json", "ecgdigit_bootstrap.py")}
    for zname in ("lib.zip", "weights.zip", "wheels.zip"):
        with zipfile.ZipFile(io.BytesIO(names[zname])) as z:
            for info in z.infolist():
                if not info.is_dir():
                    uploaded[f"{zname[:-4]}/{info.filename}"] = z.read(info)
    on_disk = {k: v for k, v in tree_bytes(bundle).items() if k != "dataset-metadata.json"}
    assert uploaded == on_disk, "the upload must hold every bundle file, byte for byte"
    body = json.loads(stub.requests[-1][2])
    assert (body["ownerSlug"], body["datasetSlug"]) == (OWNER, config.BUNDLE_SLUG)
    assert body["body"]["versionNotes"] == "test notes" and len(body["body"]["files"]) == 5


@pytest.mark.parametrize("what", ["kernel bad title", "kernel missing id", "dataset missing id"])
def test_cli_refuses_broken_metadata_before_any_request(tmp_path, what):
    if what.startswith("kernel"):
        folder = copy_submission_kernel(tmp_path / "k")
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        if what == "kernel bad title":
            meta["title"] = "abc"
        else:
            meta.pop("id")
        (folder / "kernel-metadata.json").write_text(json.dumps(meta))
        args = ["kernels", "push", "-p", str(folder)]
    else:
        folder = build_bundle.build_bundle(tmp_path / "bundle", repo=make_fake_repo(tmp_path / "repo"))
        meta = json.loads((folder / "dataset-metadata.json").read_text())
        meta.pop("id")
        (folder / "dataset-metadata.json").write_text(json.dumps(meta))
        args = ["datasets", "version", "-p", str(folder), "-m", "x", "-r", "zip"]
    with StubKaggle() as stub:
        r = run_kaggle(args, stub, tmp_path, cwd=tmp_path)
    assert stub.requests == [], stub.calls()
    assert r.returncode != 0 or "error" in (r.stdout + r.stderr).lower()
    assert ("Title must be at least five" if what == "kernel bad title" else "ID or slug must be specified") \
        in r.stdout + r.stderr



def readme_submit_command() -> list[str]:
    """The README's `kaggle competitions submit` line under "## On Kaggle", split like a shell would."""
    section = (REPO / "README.md").read_text().split("## On Kaggle", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("kaggle competitions submit ")]
    assert len(lines) == 1, f"README.md: expected one 'kaggle competitions submit' line, found {lines}"
    return shlex.split(lines[0], comments=True)


def test_cli_competitions_submit_readme_command(tmp_path):
    """Runs the README's code-competition submit through the real CLI: one CreateCodeSubmission naming our
    competition, our submission kernel (owner and slug from kernel-metadata.json), its output file, the
    version and the message; no file is uploaded (a code competition scores the kernel's own output)."""
    argv = readme_submit_command()
    meta_id = json.loads((REPO / "kernel-metadata.json").read_text())["id"]
    owner, slug = meta_id.split("/")
    assert argv[:3] == ["kaggle", "competitions", "submit"]
    assert argv[3] == config.COMPETITION_SLUG, "README submits to another competition than config says"
    opts = dict(zip(argv[4::2], argv[5::2]))
    assert len(argv[4:]) == 2 * len(opts) and set(opts) == {"-k", "-f", "-v", "-m"}, argv
    assert opts["-k"] == f"<you>/{slug}", "README's -k must name the kernel kernel-metadata.json pushes"
    assert opts["-f"] == "submission.csv" and opts["-v"] == "<N>"

    version, message = 7, "stub submit: ecgdigit v7"
    fill = {"<you>/" + slug: meta_id, "<N>": str(version), opts["-m"]: message}
    args = [fill.get(a, a) for a in argv[1:]]
    with StubKaggle() as stub:
        r = run_kaggle(args, stub, tmp_path, cwd=tmp_path)  # no submission.csv here: nothing is uploaded
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert stub.calls() == ["POST /api/v1/competitions.CompetitionApiService/CreateCodeSubmission",
                            "POST /api/v1/competitions.CompetitionApiService/GetSubmissionLimits"], stub.calls()
    body = json.loads(stub.requests[0][2])
    assert body == {"competitionName": config.COMPETITION_SLUG, "kernelOwner": owner, "kernelSlug": slug,
                    "kernelVersion": version, "fileName": "submission.csv", "submissionDescription": message}
    assert json.loads(stub.requests[1][2]) == {"competitionName": config.COMPETITION_SLUG}
    assert STUB_SUBMIT_MESSAGE in r.stdout and f"Submission ref: {STUB_SUBMISSION_REF}" in r.stdout
    assert "4 submissions remaining today." in r.stdout

    # the contrast: without -v the CLI refuses a kernel submission before sending anything
    no_version = [a for i, a in enumerate(args) if a != "-v" and (i == 0 or args[i - 1] != "-v")]
    with StubKaggle() as stub:
        r = run_kaggle(no_version, stub, tmp_path, cwd=tmp_path)
    assert stub.requests == [] and r.returncode != 0
    assert "require both the kernel name and the version number" in r.stdout + r.stderr
