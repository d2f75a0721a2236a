"""A stand-in for the system commands the bootstrap calls (apt-get, systemctl, uv, ...).

``hf`` and ``python`` exist only inside a virtual environment after ``uv pip install`` put
something there, as on the instance: a script that calls them before the bootstrap installed
them (or a tool the bootstrap never installs, like the AWS CLI) finds nothing.

Every call is appended to ``$STUB_LOG`` as one JSON line (``{"argv": [...]}``); what the command
"did" is remembered as marker files in ``$STUB_STATE``, so a second run sees the first one's
effects (packages installed, units enabled and active) the way it would on a real machine.
``$STUB_FAIL`` names one command that fails instead; ``$STUB_FAIL_ARG`` fails any call with an
argument containing it. Each ``curl`` call also records the ready stage's state at that moment
(from the bootstrap's status.json), so tests see what was sent before "ready".
Usage: ``command_stub.py NAME ARG...`` (a tiny wrapper named NAME on PATH execs this).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SECRET_VERSION = "11111111-2222-3333-4444-555555555555"
SECRET_KEY = "sk-qwen-" + "k" * 43


def mark(name: str) -> None:
    (Path(os.environ["STUB_STATE"]) / name).touch()


def marked(name: str) -> bool:
    return (Path(os.environ["STUB_STATE"]) / name).exists()


def option_value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


def apt_get(argv: list[str]) -> int:
    words = [a for a in argv if not a.startswith("-") and "::" not in a]
    if words[0] == "install":
        for pkg in words[1:]:
            mark(f"pkg-{pkg}")
    return 0


def dpkg_query(argv: list[str]) -> int:
    if marked(f"pkg-{argv[-1]}"):
        print("install ok installed", end="")
        return 0
    return 1


def systemctl(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    verb, units = args[0], args[1:]
    checks = {"is-enabled": "enabled", "is-active": "active"}
    if verb in checks:
        return 0 if all(marked(f"{checks[verb]}-{u}") for u in units) else 1
    if verb == "is-failed":
        return 1
    for unit in units:
        if verb == "enable":
            mark(f"enabled-{unit}")
        if verb in ("start", "restart"):
            mark(f"active-{unit}")
    return 0


def uv(argv: list[str]) -> int:
    if argv[0] == "--version":
        print(f"uv {os.environ['STUB_UV_VERSION']}")
    elif argv[0] == "venv":
        Path(argv[-1], "bin").mkdir(parents=True, exist_ok=True)
    elif argv[:2] == ["pip", "install"]:
        bin_dir = Path(option_value(argv, "--python")).parent
        for name in VENV_COMMANDS:
            wrapper = bin_dir / name
            if wrapper.is_symlink():  # a real interpreter a test put there: never write through it
                continue
            wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {__file__} {name} "$@"\n')
            wrapper.chmod(0o755)
    return 0


def hf(argv: list[str]) -> int:
    target = Path(option_value(argv, "--local-dir"))
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.safetensors").write_bytes(b"\0" * 4096)
    return 0


def python(argv: list[str]) -> int:
    if argv and argv[0].endswith("/qwen3vl-secret"):  # REGION ARN stages | value VERSION
        denied = os.environ.get("STUB_DENIED")
        if denied:  # what qwen3vl-secret says when the instance role is refused
            action = "DescribeSecret" if argv[3] == "stages" else "GetSecretValue"
            print(f"qwen3vl-keysync: access denied: {denied.format(action)}", file=sys.stderr)
            return 3
        print(f"{SECRET_VERSION} -" if argv[3] == "stages" else SECRET_KEY)
    else:
        print(4096)  # the model's total size, as huggingface_hub would report it
    return 0


HANDLERS = {
    "apt-get": apt_get,
    "dpkg-query": dpkg_query,
    "systemctl": systemctl,
    "uv": uv,
    "hf": hf,
    "python": python,
}
#: Commands that exist only in a virtual environment the bootstrap installed something into.
VENV_COMMANDS = ("hf", "python")
#: Commands that only need to be recorded and succeed.
RECORDED_ONLY = ("curl", "nginx", "useradd", "mkfs.ext4", "mount")
NAMES = (*(n for n in HANDLERS if n not in VENV_COMMANDS), *RECORDED_ONLY)


def ready_stage_state() -> str | None:
    path = Path(os.environ.get("QWEN3VL_ROOT", "/"), "var/lib/qwen3vl/status.json")
    if not path.is_file():
        return None
    stages = json.loads(path.read_text())["stages"]
    return next(s["state"] for s in stages if s["name"] == "ready")


def main() -> int:
    name, argv = sys.argv[1], sys.argv[2:]
    entry: dict[str, object] = {"argv": [name, *argv]}
    if name == "curl":
        entry["ready_stage"] = ready_stage_state()
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")
    fail_arg = os.environ.get("STUB_FAIL_ARG")
    if name == os.environ.get("STUB_FAIL") or (fail_arg and any(fail_arg in a for a in argv)):
        print(f"{name}: simulated failure", file=sys.stderr)
        return 1
    handler = HANDLERS.get(name)
    return handler(argv) if handler else 0


if __name__ == "__main__":
    sys.exit(main())
