"""boto3 clients for the operator commands, against AWS or an emulator (``--endpoint-url``).

Against AWS the standard credential chain and region apply. Against an emulator (an endpoint URL
is given, with ``--endpoint-url`` or the standard ``AWS_ENDPOINT_URL`` variable) a region defaults
to ``us-east-1`` and, when no credentials are configured at all, the emulator's placeholder
credentials are used, so ``s3stagger simulate --endpoint-url ...`` works on a laptop with no AWS
configuration.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING

import boto3
import botocore.config
import botocore.exceptions

from s3stagger.cli.console import BadOptionError
from s3stagger.errors import S3StaggerError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

LOCAL_REGION = "us-east-1"
_EMULATOR_PLACEHOLDER_KEY = "testing"  # moto accepts any key; this is not a secret


class AwsTarget:
    """Where the commands talk to: an endpoint URL (emulator) or AWS (``None``), and a region."""

    def __init__(
        self, endpoint_url: str | None = None, region: str | None = None, max_pool_connections: int = 10
    ) -> None:
        # boto3 itself honours AWS_ENDPOINT_URL; reading it here too applies the emulator defaults
        if endpoint_url:
            self.endpoint_url: str | None = checked_endpoint_url(endpoint_url, "--endpoint-url")
        elif os.environ.get("AWS_ENDPOINT_URL"):
            self.endpoint_url = checked_endpoint_url(os.environ["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL")
        else:
            self.endpoint_url = None
        self.region = region or None
        self.max_pool_connections = max_pool_connections
        self._session: boto3.session.Session | None = None

    def session(self) -> boto3.session.Session:
        """A boto3 session for this target (emulator defaults applied when needed)."""
        if self._session is None:
            region = self.region or _region_from_env(os.environ)
            if self.endpoint_url is not None and region is None:
                region = LOCAL_REGION
            session = boto3.session.Session(region_name=region)
            if self.endpoint_url is not None and session.get_credentials() is None:
                session = boto3.session.Session(
                    region_name=region,
                    aws_access_key_id=_EMULATOR_PLACEHOLDER_KEY,
                    aws_secret_access_key=_EMULATOR_PLACEHOLDER_KEY,
                )
            self._session = session
        return self._session

    def _config(self) -> botocore.config.Config:
        return botocore.config.Config(
            max_pool_connections=self.max_pool_connections,
            retries={"mode": "standard", "max_attempts": 5},
        )

    def _checked(self) -> boto3.session.Session:
        session = self.session()
        if session.region_name is None:
            raise AwsSetupError(
                "no AWS region configured: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION"
            )
        return session

    def s3(self) -> S3Client:
        """An S3 client bound to this target."""
        return self._checked().client("s3", endpoint_url=self.endpoint_url, config=self._config())

    def sqs(self) -> SQSClient:
        """An SQS client bound to this target."""
        return self._checked().client("sqs", endpoint_url=self.endpoint_url, config=self._config())

    def stepfunctions(self) -> SFNClient:
        """A Step Functions client bound to this target."""
        return self._checked().client("stepfunctions", endpoint_url=self.endpoint_url, config=self._config())

    def lambda_(self) -> LambdaClient:
        """A Lambda client bound to this target."""
        return self._checked().client("lambda", endpoint_url=self.endpoint_url, config=self._config())

    def cloudwatch(self) -> CloudWatchClient:
        """A CloudWatch client bound to this target."""
        return self._checked().client("cloudwatch", endpoint_url=self.endpoint_url, config=self._config())

    def describe(self) -> str:
        """Human-readable description of the target, for messages."""
        return self.endpoint_url if self.endpoint_url is not None else "AWS"


class AwsSetupError(S3StaggerError, RuntimeError):
    """The AWS client cannot be set up (region, credentials); the message says what to do."""


class EndpointUrlError(BadOptionError):
    """An endpoint URL that is not ``http(s)://HOST[:PORT]``; the message says what is wrong."""


ENDPOINT_URL_FORM = "http(s)://HOST[:PORT], e.g. http://127.0.0.1:5000 (as `s3stagger local up` prints it)"


def checked_endpoint_url(url: str, source: str) -> str:
    """``url`` when it is an ``http``/``https`` URL with a host and a valid port; else raise
    :class:`EndpointUrlError` naming ``source`` (the flag or variable it came from)."""
    problem = _endpoint_url_problem(url.strip())
    if problem is not None:
        raise EndpointUrlError(f"{source} {url!r} {problem}; expected {ENDPOINT_URL_FORM}")
    return url.strip()


def _endpoint_url_problem(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if any(character.isspace() for character in url):
        return "contains white space"
    if not parts.hostname:
        return "has no host"
    try:
        parts.port  # noqa: B018 - urlsplit checks the port when it is read
    except ValueError:
        return "has a port that is not a number within 0-65535"
    return None


def _region_from_env(env: Mapping[str, str]) -> str | None:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def error_code(error: botocore.exceptions.ClientError) -> str:
    """The AWS error code of a ClientError (``""`` when the answer has none)."""
    code = error.response.get("Error", {}).get("Code", "")
    return str(code)
