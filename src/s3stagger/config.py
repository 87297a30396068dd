"""Typed settings read from ``S3STAGGER_*`` environment variables.

Every setting has a default that is safe for production, except the downstream URL, which a
deployment must name. A malformed value raises :class:`ConfigError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from s3stagger.api_config import ApiSettings, api_settings_from_env
from s3stagger.env_settings import PREFIX, ConfigError, read, read_float, read_int

__all__ = ["PREFIX", "ConfigError", "ProcessorSettings"]


def _header(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    raw = read(env, name)
    if raw is None:
        return None
    return tuple(column.strip() for column in raw.split(","))


def _other_delimiter_rejected(env: Mapping[str, str]) -> bool:
    value = (read(env, "OTHER_DELIMITER") or "reject").lower()
    if value not in ("reject", "warn"):
        raise ConfigError(f"{PREFIX}OTHER_DELIMITER={value!r} must be 'reject' or 'warn'")
    return value == "reject"


@dataclass(frozen=True)
class ProcessorSettings:
    """Settings of the processor Lambda (``process_object``)."""

    downstream_url: str
    """Full URL rows are sent to (``S3STAGGER_DOWNSTREAM_URL``); ``{column}`` placeholders take the
    row's values (see :mod:`s3stagger.domain.request_mapping`)."""
    max_concurrency: int = 10
    """Upper bound on rows in flight inside one invocation; the adaptive limit never exceeds it."""
    initial_concurrency: int = 2
    """Where the adaptive (AIMD) limit starts."""
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 30.0
    max_attempts: int = 5
    """Attempts per row (first try included) for retryable failures (5xx, timeouts, connection)."""
    max_throttled_attempts: int = 50
    """429 answers a row may get before the invocation stops taking rows and answers PARTIAL."""
    backoff_base_s: float = 0.1
    backoff_max_s: float = 10.0
    csv_delimiter: str = ","
    expected_header: tuple[str, ...] | None = None
    """When set, the object's header must equal it (column names, in order)."""
    reject_other_delimiter: bool = True
    """``S3STAGGER_OTHER_DELIMITER``: ``reject`` (default) quarantines an object whose header reads as
    one column but splits on another delimiter (``;``, tab, ``|``, ``,``); ``warn`` processes it and
    says so in the answer's ``warning``."""
    max_object_bytes: int = 1024**3
    max_field_bytes: int = 128 * 1024
    max_line_bytes: int = 1024 * 1024
    """A physical line longer than this is skipped (and reported) without being buffered."""
    max_rows_per_invocation: int = 1_000_000
    deadline_margin_s: float = 10.0
    """Stop taking new rows when the Lambda has less than this much time left."""
    budget_grace_s: float = 5.0
    """Once the autoscaler raised the budget above the dispatcher execution's, take rows this long
    more, then answer so the execution ends and its continuation runs the new budget's slots."""
    failed_rows_bucket: str | None = None
    """Bucket of the failed-rows sink; defaults to the source object's bucket."""
    failed_rows_prefix: str = "failed-rows/"
    api: ApiSettings = field(default_factory=ApiSettings)
    """Authentication, TLS, request mapping and the breaker (:mod:`s3stagger.api_config`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProcessorSettings:
        """Read settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        url = read(env, "DOWNSTREAM_URL")
        if url is None:
            raise ConfigError(f"{PREFIX}DOWNSTREAM_URL is required: the URL rows are sent to")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{PREFIX}DOWNSTREAM_URL={url!r} must start with http:// or https://")
        delimiter = read(env, "CSV_DELIMITER") or ","
        if len(delimiter) != 1 or delimiter in '\r\n"':
            raise ConfigError(
                f"{PREFIX}CSV_DELIMITER={delimiter!r} must be a single character, "
                "other than a quote or newline"
            )
        max_concurrency = read_int(env, "MAX_CONCURRENCY", 10, minimum=1)
        api = api_settings_from_env(env, url)
        return cls(
            downstream_url=url,
            max_concurrency=max_concurrency,
            initial_concurrency=min(read_int(env, "INITIAL_CONCURRENCY", 2, minimum=1), max_concurrency),
            connect_timeout_s=read_float(env, "CONNECT_TIMEOUT_S", 2.0, minimum=0.001),
            read_timeout_s=read_float(env, "READ_TIMEOUT_S", 30.0, minimum=0.001),
            max_attempts=read_int(env, "MAX_ATTEMPTS", 5, minimum=1),
            max_throttled_attempts=read_int(env, "MAX_THROTTLED_ATTEMPTS", 50, minimum=1),
            backoff_base_s=read_float(env, "BACKOFF_BASE_S", 0.1),
            backoff_max_s=read_float(env, "BACKOFF_MAX_S", 10.0),
            csv_delimiter=delimiter,
            expected_header=_header(env, "EXPECTED_HEADER"),
            reject_other_delimiter=_other_delimiter_rejected(env),
            max_object_bytes=read_int(env, "MAX_OBJECT_BYTES", 1024**3, minimum=1),
            max_field_bytes=read_int(env, "MAX_FIELD_BYTES", 128 * 1024, minimum=1),
            max_line_bytes=read_int(env, "MAX_LINE_BYTES", 1024 * 1024, minimum=1),
            max_rows_per_invocation=read_int(env, "MAX_ROWS_PER_INVOCATION", 1_000_000, minimum=1),
            deadline_margin_s=read_float(env, "DEADLINE_MARGIN_S", 10.0),
            budget_grace_s=read_float(env, "BUDGET_GRACE_S", 5.0),
            failed_rows_bucket=read(env, "FAILED_ROWS_BUCKET"),
            failed_rows_prefix=read(env, "FAILED_ROWS_PREFIX") or "failed-rows/",
            api=api,
        )
