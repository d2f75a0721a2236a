"""The small IAM evaluator the model-cache tests check resource scoping with (moto cannot)."""

from __future__ import annotations

import pytest

from rig.s3_policy import Call, call_of, decision, widened

BUCKET = "arn:aws:s3:::cache"
IDENTITY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{BUCKET}/models/m/r1/*",
        },
        {
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [f"{BUCKET}/models/m/r1/*"],
            "Condition": {"Null": {"s3:if-none-match": "false"}},
        },
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": BUCKET,
            "Condition": {"StringLike": {"s3:prefix": ["models/m/r1/*"]}},
        },
    ]
}
RESOURCE = {
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [BUCKET, f"{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Effect": "Deny",
            "Principal": "*",
            "NotAction": ["s3:Get*", "s3:List*", "s3:PutObject"],
            "Resource": f"{BUCKET}/models/*",
        },
    ]
}


def put(key: str, if_none_match: str | None = "*", *, secure: bool = True) -> Call:
    params = {"Bucket": "cache", "Key": key}
    if if_none_match:
        params["IfNoneMatch"] = if_none_match
    return call_of("PutObject", params, secure_transport=secure)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (put("models/m/r1/model.safetensors"), "allowed"),
        (put("models/m/r1/model.safetensors", None), "implicit-deny"),  # Null condition
        (put("models/m/r2/model.safetensors"), "implicit-deny"),  # another revision
        (put("models/m/r1/model.safetensors", secure=False), "denied"),  # Bool condition
        (call_of("GetObject", {"Bucket": "cache", "Key": "models/m/r1/a/b.json"}), "allowed"),
        (call_of("GetObject", {"Bucket": "cache", "Key": "models/m/r10/x"}), "implicit-deny"),
        (call_of("ListObjectsV2", {"Bucket": "cache", "Prefix": "models/m/r1/"}), "allowed"),
        (call_of("ListObjectsV2", {"Bucket": "cache", "Prefix": "models/"}), "implicit-deny"),
        (call_of("DeleteObject", {"Bucket": "cache", "Key": "models/m/r1/x"}), "denied"),
    ],
)
def test_decision(call: Call, expected: str) -> None:
    assert decision(call, IDENTITY, RESOURCE) == expected


def test_an_unmodelled_condition_operator_is_an_error_not_a_pass() -> None:
    identity = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            }
        ]
    }
    with pytest.raises(ValueError, match="IpAddress"):
        decision(
            Call("s3:GetObject", f"{BUCKET}/k", {"aws:SourceIp": "10.1.1.1"}),
            identity,
            {"Statement": []},
        )


def test_widened_keeps_actions_and_conditions_and_only_opens_resources() -> None:
    wide = widened(IDENTITY)
    assert [s["Resource"] for s in wide["Statement"]] == ["*", "*", "*"]
    assert [s["Action"] for s in wide["Statement"]] == [s["Action"] for s in IDENTITY["Statement"]]
    assert wide["Statement"][1]["Condition"] == IDENTITY["Statement"][1]["Condition"]
    assert IDENTITY["Statement"][0]["Resource"] == f"{BUCKET}/models/m/r1/*"  # not mutated
