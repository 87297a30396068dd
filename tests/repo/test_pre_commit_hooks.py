"""Every hook of ``.pre-commit-config.yaml`` passes over the whole tree, as a contributor runs them.

The hooks run on a copy of the working tree (some of them rewrite files) from the project's own
``.venv``: no hook downloads anything, and Terraform providers come from the local mirror.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
GIT = shutil.which("git")

pytestmark = pytest.mark.skipif(
    GIT is None or not (VENV_BIN / "pre-commit").exists(),
    reason="git or .venv/bin/pre-commit is missing: run `make install`",
)


def configured_hooks() -> dict[str, str]:
    """``{id: name}`` of every hook in the configuration."""
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return {hook["id"]: hook["name"] for repo in config["repos"] for hook in repo["hooks"]}


def git(arguments: list[str], cwd: Path) -> str:
    assert GIT is not None
    return subprocess.run(  # noqa: S603
        [GIT, *arguments], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files git would commit (tracked and new, not ignored) in a fresh repository, ``.venv`` linked."""
    files = git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO_ROOT).split("\0")
    files = [name for name in files if name and (REPO_ROOT / name).is_file()]
    root = tmp_path_factory.mktemp("tree")
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, root / name)
    (root / ".venv").symlink_to(REPO_ROOT / ".venv")
    git(["init", "-q"], root)
    (root / ".git" / "info" / "exclude").write_text(".venv\n", encoding="utf-8")
    git(["add", "--", *files], root)
    return root


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's store and the linters' caches, shared by the runs of this module."""
    return tmp_path_factory.mktemp("hooks-home")


def run_hooks(root: Path, home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(home),  # pre-commit's own store, outside the user's
        "MYPY_CACHE_DIR": str(home / "mypy"),
        "RUFF_CACHE_DIR": str(home / "ruff"),
    }
    env.pop("S3STAGGER_TF_PLUGIN_DIR", None)  # the hooks find the mirror as a fresh clone does
    return subprocess.run(  # noqa: S603
        [str(VENV_BIN / "pre-commit"), "run", "--color=never", *arguments],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )


def hook_verdicts(output: str) -> dict[str, str]:
    """``{hook name: Passed|Failed|Skipped}`` from pre-commit's report lines."""
    pattern = re.compile(r"^(?P<name>.+?)\.{3,}(?:\([^)]*\))?(?P<verdict>Passed|Failed|Skipped)$", re.M)
    return {match["name"]: match["verdict"] for match in pattern.finditer(output)}


@pytest.mark.timeout(900)  # terraform validate loads the AWS provider once per directory
@pytest.mark.parametrize("hook_id", sorted(configured_hooks()))
def test_every_configured_hook_passes_over_the_whole_tree(tree_copy: Path, home: Path, hook_id: str) -> None:
    """One hook per test, so parallel workers share the hooks out (a contributor runs them all)."""
    result = run_hooks(tree_copy, home, hook_id, "--all-files")
    output = result.stdout + result.stderr
    name = configured_hooks()[hook_id]
    assert hook_verdicts(output).get(name, "absent") == "Passed", output[-8000:]
    assert result.returncode == 0, output[-8000:]
    assert not git(["diff", "--name-only"], tree_copy), "a hook rewrote a file (worktree != index)"


@pytest.mark.parametrize("hook_id", ["trailing-whitespace", "ruff", "bandit"])  # bandit: B307, eval
def test_a_file_that_breaks_a_hook_fails_the_run(tree_copy: Path, home: Path, hook_id: str) -> None:
    broken = tree_copy / "src" / "s3stagger" / "broken_for_the_hooks.py"
    broken.write_text("import os, sys\nx = eval('1')   \n", encoding="utf-8")
    try:
        result = run_hooks(tree_copy, home, hook_id, "--files", str(broken.relative_to(tree_copy)))
    finally:
        broken.unlink()
    assert result.returncode == 1
    assert hook_verdicts(result.stdout)[configured_hooks()[hook_id]] == "Failed"
