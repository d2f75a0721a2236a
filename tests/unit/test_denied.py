"""AccessDenied from any AWS call the CLI makes names the action, the resource and the policy."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from qwen3vl_aws.aws.clients import ClientFactory, aws_errors
from qwen3vl_aws.aws.denied import POLICY_DOC, terraform_hint
from qwen3vl_aws.errors import AwsError

SECRET = "arn:aws:secretsmanager:us-east-1:111122223333:secret:qwen3vl/prod/api-key-1-AbCdEf"
USER = "arn:aws:iam::111122223333:user/alice"


def failing_call(service: str, method: str, params: dict, code: str, message: str, status: int):
    client = ClientFactory(region="us-east-1").client(service)
    stubber = Stubber(client)
    stubber.add_client_error(
        method, service_error_code=code, service_message=message, http_status_code=status
    )
    with stubber, pytest.raises(AwsError) as raised, aws_errors("Reading the key"):
        getattr(client, method)(**params)
    return str(raised.value)


def test_aws_message_with_action_and_resource_is_used_as_is():
    message = failing_call(
        "secretsmanager",
        "get_secret_value",
        {"SecretId": SECRET},
        "AccessDeniedException",
        f"User: {USER} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        f"{SECRET} because no identity-based policy allows the action",
        400,
    )
    assert message.startswith(
        f"Reading the key: AWS denied secretsmanager:GetSecretValue on {SECRET}."
    )
    assert POLICY_DOC in message


def test_a_message_without_the_resource_gets_it_from_the_request():
    message = failing_call(
        "secretsmanager",
        "put_secret_value",
        {"SecretId": SECRET, "SecretString": "x" * 40},
        "AccessDenied",
        f"User: {USER} is not authorized to perform: secretsmanager:PutSecretValue",
        403,
    )
    assert f"AWS denied secretsmanager:PutSecretValue on {SECRET}." in message
    assert "x" * 40 not in message


def test_ec2_unauthorized_operation_without_details_names_the_call_and_instances():
    message = failing_call(
        "ec2",
        "stop_instances",
        {"InstanceIds": ["i-0abc", "i-0def"]},
        "UnauthorizedOperation",
        "You are not authorized to perform this operation.",
        403,
    )
    assert "AWS denied ec2:StopInstances on i-0abc, i-0def." in message


def test_other_errors_keep_their_code_and_message():
    message = failing_call(
        "secretsmanager",
        "get_secret_value",
        {"SecretId": SECRET},
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
        400,
    )
    assert message == (
        "Reading the key: ResourceNotFoundException: "
        "Secrets Manager can't find the specified secret."
    )


def test_terraform_output_with_a_denied_call_points_to_the_policy():
    output = (
        "Error: creating IAM Role (prod-instance-1): operation error IAM: CreateRole, "
        "https response error StatusCode: 403, api error AccessDenied: User: "
        f"{USER} is not authorized to perform: iam:CreateRole on resource: "
        "arn:aws:iam::111122223333:role/qwen3vl/prod-instance-1"
    )
    hint = terraform_hint(output)
    assert (
        "AWS denied iam:CreateRole on arn:aws:iam::111122223333:role/qwen3vl/prod-instance-1"
        in hint
    )
    assert POLICY_DOC in hint
    assert terraform_hint("Error: Invalid value for variable") == ""
