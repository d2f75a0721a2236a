"""Check recorded S3 calls against the real (resource-scoped) policies: moto cannot.

moto enforces IAM per action only and matches every request against Resource ``*``, so the tests
give the assumed role a copy of its policy with resources widened (``widened``) and then evaluate
each call the code really made against the real documents here: the role's identity policy must
allow it and no Deny of the bucket policy may match. Only what the model cache uses is modelled:
exact or wildcard actions and resources, and the Null, Bool and StringLike conditions.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Context = dict[str, str | None]


@dataclass(frozen=True)
class Call:
    """One S3 request as IAM sees it: action, resource ARN and condition context."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _condition_holds(operator: str, key: str, expected: list[str], context: Context) -> bool:
    actual = context.get(key)
    if operator == "Null":
        return (actual is None) == (expected[0].lower() == "true")
    if actual is None:
        return False
    if operator == "Bool":
        return actual.lower() == expected[0].lower()
    if operator == "StringLike":
        return any(_wildcard(p, actual) for p in expected)
    if operator == "StringEquals":
        return actual in expected
    raise ValueError(f"condition operator {operator} is not modelled")


def statement_matches(statement: dict[str, Any], call: Call) -> bool:
    """Whether the statement applies to the call (action, resource and every condition)."""
    if "NotAction" in statement:
        if any(_wildcard(a, call.action) for a in _as_list(statement["NotAction"])):
            return False
    elif not any(_wildcard(a, call.action) for a in _as_list(statement["Action"])):
        return False
    if not any(_wildcard(r, call.resource) for r in _as_list(statement.get("Resource", "*"))):
        return False
    for operator, entries in statement.get("Condition", {}).items():
        for key, expected in entries.items():
            if not _condition_holds(operator, key, _as_list(expected), call.context):
                return False
    return True


def decision(call: Call, identity: dict[str, Any], resource: dict[str, Any]) -> str:
    """``allowed``, ``denied`` (an explicit Deny) or ``implicit-deny`` (no Allow matched)."""
    statements = [*_as_list(identity["Statement"]), *_as_list(resource["Statement"])]
    if any(s["Effect"] == "Deny" and statement_matches(s, call) for s in statements):
        return "denied"
    allowed = any(
        s["Effect"] == "Allow" and statement_matches(s, call)
        for s in _as_list(identity["Statement"])
    )
    return "allowed" if allowed else "implicit-deny"


def widened(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy with every Resource replaced by ``*`` (what moto can evaluate)."""
    wide = copy.deepcopy(policy)
    for statement in _as_list(wide["Statement"]):
        statement["Resource"] = "*"
    return wide


# Operation -> (IAM action, whether S3 counts it as an object-creating operation).
_ACTIONS: dict[str, tuple[str, str | None]] = {
    "PutObject": ("s3:PutObject", "true"),
    "CompleteMultipartUpload": ("s3:PutObject", "true"),
    "CreateMultipartUpload": ("s3:PutObject", "false"),
    "UploadPart": ("s3:PutObject", "false"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", None),
    "GetObject": ("s3:GetObject", None),
    "HeadObject": ("s3:GetObject", None),
    "ListObjectsV2": ("s3:ListBucket", None),
    "ListObjects": ("s3:ListBucket", None),
    "DeleteObject": ("s3:DeleteObject", None),
}


def call_of(operation: str, params: dict[str, Any], *, secure_transport: bool = True) -> Call:
    """The IAM view of one boto3 S3 operation with its API parameters."""
    action, creation = _ACTIONS[operation]
    bucket = params["Bucket"]
    context: Context = {"aws:SecureTransport": str(secure_transport).lower()}
    if action == "s3:ListBucket":
        context["s3:prefix"] = params.get("Prefix", "")
        return Call(action, f"arn:aws:s3:::{bucket}", context)
    if action == "s3:PutObject":
        context["s3:ObjectCreationOperation"] = creation
        context["s3:if-none-match"] = params.get("IfNoneMatch")
    return Call(action, f"arn:aws:s3:::{bucket}/{params['Key']}", context)


class Recorder:
    """Records every S3 operation a boto3 client makes (``before-parameter-build`` event)."""

    def __init__(self) -> None:
        self.operations: list[tuple[str, dict[str, Any]]] = []

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build.s3", self._record)
        return client

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.operations.append((model.name, dict(params)))

    def calls(self) -> list[Call]:
        return [call_of(name, params) for name, params in self.operations]


def refused(
    calls: Iterable[Call], identity: dict[str, Any], resource: dict[str, Any]
) -> list[tuple[Call, str]]:
    """The calls the real policies would not allow, with the decision for each."""
    verdicts = [(c, decision(c, identity, resource)) for c in calls]
    return [(c, v) for c, v in verdicts if v != "allowed"]
