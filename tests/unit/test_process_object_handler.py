"""The processor handler's own pieces: the metrics namespace, the error hierarchy it relies on."""

from __future__ import annotations

import json

import pytest

from s3stagger.config import ConfigError
from s3stagger.definitions import read_json
from s3stagger.domain.model import InvalidRequestError, RunStatus, RunSummary
from s3stagger.domain.rejection import ObjectRejectedError, RejectionReason
from s3stagger.errors import S3StaggerError
from s3stagger.handlers import process_object
from s3stagger.processor import DownstreamUnavailableError

DEPLOYED_NAMESPACE = read_json("processor.json")["environment"]["POWERTOOLS_METRICS_NAMESPACE"]


def emitted_namespace(capsys: pytest.CaptureFixture[str]) -> str:
    summary = RunSummary(status=RunStatus.COMPLETE, bucket="b", key="k", rows_applied=3)
    process_object._emit_metrics(summary)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    namespace: str = json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Namespace"]
    return namespace


def test_without_the_variable_metrics_go_to_the_namespace_deployments_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # CloudWatch namespaces are case-sensitive: "S3Stagger" would be another namespace.
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    assert emitted_namespace(capsys) == DEPLOYED_NAMESPACE == "s3stagger"


def test_the_variable_still_chooses_the_namespace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "team-a")
    assert emitted_namespace(capsys) == "team-a"


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (ConfigError("S3STAGGER_X=1 is wrong"), ValueError),
        (InvalidRequestError("bucket is missing"), ValueError),
        (ObjectRejectedError(RejectionReason.NOT_CSV, "not CSV"), Exception),
        (DownstreamUnavailableError("downstream unreachable"), RuntimeError),
    ],
)
def test_processor_errors_are_project_errors_and_keep_their_builtin_base(
    error: Exception, builtin: type[Exception]
) -> None:
    assert isinstance(error, S3StaggerError)
    assert isinstance(error, builtin)
