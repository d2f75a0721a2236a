#!/usr/bin/env python3
"""``make demo``: the whole toolkit on this machine, with no AWS account.

An AWS emulator (moto) stands in for AWS; the real ``qwen3vl-aws apply`` creates the deployment
in it with real Terraform; the instance's pieces then run here for real from the user-data apply
gave the instance (the bootstrap's render stage, the key sync against the secret apply filled,
nginx with the rendered gateway config, vLLM's CPU build serving a tiny random Qwen3-VL model);
``wait``, ``health``, ``key``, chat requests over TLS verified against the pinned certificate,
``status --timeline``, ``rotate-key`` and ``destroy`` follow. Everything it starts is stopped on
exit, Ctrl-C included.

With ``--replicas 2`` it shows the fleet's data plane instead (scripts/demo_fleet.py): two
replicas behind HAProxy standing in for the load balancer, under continuous load, through a
rolling key rotation, a drain with streams in flight, an engine stop and its return.

    .venv/bin/python scripts/demo.py [--state-dir .demo] [--replicas 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.markup import escape

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the rig package lives at the repository's top level

# The emulator has no DLAMI SSM parameter for apply to look up, so apply gets an AMI id.
from rig.emulator import MOTO_DLAMI, REGION, cli_environment, leftover_resources  # noqa: E402

NAME = "qwen3vl"
# qwen3vl-aws itself, plus the rig's `local` transport (the demo's instance is this machine).
CLI = [sys.executable, "-m", "rig.cli"]
CLI_TIMEOUT_S = 900.0
VLLM_TIMEOUT_S = 300.0
PROMPT = "Say hello to the demo in a few words."


class DemoError(RuntimeError):
    """A step failed; the message says which and where to look."""


@dataclass
class Outcome:
    """What the demo proved, for its summary and its test."""

    answer: str = ""
    image_answer: str = ""
    rotated_key_works: bool = False
    old_key_refused: bool = False
    resources_left: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Demo:
    """The demo's steps, sharing one console, one emulator and one state directory."""

    def __init__(self, state_dir: Path, console: Any) -> None:
        self.state_dir = state_dir
        self.root = state_dir / "instance-root"  # the "instance": QWEN3VL_ROOT of its scripts
        self.console = console
        self.outcome = Outcome()
        self.env: dict[str, str] = {}
        self.stage_times: dict[str, tuple[str, str]] = {}
        self._step = 0

    # -- presentation --------------------------------------------------------------------

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self._step += 1
        self.console.rule(f"[bold]Step {self._step}: {title}")
        started = time.monotonic()
        try:
            yield
        except Exception as exc:  # any failure becomes this step's failure, with its cause
            raise DemoError(f"step {self._step} ({title}): {exc}") from exc
        finally:
            self.outcome.seconds[title] = round(time.monotonic() - started, 1)
        self.console.print(f"[green]done[/] in {self.outcome.seconds[title]:.1f} s")

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{escape(text)}[/]")

    def cli(self, *args: str, capture: bool = False) -> str:
        """Run the real ``qwen3vl-aws`` as a user would; its output is shown unless captured."""
        if not capture:
            self.console.print(f"[bold cyan]$ qwen3vl-aws {escape(shlex.join(args))}[/]")
        try:
            result = subprocess.run(
                [*CLI, *args],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture else None,
                text=True,
                timeout=CLI_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(f"`qwen3vl-aws {args[0]}` took over {CLI_TIMEOUT_S:.0f} s") from exc
        if result.returncode != 0:
            raise DemoError(f"`qwen3vl-aws {args[0]}` exited with {result.returncode}")
        return result.stdout or ""

    # -- the emulator --------------------------------------------------------------------

    def start_emulator(self, stack: ExitStack) -> None:
        from moto.server import ThreadedMotoServer

        from rig.moto_bucket_policy import conditional_bucket_statements_left_to_the_tests
        from rig.net import free_port

        # moto's per-request lines, and its tracebacks for the services it does not emulate.
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        # moto would apply the bundle bucket's TLS-only Deny to every object request (it ignores
        # the condition): leave conditional bucket statements out, as the tests' emulator does.
        stack.enter_context(conditional_bucket_statements_left_to_the_tests())
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        stack.callback(self._stop_emulator, server)
        url = f"http://127.0.0.1:{port}"
        self.env = self._cli_env(url)
        # This process reads the deployment record and talks to the emulator too (and must not
        # pick up the user's own AWS profile or credentials).
        os.environ.clear()
        os.environ.update(self.env)
        self.console.print(f"moto_server (AWS emulator) on {url}, region {REGION}")
        self.note(f"state of the CLI: QWEN3VL_AWS_HOME={self.env['QWEN3VL_AWS_HOME']}")

    def _stop_emulator(self, server: Any) -> None:
        server.stop()
        self.console.print("AWS emulator stopped")

    def _cli_env(self, url: str) -> dict[str, str]:
        from rig.net import free_port

        env = cli_environment(url, self.state_dir, self.state_dir / "home", REGION)
        env.update(
            # moto has no Price List API: a port nothing listens on makes apply use its catalog.
            AWS_ENDPOINT_URL_PRICING=f"http://127.0.0.1:{free_port()}",
        )
        return env

    def boto(self, service: str) -> Any:
        from qwen3vl_aws.aws.clients import ClientFactory

        return ClientFactory(region=REGION).client(service)

    # -- the instance's pieces -------------------------------------------------------------

    def install_instance(self, root: Path, instance_id: str, model_dir: Path) -> dict[str, str]:
        """The instance's user-data from the emulator, installed under ``root`` as cloud-init
        would; deploy.env gets the rig's local ports, address, users and model."""
        from rig.cloudinit import DEPLOY_ENV, cloud_config, install_write_files, read_env_file
        from rig.gateway import emulator_env, run_stage0, write_deploy_env
        from rig.net import free_port
        from rig.tools_env import link_tools

        attr = self.boto("ec2").describe_instance_attribute(
            InstanceId=instance_id, Attribute="userData"
        )
        user_data = base64.b64decode(attr["UserData"]["Value"])
        written = install_write_files(root, cloud_config(user_data))
        self.console.print(
            f"user-data of {instance_id}: {len(user_data)} bytes (gzip), "
            f"{len(written)} files installed under {root}"
        )
        # Stage 0, as the boot unit runs it first: the bundle from S3, verified by sha256.
        fetched = run_stage0(root, emulator_env(self.env["AWS_ENDPOINT_URL"], self.state_dir))
        if fetched.returncode != 0:
            raise DemoError(f"stage 0 failed:\n{fetched.stderr or fetched.stdout}")
        self.console.print(fetched.stdout.strip())
        link_tools(root)  # what the packages stage installs: /opt/qwen3vl/tools (hf, boto3)
        settings = read_env_file(root / DEPLOY_ENV)
        rig_settings = {
            "PUBLIC_HOST": "127.0.0.1",  # the certificate is made for the address clients use
            "PORT": str(free_port()),  # an unprivileged port instead of 443
            "ENGINE_PORT": str(free_port()),
            "GATEWAY_USER": "nobody",
            "ENGINE_USER": "nobody",
            "CACHE_DIR": str(root / "var/cache/qwen3vl"),
            "MODEL_DIR": str(model_dir),  # the tiny model instead of the 17 GB download
        }
        settings.update(rig_settings)
        write_deploy_env(root, settings)
        self.note("deploy.env from the user-data, with the rig's own " + ", ".join(rig_settings))
        return settings

    def run_instance_script(self, root: Path, name: str, *args: str) -> str:
        from rig.gateway import emulator_env, run_script

        env = emulator_env(self.env["AWS_ENDPOINT_URL"], self.state_dir)
        result = run_script(root, name, *args, env=env)
        if result.returncode != 0:
            raise DemoError(f"{name} {' '.join(args)} failed:\n{result.stderr or result.stdout}")
        return result.stdout + result.stderr

    @contextmanager
    def timed_stage(self, name: str) -> Iterator[None]:
        """Record the bootstrap stage ``name`` as the demo performs its equivalent."""
        started = now()
        yield
        self.stage_times[name] = (started, now())


def engine_args(root: Path) -> list[str]:
    """ENGINE_ARGS of the rendered engine.env, split as the engine launcher splits them."""
    script = f'source {shlex.quote(str(root / "etc/qwen3vl/engine.env"))}; printf %s "$ENGINE_ARGS"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.split()


def chat(http: Any, model: str, content: Any) -> str:
    response = http.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "max_tokens": 24,
            "messages": [{"role": "user", "content": content}],
        },
    )
    if response.status_code != 200:
        raise DemoError(f"chat answered HTTP {response.status_code}: {response.text[:300]}")
    return response.json()["choices"][0]["message"]["content"]


