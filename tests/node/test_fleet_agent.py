"""The fleet replica's agent (userdata/bin/qwen3vl-fleet) run for real against the real vLLM server
and the AWS emulator: under load it publishes the running/waiting counts vLLM's /metrics shows,
and a drain waits for the streams in flight, then completes the replica's lifecycle action.

The agent runs with the Python it gets on the instance: the tools venv, which holds boto3 at the
version versions.env pins (checked below against the Python running it here).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import boto3
import httpx
import pytest
from qwen3vl_aws.paths import userdata_dir
from qwen3vl_aws.serving.versions import pinned_versions

from rig.fleet import streams
from rig.gateway import write_deploy_env
from rig.net import free_port
from rig.vllm import VllmServer

pytestmark = pytest.mark.slow

REGION = "us-east-1"
GROUP = "agenttest-fleet"
NAMESPACE = "qwen3vl-aws/agenttest"
HOOK = "drain"
INSTANCE_ID = "i-0123456789abcdef0"


def _agent_module():
    loader = importlib.machinery.SourceFileLoader(
        "qwen3vl_fleet", str(userdata_dir() / "bin" / "qwen3vl-fleet")
    )
    spec = importlib.util.spec_from_loader("qwen3vl_fleet", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


agent = _agent_module()


def test_the_agent_runs_on_the_pinned_boto3() -> None:
    assert boto3.__version__ == pinned_versions()["BOTO3_VERSION"]


def _root(tmp_path: Path, engine_port: int) -> Path:
    root = tmp_path / "instance"
    bin_dir = root / "opt/qwen3vl/bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "qwen3vl-fleet").write_bytes((userdata_dir() / "bin/qwen3vl-fleet").read_bytes())
    (bin_dir / "qwen3vl-fleet").chmod(0o755)
    (root / "var/lib/qwen3vl").mkdir(parents=True)
    write_deploy_env(
        root,
        {
            "REGION": REGION,
            "ENGINE_PORT": str(engine_port),
            "FLEET_GROUP": GROUP,
            "FLEET_DRAIN_HOOK": HOOK,
            "FLEET_METRIC_NAMESPACE": NAMESPACE,
        },
    )
    return root


def _run_agent(root: Path, aws_env: dict[str, str], *args: str, **env: str):
    """The agent as its unit runs it: the tools venv's Python (here: this one) on the script."""
    import subprocess

    full = {**aws_env, "PATH": "/usr/bin:/bin", **env, "QWEN3VL_ROOT": str(root)}
    return subprocess.run(
        [sys.executable, str(root / "opt/qwen3vl/bin/qwen3vl-fleet"), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def aws(aws_env: str) -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}


@contextmanager
def _busy(server: VllmServer, count: int, max_tokens: int) -> Iterator[list[dict]]:
    """``count`` streamed chat requests (rig.fleet.streams) that vLLM's /metrics has shown
    running. A batch that ends before a read saw it (a fast runner answers in seconds) is
    followed by another; the results of every batch are yielded, all joined on exit."""
    batches: list[tuple[list[dict], list[threading.Thread]]] = []
    try:
        deadline = time.monotonic() + 180
        while True:
            assert time.monotonic() < deadline, "vLLM's /metrics never showed the streams running"
            if not batches or not any(t.is_alive() for t in batches[-1][1]):
                model = server.served_model_name
                batches.append(streams(server.base_url, model, count, max_tokens))
            if _metrics(server)["RunningRequests"] > 0:
                break
            time.sleep(0.05)
        yield [result for batch, _threads in batches for result in batch]
    finally:
        for _results, threads in batches:
            for thread in threads:
                thread.join(timeout=300)


def _metrics(server: VllmServer) -> dict[str, float]:
    return agent.queue(httpx.get(f"{server.base_url}/metrics", timeout=10).text)


def test_queue_sums_vllm_and_sglang_gauges_over_label_sets() -> None:
    text = (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        'vllm:num_requests_running{engine="0",model_name="m"} 3.0\n'
        'vllm:num_requests_running{engine="1",model_name="m"} 2.0\n'
        'vllm:num_requests_waiting{engine="0",model_name="m"} 4.0\n'
        "vllm:num_requests_waiting_by_reason 9.0\n"
        "sglang:num_queue_reqs 1\n"
    )
    assert agent.queue(text) == {"RunningRequests": 5.0, "WaitingRequests": 5.0}


def test_publisher_puts_what_vllm_metrics_shows_under_load(
    vllm_server: VllmServer, aws: dict[str, str], tmp_path: Path
) -> None:
    root = _root(tmp_path, vllm_server.port)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    batches: list[tuple[list[dict], list[threading.Thread]]] = []
    try:
        # Publish between two identical reads of /metrics (the queue moves while requests run; a
        # publish framed by equal reads saw that value). A batch may finish while the agent
        # publishes (a fast runner answers 600 tokens in seconds): then send another.
        deadline = time.monotonic() + 180
        while True:
            assert time.monotonic() < deadline, "no publish was framed by equal reads under load"
            before = _metrics(vllm_server)
            if before["RunningRequests"] == 0:
                if not batches or not any(t.is_alive() for t in batches[-1][1]):
                    batches.append(
                        streams(vllm_server.base_url, vllm_server.served_model_name, 6, 600)
                    )
                time.sleep(0.2)
                continue
            start = time.time()
            published = _run_agent(root, aws, "publish")
            after = _metrics(vllm_server)
            assert published.returncode == 0, published.stderr
            if before == after:
                break
    finally:
        for _results, threads in batches:
            for thread in threads:
                thread.join(timeout=300)
    results = [r for batch, _threads in batches for r in batch]
    assert all(r["finished"] and r["error"] is None for r in results), results
    data = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": name.lower(),
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": name,
                        "Dimensions": [{"Name": "AutoScalingGroupName", "Value": GROUP}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
            for name in agent.GAUGES
        ],
        StartTime=start - 120,
        EndTime=time.time() + 60,
        ScanBy="TimestampDescending",
    )["MetricDataResults"]
    # The newest data point of each metric is the last publish (earlier attempts, not framed by
    # equal reads, may have left older ones).
    latest = {r["Id"]: r["Values"][0] for r in data}
    assert latest == {name.lower(): before[name] for name in agent.GAUGES}, (data, before)
    assert before["RunningRequests"] > 0


