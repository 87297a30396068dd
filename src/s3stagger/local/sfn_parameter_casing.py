"""Stand-in for what moto's Step Functions interpreter skips: parameter casing of integrations.

In ASL, the parameters of a service integration are PascalCase even when the service's API is
camelCase (``arn:aws:states:::states:startExecution`` takes ``StateMachineArn``, ``Name``,
``Input``; AWS maps them to ``stateMachineArn``...). moto 5.2.5 ported the interpreter with that
mapping stubbed out (``StateTaskService._normalise_parameters`` does nothing), so such calls fail
there with ``States.Runtime`` ``'StateMachineArn'``. :func:`install` fills the stub: each top-level
parameter is renamed to the member of the operation's input shape with the same name ignoring case,
as AWS does. Names that already match (SQS, SSM, Lambda) are left alone.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore import xform_name
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)

_original: Any = None


@functools.lru_cache(maxsize=256)
def member_names(boto_service: str, snake_action: str) -> dict[str, str]:
    """``lower-case name -> member name`` of the input shape of ``boto_service.snake_action``."""
    model = botocore.session.get_session().get_service_model(boto_service)
    for operation_name in model.operation_names:
        if xform_name(operation_name) == snake_action:
            shape = model.operation_model(operation_name).input_shape
            return {} if shape is None else {name.lower(): name for name in shape.members}
    return {}


def to_api_casing(parameters: dict[str, Any], boto_service: str, snake_action: str) -> None:
    """Rename ``parameters``' top-level keys in place to the API's member names."""
    members = member_names(boto_service, snake_action)
    for key in list(parameters):
        member = members.get(key.lower())
        if member is not None and member != key:
            parameters[member] = parameters.pop(key)


def _normalise_parameters(
    self: StateTaskService,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    to_api_casing(
        parameters,
        self._get_boto_service_name(boto_service_name),
        self._get_boto_service_action(service_action_name),
    )


def install() -> None:
    """Fill moto's stub (idempotent)."""
    global _original  # noqa: PLW0603 - one process-wide patch, undone by uninstall()
    if _original is None:
        _original = StateTaskService._normalise_parameters
        StateTaskService._normalise_parameters = _normalise_parameters  # type: ignore[method-assign]


def uninstall() -> None:
    global _original  # noqa: PLW0603
    if _original is not None:
        StateTaskService._normalise_parameters = _original  # type: ignore[method-assign]
        _original = None


def installed() -> bool:
    return StateTaskService._normalise_parameters is _normalise_parameters