def curl_equivalent(endpoint: str, cert: Path, model: str) -> str:
    body = json.dumps(
        {"model": model, "max_tokens": 24, "messages": [{"role": "user", "content": PROMPT}]}
    )
    return (
        f"  export OPENAI_API_KEY=$(qwen3vl-aws key)\n"
        f"  curl --cacert {shlex.quote(str(cert))} {endpoint}/chat/completions \\\n"
        '    -H "Authorization: Bearer $OPENAI_API_KEY" -H "Content-Type: application/json" \\\n'
        f"    -d {shlex.quote(body)}"
    )


def start_instance(demo: Demo, stack: ExitStack, deployment: Any) -> Any:
    """The instance's pieces from its user-data: render, key sync, nginx, vLLM, ready check.

    Records each bootstrap stage's time as its equivalent here runs and writes the status file
    the bootstrap would. Returns the running :class:`rig.gateway.Gateway`.
    """
    from qwen3vl_aws.instance.status import STATUS_FILE

    from rig.gateway import Gateway
    from rig.standins import STAGES, finished_status
    from rig.vllm import VLLM_VENV, build_tiny_model, start_vllm, vllm_python

    console, root, model_dir = demo.console, demo.root, demo.state_dir / "tiny-qwen3-vl"
    with demo.timed_stage("packages"):
        vllm_python()  # the CPU build of vLLM stands in for the instance's CUDA build
        demo.note(f"engine: vLLM's CPU build from {VLLM_VENV} (no GPU here)")
    with demo.timed_stage("model"):
        build_tiny_model(model_dir)
        demo.note(
            f"model: a tiny randomly initialised Qwen3-VL in {model_dir} "
            "(the instance downloads Qwen3-VL-8B-Instruct)"
        )
    with demo.timed_stage("configure"):
        settings = demo.install_instance(root, deployment.instance_id, model_dir)
        demo.run_instance_script(root, "qwen3vl-bootstrap", "render")
        console.print("qwen3vl-bootstrap render: TLS certificate, engine.env, gateway")
        synced = demo.run_instance_script(root, "qwen3vl-keysync")
        console.print(f"qwen3vl-keysync against {deployment.secret_arn}:")
        console.print(synced.strip(), markup=False)
        gateway = Gateway(
            root=root,
            port=int(settings["PORT"]),
            engine_port=int(settings["ENGINE_PORT"]),
            served_model_name=settings["SERVED_MODEL_NAME"],
            aws_env={},
            secret_arn=deployment.secret_arn,
        )
        stack.callback(console.print, "nginx stopped")
        stack.callback(gateway.stop)  # also when start is interrupted
        gateway.start()
        console.print(f"nginx (the rendered gateway config) on {gateway.base_url}")
    with demo.timed_stage("engine"):
        args = engine_args(root)
        console.print("vLLM flags from engine.env:", shlex.join(args), markup=False, soft_wrap=True)
        stack.callback(console.print, "vLLM stopped")
        server = stack.enter_context(
            start_vllm(
                model_dir,
                gateway.engine_port,
                args,
                gateway.served_model_name,
                log_path=demo.state_dir / "vllm.log",
                timeout=VLLM_TIMEOUT_S,
            )
        )
        console.print(f"vLLM serving on {server.base_url} (log {server.log_path})")
    with demo.timed_stage("ready"):
        demo.run_instance_script(root, "qwen3vl-bootstrap", "ready")
        console.print("qwen3vl-bootstrap ready: the engine answered a chat on loopback")
    status = root / STATUS_FILE.lstrip("/")
    status.parent.mkdir(parents=True, exist_ok=True)
    times = [demo.stage_times[name] for name in STAGES]
    weights = {"source": "local-disk", "bytes": _dir_bytes(model_dir), "seconds": 0}
    engine_log = server.log_path.read_text(errors="replace")
    status.write_text(
        finished_status(
            times, model_bytes=_dir_bytes(model_dir), weights=weights, engine_log=engine_log
        )
    )
    return gateway


