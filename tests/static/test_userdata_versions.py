"""userdata/versions.env: the one source of pinned versions, read the same by bash and Python."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from qwen3vl_aws.errors import Qwen3vlError, UsageError
from qwen3vl_aws.paths import userdata_dir
from qwen3vl_aws.serving.versions import (
    draft_revision,
    parse_versions,
    pinned_versions,
    revision_key,
)


def test_pins_the_contract_versions():
    versions = pinned_versions()
    assert versions["VLLM_VERSION"] == "0.32.0"
    assert {"SGLANG_VERSION", "UV_VERSION", "HF_HUB_VERSION", "PYTHON_VERSION"} <= set(versions)


def test_bash_sources_the_same_values():
    path = userdata_dir() / "versions.env"
    names = sorted(pinned_versions())
    script = f"set -eu; source {path}; " + " ".join(f'echo "${{{n}}}";' for n in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert dict(zip(names, out.stdout.split(), strict=True)) == pinned_versions()


def test_callers_get_a_copy():
    pinned_versions()["VLLM_VERSION"] = "changed"
    assert pinned_versions()["VLLM_VERSION"] == "0.32.0"


def test_comments_and_blank_lines_are_skipped():
    assert parse_versions("# pins\n\nA_VERSION=1.2.3+cpu\n") == {"A_VERSION": "1.2.3+cpu"}


@pytest.mark.parametrize("line", ["VLLM_VERSION = 0.32.0", "export X=1", "X=$(reboot)", "x=1"])
def test_anything_else_is_an_error_naming_the_line(line: str):
    with pytest.raises(Qwen3vlError, match=r"versions.env:2: expected KEY=version"):
        parse_versions(f"# pins\n{line}\n")


def test_every_known_checkpoint_has_a_pinned_commit():
    """The bootstrap downloads MODEL_REVISION_<NAME>: a full 40-hex commit for each model id."""
    from qwen3vl_aws.serving.model_profile import MODEL_IDS

    versions = pinned_versions()
    for model_id in MODEL_IDS:
        key = revision_key(model_id)
        assert re.fullmatch(r"[0-9a-f]{40}", versions.get(key, "")), (model_id, key)


def test_every_pinned_revision_is_a_full_commit():
    """Whatever versions.env pins (drafts included) is what the bootstrap hands hf --revision."""
    for key, value in pinned_versions().items():
        if key.startswith("MODEL_REVISION_"):
            assert re.fullmatch(r"[0-9a-f]{40}", value), key


def test_a_draft_is_downloaded_at_the_given_revision_else_the_pinned_one(tmp_path: Path):
    pins = tmp_path / "versions.env"
    pins.write_text(f"MODEL_REVISION_SOME_DRAFT_1_0={'a' * 40}\n")
    assert revision_key("owner/Some-Draft-1.0") == "MODEL_REVISION_SOME_DRAFT_1_0"
    assert draft_revision("owner/Some-Draft-1.0", None, pins) == "a" * 40
    assert draft_revision("owner/Some-Draft-1.0", "b" * 40, pins) == "b" * 40
    assert draft_revision(None, None, pins) == ""


@pytest.mark.parametrize(
    ("draft", "given", "message"),
    [
        ("owner/Other-Draft", None, "pins none (MODEL_REVISION_OTHER_DRAFT)"),
        ("owner/Some-Draft-1.0", "main", "is not a 40-character commit hash"),
        ("owner/Some-Draft-1.0", "A" * 40, "is not a 40-character commit hash"),
        (None, "a" * 40, "add --speculative eagle3"),
    ],
)
def test_a_draft_without_a_usable_pin_is_refused(tmp_path: Path, draft, given, message):
    pins = tmp_path / "versions.env"
    pins.write_text(f"MODEL_REVISION_SOME_DRAFT_1_0={'a' * 40}\n")
    with pytest.raises(UsageError, match=re.escape(message)):
        draft_revision(draft, given, pins)
