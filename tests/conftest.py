"""Test layers: every test is marked with the folder it lives in, so a layer runs alone.

``make unit`` (or ``pytest -m unit``) runs the pure tests in seconds; ``make functional``, ``make local``,
``make e2e``, ``make iac`` and ``make repo`` run the others; ``make test`` runs them all with the coverage
gate. The markers are registered here, from ``LAYERS`` (pytest runs with ``--strict-markers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

TESTS_ROOT = Path(__file__).resolve().parent

# Property tests judge results, never speed: no per-example deadline (a loaded CI machine or a
# parallel worker would fail them for being slow), and no example database written into the tree.
settings.register_profile("s3stagger", deadline=None, database=None)
settings.load_profile("s3stagger")

# folder under tests/ -> what its tests need
LAYERS = {
    "unit": "pure logic: no server, no subprocess, no emulator",
    "functional": "one component against real local servers (moto server, the downstream simulator)",
    "local": "local mode's pieces: provisioning, the dispatcher and Lambda runtime on the embedded emulator",
    "e2e": "the whole local pipeline and the operator CLI",
    "iac": "Terraform sources, the Lambda package, checkov and terraform test",
    "repo": "the repository's own tooling: pre-commit hooks, Mermaid diagrams, repository files",
}


# Layers whose tests run real servers, the emulator or the whole stack on a shared 2-core machine: a
# wait that a loaded CI worker misses gets one rerun. A real defect fails twice and is reported; every
# rerun is listed in the run's summary (``RERUN``), so a flaky test stays visible.
RERUN_LAYERS = {"functional", "local", "e2e", "iac"}
RERUNS = 1


def layer_of(path: Path) -> str:
    """The layer of a test file: the first folder under tests/."""
    parts = path.resolve().relative_to(TESTS_ROOT).parts
    if len(parts) < 2 or parts[0] not in LAYERS:  # a folder, then the file
        raise pytest.UsageError(
            f"{path}: every test lives in one of tests/{{{','.join(LAYERS)}}}/ (its layer); "
            "a new folder needs its entry in LAYERS in tests/conftest.py"
        )
    return parts[0]


def pytest_configure(config: pytest.Config) -> None:
    for layer, description in LAYERS.items():
        config.addinivalue_line("markers", f"{layer}: {description}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = layer_of(item.path)
        item.add_marker(getattr(pytest.mark, layer))
        if layer in RERUN_LAYERS:
            item.add_marker(pytest.mark.flaky(reruns=RERUNS, reruns_delay=5))


@pytest.fixture(autouse=True, scope="session")
def private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Local mode's state (telemetry, the mailbox) goes to a directory of this test session, not to
    the user's ``~/.local/state``: a run leaves nothing behind, and parallel workers share nothing."""
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(state))
        patch.delenv("S3STAGGER_TELEMETRY_DIR", raising=False)
        patch.delenv("S3STAGGER_MAILBOX", raising=False)
        yield state