def point_at_rig(demo: Demo, gateway: Any) -> Any:
    """Record the rig as the deployment's instance (endpoint, local transport), then ``wait``."""
    from qwen3vl_aws.deployment import load_deployment

    from rig.standins import install_standins

    standins = install_standins(demo.state_dir / "stand-ins")
    deployment = load_deployment(NAME)
    deployment.endpoint = f"{gateway.base_url}/v1"
    deployment.port = gateway.port
    deployment.transport = "local"
    deployment.extra.update(local_root=str(demo.root), local_path=str(standins))
    deployment.save()
    demo.note(
        f"transport 'local': commands for the instance run here under {demo.root}; "
        f"`systemctl` and `nvidia-smi` are stand-ins from {standins} (no systemd or GPU "
        "here: they report the units by their ports and a recorded A10G)"
    )
    demo.cli("wait", "--timeout", "120")
    if deployment.cert_path.read_bytes() != gateway.cert_path.read_bytes():
        raise DemoError("wait pinned a certificate other than the instance's")
    demo.console.print(f"pinned certificate: {deployment.cert_path} (fetched over the channel)")
    return deployment


def first_chats(demo: Demo, deployment: Any) -> str:
    """A text and an image chat with the key ``qwen3vl-aws key`` reads; returns that key."""
    from qwen3vl_aws.instance.endpoint import pinned_client
    from qwen3vl_aws.instance.sample_image import tiny_png

    console, outcome, model = demo.console, demo.outcome, deployment.served_model_name
    key = demo.cli("key", capture=True).strip()
    with pinned_client(deployment, key) as http:
        outcome.answer = chat(http, model, PROMPT)
        console.print(f"[bold]user:[/] {PROMPT}")
        console.print(f"[bold]{model}:[/] {escape(repr(outcome.answer))}")
        demo.note("(a tiny random model: its words are gibberish, the path is the real one)")
        image = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
        outcome.image_answer = chat(
            http,
            model,
            [
                {"type": "image_url", "image_url": {"url": image}},
                {"type": "text", "text": "What is in this image?"},
            ],
        )
        console.print(f"[bold]image chat:[/] {escape(repr(outcome.image_answer))}")
    console.print("The same request with curl (key read with `qwen3vl-aws key`):")
    curl = curl_equivalent(deployment.endpoint, deployment.cert_path, model)
    console.print(curl, markup=False, soft_wrap=True)  # unwrapped: it is pasted
    return key


