"""The user guide cannot rot: the site builds with ``mkdocs build --strict`` and every python block runs.

Python blocks of one page run in order, in one namespace, in a fresh interpreter whose working directory is a
temporary directory (so pages may write files and start servers). A block opts out only with an HTML comment on the
line just before its fence: ``<!-- not-run: why -->`` (for blocks that need a cluster or cloud credentials).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)")
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, first line number (1-based) and text."""

    lang: str
    line: int
    code: str
    skip_reason: str | None


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a markdown page (indented fences in lists and admonitions included)."""
    lines = text.splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m["indent"], m["lang"].lower()
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = NOT_RUN.match(before)
        body: list[str] = []
        start = i + 1
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith("```") and lines[i].startswith(indent)):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        out.append(Block(lang, start + 1, "\n".join(body) + "\n", skip["reason"] if skip else None))
    return out


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


# Pages written by other areas whose python blocks need systems this test does not start. Each owner should make
# the block runnable (a local server, a test double) or mark it `<!-- not-run: reason -->`, then drop it from here.
# Pages whose python blocks need real systems (PostgreSQL, an HTTP server, S3) are run against the test systems by
# tests/connectors/test_connector_docs.py instead of here.
RUN_ELSEWHERE = "connectors/"


def _page_params() -> list[object]:
    out: list[object] = []
    for page in pages():
        name = str(page.relative_to(DOCS))
        if not name.startswith(RUN_ELSEWHERE):
            out.append(pytest.param(page, id=name))
    out.append(pytest.param(ROOT / "README.md", id="README.md"))  # its shell session: tests/docs/test_doc_commands.py
    return out


RUNNER = r"""
import json, sys
blocks = json.loads(sys.stdin.read())
namespace = {"__name__": "__main__"}
for path, line, code in blocks:
    # Pad with blank lines so tracebacks point at the page's own line numbers.
    exec(compile("\n" * (line - 1) + code, path, "exec"), namespace)
"""


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "testing" / "index.html").exists()


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [str(p.relative_to(DOCS)) for p in pages() if str(p.relative_to(DOCS)) not in nav]
    assert not missing, f"pages missing from mkdocs.yml nav: {missing}"


def test_not_run_markers_are_rare_and_explained() -> None:
    skipped = [
        (p, b) for p in pages() for b in code_blocks(p.read_text()) if b.lang == "python" and b.skip_reason is not None
    ]
    for page, block in skipped:
        assert len(block.skip_reason or "") >= 10, f"{page}:{block.line}: not-run needs a reason"
    total = sum(1 for p in pages() for b in code_blocks(p.read_text()) if b.lang == "python")
    assert len(skipped) * 5 <= total, f"{len(skipped)} of {total} python blocks are not run"


def test_block_parser() -> None:
    text = "x\n<!-- not-run: needs a cluster -->\n```python\na = 1\n```\n\n- item\n\n    ```py\n    b = 2\n    ```\n"
    blocks = code_blocks(text)
    assert [(b.lang, b.line, b.code, b.skip_reason) for b in blocks] == [
        ("python", 4, "a = 1\n", "needs a cluster"),
        ("py", 10, "b = 2\n", None),
    ]


@pytest.mark.parametrize("page", _page_params())
def test_python_blocks_run(page: Path, tmp_path: Path) -> None:
    import json

    blocks = [b for b in code_blocks(page.read_text()) if b.lang in ("python", "py") and b.skip_reason is None]
    if not blocks:
        return  # a page without python (YAML, shell) has nothing to run
    payload = json.dumps([[str(page.relative_to(ROOT)), b.line, b.code] for b in blocks])
    env = {
        **__import__("os").environ,
        "FLYTECONNECT_RAW_PREFIX": str(tmp_path / "raw"),
        "PYTHONWARNINGS": "error::DeprecationWarning:flyteconnect",
    }
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=payload,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, f"{page.relative_to(ROOT)} failed:\n{proc.stderr[-4000:]}"
