"""Judge what the recording server saw: refused calls, calls out of the policies' scope, and
grants broader than the calls."""

from __future__ import annotations

from typing import Any

from rig.iam.policy import Broader, broader_than_used, evaluate

Entry = dict[str, Any]


def refused(entries: list[Entry]) -> list[str]:
    """Actions moto refused under enforcement (checked against Resource "*" only)."""
    return [e["action"] for e in entries if e.get("enforced") and not e["allowed"]]


def unmapped(entries: list[Entry]) -> list[str]:
    """Actions rig.iam.arns has no resource mapping for (so their scope went unchecked)."""
    return sorted({e["action"] for e in entries if not e["mapped"]})


def used(entries: list[Entry]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every distinct (action, resource, context) pair the calls were authorized against."""
    seen: dict[tuple[str, str, str], tuple[str, str, dict[str, Any]]] = {}
    for entry in entries:
        for pair in entry["pairs"]:
            key = (pair["action"], pair["resource"], repr(sorted(pair["context"].items())))
            seen.setdefault(key, (pair["action"], pair["resource"], pair["context"]))
    return list(seen.values())


def out_of_scope(entries: list[Entry], documents: list[dict[str, Any]]) -> list[str]:
    """Each recorded pair the real policy documents do not allow: "action on resource: why"."""
    problems = []
    for action, resource, context in used(entries):
        decision = evaluate(documents, action, resource, context)
        if not decision.allowed:
            problems.append(f"{action} on {resource}: {decision.reason}")
    return problems


def broader(entries: list[Entry], document: dict[str, Any]) -> list[Broader]:
    return broader_than_used(document, used(entries))
