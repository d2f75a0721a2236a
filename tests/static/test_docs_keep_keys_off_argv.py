"""The curl commands we show users never put the API key on curl's command line, where every
user of the machine can read it (ps, /proc/<pid>/cmdline): they read it from a header file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHOWN = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "examples").iterdir()),
]
# A header given inline (-H/--header "Authorization: ..."), or a key variable in a curl line.
INLINE_KEY = re.compile(r"""(-H|--header)\s*=?\s*["']?\s*Authorization\s*:""", re.I)
KEY_VARIABLE = re.compile(r"\$\{?(QWEN3VL_API_KEY|OPENAI_API_KEY|API_KEY|KEY)\b")


def curl_commands(text: str) -> list[str]:
    """Each curl command with its continuation lines joined."""
    joined = re.sub(r"\\\s*\n", " ", text)
    return [line for line in joined.splitlines() if re.search(r"\bcurl\s", line)]


def apply_next_steps() -> str:
    """What `apply` prints at the end, "First request" included."""
    from types import SimpleNamespace

    from qwen3vl_aws.cli import App
    from qwen3vl_aws.cli.apply import _show_next_steps
    from rich.console import Console

    app = App(out=Console(record=True, width=200, file=open("/dev/null", "w")))  # noqa: SIM115
    deployment = SimpleNamespace(
        name="qwen3vl", endpoint="https://203.0.113.7/v1", cert_path=Path("/c/cert.pem"),
        served_model_name="Qwen/Qwen3-VL-8B-Instruct",
    )  # fmt: skip
    _show_next_steps(app, deployment, waited=True)
    return app.out.export_text()


def shown_texts() -> dict[str, str]:
    texts = {str(p.relative_to(REPO)): p.read_text() for p in SHOWN}
    return {**texts, "apply's next steps": apply_next_steps()}


@pytest.mark.parametrize("name", [*(str(p.relative_to(REPO)) for p in SHOWN), "apply's next steps"])
def test_no_curl_command_carries_the_key_on_its_argv(name: str):
    for command in curl_commands(shown_texts()[name]):
        assert not INLINE_KEY.search(command), command
        assert not KEY_VARIABLE.search(command), command


def test_protected_routes_are_shown_with_a_header_file():
    texts = shown_texts().values()
    shown = [c for text in texts for c in curl_commands(text) if "/chat/completions" in c]
    assert shown, "no chat example with curl found"
    assert all('-H @"$HOME/.qwen3vl-auth"' in c for c in shown), shown
