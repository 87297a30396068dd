"""Small shared pieces of the CLI: AWS client setup, emulator log silencing, signal handling."""

import logging
import threading
from pathlib import Path

import pytest

from s3stagger.cli.aws_clients import AwsSetupError, AwsTarget
from s3stagger.cli.local import quiet_emulator_logs, stop_on_signals


def test_no_region_anywhere_is_a_clear_setup_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    with pytest.raises(AwsSetupError, match="AWS_REGION"):
        AwsTarget().s3()


def test_an_emulator_target_gets_a_region_and_placeholder_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    target = AwsTarget(endpoint_url="http://127.0.0.1:1")
    session = target.session()
    assert session.region_name == "us-east-1"
    assert session.get_credentials() is not None
    assert target.sqs().meta.endpoint_url == "http://127.0.0.1:1"
    assert target.describe() == "http://127.0.0.1:1"
    assert AwsTarget(region="eu-west-1").describe() == "AWS"


def test_quiet_emulator_logs_silences_moto_and_werkzeug_and_restores_them() -> None:
    moto_logger = logging.getLogger("moto.stepfunctions.parser")
    werkzeug_logger = logging.getLogger("werkzeug")
    with quiet_emulator_logs(verbose=False):
        assert not moto_logger.isEnabledFor(logging.ERROR)
        assert werkzeug_logger.disabled
    assert moto_logger.isEnabledFor(logging.ERROR)
    assert not werkzeug_logger.disabled
    with quiet_emulator_logs(verbose=True):
        assert moto_logger.isEnabledFor(logging.ERROR)


def test_stop_on_signals_outside_the_main_thread_does_nothing() -> None:
    stop = threading.Event()
    entered: list[bool] = []

    def body() -> None:
        with stop_on_signals(stop):
            entered.append(True)

    worker = threading.Thread(target=body)
    worker.start()
    worker.join(10)
    assert entered == [True]
    assert not stop.is_set()


def test_the_standard_endpoint_variable_selects_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    assert AwsTarget().describe() == "http://127.0.0.1:2"
    assert AwsTarget(endpoint_url="http://127.0.0.1:3").describe() == "http://127.0.0.1:3"
