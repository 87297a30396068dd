from s3stagger.local import sfn_parameter_casing
from s3stagger.local.emulator import Emulator


def test_pascal_case_parameters_get_the_api_casing() -> None:
    parameters = {"StateMachineArn": "arn", "Name": "n", "Input": "{}", "Unknown": 1}
    sfn_parameter_casing.to_api_casing(parameters, "stepfunctions", "start_execution")
    assert parameters == {"stateMachineArn": "arn", "name": "n", "input": "{}", "Unknown": 1}


def test_apis_that_are_pascal_case_already_are_left_alone() -> None:
    parameters = {"QueueUrl": "u", "ReceiptHandle": "r", "VisibilityTimeout": 5}
    sfn_parameter_casing.to_api_casing(parameters, "sqs", "change_message_visibility")
    assert parameters == {"QueueUrl": "u", "ReceiptHandle": "r", "VisibilityTimeout": 5}


def test_an_unknown_operation_changes_nothing() -> None:
    parameters = {"Name": "n"}
    sfn_parameter_casing.to_api_casing(parameters, "stepfunctions", "no_such_operation")
    assert parameters == {"Name": "n"}


def test_the_emulator_fills_moto_stub_while_it_runs() -> None:
    assert not sfn_parameter_casing.installed()
    with Emulator():
        assert sfn_parameter_casing.installed()
    assert not sfn_parameter_casing.installed()
