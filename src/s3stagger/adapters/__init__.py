"""Adapters: boto3- and httpx-backed implementations; clients are passed in."""
