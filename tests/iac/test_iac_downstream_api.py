"""The downstream API settings in Terraform: secrets by ARN only, read by the processor and nothing else."""

from __future__ import annotations

import re

from _iac_support import TERRAFORM_ROOT, module_locals
from test_iac_security import conditions, policy_statements

DISPATCHER = TERRAFORM_ROOT / "modules" / "staggered-dispatcher"


def downstream_statements() -> dict[str, dict[str, object]]:
    return {
        statement["sid"]: statement
        for name, statement in policy_statements(DISPATCHER)
        if name == "processor_downstream_api"
    }


def test_secrets_are_read_by_their_arns_only() -> None:
    statements = downstream_statements()
    assert set(statements) == {
        "ReadDownstreamSecrets",
        "ReadDownstreamParameter",
        "DecryptDownstreamSecrets",
        "InvokeDownstreamApi",
    }
    assert statements["ReadDownstreamSecrets"]["actions"] == ["secretsmanager:GetSecretValue"]
    assert statements["ReadDownstreamParameter"]["actions"] == ["ssm:GetParameter"]
    for statement in statements.values():
        assert statement["resources"] == "${statement.value}"  # the variable's ARNs, never "*"


def test_the_secrets_key_is_usable_through_secrets_manager_and_ssm_only() -> None:
    decrypt = downstream_statements()["DecryptDownstreamSecrets"]
    assert decrypt["actions"] == ["kms:Decrypt"]
    assert conditions(decrypt)["kms:ViaService"] == [
        "secretsmanager.${local.region}.amazonaws.com",
        "ssm.${local.region}.amazonaws.com",
    ]


def test_the_environment_carries_secret_ids_never_secret_values() -> None:
    environment = str(module_locals(DISPATCHER)["downstream_api_environment"])
    names = set(re.findall(r"S3STAGGER_[A-Z0-9_]+", environment))
    secret_names = {name for name in names if re.search(r"SECRET|KEY|TOKEN|PASSWORD|CERT", name)}
    assert secret_names == {
        "S3STAGGER_AUTH_SECRET_ID",
        "S3STAGGER_AUTH_SECRET_TTL_S",
        "S3STAGGER_OAUTH_TOKEN_URL",
        "S3STAGGER_TLS_CA_SECRET_ID",
        "S3STAGGER_TLS_CLIENT_CERT_SECRET_ID",
    }
