"""rig.iam.policy: the evaluator that checks resource scoping moto cannot, and rig.iam.arns /
rig.iam.check, which feed it. Expected decisions follow AWS's policy evaluation logic."""

from __future__ import annotations

from typing import Any

import pytest

from rig.iam.arns import Request, pairs, s3_pairs
from rig.iam.check import out_of_scope, refused, unmapped
from rig.iam.policy import broader_than_used, evaluate, like, operator_policy, widened

SECRET = "arn:aws:secretsmanager:us-east-1:111122223333:secret:qwen3vl/prod/api-key-1-AbCdEf"
OTHER_SECRET = "arn:aws:secretsmanager:us-east-1:111122223333:secret:payroll/db-XyZ123"
ROLE = "arn:aws:iam::111122223333:role/qwen3vl/prod-instance-1"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**fields: Any) -> dict[str, Any]:
    return {"Effect": "Allow", **fields}


@pytest.mark.parametrize(
    ("glob", "value", "ignore_case", "expected"),
    [
        ("secretsmanager:*", "secretsmanager:GetSecretValue", True, True),
        ("secretsmanager:Get*", "secretsmanager:DescribeSecret", True, False),
        ("SECRETSMANAGER:getsecretvalue", "secretsmanager:GetSecretValue", True, True),
        ("ec2:Describe?nstances", "ec2:DescribeInstances", True, True),
        ("ec2:Describe?nstances", "ec2:DescribeXXnstances", True, False),
        ("arn:aws:iam::*:role/qwen3vl/*", ROLE, False, True),
        ("arn:aws:iam::*:role/QWEN3VL/*", ROLE, False, False),  # resources are case-sensitive
        ("arn:aws:s3:::a.b", "arn:aws:s3:::aXb", False, False),  # dots are literal
    ],
)
def test_wildcards(glob: str, value: str, ignore_case: bool, expected: bool):
    assert like(glob, value, ignore_case=ignore_case) is expected


def test_resource_scoping_allows_only_the_named_secret():
    documents = [policy(allow(Action="secretsmanager:GetSecretValue", Resource=SECRET))]
    assert evaluate(documents, "secretsmanager:GetSecretValue", SECRET).allowed
    other = evaluate(documents, "secretsmanager:GetSecretValue", OTHER_SECRET)
    assert (other.allowed, other.reason) == (False, "no statement allows it")


def test_an_action_not_listed_is_implicitly_denied():
    documents = [policy(allow(Action=["secretsmanager:DescribeSecret"], Resource=SECRET))]
    decision = evaluate(documents, "secretsmanager:ListSecretVersionIds", SECRET)
    assert not decision.allowed


def test_explicit_deny_wins_over_any_allow():
    documents = [
        policy(allow(Sid="All", Action="*", Resource="*")),
        policy({"Sid": "NoPayroll", "Effect": "Deny", "Action": "*", "Resource": OTHER_SECRET}),
    ]
    decision = evaluate(documents, "secretsmanager:GetSecretValue", OTHER_SECRET)
    assert (decision.allowed, decision.reason) == (False, "explicitly denied by NoPayroll")
    assert evaluate(documents, "secretsmanager:GetSecretValue", SECRET).allowed


def test_not_action_allows_everything_else():
    documents = [policy(allow(NotAction=["iam:*", "sts:*"], Resource="*"))]
    assert evaluate(documents, "ec2:RunInstances", "*").allowed
    assert not evaluate(documents, "iam:CreateRole", ROLE).allowed


def test_not_resource_allows_everything_but_the_listed():
    documents = [policy(allow(Action="secretsmanager:*", NotResource=OTHER_SECRET))]
    assert evaluate(documents, "secretsmanager:GetSecretValue", SECRET).allowed
    assert not evaluate(documents, "secretsmanager:GetSecretValue", OTHER_SECRET).allowed


