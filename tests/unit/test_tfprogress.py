"""The Terraform progress display: counts, resources in flight, errors shown, routine noise not."""

from __future__ import annotations

import io

import pytest
from qwen3vl_aws.cli.tfprogress import TerraformProgress
from rich.console import Console


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, force_terminal=False), out


def _hook(kind: str, address: str) -> dict:
    return {"type": kind, "hook": {"resource": {"addr": address}}}


def test_counts_changes_and_reports_errors() -> None:
    console, out = _console()
    with TerraformProgress(console, "Applying") as sink:
        for address in ("aws_eip.this", "aws_instance.this"):
            sink(
                {
                    "type": "planned_change",
                    "change": {"action": "create", "resource": {"addr": address}},
                }
            )
        sink({"type": "planned_change", "change": {"action": "read", "resource": {}}})
        sink(_hook("apply_start", "data.aws_vpc.default"))
        sink(_hook("apply_start", "aws_eip.this"))
        assert sink.in_flight == ["aws_eip.this"]
        sink(_hook("apply_complete", "aws_eip.this"))
        sink(_hook("apply_start", "aws_instance.this"))
        sink(_hook("apply_errored", "aws_instance.this"))
        sink(
            {
                "type": "diagnostic",
                "diagnostic": {"severity": "warning", "summary": "Resource targeting is in effect"},
            }
        )
        sink({"type": "diagnostic", "diagnostic": {"severity": "error", "summary": "no AMI"}})
        task = sink._progress.tasks[0]
        assert (task.completed, task.total) == (2, 2)
    text = out.getvalue()
    assert "✗ aws_instance.this" in text
    assert "Error: no AMI" in text
    assert "targeting" not in text
    assert sink.errors == ["no AMI"]


def test_failure_marks_the_bar_failed() -> None:
    console, out = _console()
    with pytest.raises(RuntimeError), TerraformProgress(console, "Destroying"):
        raise RuntimeError("terraform died")
    assert "failed" in out.getvalue()
