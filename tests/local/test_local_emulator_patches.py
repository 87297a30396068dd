"""The stand-ins for the emulator gaps Terraform meets answer as AWS does, on a running emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from s3stagger.local import s3_bucket_policy_conditions, sfn_provider_actions, sqs_redrive_allow_policy
from s3stagger.local.emulator import EMULATOR_PATCHES, Emulator

ROLE = "arn:aws:iam::123456789012:role/dispatcher"
DEFINITION = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def client(emulator: Emulator, service: str) -> Any:
    return boto3.client(service, **emulator.client_settings())  # type: ignore[call-overload]


def test_every_patch_is_installed_only_while_an_emulator_runs() -> None:
    assert not any(patch.installed() for patch in EMULATOR_PATCHES)
    with Emulator():
        assert all(patch.installed() for patch in EMULATOR_PATCHES)
    assert not any(patch.installed() for patch in EMULATOR_PATCHES)


def test_a_dlq_reads_its_redrive_allow_policy_back(emulator: Emulator) -> None:
    sqs = client(emulator, "sqs")
    dlq = sqs.create_queue(QueueName="patch-dlq")["QueueUrl"]
    plain = sqs.create_queue(QueueName="patch-plain")["QueueUrl"]
    policy = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": ["arn:aws:sqs:us-east-1:1:q"]})
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={sqs_redrive_allow_policy.ATTRIBUTE: policy})

    named = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["RedriveAllowPolicy"])["Attributes"]
    everything = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert named == {"RedriveAllowPolicy": policy}
    assert everything["RedriveAllowPolicy"] == policy
    assert (
        "RedriveAllowPolicy"
        not in sqs.get_queue_attributes(QueueUrl=plain, AttributeNames=["All"])["Attributes"]
    )


def test_a_valid_definition_validates_ok(emulator: Emulator) -> None:
    answer = client(emulator, "stepfunctions").validate_state_machine_definition(
        definition=json.dumps(DEFINITION)
    )
    assert answer["result"] == "OK"
    assert answer["diagnostics"] == []


def test_a_broken_definition_fails_validation_with_a_diagnostic(emulator: Emulator) -> None:
    broken = {"StartAt": "Done", "States": {"Done": {"Type": "NoSuchType"}}}
    answer = client(emulator, "stepfunctions").validate_state_machine_definition(
        definition=json.dumps(broken)
    )
    assert answer["result"] == "FAIL"
    assert answer["diagnostics"][0]["severity"] == "ERROR"
    assert answer["diagnostics"][0]["message"]


def test_text_that_is_not_a_definition_fails_validation() -> None:
    assert sfn_provider_actions.diagnostics("not json at all")


def test_versions_are_listed_newest_first(emulator: Emulator) -> None:
    sfn = client(emulator, "stepfunctions")
    unpublished = sfn.create_state_machine(
        name="patch-plain", definition=json.dumps(DEFINITION), roleArn=ROLE
    )
    published = sfn.create_state_machine(
        name="patch-published", definition=json.dumps(DEFINITION), roleArn=ROLE, publish=True
    )
    sfn.update_state_machine(stateMachineArn=published["stateMachineArn"], roleArn=ROLE, publish=True)

    listed = sfn.list_state_machine_versions(stateMachineArn=published["stateMachineArn"])[
        "stateMachineVersions"
    ]
    assert [version["stateMachineVersionArn"] for version in listed] == [
        f"{published['stateMachineArn']}:2",
        f"{published['stateMachineArn']}:1",
    ]
    assert (
        sfn.list_state_machine_versions(stateMachineArn=unpublished["stateMachineArn"])[
            "stateMachineVersions"
        ]
        == []
    )


def tls_only_policy(bucket: str, secure_transport: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": secure_transport}},
                },
                {
                    "Sid": "DenyOutdatedTls",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
                },
            ],
        }
    )


def test_a_tls_only_bucket_takes_uploads(emulator: Emulator) -> None:
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="patch-tls-only")
    s3.put_bucket_policy(Bucket="patch-tls-only", Policy=tls_only_policy("patch-tls-only", "false"))
    s3.put_object(Bucket="patch-tls-only", Key="rows.csv", Body=b"id\n1\n")
    assert s3.get_object(Bucket="patch-tls-only", Key="rows.csv")["Body"].read() == b"id\n1\n"


def test_a_deny_whose_condition_holds_still_denies(emulator: Emulator) -> None:
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="patch-deny-tls")
    s3.put_bucket_policy(Bucket="patch-deny-tls", Policy=tls_only_policy("patch-deny-tls", "true"))
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="patch-deny-tls", Key="rows.csv", Body=b"id\n")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(
    ("condition", "applies"),
    [
        ({"Bool": {"aws:SecureTransport": "false"}}, False),
        ({"Bool": {"aws:SecureTransport": ["true"]}}, True),
        ({"NumericLessThan": {"s3:TlsVersion": "1.2"}}, False),
        ({"NumericGreaterThanEquals": {"s3:TlsVersion": "1.2"}}, True),
        ({"StringNotEquals": {"aws:SecureTransport": "true"}}, False),
        ({"StringEquals": {"aws:SourceVpce": "vpce-1"}}, True),  # a key the emulator does not know
        ({"IpAddress": {"aws:SecureTransport": "x"}}, True),  # an operator it does not evaluate
    ],
)
def test_a_statement_applies_when_its_conditions_hold_for_a_tls_request(
    condition: dict[str, Any], applies: bool
) -> None:
    assert s3_bucket_policy_conditions.statement_applies({"Condition": condition}) is applies
