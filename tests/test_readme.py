"""The Python snippets of the README and of the docs pages marked ``<!-- readme-test -->`` run, so
the manual never goes stale.

A page's marked snippets run together, in order (a page builds on its earlier steps), in a
namespace of their own, in a fresh interpreter inside a temporary directory: the README in one,
the docs pages one after the other in another (a fresh process keeps their registrations out of
the other tests). Around each page, the registries a page may extend (``cells.OPS``,
``search_space.SPACES``, ``searchers.SEARCHERS``, ``nasplay.scorers.SCORERS``) are saved and then
restored (tests/registries.py, as around the tests), so a worked example that registers an op,
a space, a searcher or a scorer leaves nothing behind for the next page.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = "<!-- readme-test -->"
MARKED_BLOCK = re.compile(re.escape(MARKER) + r"\s*```python\n(.*?)```", re.S)
PYTHON_BLOCK = re.compile(r"^```python\n", re.M)

# Reads [[page name, source], ...] from stdin and runs each page as described above; a page that
# never mentions Keras or ``cells`` does not pay for their import.
RUNNER = """\
import json, sys
from registries import restored

for name, source in json.load(sys.stdin):
    print(f"== {name}", file=sys.stderr, flush=True)
    with restored(ops=("cells" in source or "keras" in source) or None):
        exec(compile(source, name, "exec"), {"__name__": "__main__"})
"""


def marked_snippets(page: Path) -> list[str]:
    return MARKED_BLOCK.findall(page.read_text())


def docs_with_snippets() -> list[Path]:
    return [page for page in sorted((REPO / "docs").rglob("*.md")) if marked_snippets(page)]


def run_pages(pages: list[Path], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    sources = [[page.name if cwd in page.parents else str(page.relative_to(REPO)),
                "\n\n".join(marked_snippets(page))] for page in pages]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
           "TF_CPP_MIN_LOG_LEVEL": "2",
           "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    return subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(sources), cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_readme_has_tested_snippets():
    assert len(marked_snippets(REPO / "README.md")) >= 3


def test_every_python_block_of_extending_runs():
    """extending.md's worked examples are all tested: each Python block is marked, and there are
    four at least (an op, a space, a searcher, a scorer)."""
    page = REPO / "docs" / "extending.md"
    assert len(PYTHON_BLOCK.findall(page.read_text())) == len(marked_snippets(page)) >= 4


def test_readme_snippets_run(tmp_path):
    result = run_pages([REPO / "README.md"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_docs_snippets_run(tmp_path):
    pages = docs_with_snippets()
    assert REPO / "docs" / "extending.md" in pages
    result = run_pages(pages, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_what_a_page_registers_is_gone_for_the_next(tmp_path):
    first, second = tmp_path / "first.md", tmp_path / "second.md"
    first.write_text(f"{MARKER}\n```python\nimport search_space\nsearch_space.register_space("
                     f"search_space.SearchSpace('only-here', ops=('identity',), num_blocks=1))\n"
                     f"assert 'only-here' in search_space.SPACES\n```\n")
    second.write_text(f"{MARKER}\n```python\nimport search_space\n"
                      f"assert 'only-here' not in search_space.SPACES\n```\n")
    result = run_pages([first, second], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_failing_snippet_fails_and_names_its_page(tmp_path):
    page = tmp_path / "failing.md"
    page.write_text(f"{MARKER}\n```python\nassert 1 + 1 == 3\n```\n")
    result = run_pages([page], tmp_path, timeout=120)
    assert result.returncode != 0
    assert "== failing.md" in result.stderr and "AssertionError" in result.stderr


def test_install_makes_a_virtualenv_before_pip_install():
    readme = (REPO / "README.md").read_text()
    install = readme.split("## Install and run", 1)[1].split("\n## ", 1)[0]
    assert "python3 -m venv .venv && . .venv/bin/activate" in install
    assert install.index("-m venv .venv") < install.index("pip install -e")
    ignored = (REPO / ".gitignore").read_text().split()
    assert "/.venv/" in ignored
