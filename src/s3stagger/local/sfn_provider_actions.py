"""Stand-in for two Step Functions actions moto lacks that the AWS provider calls.

Terraform's ``aws_sfn_state_machine`` calls ``ValidateStateMachineDefinition`` before it creates or
updates a state machine, and ``ListStateMachineVersions`` when it reads one back. moto 5.2.5
implements neither: its server answers 500, which the provider retries for minutes and then gives
up. :func:`install` adds both to moto's Step Functions responses:

- ``ValidateStateMachineDefinition`` checks the definition with the parser moto's interpreter runs
  executions with (the one its ``CreateStateMachine`` refuses a definition by): ``OK``, or ``FAIL``
  with one ``ERROR`` diagnostic per problem. It is not AWS's full static analysis (for example that
  every state is reachable), so a definition it accepts may still be refused on AWS.
- ``ListStateMachineVersions`` lists the versions moto keeps for a state machine (published with
  ``publish = true``), newest first, as AWS does.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException
from moto.stepfunctions.responses import StepFunctionResponse

# moto dispatches X-Amz-Target "AWSStepFunctions.<Action>" to the snake_case method of that name


def diagnostics(definition: str) -> list[dict[str, str]]:
    """What is wrong with ``definition`` for moto's ASL parser; empty when it parses."""
    try:
        AmazonStateLanguageParser.parse(definition)
    except ASLParserException as refused:
        messages = list(refused.errors) or ["the definition does not parse"]
    except Exception as error:  # the parser's own errors: moto's CreateStateMachine refuses with them too
        messages = [f"{type(error).__name__}: {error}"]
    else:
        return []
    return [
        {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": message} for message in messages
    ]


def validate_state_machine_definition(self: StepFunctionResponse) -> ActionResult:
    found = diagnostics(str(self._get_param("definition") or ""))
    return ActionResult({"result": "FAIL" if found else "OK", "diagnostics": found, "truncated": False})


def list_state_machine_versions(self: StepFunctionResponse) -> ActionResult:
    machine: Any = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
    versions = sorted(machine.versions.values(), key=lambda version: version.version, reverse=True)
    return ActionResult(
        {
            "stateMachineVersions": [
                {"stateMachineVersionArn": version.arn, "creationDate": version.creation_date}
                for version in versions
            ]
        }
    )


ACTIONS = {
    "validate_state_machine_definition": validate_state_machine_definition,
    "list_state_machine_versions": list_state_machine_versions,
}


def install() -> None:
    """Answer the actions of :data:`ACTIONS` (idempotent)."""
    for name, action in ACTIONS.items():
        setattr(StepFunctionResponse, name, action)


def uninstall() -> None:
    for name, action in ACTIONS.items():
        if getattr(StepFunctionResponse, name, None) is action:
            delattr(StepFunctionResponse, name)


def installed() -> bool:
    return all(getattr(StepFunctionResponse, name, None) is action for name, action in ACTIONS.items())