def rotate(demo: Demo, deployment: Any, old_key: str) -> None:
    """``rotate-key --grace 0``: the new key answers, the old one gets 401."""
    from qwen3vl_aws.instance.endpoint import pinned_client

    demo.cli("rotate-key", "--grace", "0")
    new_key = demo.cli("key", capture=True).strip()
    with pinned_client(deployment, new_key) as http:
        chat(http, deployment.served_model_name, PROMPT)
    demo.outcome.rotated_key_works = True
    with pinned_client(deployment, old_key) as http:
        refused = http.get("/v1/models")
    demo.outcome.old_key_refused = refused.status_code == 401
    if not demo.outcome.old_key_refused:
        raise DemoError(f"the old key still gets HTTP {refused.status_code}")
    demo.console.print("new key: chat answered; old key: HTTP 401")


def run_demo(state_dir: Path, console: Any) -> Outcome:
    """Every step in order; raises DemoError naming the step that failed. Always cleans up."""
    from qwen3vl_aws.deployment import load_deployment

    demo = Demo(state_dir, console)
    with ExitStack() as stack:
        with demo.step("start the AWS emulator"):
            demo.start_emulator(stack)
        with demo.step("qwen3vl-aws apply (real Terraform against the emulator), then status"):
            demo.cli(
                "apply", "--yes", "--no-wait", "--allow", "127.0.0.1/32",
                "--ami-id", MOTO_DLAMI,
            )  # fmt: skip
            demo.cli("status")
            deployment = load_deployment(NAME)
            if not deployment.instance_id or not deployment.secret_arn:
                raise DemoError("apply recorded no instance or no secret")
        with demo.step("the instance's pieces, started here from its user-data"):
            gateway = start_instance(demo, stack, deployment)
        with demo.step("point the deployment at the local rig, then qwen3vl-aws wait"):
            deployment = point_at_rig(demo, gateway)
        with demo.step("qwen3vl-aws health"):
            demo.note("the units and gpu rows come from the stand-ins, everything else is real")
            demo.cli("health")
        with demo.step("qwen3vl-aws status --timeline"):
            demo.note(
                "where the start's seconds went, from the stages the bootstrap recorded "
                "(on AWS: launch, boot, packages, weights, engine load, compile, first answer)"
            )
            demo.cli("status", "--timeline")
        with demo.step("a first chat through the gateway (TLS verified against the pin)"):
            key = first_chats(demo, deployment)
        with demo.step("qwen3vl-aws rotate-key --grace 0, then a request with the new key"):
            rotate(demo, deployment, key)
        with demo.step("qwen3vl-aws destroy --yes"):
            demo.cli("destroy", "--yes")
            demo.outcome.resources_left = leftover_resources(demo.boto)
            console.print(f"left in the emulator: {demo.outcome.resources_left}")
            if any(demo.outcome.resources_left.values()):
                raise DemoError("destroy left resources behind")
    return demo.outcome