def test_wait_idle_returns_only_once_the_streams_in_flight_finished(
    vllm_server: VllmServer, aws: dict[str, str], tmp_path: Path
) -> None:
    root = _root(tmp_path, vllm_server.port)
    with _busy(vllm_server, 3, 400) as results:
        waited = _run_agent(root, aws, "wait-idle", "240", QWEN3VL_DRAIN_POLL_S="0.2")
        finished_when_idle = [r["finished"] for r in results]
    assert waited.returncode == 0, waited.stderr
    assert len(finished_when_idle) >= 3 and all(finished_when_idle)
    assert all(r["error"] is None for r in results), results


class _Imds(BaseHTTPRequestHandler):
    """The instance metadata service as IMDSv2 answers it: a token first, then values."""

    values: ClassVar[dict[str, str]] = {}

    def do_PUT(self) -> None:
        self._answer("token-123" if self.path == "/latest/api/token" else None)

    def do_GET(self) -> None:
        authorized = self.headers.get("X-aws-ec2-metadata-token") == "token-123"
        key = self.path.removeprefix("/latest/meta-data/")
        self._answer(self.values.get(key) if authorized else None)

    def _answer(self, value: str | None) -> None:
        self.send_response(200 if value is not None else 401)
        self.end_headers()
        if value is not None:
            self.wfile.write(value.encode())

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _imds(values: dict[str, str]) -> Iterator[str]:
    _Imds.values = values
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Imds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _recorded_lifecycle_actions() -> Iterator[list[dict]]:
    """moto has no CompleteLifecycleAction (nor RecordLifecycleActionHeartbeat): answer them as
    AWS does (an empty result) and record the parameters each call carried."""
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import EmptyResult

    calls: list[dict] = []

    def recorder(action: str):
        def answer(self: AutoScalingResponse) -> EmptyResult:
            calls.append({"Action": action, **self._get_params()})
            return EmptyResult()

        return answer

    names = {
        "complete_lifecycle_action": "CompleteLifecycleAction",
        "record_lifecycle_action_heartbeat": "RecordLifecycleActionHeartbeat",
    }
    for method, action in names.items():
        setattr(AutoScalingResponse, method, recorder(action))
    try:
        yield calls
    finally:
        for method in names:
            delattr(AutoScalingResponse, method)


def test_watch_drains_a_terminating_replica_and_completes_its_own_action(
    vllm_server: VllmServer, aws: dict[str, str], tmp_path: Path
) -> None:
    """Auto Scaling holds the instance in Terminating:Wait; the agent sees it in IMDS, waits for
    the streams, stops the units (systemctl, recorded here) and completes the action."""
    ec2 = boto3.client("ec2", region_name=REGION)
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    template = ec2.create_launch_template(
        LaunchTemplateName="agenttest",
        LaunchTemplateData={"ImageId": "ami-dca37ea5", "InstanceType": "g5.xlarge"},
    )["LaunchTemplate"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
    )
    autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=GROUP,
        LifecycleHookName=HOOK,
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
    )
    (instance,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ][0]["Instances"]
    root = _root(tmp_path, vllm_server.port)
    calls = tmp_path / "systemctl.calls"
    stub_bin = tmp_path / "bin"
    stub_bin.mkdir()
    (stub_bin / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (stub_bin / "systemctl").chmod(0o755)
    metadata = {
        "instance-id": instance["InstanceId"],
        "autoscaling/target-lifecycle-state": "InService",
    }
    with _imds(metadata) as url, _recorded_lifecycle_actions() as actions:
        quiet = _run_agent(root, aws, "watch", QWEN3VL_IMDS=url)
        assert quiet.returncode == 0 and not calls.exists(), quiet.stderr
        metadata["autoscaling/target-lifecycle-state"] = "Terminated"
        with _busy(vllm_server, 2, 300) as results:
            drained = _run_agent(
                root, aws, "watch", QWEN3VL_IMDS=url, QWEN3VL_DRAIN_POLL_S="0.2",
                PATH=f"{stub_bin}:/usr/bin:/bin",
            )  # fmt: skip
            finished_before_stop = [r["finished"] for r in results]
    assert drained.returncode == 0, drained.stderr
    assert len(finished_before_stop) >= 2 and all(finished_before_stop)
    assert calls.read_text().splitlines() == [
        "stop qwen3vl-gateway.service",
        "stop qwen3vl-engine.service",
    ]
    assert actions == [
        {
            "Action": "CompleteLifecycleAction",
            "AutoScalingGroupName": GROUP,
            "LifecycleHookName": HOOK,
            "InstanceId": instance["InstanceId"],
            "LifecycleActionResult": "CONTINUE",
        }
    ]
    assert f"completed the lifecycle action of {instance['InstanceId']} in {GROUP}" in (
        drained.stdout
    )
    assert (root / "var/lib/qwen3vl/drained").read_text().strip() == instance["InstanceId"]
