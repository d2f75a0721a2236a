"""A rich progress display fed by Terraform's ``-json`` events (instead of a wall of text).

One bar per Terraform run, advancing as resources finish, with the resources in flight named;
errors and non-routine warnings are printed above the bar as they come.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

# Warnings every targeted apply produces; they are part of the plan, not news for the user.
ROUTINE_WARNINGS = ("Resource targeting is in effect", "Applied changes may be incomplete")
COUNTED_ACTIONS = ("create", "update", "delete", "replace")


class TerraformProgress:
    """An event sink: ``with TerraformProgress(console, "Applying") as sink: tf.apply(sink)``."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.in_flight: list[str] = []
        self.errors: list[str] = []
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[title]}[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("planning…", total=None, title=title)

    def __enter__(self) -> TerraformProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._progress.tasks[0]
        if exc_type is None:
            total = task.total or task.completed
            self._progress.update(self._task, total=total, completed=total, description="done")
        else:
            self._progress.update(self._task, description="[red]failed[/red]")
        self._progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        hook = event.get("hook") or {}
        address = (hook.get("resource") or {}).get("addr", "")
        if kind == "planned_change" and event["change"].get("action") in COUNTED_ACTIONS:
            total = (self._progress.tasks[0].total or 0) + 1
            self._progress.update(self._task, total=total)
        elif kind == "apply_start" and not address.startswith("data."):
            self.in_flight.append(address)
            self._describe()
        elif kind in ("apply_complete", "apply_errored") and not address.startswith("data."):
            if address in self.in_flight:
                self.in_flight.remove(address)
            self._progress.advance(self._task)
            if kind == "apply_errored":
                self.console.print(f"[red]✗[/red] {address}")
            self._describe()
        elif kind == "diagnostic":
            self._diagnostic(event.get("diagnostic") or {})

    def _describe(self) -> None:
        shown = ", ".join(self.in_flight[:3]) + (" …" if len(self.in_flight) > 3 else "")
        self._progress.update(self._task, description=shown or "…")

    def _diagnostic(self, diag: dict[str, Any]) -> None:
        summary = diag.get("summary", "")
        if diag.get("severity") == "error":
            self.errors.append(summary)
            self.console.print(f"[red]Error:[/red] {summary}")
        elif summary not in ROUTINE_WARNINGS:
            self.console.print(f"[yellow]Warning:[/yellow] {summary}")
