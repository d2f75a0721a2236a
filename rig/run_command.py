"""SSM Run Command by instance ids, for the rig's replicas: the product's SSM code runs unchanged.

moto accepts SendCommand but never runs it. This stand-in for the ``ssm`` client runs the
command for real, on the rig's replicas (this machine, each under its scratch root), the way Run
Command does: the request is checked against SSM's own API model; the instances run in the
order given, ``MaxConcurrency`` at a time; once more than ``MaxErrors`` have failed no further
instance is started (its invocation is never created); each invocation goes Pending, InProgress,
then Success or Failed with its exit code and output; the product waits with botocore's own
``command_executed`` waiter, built from the service's waiter model. Percentages in
MaxConcurrency/MaxErrors are not implemented (the product sends counts).
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.session
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from botocore.waiter import WaiterModel, create_waiter_with_client


class LocalRunCommand:
    """The ``ssm`` client's Run Command calls; ``replicas`` maps an instance id to the
    environment its scripts run with (QWEN3VL_ROOT, AWS_* of the emulator)."""

    def __init__(self, replicas: dict[str, dict[str, str]]) -> None:
        self._replicas = replicas
        session = botocore.session.get_session()
        self._model = session.get_service_model("ssm")
        self._waiters = WaiterModel(session.get_component("data_loader").load_service_model(
            "ssm", "waiters-2"))  # fmt: skip
        # The waiter's docstring machinery reads the client's meta (events, service model).
        self.meta = boto3.client(
            "ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        ).meta
        self._lock = threading.Lock()
        self._invocations: dict[tuple[str, str], dict[str, Any]] = {}
        self._running = 0
        self.peak_running = 0  # the most invocations that ever ran at once
        self.requests: list[dict[str, Any]] = []  # every SendCommand request, as sent

    def send_command(self, **request: Any) -> dict[str, Any]:
        validate_parameters(request, self._model.operation_model("SendCommand").input_shape)
        unknown = [i for i in request["InstanceIds"] if i not in self._replicas]
        if unknown:
            raise ClientError(
                {"Error": {"Code": "InvalidInstanceId", "Message": f"unknown {unknown}"}},
                "SendCommand",
            )
        command_id = str(uuid.uuid4())
        self.requests.append(request)
        for instance in request["InstanceIds"]:
            self._set(command_id, instance, "Pending")
        threading.Thread(target=self._run, args=(command_id, request), daemon=True).start()
        return {"Command": {"CommandId": command_id, "InstanceIds": request["InstanceIds"]}}

    def get_command_invocation(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            found = self._invocations.get((request["CommandId"], request["InstanceId"]))
            if found is None or found.get("NotSent"):
                raise ClientError(
                    {"Error": {"Code": "InvocationDoesNotExist", "Message": "no invocation"}},
                    "GetCommandInvocation",
                )
            return dict(found)

    def get_waiter(self, name: str) -> Any:
        return create_waiter_with_client(
            "".join(part.title() for part in name.split("_")), self._waiters, self
        )

    def _set(self, command_id: str, instance: str, status: str, **fields: Any) -> None:
        with self._lock:
            self._invocations[(command_id, instance)] = {
                "CommandId": command_id, "InstanceId": instance, "Status": status,
                "StatusDetails": status, **fields,
            }  # fmt: skip

    def _run(self, command_id: str, request: dict[str, Any]) -> None:
        concurrency = int(request.get("MaxConcurrency", "50"))
        max_errors = int(request.get("MaxErrors", "0"))
        script = request["Parameters"]["commands"][0]
        timeout = float(request["Parameters"].get("executionTimeout", ["3600"])[0])
        errors = 0

        def one(instance: str) -> None:
            nonlocal errors
            with self._lock:
                if errors > max_errors:
                    self._invocations[(command_id, instance)]["NotSent"] = True
                    return
                self._running += 1
                self.peak_running = max(self.peak_running, self._running)
            self._set(command_id, instance, "InProgress")
            try:  # AWS-RunShellScript hands the commands to sh
                proc = subprocess.run(
                    ["sh", "-c", script], env=self._replicas[instance], capture_output=True,
                    text=True, timeout=timeout, check=False,
                )  # fmt: skip
                code, out, err = proc.returncode, proc.stdout, proc.stderr
            except subprocess.TimeoutExpired:
                code, out, err = -1, "", "execution timed out"
            with self._lock:
                self._running -= 1
                errors += code != 0
            status = "Success" if code == 0 else "Failed"
            self._set(command_id, instance, status, ResponseCode=code,
                      StandardOutputContent=out, StandardErrorContent=err)  # fmt: skip

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, request["InstanceIds"]))
