"""Handlers the local Lambda runtime tests create functions with (importable by ``Handler``)."""

from __future__ import annotations

import os
from typing import Any


def report(event: Any, context: Any) -> dict[str, Any]:
    """Echo what the runtime gave the handler."""
    return {
        "event": event,
        "setting": os.environ.get("S3STAGGER_TEST_SETTING"),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "function_env": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
    }