def run_fleet_demo(state_dir: Path, console: Any) -> Any:
    """The fleet demo's steps (scripts/demo_fleet.py) after the emulator; always cleans up."""
    from demo_fleet import run_fleet_demo as fleet_steps  # scripts/, beside this file

    demo = Demo(state_dir, console)
    with ExitStack() as stack:
        with demo.step("start the AWS emulator (Secrets Manager for the replicas' key)"):
            demo.start_emulator(stack)
        return fleet_steps(demo, stack)


def replicas_option(value: str) -> int:
    """``--replicas``: only 2 runs here (two CPU vLLM servers are what 2 cores hold)."""
    if value.strip() != "2":
        raise argparse.ArgumentTypeError(
            f"{value!r}: this demo runs exactly 2 replicas (each one a vLLM server on this "
            "machine's CPU); leave --replicas out for the single-instance demo"
        )
    return 2


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, run: Callable[..., Any] | None = None) -> int:
    import shutil

    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--state-dir", type=Path, default=REPO_ROOT / ".demo", help="scratch directory (emptied)"
    )
    parser.add_argument(
        "--json", type=Path, help="also write what the demo proved (answers, timings) here"
    )
    parser.add_argument(
        "--replicas",
        type=replicas_option,
        help="2: the fleet demo (two replicas behind a stand-in load balancer) instead",
    )
    args = parser.parse_args(argv)
    if run is None:
        run = run_fleet_demo if args.replicas else run_demo
    console = Console(highlight=False, emoji=False)
    state_dir = args.state_dir.resolve()
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    started = time.monotonic()
    try:
        outcome = run(state_dir, console)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted: everything the demo started is stopped.[/]")
        return 130
    except DemoError as exc:
        console.print(f"[bold red]Demo failed:[/] {escape(str(exc))}")
        console.print(f"Logs and state are in {state_dir}")
        return 1
    if args.json:
        args.json.write_text(json.dumps(asdict(outcome), indent=2) + "\n")
    console.rule("[bold green]Demo complete")
    console.print(f"Took {time.monotonic() - started:.0f} s; per step:")
    for title, seconds in outcome.seconds.items():
        console.print(f"  {seconds:6.1f} s  {title}")
    console.print("Everything it started is stopped; nothing ran outside this machine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