PASS_ROLE = policy(
    allow(
        Action="iam:PassRole",
        Resource="arn:aws:iam::*:role/qwen3vl/*",
        Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
    )
)


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"iam:PassedToService": "ec2.amazonaws.com"}, True),
        ({"IAM:passedtoservice": "ec2.amazonaws.com"}, True),  # keys are case-insensitive
        ({"iam:PassedToService": "lambda.amazonaws.com"}, False),
        ({}, False),  # a missing key fails a positive operator
    ],
)
def test_string_equals_condition(context: dict[str, str], expected: bool):
    assert evaluate([PASS_ROLE], "iam:PassRole", ROLE, context).allowed is expected


@pytest.mark.parametrize(
    ("operator", "wanted", "context", "expected"),
    [
        ("StringNotEquals", "prod", {"aws:ResourceTag/Env": "dev"}, True),
        ("StringNotEquals", "prod", {"aws:ResourceTag/Env": "prod"}, False),
        ("StringNotEquals", "prod", {}, True),  # a missing key satisfies a negated operator
        ("StringLike", "qwen3vl-*", {"aws:ResourceTag/Env": "qwen3vl-a"}, True),
        ("StringNotLike", "qwen3vl-*", {"aws:ResourceTag/Env": "qwen3vl-a"}, False),
        ("StringEqualsIgnoreCase", "PROD", {"aws:ResourceTag/Env": "prod"}, True),
        ("StringEqualsIfExists", "prod", {}, True),
        ("StringEqualsIfExists", "prod", {"aws:ResourceTag/Env": "dev"}, False),
        ("Null", "true", {}, True),
        ("Null", "false", {}, False),
        ("Null", "false", {"aws:ResourceTag/Env": "x"}, True),
        ("StringEquals", ["dev", "prod"], {"aws:ResourceTag/Env": "prod"}, True),  # values ORed
    ],
)
def test_condition_operators(operator: str, wanted: Any, context: dict, expected: bool):
    condition = {operator: {"aws:ResourceTag/Env": wanted}}
    documents = [policy(allow(Action="ec2:StopInstances", Resource="*", Condition=condition))]
    assert evaluate(documents, "ec2:StopInstances", "*", context).allowed is expected


def test_arn_like_matches_part_by_part():
    condition = {"ArnLike": {"aws:SourceArn": "arn:aws:ec2:*:*:instance/*"}}
    documents = [policy(allow(Action="ssm:SendCommand", Resource="*", Condition=condition))]
    instance = "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc"
    assert evaluate(documents, "ssm:SendCommand", "*", {"aws:SourceArn": instance}).allowed
    volume = "arn:aws:ec2:us-east-1:111122223333:volume/vol-1"
    assert not evaluate(documents, "ssm:SendCommand", "*", {"aws:SourceArn": volume}).allowed


def test_every_operator_and_key_of_a_block_must_hold():
    condition = {
        "StringEquals": {"aws:ResourceTag/Project": "qwen3vl-aws", "ec2:Region": "us-east-1"},
    }
    documents = [policy(allow(Action="ec2:StopInstances", Resource="*", Condition=condition))]
    both = {"aws:ResourceTag/Project": "qwen3vl-aws", "ec2:Region": "us-east-1"}
    assert evaluate(documents, "ec2:StopInstances", "*", both).allowed
    one = {"aws:ResourceTag/Project": "qwen3vl-aws", "ec2:Region": "eu-west-1"}
    assert not evaluate(documents, "ec2:StopInstances", "*", one).allowed


