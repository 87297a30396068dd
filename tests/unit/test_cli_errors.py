"""Every operator command answers bad input with one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from s3stagger.cli import aws_clients, console, monitor, simulate
from s3stagger.cli.app import app
from s3stagger.cli.aws_clients import AwsTarget, EndpointUrlError, checked_endpoint_url
from s3stagger.cli.console import BadOptionError, one_line_errors
from s3stagger.errors import S3StaggerError
from s3stagger.local import emulator, lambda_runtime
from s3stagger.local.downstream import server, settings

MALFORMED_ENDPOINTS = [
    ("localhost:4566", "not an http:// or https:// URL"),
    ("ftp://127.0.0.1:21", "not an http:// or https:// URL"),
    ("http://", "has no host"),
    ("http://127.0.0.1:99999", "port that is not a number within 0-65535"),
    ("http://127.0.0.1:port", "port that is not a number within 0-65535"),
    ("http://local host:4566", "white space"),
]
COMMANDS = {
    "simulate": ["simulate", "--bucket", "b", "--files", "1"],
    "monitor": ["monitor", "--queue", "q", "--once"],
}


def _one_line_error(result: object, expected: str) -> None:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.exception is None or isinstance(result.exception, SystemExit), stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]


@pytest.mark.parametrize(("url", "problem"), MALFORMED_ENDPOINTS)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_malformed_endpoint_url_is_one_line_and_exit_2(command: str, url: str, problem: str) -> None:
    result = CliRunner().invoke(app, [*COMMANDS[command], "--endpoint-url", url])
    assert result.exit_code == 2
    _one_line_error(result, f"--endpoint-url {url!r} ")
    assert problem in result.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_malformed_aws_endpoint_url_variable_is_named(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "127.0.0.1:5000")
    result = CliRunner().invoke(app, COMMANDS[command])
    assert result.exit_code == 2
    _one_line_error(result, "AWS_ENDPOINT_URL '127.0.0.1:5000' is not an http:// or https:// URL")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5000", "https://sqs.eu-west-1.amazonaws.com", " http://h "]
)
def test_well_formed_endpoint_urls_are_kept(url: str) -> None:
    assert checked_endpoint_url(url, "--endpoint-url") == url.strip()
    assert AwsTarget(endpoint_url=url).endpoint_url == url.strip()


def test_an_endpoint_url_error_is_a_bad_option_and_a_project_error() -> None:
    with pytest.raises(EndpointUrlError) as raised:
        AwsTarget(endpoint_url="nope")
    assert isinstance(raised.value, BadOptionError)
    assert isinstance(raised.value, S3StaggerError)


@pytest.mark.parametrize(
    ("error", "code"), [(BadOptionError("--x: bad"), 2), (aws_clients.AwsSetupError("no region"), 1)]
)
def test_one_line_errors_turns_project_errors_into_exit_statuses(error: S3StaggerError, code: int) -> None:
    def command() -> None:
        raise error

    with pytest.raises(typer.Exit) as exited:
        one_line_errors(command)()
    assert exited.value.exit_code == code


def test_one_line_errors_lets_bugs_surface() -> None:
    def command() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        one_line_errors(command)()


def test_every_command_is_wrapped() -> None:
    from s3stagger.cli import local

    for command in (*app.registered_commands, *local.app.registered_commands):
        assert command.callback is not None
        assert command.callback.__wrapped__ is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "error_class",
    [
        aws_clients.AwsSetupError,
        aws_clients.EndpointUrlError,
        console.BadOptionError,
        monitor.MonitorTargetError,
        simulate.BucketNotFoundError,
        simulate.BucketAccessDeniedError,
        emulator.EmulatorError,
        lambda_runtime.LambdaRuntimeError,
        lambda_runtime.TooManyRequestsException,
        server.SimulatorStartError,
        settings.SimulatorSettingsError,
    ],
)
def test_project_errors_derive_from_the_one_base(error_class: type[BaseException]) -> None:
    assert issubclass(error_class, S3StaggerError)


def test_a_deprecated_latency_name_still_works_and_says_its_new_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from s3stagger.cli.downstream import latency_option

    assert latency_option("seed") == latency_option("slow-api")
    with pytest.raises(BadOptionError, match="invalid --latency: latency 'slow' is not understood"):
        latency_option("slow")
