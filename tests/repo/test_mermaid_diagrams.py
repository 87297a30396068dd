"""Every Mermaid diagram in the repository's Markdown parses with Mermaid's own parser.

``scripts/check_mermaid.mjs`` runs the ``mermaid`` package (pinned in ``package.json``) in jsdom, so a
diagram that GitHub or a docs site could not draw fails here first. Needs Node.js and the packages of
``package-lock.json`` (``make node-tools``; ``make test`` installs them where ``npm`` exists).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKER = REPO_ROOT / "scripts" / "check_mermaid.mjs"
NODE = shutil.which("node")
GIT = shutil.which("git")
FENCE = re.compile(r"^```mermaid[ \t]*$", re.MULTILINE)

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="Node.js is not installed: the Mermaid parser runs on it"),
    pytest.mark.skipif(
        not (REPO_ROOT / "node_modules" / "mermaid").is_dir(),
        reason="the Mermaid parser is not installed: run `make node-tools` (needs npm)",
    ),
]


def markdown_files() -> list[Path]:
    """Every Markdown file git would commit (tracked, or new and not ignored)."""
    assert GIT is not None
    listed = subprocess.run(  # noqa: S603
        [GIT, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.md"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(REPO_ROOT / name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file())


def fence_lines(path: Path) -> list[int]:
    """The line numbers of the opening ```mermaid fences of a file."""
    text = path.read_text(encoding="utf-8")
    return [text.count("\n", 0, match.start()) + 1 for match in FENCE.finditer(text)]


def check(paths: list[Path]) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """The checker's run and its verdict per diagram: ``{"file:line": "ok <type>" | "error <message>"}``."""
    assert NODE is not None
    result = subprocess.run(  # noqa: S603
        [NODE, str(CHECKER), *map(str, paths)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    verdicts = {}
    for line in result.stdout.splitlines():
        file, number, verdict = line.split(":", 2)
        verdicts[f"{file}:{number}"] = verdict.strip()
    return result, verdicts


def test_every_diagram_in_the_markdown_files_parses() -> None:
    diagrams = {f"{path}:{line}" for path in markdown_files() for line in fence_lines(path)}
    assert any("docs/architecture.md" in where for where in diagrams), "the architecture diagrams moved?"
    result, verdicts = check(markdown_files())
    broken = {where: verdict for where, verdict in verdicts.items() if not verdict.startswith("ok ")}
    assert not broken, f"diagrams Mermaid cannot parse: {broken}"
    assert set(verdicts) == diagrams, f"checked {sorted(verdicts)}, expected {sorted(diagrams)}"
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]


def test_a_broken_diagram_fails_with_its_file_and_line(tmp_path: Path) -> None:
    document = tmp_path / "broken.md"
    document.write_text(
        "# Two diagrams\n\n```mermaid\nflowchart LR\n    A --> B\n```\n\n"
        # `;` ends a statement in a sequence diagram: the rest of the line is not a message
        "```mermaid\nsequenceDiagram\n    A->>B: first; then\n```\n",
        encoding="utf-8",
    )
    result, verdicts = check([document])
    assert result.returncode == 1
    assert verdicts[f"{document}:3"] == "ok flowchart-v2"
    assert verdicts[f"{document}:8"].startswith("error Parse error on line 2")
