"""The local Lambda runtime: the one hook into moto, exercised through the real Lambda API."""

import io
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import moto
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.awslambda_simple.models import LambdaSimpleBackend

from s3stagger.local.emulator import FAKE_CREDENTIALS, Emulator
from s3stagger.local.lambda_runtime import (
    SUPPORTED_MOTO_VERSION,
    LambdaRuntimeError,
    LocalLambdaRuntime,
    check_moto_version,
)

ROLE = "arn:aws:iam::123456789012:role/test-lambda"
WAIT_S = 10


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture
def runtime(emulator: Emulator) -> Iterator[LocalLambdaRuntime]:
    with LocalLambdaRuntime(emulator.endpoint_url, emulator.region, FAKE_CREDENTIALS) as installed:
        yield installed


@pytest.fixture(scope="module")
def lam(emulator: Emulator) -> Any:
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    boto3.client("iam", **emulator.client_settings()).create_role(
        RoleName="test-lambda", AssumeRolePolicyDocument=json.dumps(trust)
    )
    return boto3.client(
        "lambda",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
        **emulator.client_settings(),
    )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.txt", "x")
    return buffer.getvalue()


_counter = iter(range(1_000_000))


def create_function(lam: Any, handler: str = "local_handlers.report", timeout: int = 30, **extra: Any) -> str:
    name = f"fn-{next(_counter)}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=ROLE,
        Handler=handler,
        Code={"ZipFile": _zip()},
        Timeout=timeout,
        MemorySize=256,
        **extra,
    )
    return name


def invoke(lam: Any, name: str, payload: Any = None, **extra: Any) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), **extra)
    raw = response["Payload"].read()
    return response, json.loads(raw) if raw else None


def test_moto_is_the_version_the_hook_was_written_for() -> None:
    # If this fails after an upgrade: re-read moto/awslambda_simple/models.py and moto/awslambda/
    # responses.py, adapt s3stagger.local.lambda_runtime, then move SUPPORTED_MOTO_VERSION.
    assert moto.__version__ == SUPPORTED_MOTO_VERSION
    assert callable(LambdaSimpleBackend.invoke)
    check_moto_version()


def test_the_hook_replaces_exactly_one_method_and_restores_it(emulator: Emulator) -> None:
    original = LambdaSimpleBackend.invoke
    runtime = LocalLambdaRuntime(emulator.endpoint_url, emulator.region, FAKE_CREDENTIALS).install()
    try:
        assert LambdaSimpleBackend.invoke is not original
        assert getattr(LambdaSimpleBackend.invoke, "__s3stagger_hook__", False)
        with pytest.raises(LambdaRuntimeError, match="already installed"):
            LocalLambdaRuntime(emulator.endpoint_url, emulator.region, FAKE_CREDENTIALS).install()
    finally:
        runtime.uninstall()
    assert LambdaSimpleBackend.invoke is original


def test_a_different_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.raises(LambdaRuntimeError, match=r"moto 9\.9\.9 is installed but .* moto 5\.2\.5"):
        check_moto_version()


def test_invoke_runs_the_handler_with_environment_and_context(
    runtime: LocalLambdaRuntime, lam: Any, emulator: Emulator
) -> None:
    name = create_function(lam, Environment={"Variables": {"S3STAGGER_TEST_SETTING": "from-config"}})
    response, answer = invoke(lam, name, {"hello": "world"})
    assert "FunctionError" not in response
    assert answer["event"] == {"hello": "world"}
    assert answer["setting"] == "from-config"
    assert answer["endpoint"] == emulator.endpoint_url
    assert answer["function_env"] == name
    assert answer["function_name"] == name
    assert answer["arn"].endswith(f":function:{name}")
    assert answer["memory"] == 256
    assert 0 < answer["remaining_ms"] <= 30_000
    assert len(answer["request_id"]) == 36
    assert runtime.counters(name).invocations == 1
    # the function's environment is applied only while it runs
    assert os.environ.get("S3STAGGER_TEST_SETTING") is None


