"""A small IAM identity-policy evaluator: does a set of policies allow an action on a resource?

moto checks actions only, so resource scoping and conditions are checked here, on the (action,
resource, context) pairs the recording server derived. PyPI has no maintained evaluator for
identity policies (pmapper's local simulator was last released in 2022), so this is our own,
covering what AWS's evaluation logic does for identity policies in one account:

- an explicit Deny wins; otherwise any Allow; otherwise the implicit deny;
- Action / NotAction (case-insensitive, ``*`` and ``?`` wildcards), Resource / NotResource
  (case-sensitive wildcards);
- conditions (every operator of a block, every key of an operator, must hold; values of one key
  are ORed): String(Not)Equals, String(Not)Like, StringEqualsIgnoreCase, Arn(Not)Equals,
  Arn(Not)Like, Bool, Null, the ``...IfExists`` forms. A missing key fails a positive operator
  and satisfies a negated one, as in AWS. An operator not listed raises, so a policy using one
  cannot pass unchecked.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OPERATOR_POLICY = REPO / "docs" / "iam-policy.json"


def operator_policy() -> dict[str, Any]:
    """docs/iam-policy.json: the policy the README tells operators to use."""
    return json.loads(OPERATOR_POLICY.read_text())


def widened(policy: dict[str, Any]) -> dict[str, Any]:
    """The same actions on Resource "*" without conditions: what moto can enforce."""
    wide = copy.deepcopy(policy)
    for statement in statements(wide):
        statement.pop("NotResource", None)
        statement.pop("Condition", None)
        statement["Resource"] = "*"
    return wide


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    return found if isinstance(found, list) else [found]


def _list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@cache
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def like(glob: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` exactly one."""
    return _pattern(glob, ignore_case).fullmatch(value) is not None


def _arn_like(glob: str, value: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own."""
    want, have = glob.split(":", 5), value.split(":", 5)
    return len(want) == len(have) == 6 and all(like(w, h) for w, h in zip(want, have, strict=True))


def _bool(want: str, have: str) -> bool:
    return want.lower() == have.lower()


OPERATORS = {
    "StringEquals": lambda want, have: want == have,
    "StringEqualsIgnoreCase": lambda want, have: want.lower() == have.lower(),
    "StringLike": like,
    "ArnEquals": lambda want, have: want == have,
    "ArnLike": _arn_like,
    "Bool": _bool,
}
NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, wanted: list[str], context: dict[str, Any]) -> bool:
    present = {k.lower(): v for k, v in context.items()}
    value = present.get(key.lower())
    if operator == "Null":
        return all((value is None) == _bool(w, "true") for w in wanted)
    if_exists = operator.endswith("IfExists")
    name = operator.removesuffix("IfExists")
    if value is None:
        return if_exists or name in NEGATED
    values = _list(value)
    if name in NEGATED:
        test = OPERATORS[NEGATED[name]]
        return not any(test(w, v) for w in wanted for v in values)
    if name not in OPERATORS:
        raise NotImplementedError(f"condition operator {operator} is not supported here")
    return any(OPERATORS[name](w, v) for w in wanted for v in values)


def conditions_hold(block: dict[str, dict[str, Any]], context: dict[str, Any]) -> bool:
    return all(
        _condition_holds(operator, key, _list(wanted), context)
        for operator, keys in block.items()
        for key, wanted in keys.items()
    )


def statement_applies(
    statement: dict[str, Any], action: str, resource: str, context: dict[str, Any]
) -> bool:
    if "Action" in statement:
        if not any(like(p, action, ignore_case=True) for p in _list(statement["Action"])):
            return False
    elif any(like(p, action, ignore_case=True) for p in _list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(like(p, resource) for p in _list(statement["Resource"])):
            return False
    elif any(like(p, resource) for p in _list(statement["NotResource"])):
        return False
    return conditions_hold(statement.get("Condition", {}), context)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "allowed by <sid>", "explicitly denied by <sid>", "no statement allows it"


def _sid(statement: dict[str, Any], index: int) -> str:
    return statement.get("Sid") or f"statement {index}"


def evaluate(
    policies: list[dict[str, Any]],
    action: str,
    resource: str,
    context: dict[str, Any] | None = None,
) -> Decision:
    """AWS's decision for one request under these identity policies."""
    context = context or {}
    allowed_by = None
    for policy in policies:
        for index, statement in enumerate(statements(policy)):
            if not statement_applies(statement, action, resource, context):
                continue
            if statement["Effect"] == "Deny":
                return Decision(False, f"explicitly denied by {_sid(statement, index)}")
            allowed_by = allowed_by or _sid(statement, index)
    if allowed_by:
        return Decision(True, f"allowed by {allowed_by}")
    return Decision(False, "no statement allows it")


@dataclass(frozen=True)
class Broader:
    """An Allow that grants more than the recorded calls used."""

    sid: str
    detail: str


def broader_than_used(
    policy: dict[str, Any], used: list[tuple[str, str, dict[str, Any]]]
) -> list[Broader]:
    """Each Allow statement's action patterns that no recorded call used, and statements whose
    Resource is "*" although every call they allowed named a specific resource."""
    found = []
    for index, statement in enumerate(statements(policy)):
        if statement["Effect"] != "Allow" or "Action" not in statement:
            continue
        sid = _sid(statement, index)
        hits = [(a, r, c) for a, r, c in used if statement_applies(statement, a, r, c)]
        for pattern in _list(statement["Action"]):
            if not any(like(pattern, a, ignore_case=True) for a, _, _ in hits):
                found.append(Broader(sid, f"{pattern} is granted but never called"))
        if (
            "*" in _list(statement.get("Resource", []))
            and hits
            and all(r != "*" for _, r, _ in hits)
        ):
            found.append(Broader(sid, "Resource * although every call named a resource"))
    return found
