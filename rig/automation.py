"""A small SSM Automation interpreter (schema 0.3), for the runbooks the module creates.

moto stores Automation documents but never runs them, so the tests run a runbook's steps here,
against the emulator's real resources, with the runbook's own role. Only the subset the module
uses is implemented, and anything else raises (a runbook that grows a new action cannot pass
untested):

- ``aws:executeAwsApi``: the boto3 call of ``Service``/``Api`` with the other inputs as its
  parameters; ``outputs`` read with ``Selector`` (JSONPath: ``$``, ``.key``, ``[n]``) and cast to
  ``Type`` (String, Integer, Boolean, StringList, MapList);
- ``aws:branch``: ``Choices`` with ``Variable`` and ``NumericEquals`` / ``StringEquals``, then
  ``Default``; with neither, the runbook ends when the step ``isEnd``;
- ``aws:waitForAwsResourceProperty``: the call repeated until ``PropertySelector`` gives one of
  ``DesiredValues``, or the step's ``timeoutSeconds`` (scaled by ``time_scale``) pass;
- ``{{ Parameter }}`` and ``{{ step.Output }}`` in any string input; a string that is exactly one
  reference takes the referenced value's type;
- ``nextStep``, ``isEnd``, ``onFailure`` (``Abort`` or ``step:<name>``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REFERENCE = re.compile(r"{{\s*([\w.]+)\s*}}")
TYPES: dict[str, Callable[[Any], Any]] = {
    "String": str,
    "Integer": int,
    "Boolean": bool,
    "StringList": lambda v: [str(x) for x in v],
    "MapList": list,
}


class StepFailed(Exception):
    """A step failed (an API error, or a wait that timed out)."""


@dataclass
class Execution:
    """What a run did: the steps in order, their outputs, and how it ended."""

    steps: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    status: str = "InProgress"  # Success or Failed
    failure: str = ""


def select(document: Any, selector: str) -> Any:
    """The value at ``selector`` (``$.a.b[0].c``); KeyError/IndexError when absent."""
    if not selector.startswith("$"):
        raise ValueError(f"selector {selector!r} does not start with $")
    value = document
    for key, index in re.findall(r"\.(\w+)|\[(\d+)\]", selector[1:]):
        value = value[key] if key else value[int(index)]
    return value


def _snake(api: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", api).lower()


class Runner:
    """Runs one runbook; ``client(service)`` is a boto3 client as the runbook's role."""

    def __init__(
        self,
        document: dict[str, Any],
        client: Callable[[str], Any],
        *,
        time_scale: float = 1.0,
        poll: float = 0.2,
    ) -> None:
        if document.get("schemaVersion") != "0.3":
            raise ValueError("only Automation runbooks (schemaVersion 0.3) run here")
        self._steps = document["mainSteps"]
        self._parameters = document.get("parameters", {})
        self._defaults = {name: spec.get("default") for name, spec in self._parameters.items()}
        self._client = client
        self._time_scale = time_scale
        self._poll = poll

    def run(self, parameters: dict[str, Any]) -> Execution:
        unknown = set(parameters) - set(self._defaults)
        if unknown:
            raise ValueError(f"parameters the runbook does not declare: {sorted(unknown)}")
        values = dict(self._defaults)
        for name, value in parameters.items():
            # StartAutomationExecution (and an EventBridge target) pass every value as a list.
            if self._parameters[name].get("type", "String") == "String" and isinstance(value, list):
                (value,) = value
            values[name] = value
        execution = Execution()
        index: int | None = 0
        by_name = {step["name"]: n for n, step in enumerate(self._steps)}
        while index is not None:
            step = self._steps[index]
            execution.steps.append(step["name"])
            try:
                target = self._step(step, values, execution)
            except StepFailed as exc:
                failure = step.get("onFailure", "Abort")
                if failure.startswith("step:"):
                    index = by_name[failure.removeprefix("step:")]
                    continue
                execution.status, execution.failure = "Failed", f"{step['name']}: {exc}"
                return execution
            if target is not None:
                index = by_name[target]
            elif step.get("isEnd"):
                index = None
            elif "nextStep" in step:
                index = by_name[step["nextStep"]]
            else:
                index = index + 1 if index + 1 < len(self._steps) else None
        execution.status = "Success"
        return execution

    def _step(
        self, step: dict[str, Any], values: dict[str, Any], execution: Execution
    ) -> str | None:
        """Run one step; return the step a branch chose (None: the usual order)."""
        inputs = _resolve(step["inputs"], values)
        action = step["action"]
        if action == "aws:executeAwsApi":
            response = self._call(inputs)
            for output in step.get("outputs", []):
                value = TYPES[output.get("Type", "String")](select(response, output["Selector"]))
                values[f"{step['name']}.{output['Name']}"] = value
                execution.outputs[f"{step['name']}.{output['Name']}"] = value
            return None
        if action == "aws:branch":
            for choice in inputs["Choices"]:
                if _chosen(choice):
                    return choice["NextStep"]
            return inputs.get("Default")
        if action == "aws:waitForAwsResourceProperty":
            call = {
                k: v for k, v in inputs.items() if k not in ("PropertySelector", "DesiredValues")
            }
            deadline = time.monotonic() + step.get("timeoutSeconds", 3600) * self._time_scale
            while True:
                try:
                    current = str(select(self._call(call), inputs["PropertySelector"]))
                except (KeyError, IndexError):
                    current = None
                if current in inputs["DesiredValues"]:
                    return None
                if time.monotonic() >= deadline:
                    raise StepFailed(f"timed out; the property is {current!r}")
                time.sleep(self._poll)
        raise NotImplementedError(f"{action} is not implemented by rig.automation")

    def _call(self, inputs: dict[str, Any]) -> dict[str, Any]:
        import botocore.exceptions

        params = {k: v for k, v in inputs.items() if k not in ("Service", "Api")}
        client = self._client(inputs["Service"])
        try:
            return getattr(client, _snake(inputs["Api"]))(**params)
        except botocore.exceptions.ClientError as exc:
            raise StepFailed(str(exc)) from exc


def _chosen(choice: dict[str, Any]) -> bool:
    variable = choice["Variable"]
    if "NumericEquals" in choice:
        return float(variable) == float(choice["NumericEquals"])
    if "StringEquals" in choice:
        return str(variable) == choice["StringEquals"]
    raise NotImplementedError(f"branch operator in {sorted(choice)} is not implemented")


def _resolve(value: Any, values: dict[str, Any]) -> Any:
    """``value`` with every ``{{ name }}`` replaced (a lone reference keeps its type)."""
    if isinstance(value, dict):
        return {k: _resolve(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, values) for v in value]
    if not isinstance(value, str):
        return value
    lone = REFERENCE.fullmatch(value.strip())
    if lone:
        return values[lone[1]]
    return REFERENCE.sub(lambda m: str(values[m[1]]), value)


def transform_input(input_paths: dict[str, str], template: str, event: dict[str, Any]) -> str:
    """An EventBridge input transformer applied to ``event``: each ``<name>`` in ``template``
    becomes the event's value at ``input_paths[name]`` (a JSONPath; ``detail-type`` style keys
    included). Strings are inserted as they are, as EventBridge does inside quotes."""

    def value(path: str) -> Any:
        node: Any = event
        for key in path.removeprefix("$.").split("."):
            node = node[key]
        return node

    return re.sub(r"<(\w+)>", lambda m: str(value(input_paths[m[1]])), template)
