"""Where Terraform is installed: `terraform fmt`, `terraform test` with a mocked AWS provider, the hook.

These complement the static checks (which need no Terraform) and run only when a `terraform`
binary is on PATH and, for `init`, an AWS provider is available offline in a plugin directory
(`S3STAGGER_TF_PLUGIN_DIR`, default `/opt/tf-plugins`): no test downloads a provider. The
`*.tftest.hcl` files apply the modules and examples against a mocked provider (no account, no
credentials) and a fixture zip (`terraform/tests/fixtures`, no `make package`), and exercise the
preconditions that protect a deployment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from _iac_support import (
    DEFAULT_TF_PLUGIN_DIR,
    DEFINITIONS_DIR,
    EXAMPLE_DIRS,
    MODULE_DIRS,
    REPO_ROOT,
    TERRAFORM_ROOT,
    holds_aws_provider,
    parse_tf,
)
from _iac_support import TF_PLUGIN_DIR as PLUGIN_DIR

TERRAFORM = shutil.which("terraform")
HAS_AWS_PROVIDER = holds_aws_provider(PLUGIN_DIR)

needs_terraform = pytest.mark.skipif(
    TERRAFORM is None, reason="terraform is not installed (static checks cover the HCL)"
)
needs_offline_provider = pytest.mark.skipif(
    TERRAFORM is None or not HAS_AWS_PROVIDER,
    reason=f"terraform or an offline AWS provider in {PLUGIN_DIR} is missing (set S3STAGGER_TF_PLUGIN_DIR)",
)


def terraform_env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "terraformrc"
    config.write_text("disable_checkpoint = true\n", encoding="utf-8")
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(config),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
    }


def run_terraform(arguments: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    return subprocess.run(  # noqa: S603
        [TERRAFORM, *arguments, "-no-color"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@needs_terraform
def test_terraform_fmt_finds_nothing_to_change(tmp_path: Path) -> None:
    result = run_terraform(
        ["fmt", "-check", "-diff", "-recursive", str(TERRAFORM_ROOT)], REPO_ROOT, terraform_env(tmp_path)
    )
    assert result.returncode == 0, (
        f"run `terraform fmt -recursive terraform`:\n{result.stdout}{result.stderr}"
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of terraform/ and the definitions it reads: init leaves nothing in the repository.

    No dist/: the tests apply the fixture zip, so `terraform test` needs no `make package`.
    """
    root = tmp_path_factory.mktemp("terraform-workspace")
    shutil.copytree(TERRAFORM_ROOT, root / "terraform", ignore=shutil.ignore_patterns(".terraform*"))
    shutil.copytree(DEFINITIONS_DIR, root / "src" / "s3stagger" / "definitions")
    return root


@needs_offline_provider
@pytest.mark.parametrize("directory", MODULE_DIRS + EXAMPLE_DIRS, ids=lambda path: path.name)
def test_terraform_test_passes_against_a_mocked_provider(
    directory: Path, workspace: Path, tmp_path: Path
) -> None:
    assert list((directory / "tests").glob("*.tftest.hcl")), f"{directory.name} has no terraform test"
    missing = [
        source for source in required_provider_sources(directory) if not (PLUGIN_DIR / source).exists()
    ]
    if missing:
        pytest.skip(
            f"{directory.name} needs {', '.join(missing)}, which the offline mirror {PLUGIN_DIR} lacks"
        )
    copy = workspace / directory.relative_to(REPO_ROOT)
    env = terraform_env(tmp_path)
    init = run_terraform(["init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}"], copy, env)
    assert init.returncode == 0, init.stdout + init.stderr
    result = run_terraform(["test"], copy, env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    assert "0 failed" in result.stdout


def required_provider_sources(directory: Path) -> list[str]:
    """``registry.terraform.io/<namespace>/<type>`` of every provider the module or example requires."""
    sources = []
    for path in directory.glob("*.tf"):
        for block in parse_tf(path).get("terraform", []):
            for providers in block.get("required_providers", []):
                sources.extend(
                    f"registry.terraform.io/{requirement['source'].lower()}"
                    for requirement in providers.values()
                    if isinstance(requirement, dict)
                )
    return sources


HOOK = REPO_ROOT / "scripts" / "terraform_hook.sh"


@pytest.fixture
def path_without_terraform(tmp_path: Path) -> str:
    """A PATH holding only bash, so the hook sees no terraform whatever this machine has."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    bash = shutil.which("bash")
    assert bash is not None
    (bin_dir / "bash").symlink_to(bash)
    return str(bin_dir)


@pytest.mark.parametrize("command", ["fmt", "validate"])
def test_hook_says_terraform_is_missing_and_passes(command: str, path_without_terraform: str) -> None:
    result = subprocess.run(  # noqa: S603
        [str(HOOK), command, "terraform/modules/event-ingest/main.tf"],
        cwd=REPO_ROOT,
        env={"PATH": path_without_terraform},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert f"terraform is not installed: skipped 'terraform {command}'" in result.stderr


def test_hook_refuses_an_unknown_command(path_without_terraform: str) -> None:
    result = subprocess.run(  # noqa: S603
        [str(HOOK), "apply"],
        cwd=REPO_ROOT,
        env={"PATH": path_without_terraform},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "usage:" in result.stderr


def hook_env(tmp_path: Path, plugin_dir: Path | None) -> dict[str, str]:
    env = terraform_env(tmp_path)
    env.pop("S3STAGGER_TF_PLUGIN_DIR", None)
    if plugin_dir is not None:
        env["S3STAGGER_TF_PLUGIN_DIR"] = str(plugin_dir)
    return env


@pytest.mark.skipif(
    TERRAFORM is None or not holds_aws_provider(DEFAULT_TF_PLUGIN_DIR),
    reason=f"terraform or the AWS provider in the default mirror {DEFAULT_TF_PLUGIN_DIR} is missing",
)
def test_validate_hook_takes_providers_from_the_default_mirror(workspace: Path, tmp_path: Path) -> None:
    """A fresh clone sets no S3STAGGER_TF_PLUGIN_DIR: the hook must still not download a provider."""
    result = subprocess.run(  # noqa: S603
        [str(HOOK), "validate", "terraform/modules/event-ingest/main.tf"],
        cwd=workspace,
        env=hook_env(tmp_path, None),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"terraform providers from the local mirror {DEFAULT_TF_PLUGIN_DIR}" in result.stdout
    assert "Success! The configuration is valid." in result.stdout


@needs_terraform
def test_validate_hook_refuses_a_mirror_without_the_aws_provider(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603
        [str(HOOK), "validate", "terraform/modules/event-ingest/main.tf"],
        cwd=REPO_ROOT,
        env=hook_env(tmp_path, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"S3STAGGER_TF_PLUGIN_DIR={tmp_path} holds no hashicorp/aws provider" in result.stderr
