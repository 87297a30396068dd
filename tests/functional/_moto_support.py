"""Clients bound to the functional tests' moto server (the ``endpoint_url`` fixture)."""

from typing import Any

import boto3


def moto_client(endpoint_url: str, service: str) -> Any:
    """A boto3 client for ``service`` on the moto server, with placeholder credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
