"""The README's two set-up commands are what CI runs, and the scripts rely on the installed package,
not on editing sys.path."""
import re
import shlex

from helpers import REPO


def _readme_setup() -> list[str]:
    section = (REPO / "README.md").read_text().split("## Set-up: two commands", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_ci_installs_and_tests_as_the_readme_says():
    install, test = _readme_setup()
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert len(ci) == 2, ci
    # the same packages: the README's `pip install ARGS && ...` is CI's `python -m pip install -q ARGS`
    readme_args = shlex.split(install.split("&&", 1)[0])[2:]
    ci_args = [a for a in shlex.split(ci[0])[4:] if a != "-q"]
    assert shlex.split(ci[0])[:4] == ["python", "-m", "pip", "install"]
    assert ci_args == readme_args and "-e" in ci_args and "." in ci_args
    assert ci[1] == test == "python -m pytest -q tests"


def test_no_script_edits_sys_path():
    """Only tests/conftest.py may: everything else imports the installed package."""
    offenders = []
    for path in [REPO / "build_submission.py", *(REPO / d for d in ("tools", "kernels", "lib"))]:
        for f in ([path] if path.is_file() else sorted(path.rglob("*.py"))):
            for n, line in enumerate(f.read_text().splitlines(), 1):
                if re.search(r"\bsys\.path\.(insert|append)\(", line):
                    offenders.append(f"{f.relative_to(REPO)}:{n}")
    assert offenders == []
