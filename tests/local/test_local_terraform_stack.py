"""The pieces of ``--via-terraform`` that need no apply (tests/iac/test_iac_parity.py applies)."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from s3stagger.errors import S3StaggerError
from s3stagger.local import terraform_stack
from s3stagger.local.pipeline import LocalPipelineSettings
from s3stagger.local.terraform_stack import TerraformApply, TerraformError, TerraformPipeline


def test_the_local_root_is_found_in_the_checkout() -> None:
    assert (terraform_stack.terraform_dir() / "examples" / "local" / "versions.tf").is_file()


def test_a_directory_without_the_local_root_is_refused_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3STAGGER_TERRAFORM_DIR", str(tmp_path))
    with pytest.raises(TerraformError, match="S3STAGGER_TERRAFORM_DIR"):
        terraform_stack.terraform_dir()


def test_the_provider_mirror_is_used_only_when_it_holds_the_aws_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3STAGGER_TF_PLUGIN_DIR", str(tmp_path))
    assert terraform_stack.plugin_dir() is None
    (tmp_path / "registry.terraform.io" / "hashicorp" / "aws" / "5.100.0" / "linux_amd64").mkdir(parents=True)
    assert terraform_stack.plugin_dir() == tmp_path


def test_the_modules_read_the_installed_definitions() -> None:
    assert (terraform_stack.definitions_dir() / "dispatcher.asl.json").is_file()


def test_the_placeholder_package_is_a_zip_that_says_what_runs(tmp_path: Path) -> None:
    path = terraform_stack.placeholder_package(tmp_path / "lambda.zip")
    with zipfile.ZipFile(path) as archive:
        assert "installed package" in archive.read("README.txt").decode()


@pytest.mark.parametrize(
    "override",
    [{"processor_timeout_s": 60}, {"max_receive_count": 2}, {"dispatcher": {"lease_s": 1000}}],
    ids=["processor_timeout_s", "max_receive_count", "dispatcher"],
)
def test_settings_the_local_root_does_not_take_are_refused(override: dict[str, object]) -> None:
    settings = LocalPipelineSettings(downstream_url="http://127.0.0.1:9/rows", **override)  # type: ignore[arg-type]
    with pytest.raises(S3StaggerError, match=next(iter(override))):
        TerraformPipeline(settings)


def test_a_missing_terraform_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TerraformError, match="terraform is not installed"):
        TerraformApply("http://127.0.0.1:1", {}, tmp_path).run()


def fake_terraform(directory: Path, script: str) -> None:
    """A ``terraform`` on PATH that runs ``script`` (bash) whatever it is asked."""
    binary = directory / "terraform"
    binary.write_text("#!/bin/bash\n" + script, encoding="utf-8")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)


def test_a_failed_apply_says_which_step_failed_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_terraform(bin_dir, 'echo "Error: no provider"; exit 1\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    lines: list[str] = []
    with pytest.raises(TerraformError, match=r"terraform init failed \(exit 1\): Error: no provider"):
        TerraformApply("http://127.0.0.1:1", {}, tmp_path / "work", on_output=lines.append).run()
    assert lines == ["Error: no provider"]


def test_an_apply_writes_the_variables_and_returns_the_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_terraform(
        bin_dir,
        'echo "$1" >> ../../../calls; [ "$1" = output ] && echo \'{"answer": {"value": 42}}\'; exit 0\n',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("AWS_PROFILE", "production")  # must not reach terraform
    apply = TerraformApply("http://127.0.0.1:1", {"downstream_url": "http://x/rows"}, tmp_path / "work")
    assert apply.run() == {"answer": 42}
    written = json.loads((apply.root / "terraform.tfvars.json").read_text(encoding="utf-8"))
    assert written == {"downstream_url": "http://x/rows", "endpoint_url": "http://127.0.0.1:1"}
    assert (tmp_path / "work" / "calls").read_text(encoding="utf-8").split() == ["init", "apply", "output"]
    assert "AWS_PROFILE" not in apply.environment()
    assert not (apply.root / "tests").exists()  # the root's own terraform tests are not copied


@pytest.mark.parametrize(
    ("schedule_input", "expected"),
    [
        ('{"slot": "\\u003caws.scheduler.scheduled-time\\u003e"}', {"slot": "2026-11-30T12:00:00Z"}),
        ('{"at": ["<aws.scheduler.scheduled-time>"], "n": 1}', {"at": ["2026-11-30T12:00:00Z"], "n": 1}),
    ],
    ids=["terraform-jsonencode", "plain"],
)
def test_the_scheduled_time_is_filled_in_wherever_the_input_has_it(
    schedule_input: str, expected: dict[str, object]
) -> None:
    assert json.loads(terraform_stack.fill_scheduled_time(schedule_input, "2026-11-30T12:00:00Z")) == expected


def test_an_input_that_is_not_json_has_the_placeholder_replaced_as_text() -> None:
    filled = terraform_stack.fill_scheduled_time("at <aws.scheduler.scheduled-time>", "T")
    assert filled == "at T"
