"""The README's Python snippets marked ``<!-- readme-test -->`` run, so the manual never goes stale.

They run together, in order, in a fresh interpreter inside a temporary directory (a tutorial builds
on its earlier steps; a fresh process keeps their registrations out of the other tests).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKED_BLOCK = re.compile(r"<!-- readme-test -->\s*```python\n(.*?)```", re.S)


def marked_snippets() -> list[str]:
    return MARKED_BLOCK.findall((REPO / "README.md").read_text())


def test_readme_has_tested_snippets():
    assert len(marked_snippets()) >= 3


def test_readme_snippets_run(tmp_path):
    script = "\n\n".join(marked_snippets())
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_install_makes_a_virtualenv_before_pip_install():
    readme = (REPO / "README.md").read_text()
    install = readme.split("## Install and run", 1)[1].split("\n## ", 1)[0]
    assert "python3 -m venv .venv && . .venv/bin/activate" in install
    assert install.index("-m venv .venv") < install.index("pip install -e")
    ignored = (REPO / ".gitignore").read_text().split()
    assert "/.venv/" in ignored