def test_an_exception_is_an_unhandled_function_error(runtime: LocalLambdaRuntime, lam: Any) -> None:
    def crash(event: Any, context: Any) -> Any:
        raise ValueError("row 7 is broken")

    name = create_function(lam)
    runtime.register(name, crash)
    response, answer = invoke(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert answer["errorType"] == "ValueError"
    assert answer["errorMessage"] == "row 7 is broken"
    assert any("crash" in line for line in answer["stackTrace"])
    assert runtime.counters(name).errors == 1


def test_a_handler_that_cannot_be_imported_is_an_import_module_error(
    runtime: LocalLambdaRuntime, lam: Any
) -> None:
    name = create_function(lam, handler="no_such_module.handler")
    response, answer = invoke(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert answer["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module.handler" in answer["errorMessage"]


def test_a_result_that_is_not_json_is_a_marshal_error(runtime: LocalLambdaRuntime, lam: Any) -> None:
    name = create_function(lam)
    runtime.register(name, lambda event, context: {"when": object()})
    response, answer = invoke(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert answer["errorType"] == "Runtime.MarshalError"


def test_past_its_timeout_the_caller_gets_sandbox_timedout(runtime: LocalLambdaRuntime, lam: Any) -> None:
    release = threading.Event()
    name = create_function(lam, timeout=1)
    runtime.register(name, lambda event, context: release.wait(WAIT_S))
    try:
        response, answer = invoke(lam, name)
    finally:
        release.set()
    assert response["FunctionError"] == "Unhandled"
    assert answer["errorType"] == "Sandbox.Timedout"
    assert "after 1.00 seconds" in answer["errorMessage"]
    assert runtime.counters(name).timeouts == 1


def test_over_reserved_concurrency_lambda_answers_too_many_requests(
    runtime: LocalLambdaRuntime, lam: Any
) -> None:
    entered = threading.Event()
    release = threading.Event()

    def hold(event: Any, context: Any) -> str:
        entered.set()
        release.wait(WAIT_S)
        return "done"

    name = create_function(lam)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    runtime.register(name, hold)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(invoke, lam, name)
        assert entered.wait(WAIT_S)
        with pytest.raises(ClientError) as refused:
            invoke(lam, name)
        release.set()
        assert first.result(WAIT_S)[1] == "done"
    assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    counters = runtime.counters(name)
    assert (counters.invocations, counters.throttles, counters.peak_in_flight) == (1, 1, 1)


def test_functions_with_different_environments_never_overlap(runtime: LocalLambdaRuntime, lam: Any) -> None:
    a_entered = threading.Event()
    release_a = threading.Event()
    seen: list[tuple[str, str | None]] = []

    def observe(label: str, block: bool) -> Any:
        def handler(event: Any, context: Any) -> str:
            seen.append((f"{label}-start", os.environ.get("S3STAGGER_TEST_SETTING")))
            if block:
                a_entered.set()
                release_a.wait(WAIT_S)
            seen.append((f"{label}-end", os.environ.get("S3STAGGER_TEST_SETTING")))
            return label

        return handler

    fn_a = create_function(lam, Environment={"Variables": {"S3STAGGER_TEST_SETTING": "a"}})
    fn_b = create_function(lam, Environment={"Variables": {"S3STAGGER_TEST_SETTING": "b"}})
    runtime.register(fn_a, observe("a", block=True))
    runtime.register(fn_b, observe("b", block=False))
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(invoke, lam, fn_a)
        assert a_entered.wait(WAIT_S)
        second = pool.submit(invoke, lam, fn_b)
        release_a.set()
        assert first.result(WAIT_S)[1] == "a"
        assert second.result(WAIT_S)[1] == "b"
    assert seen == [("a-start", "a"), ("a-end", "a"), ("b-start", "b"), ("b-end", "b")]


def test_event_invocations_run_in_the_background(runtime: LocalLambdaRuntime, lam: Any) -> None:
    ran = threading.Event()
    name = create_function(lam)
    runtime.register(name, lambda event, context: ran.set())
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert response["StatusCode"] == 202
    assert ran.wait(WAIT_S)


def test_dry_run_does_not_run_the_handler(runtime: LocalLambdaRuntime, lam: Any) -> None:
    ran = threading.Event()
    name = create_function(lam)
    runtime.register(name, lambda event, context: ran.set())
    response = lam.invoke(FunctionName=name, InvocationType="DryRun")
    assert response["StatusCode"] == 204
    assert not ran.is_set()
    assert runtime.counters(name).invocations == 0
