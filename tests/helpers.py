"""Shared by the tests: the repository root and a loader for the scripts (tools/, build_submission.py)."""
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_script(path: Path, name: str):
    """A script (not part of a package) as a module named `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_tool(name: str):
    """tools/<name>.py as a module."""
    return load_script(REPO / "tools" / f"{name}.py", name)
