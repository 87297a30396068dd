"""The Lambda deployment zip: reproducible, runtime code only, and it runs with only boto3 beside it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from _iac_support import DEFINITIONS_DIR, REPO_ROOT, load_script
from packaging.requirements import Requirement

build = load_script("build_lambda_package")
HANDLER = json.loads((DEFINITIONS_DIR / "processor.json").read_text(encoding="utf-8"))["handler"]


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    first = build.build_package("arm64", tmp_path_factory.mktemp("first"))
    second = build.build_package("arm64", tmp_path_factory.mktemp("second"))
    return first.path, second.path


def names_in(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def locked_packages(architecture: str) -> dict[str, str]:
    """Distribution name (normalised) -> version, from the lambda lock."""
    text = build.lock_file(architecture).read_text(encoding="utf-8")
    return {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", text, re.MULTILINE)
    }


def test_two_builds_give_the_same_bytes(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    assert first.name == "s3stagger-lambda-arm64.zip"
    assert first.read_bytes() == second.read_bytes()
    assert build.base64_sha256(first) == build.base64_sha256(second)


def test_entries_are_sorted_with_fixed_times_and_modes(two_builds: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(two_builds[0]) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    assert {info.date_time for info in infos} == {build.ZIP_EPOCH}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_zip_holds_the_handler_and_definitions_but_no_cli_local_or_boto3(
    two_builds: tuple[Path, Path],
) -> None:
    names = set(names_in(two_builds[0]))
    module_path = HANDLER.rsplit(".", 1)[0].replace(".", "/") + ".py"
    assert module_path in names
    assert {f"s3stagger/definitions/{path.name}" for path in DEFINITIONS_DIR.glob("*.json")} <= names
    top_level = {name.split("/")[0] for name in names}
    assert not any(name.startswith(("s3stagger/cli/", "s3stagger/local/")) for name in names)
    assert not top_level & {"boto3", "botocore", "s3transfer", "moto", "typer", "rich", "pytest", "bin"}
    assert not any(name.endswith((".pyc", ".pyo")) or "__pycache__" in name for name in names)


def test_zip_holds_exactly_the_locked_runtime_dependencies(two_builds: tuple[Path, Path]) -> None:
    installed = {
        re.sub(r"[-_.]+", "-", match.group(1)).lower(): match.group(2)
        for name in names_in(two_builds[0])
        if (match := re.fullmatch(r"([^/]+)-([^-/]+)\.dist-info/METADATA", name))
    }
    assert installed == locked_packages("arm64")


@pytest.mark.parametrize("architecture", sorted(build.PLATFORMS))
def test_lambda_locks_are_hashed_url_free_and_cover_the_runtime_dependencies(architecture: str) -> None:
    text = build.lock_file(architecture).read_text(encoding="utf-8")
    requirement_lines = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert requirement_lines
    assert all("==" in line for line in requirement_lines)
    assert text.count("==") == len(requirement_lines)
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", text)) >= len(requirement_lines)
    assert "://" not in text
    assert not re.search(r"^\s*(-e|--index-url|--extra-index-url|-f|--find-links)\b", text, re.MULTILINE)
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    locked = locked_packages(architecture)
    for dependency in map(Requirement, pyproject["project"]["dependencies"]):
        name = re.sub(r"[-_.]+", "-", dependency.name).lower()
        assert name in locked, (
            f"{dependency.name} is missing: run `python scripts/build_lambda_package.py lock`"
        )
        assert dependency.specifier.contains(locked[name]), (
            f"{name}=={locked[name]} violates {dependency}: re-lock"
        )
    assert "boto3" not in locked, "boto3 ships with the Lambda runtime; packaging it wastes space"


def test_unknown_architecture_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(build.BuildError, match="arm64, x86_64"):
        build.build_package("sparc", tmp_path)


def test_missing_lock_names_the_command_that_makes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "REQUIREMENTS_DIR", tmp_path)
    assert build.main(["--arch", "arm64", "--output-dir", str(tmp_path / "dist")]) == 1
    with pytest.raises(build.BuildError, match=r"build_lambda_package\.py lock"):
        build.build_package("arm64", tmp_path / "dist")
    assert not (tmp_path / "dist" / "s3stagger-lambda-arm64.zip").exists()


def _interpreter_for_the_lambda_runtime() -> tuple[str, str]:
    """A Python 3.13 like the python3.13 runtime if this machine has one, else this interpreter."""
    candidates = [
        shutil.which("python3.13"),
        *sorted(map(str, Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(  # noqa: S603
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate, "3.13"
    return sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"


def _zip_is_pure_python(zip_path: Path) -> bool:
    with zipfile.ZipFile(zip_path) as archive:
        wheels = [
            archive.read(name).decode() for name in archive.namelist() if name.endswith(".dist-info/WHEEL")
        ]
    return all("Root-Is-Purelib: true" in wheel for wheel in wheels)


PROBE = """
import importlib, json, os, sys
task_root = sys.argv[1]
sys.path.insert(0, task_root)  # what the runtime does with /var/task
module_name, _, function_name = sys.argv[2].rpartition(".")
handler = getattr(importlib.import_module(module_name), function_name)

class Context:
    function_name = "s3stagger-processor"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:s3stagger-processor"
    aws_request_id = "probe"
    def get_remaining_time_in_millis(self):
        return 60_000

try:
    handler({"not": "an S3 event"}, Context())
    outcome = {"raised": None}
except Exception as error:
    outcome = {"raised": type(error).__module__ + "." + type(error).__name__, "message": str(error)}
outcome["origins"] = sorted({
    getattr(module, "__file__", None) or "" for module in list(sys.modules.values())
} - {""})
print(json.dumps(outcome))
"""


def test_handler_imports_and_runs_in_a_clean_venv_with_only_boto3(
    two_builds: tuple[Path, Path], tmp_path: Path
) -> None:
    python, version = _interpreter_for_the_lambda_runtime()
    if version != "3.13" and not _zip_is_pure_python(two_builds[0]):
        pytest.skip("no Python 3.13 here and the zip holds compiled wheels for python3.13 only")
    venv = tmp_path / "runtime"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)  # noqa: S603
    venv_python = venv / "bin" / "python"
    boto3_version = metadata.version("boto3")  # stands in for the boto3 the runtime ships
    subprocess.run(  # noqa: S603
        [
            build.find_uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv_python),
            f"boto3=={boto3_version}",
        ],
        check=True,
        capture_output=True,
    )
    task_root = tmp_path / "task"
    with zipfile.ZipFile(two_builds[0]) as archive:
        archive.extractall(task_root)

    result = subprocess.run(  # noqa: S603
        [str(venv_python), "-I", "-c", PROBE, str(task_root), HANDLER],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={
            "S3STAGGER_DOWNSTREAM_URL": "http://127.0.0.1:9/rows",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["raised"].startswith("s3stagger."), outcome  # the handler ran and refused the event itself
    site_packages = [str(path) for path in venv.glob("lib/python*/site-packages")]
    allowed_roots = (str(task_root), *site_packages, str(Path(python).resolve().parents[1]))
    foreign = [origin for origin in outcome["origins"] if not origin.startswith(allowed_roots)]
    assert foreign == [], "modules came from outside the zip, boto3's venv and the standard library"
    in_venv = {
        Path(origin).relative_to(site).parts[0]
        for site in site_packages
        for origin in outcome["origins"]
        if origin.startswith(site)
    }
    assert in_venv <= {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"}
