"""One health check's outcome: shared by the checks in ``health`` and ``engine_checks``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check, as the table and ``--json`` show it."""

    name: str
    ok: bool
    detail: str
    latency_s: float | None = None
    hint: str | None = None  # what to do next, when not ok (or ok with a warning)
    attempted: bool = True
    warning: bool = False  # passed, but something needs a look (see hint); not a failure
    data: dict[str, Any] | None = None  # the figures behind the detail, for --json

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
