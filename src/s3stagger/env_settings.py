"""Reading ``S3STAGGER_*`` environment variables: one error type, one message per malformed value."""

from __future__ import annotations

import math
from collections.abc import Mapping

from s3stagger.errors import S3StaggerError

PREFIX = "S3STAGGER_"


class ConfigError(S3StaggerError, ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


def read(env: Mapping[str, str], name: str) -> str | None:
    """``S3STAGGER_<name>``, or ``None`` when unset or empty."""
    value = env.get(PREFIX + name)
    return value if value not in (None, "") else None


def read_int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: float = math.inf
) -> int:
    raw = read(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}={raw!r} is not an integer") from None
    _check_range(name, value, minimum, maximum)
    return value


def read_float(
    env: Mapping[str, str], name: str, default: float, minimum: float = 0.0, maximum: float = math.inf
) -> float:
    raw = read(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}={raw!r} is not a number") from None
    _check_range(name, value, minimum, maximum)
    return value


def _check_range(name: str, value: float, minimum: float, maximum: float) -> None:
    if maximum == math.inf and not value >= minimum:
        raise ConfigError(f"{PREFIX}{name}={value} must be >= {minimum}")
    if not minimum <= value <= maximum:
        raise ConfigError(f"{PREFIX}{name}={value} must be between {minimum:g} and {maximum:g}")
