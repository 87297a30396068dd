#!/usr/bin/env python3
"""Build the processor Lambda deployment zip, reproducibly.

``dist/s3stagger-lambda-<arch>.zip`` holds, for the ``python3.13`` runtime:

* the runtime dependencies pinned in ``requirements/lambda-<arch>.txt`` (a URL-free, hashed lock made
  with ``uv pip compile`` for the target platform), installed as manylinux wheels for that
  architecture (``--only-binary :all:``, so nothing is compiled on the build machine);
* the ``s3stagger`` package without the operator CLI and local mode (``s3stagger/cli``,
  ``s3stagger/local``), which the handler never imports.

boto3 is not packaged: the Lambda runtime ships it. Entries are sorted, timestamps and permissions
fixed, so building twice from the same sources gives the same bytes.

Usage::

    python scripts/build_lambda_package.py                 # both architectures into dist/
    python scripts/build_lambda_package.py --arch arm64    # one
    python scripts/build_lambda_package.py lock            # re-pin requirements/lambda-*.txt
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SOURCE = REPO_ROOT / "src" / "s3stagger"
REQUIREMENTS_DIR = REPO_ROOT / "requirements"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "dist"

PYTHON_VERSION = "3.13"
"""The Lambda runtime the zip targets (``python3.13``)."""

PLATFORMS = {"arm64": "aarch64-manylinux2014", "x86_64": "x86_64-manylinux2014"}
"""Lambda architecture name -> uv ``--python-platform`` of the wheels to install."""

EXCLUDED_SUBPACKAGES = ("cli", "local")
"""Parts of ``s3stagger`` that are operator tooling, not Lambda code."""

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
"""The earliest timestamp a zip entry can hold: every entry gets it, so builds do not depend on mtime."""

FILE_MODE = 0o644
EXCLUDED_DIR_NAMES = frozenset({"__pycache__", "bin"})
"""``bin/`` holds console scripts with the build machine's interpreter path: useless in Lambda."""
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_ROOT_FILES = frozenset({".lock"})
"""uv's lock file of the ``--target`` directory."""


class BuildError(RuntimeError):
    """The package cannot be built; the message says what to do."""


@dataclass(frozen=True)
class BuiltPackage:
    """A built deployment zip."""

    architecture: str
    path: Path
    sha256_base64: str
    """What Terraform's ``filebase64sha256`` gives for the file (``source_code_hash``)."""
    entries: int


def lock_file(architecture: str) -> Path:
    """The dependency lock of ``architecture``."""
    return REQUIREMENTS_DIR / f"lambda-{architecture}.txt"


def find_uv() -> str:
    """The ``uv`` executable: next to this interpreter (the project venv) or on ``PATH``."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise BuildError("uv is not installed: run `make install` (it puts uv into .venv/bin)")
    return found


def _run(command: Sequence[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BuildError(f"command failed ({result.returncode}): {' '.join(command)}\n{result.stderr}")


def compile_lock(architecture: str, uv: str) -> Path:
    """Re-pin the runtime dependencies of ``pyproject.toml`` for ``architecture`` (hashes, no URLs)."""
    output = lock_file(architecture)
    _run(
        [
            uv,
            "pip",
            "compile",
            str(REPO_ROOT / "pyproject.toml"),
            "--python-platform",
            PLATFORMS[architecture],
            "--python-version",
            PYTHON_VERSION,
            "--generate-hashes",
            "--no-header",
            "--quiet",
            "-o",
            str(output),
        ]
    )
    return output


def install_dependencies(architecture: str, target: Path, uv: str) -> None:
    """Install the locked wheels for ``architecture`` into ``target`` (never builds from source)."""
    lock = lock_file(architecture)
    if not lock.is_file():
        raise BuildError(f"{lock} is missing: run `python scripts/build_lambda_package.py lock`")
    _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--target",
            str(target),
            "--python-platform",
            PLATFORMS[architecture],
            "--python-version",
            PYTHON_VERSION,
            "--only-binary",
            ":all:",
            "--require-hashes",
            "--no-deps",
            "--no-compile",
            "-r",
            str(lock),
        ]
    )


def _is_excluded(relative: Path) -> bool:
    return (
        relative.as_posix() in EXCLUDED_ROOT_FILES
        or any(part in EXCLUDED_DIR_NAMES for part in relative.parts)
        or relative.suffix in EXCLUDED_SUFFIXES
    )


def copy_project_package(target: Path, source: Path = PACKAGE_SOURCE) -> None:
    """Copy the ``s3stagger`` package into ``target`` without the CLI, local mode and caches."""
    if not (source / "__init__.py").is_file():
        raise BuildError(f"{source} is not the s3stagger package (no __init__.py)")
    destination = target / "s3stagger"
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or _is_excluded(relative) or relative.parts[0] in EXCLUDED_SUBPACKAGES:
            continue
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination / relative)


def _package_files(root: Path) -> Iterator[tuple[str, Path]]:
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not _is_excluded(relative):
            yield relative.as_posix(), path


def write_reproducible_zip(root: Path, output: Path) -> int:
    """Zip every file under ``root`` into ``output``: sorted names, fixed times and modes.

    Returns the number of entries.
    """
    files = sorted(_package_files(root))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr carries the mode below
            info.external_attr = (0o100000 | FILE_MODE) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    os.replace(partial, output)
    return len(files)


def base64_sha256(path: Path) -> str:
    """Base64 of the SHA-256 of ``path``: Terraform's ``filebase64sha256``."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode("ascii")


def build_package(
    architecture: str, output_dir: Path = DEFAULT_OUTPUT_DIR, uv: str | None = None
) -> BuiltPackage:
    """Build ``s3stagger-lambda-<architecture>.zip`` into ``output_dir``."""
    if architecture not in PLATFORMS:
        raise BuildError(f"unknown architecture {architecture!r}: choose one of {', '.join(PLATFORMS)}")
    uv = uv or find_uv()
    output = output_dir / f"s3stagger-lambda-{architecture}.zip"
    with tempfile.TemporaryDirectory(prefix=f"s3stagger-lambda-{architecture}-") as staging:
        root = Path(staging)
        install_dependencies(architecture, root, uv)
        copy_project_package(root)
        entries = write_reproducible_zip(root, output)
    return BuiltPackage(architecture, output, base64_sha256(output), entries)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", choices=("build", "lock"), default="build")
    parser.add_argument(
        "--arch",
        action="append",
        choices=sorted(PLATFORMS),
        help="Lambda architecture (repeatable; default: all)",
    )
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    args = parser.parse_args(argv)
    architectures: list[str] = args.arch or sorted(PLATFORMS)
    try:
        uv = find_uv()
        for architecture in architectures:
            if args.command == "lock":
                print(f"locked {compile_lock(architecture, uv).relative_to(REPO_ROOT)}")
            else:
                built = build_package(architecture, args.output_dir, uv)
                print(f"built {built.path} ({built.entries} files, filebase64sha256 {built.sha256_base64})")
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