def test_an_unsupported_operator_fails_loudly():
    condition = {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
    documents = [policy(allow(Action="*", Resource="*", Condition=condition))]
    with pytest.raises(NotImplementedError, match="DateGreaterThan"):
        evaluate(documents, "ec2:StopInstances", "*", {"aws:CurrentTime": "x"})


def test_widened_keeps_actions_and_drops_resources_and_conditions():
    wide = widened(PASS_ROLE)
    assert wide["Statement"] == [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]
    assert PASS_ROLE["Statement"][0]["Resource"] != "*"  # the original is untouched


def test_broader_than_used_reports_unused_actions_and_needless_wildcards():
    document = policy(
        allow(Sid="Keys", Action=["secretsmanager:GetSecretValue", "kms:Decrypt"], Resource="*")
    )
    used = [("secretsmanager:GetSecretValue", SECRET, {})]
    details = [b.detail for b in broader_than_used(document, used)]
    assert details == [
        "kms:Decrypt is granted but never called",
        "Resource * although every call named a resource",
    ]


def test_the_shipped_operator_policy_parses_and_scopes_iam_to_the_toolkit_path():
    documents = [operator_policy()]
    assert evaluate(documents, "iam:CreateRole", ROLE).allowed
    admin = "arn:aws:iam::111122223333:role/Admin"
    assert not evaluate(documents, "iam:CreateRole", admin).allowed
    assert not evaluate(documents, "iam:PassRole", ROLE, {}).allowed
    assert not evaluate(documents, "secretsmanager:GetSecretValue", OTHER_SECRET).allowed


# --- arns: requests to (action, resource) pairs -----------------------------------------------


def request(service: str, operation: str, params: dict[str, Any], **known: str) -> Request:
    return Request(
        service, operation, params, "111122223333", "us-east-1", lambda kind, name: known.get(kind)
    )


def test_a_secret_named_by_id_is_resolved_to_its_arn():
    req = request("secretsmanager", "DescribeSecret", {"SecretId": "qwen3vl/prod"}, secret=SECRET)
    found, mapped = pairs(req)
    assert mapped and [(p.action, p.resource) for p in found] == [
        ("secretsmanager:DescribeSecret", SECRET)
    ]


def test_launching_with_a_profile_passes_the_role_and_tags_what_it_creates():
    params = {
        "ImageId": "ami-1",
        "SubnetId": "subnet-1",
        "SecurityGroupId.1": "sg-1",
        "IamInstanceProfile.Name": "prod-instance-1",
        "TagSpecification.1.ResourceType": "instance",
    }
    found, _ = pairs(request("ec2", "RunInstances", params, **{"instance-profile-role": ROLE}))
    implied = [(p.action, p.resource, p.context) for p in found if p.action != "ec2:RunInstances"]
    arn = "arn:aws:ec2:us-east-1:111122223333:"
    assert implied == [
        ("ec2:CreateTags", f"{arn}instance/*", {"ec2:CreateAction": "RunInstances"}),
        ("iam:PassRole", ROLE, {"iam:PassedToService": "ec2.amazonaws.com"}),
    ]


def test_an_unknown_action_is_reported_unmapped():
    _, mapped = pairs(request("ec2", "ImportImage", {}))
    assert not mapped
    entries = [{"action": "ec2:ImportImage", "mapped": mapped, "pairs": [], "allowed": True}]
    assert unmapped(entries) == ["ec2:ImportImage"]


def test_check_names_each_call_outside_the_policy_and_each_refusal():
    document = policy(allow(Action="secretsmanager:GetSecretValue", Resource=SECRET))
    entries = [
        {
            "action": "secretsmanager:GetSecretValue",
            "mapped": True,
            "enforced": True,
            "allowed": True,
            "pairs": [
                {"action": "secretsmanager:GetSecretValue", "resource": r, "context": {}}
                for r in (SECRET, OTHER_SECRET)
            ],
        },
        {"action": "secretsmanager:ListSecretVersionIds", "mapped": True, "enforced": True,
         "allowed": False, "pairs": []},
    ]  # fmt: skip
    assert out_of_scope(entries, [document]) == [
        f"secretsmanager:GetSecretValue on {OTHER_SECRET}: no statement allows it"
    ]
    assert refused(entries) == ["secretsmanager:ListSecretVersionIds"]


def test_request_tags_count_per_resource_type_so_an_untagged_volume_is_refused():
    params = {
        "ImageId": "ami-1",
        "SubnetId": "subnet-1",
        "TagSpecification.1.ResourceType": "instance",
        "TagSpecification.1.Tag.1.Key": "Project",
        "TagSpecification.1.Tag.1.Value": "qwen3vl-aws",
        "TagSpecification.2.ResourceType": "volume",
        "TagSpecification.2.Tag.1.Key": "Name",
        "TagSpecification.2.Tag.1.Value": "root",
    }
    found, _ = pairs(request("ec2", "RunInstances", params))
    entries = [{"action": "ec2:RunInstances", "mapped": True, "allowed": True,
                "pairs": [vars(p) for p in found]}]  # fmt: skip
    assert out_of_scope(entries, [operator_policy()]) == [
        "ec2:RunInstances on arn:aws:ec2:us-east-1:111122223333:volume/*: no statement allows it"
    ]


# --- S3: operations to the IAM actions S3 authorizes them as ----------------------------------

BUCKET_ARN = "arn:aws:s3:::qwen3vl-prod-2026"


def test_s3_requests_are_authorized_under_iams_action_names():
    obj = f"{BUCKET_ARN}/bundle/k.json"
    cases = [
        ("HEAD", obj, {}, "s3:GetObject"),
        ("GET", obj, {"versionId": ["1"]}, "s3:GetObjectVersion"),
        ("PUT", BUCKET_ARN, {"encryption": [""]}, "s3:PutEncryptionConfiguration"),
        ("GET", BUCKET_ARN, {"encryption": [""]}, "s3:GetEncryptionConfiguration"),
        ("DELETE", BUCKET_ARN, {"publicAccessBlock": [""]}, "s3:PutBucketPublicAccessBlock"),
        ("HEAD", BUCKET_ARN, {}, "s3:ListBucket"),
        ("GET", BUCKET_ARN, {"list-type": ["2"], "prefix": ["a"]}, "s3:ListBucket"),
        ("PUT", BUCKET_ARN, {}, "s3:CreateBucket"),
    ]
    for method, resource, query, action in cases:
        found, mapped = s3_pairs(method, resource, query, {}, "")
        assert mapped and [(p.action, p.resource) for p in found] == [(action, resource)], action


def test_s3_delete_objects_is_a_delete_per_key_and_tags_on_put_need_tagging():
    body = "<Delete><Object><Key>bundle/a&amp;b.json</Key></Object><Object><Key>x</Key></Object>"
    found, _ = s3_pairs("POST", BUCKET_ARN, {"delete": [""]}, {}, body)
    assert [(p.action, p.resource) for p in found] == [
        ("s3:DeleteObject", f"{BUCKET_ARN}/bundle/a&b.json"),
        ("s3:DeleteObject", f"{BUCKET_ARN}/x"),
    ]
    found, _ = s3_pairs("PUT", f"{BUCKET_ARN}/k", {}, {"X-Amz-Tagging": "a=b"}, "")
    assert [p.action for p in found] == ["s3:PutObject", "s3:PutObjectTagging"]
    assert all(p.context == {"aws:SecureTransport": "true"} for p in found)
    _, mapped = s3_pairs("POST", f"{BUCKET_ARN}/k", {"select": [""]}, {}, "")
    assert not mapped


def test_the_operator_policy_reaches_only_the_toolkits_buckets_and_bundle_keys():
    documents = [operator_policy()]
    assert evaluate(documents, "s3:CreateBucket", BUCKET_ARN).allowed
    assert not evaluate(documents, "s3:CreateBucket", "arn:aws:s3:::someone-else").allowed
    assert evaluate(documents, "s3:PutObject", f"{BUCKET_ARN}/bundle/x.json").allowed
    assert not evaluate(documents, "s3:PutObject", f"{BUCKET_ARN}/models/x").allowed
    assert not evaluate(documents, "s3:GetObject", "arn:aws:s3:::other/bundle/x.json").allowed


# --- the fleet: load balancer, group, certificate, alarms --------------------------------------


def _judged(req: Request) -> list[str]:
    found, mapped = pairs(req)
    assert mapped
    entries = [{"action": req.action, "mapped": True, "allowed": True,
                "pairs": [vars(p) for p in found]}]  # fmt: skip
    return out_of_scope(entries, [operator_policy()])


def _lb_tags(project: str) -> dict[str, str]:
    return {"Tags.member.1.Key": "Project", "Tags.member.1.Value": project}


def test_a_load_balancer_is_created_only_with_the_toolkits_tag():
    params = {"Name": "prod", "Type": "application"}
    tagged = request(
        "elasticloadbalancing", "CreateLoadBalancer", {**params, **_lb_tags("qwen3vl-aws")}
    )
    assert _judged(tagged) == []
    found, _ = pairs(tagged)
    assert [(p.action, p.context.get("elasticloadbalancing:CreateAction")) for p in found] == [
        ("elasticloadbalancing:CreateLoadBalancer", None),
        ("elasticloadbalancing:AddTags", "CreateLoadBalancer"),
    ]
    other = request("elasticloadbalancing", "CreateLoadBalancer", {**params, **_lb_tags("other")})
    # The create is refused, so is the request (its tagging alone is not the gate).
    assert _judged(other) == [
        "elasticloadbalancing:CreateLoadBalancer on "
        "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/prod/*: "
        "no statement allows it"
    ]


def test_another_teams_load_balancer_cannot_be_deleted():
    arn = "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/prod/0123abcd"
    ours = request("elasticloadbalancing", "DeleteLoadBalancer", {"LoadBalancerArn": arn},
                   tags={"Project": "qwen3vl-aws"})  # fmt: skip
    theirs = request("elasticloadbalancing", "DeleteLoadBalancer", {"LoadBalancerArn": arn},
                     tags={"Project": "payments"})  # fmt: skip
    assert _judged(ours) == []
    assert _judged(theirs) == [
        f"elasticloadbalancing:DeleteLoadBalancer on {arn}: no statement allows it"
    ]


def test_a_group_launches_from_a_template_only_passing_the_toolkits_role():
    params = {
        "AutoScalingGroupName": "prod-fleet",
        "LaunchTemplate.LaunchTemplateId": "lt-0123456789abcdef0",
        "Tags.member.1.Key": "Project",
        "Tags.member.1.Value": "qwen3vl-aws",
    }
    ours = {"ec2-tags": {"Project": "qwen3vl-aws"}}
    req = request("autoscaling", "CreateAutoScalingGroup", params,
                  **{"launch-template-role": ROLE, **ours})  # fmt: skip
    found, _ = pairs(req)
    assert {p.action for p in found} == {
        "autoscaling:CreateAutoScalingGroup",
        "autoscaling:CreateOrUpdateTags",
        "ec2:RunInstances",
        "iam:PassRole",
    }
    assert _judged(req) == []
    admin = "arn:aws:iam::111122223333:role/Admin"
    escalating = request("autoscaling", "CreateAutoScalingGroup", params,
                         **{"launch-template-role": admin, **ours})  # fmt: skip
    assert _judged(escalating) == [f"iam:PassRole on {admin}: no statement allows it"]


def test_cloudwatch_signs_as_monitoring_but_is_authorized_as_cloudwatch():
    req = request("monitoring", "DeleteAlarms", {"AlarmNames.member.1": "prod-fleet-idle"},
                  tags={"Project": "qwen3vl-aws"})  # fmt: skip
    found, _ = pairs(req)
    assert [(p.action, p.resource) for p in found] == [
        (
            "cloudwatch:DeleteAlarms",
            "arn:aws:cloudwatch:us-east-1:111122223333:alarm:prod-fleet-idle",
        )
    ]
    assert _judged(req) == []


def test_a_listing_carries_its_prefix_for_s3_prefix_conditions():
    """A reader limited to one prefix (terraform/model_cache.tf's model_reader) may list it, and
    a listing of the whole bucket or of another prefix is refused."""
    reader = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": BUCKET_ARN,
                "Condition": {"StringLike": {"s3:prefix": ["models/m/rev/*"]}},
            }
        ],
    }

    def allowed(query: dict[str, list[str]]) -> bool:
        (pair,), _ = s3_pairs("GET", BUCKET_ARN, {"list-type": ["2"], **query}, {}, "")
        return evaluate([reader], pair.action, pair.resource, pair.context).allowed

    assert allowed({"prefix": ["models/m/rev/"]})
    assert not allowed({"prefix": ["models/m/other/"]})
    assert not allowed({})
