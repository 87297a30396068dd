"""Where the notifier keeps each alert group's dedupe and digest state between invocations.

One SSM String parameter per group, ``<path>/<group slug>``: no table or bucket to run, values of
at most 4 KB (the state is kept that small, see ``AlertGroupState.to_json``). The notifier runs
with reserved concurrency 1, so the read-modify-write of a group is never interleaved.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from botocore.exceptions import ClientError

from s3stagger.domain.alerts import AlertGroupState

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class SsmAlertStateStore:
    def __init__(self, client: Any, path: str, max_chars: int = 4096) -> None:
        self._client = client
        self.path = "/" + path.strip("/")
        self.max_chars = max_chars

    def parameter_name(self, group: str) -> str:
        slug = _UNSAFE.sub("-", group).strip("-")[:120]
        return f"{self.path}/{slug}-{hashlib.sha256(group.encode()).hexdigest()[:10]}"

    def get(self, group: str) -> AlertGroupState:
        try:
            value = self._client.get_parameter(Name=self.parameter_name(group))["Parameter"]["Value"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ParameterNotFound":
                return AlertGroupState()
            raise
        return AlertGroupState.from_json(value)

    def put(self, group: str, state: AlertGroupState) -> None:
        self._client.put_parameter(
            Name=self.parameter_name(group),
            Value=state.to_json(self.max_chars),
            Type="String",
            Overwrite=True,
        )
