"""The instance's gateway run for real on this machine, in a scratch root.

`install_instance` lays the userdata files out under a root the way cloud-init's write_files does
on the instance (plus a deploy.env); `Gateway` then runs the real bootstrap render stage there
(TLS certificate, gateway config, units), the real key sync script against the AWS emulator, and
real nginx with the rendered config in front of an engine on loopback. Every instance script
honours QWEN3VL_ROOT, so the paths baked into the rendered files point into the scratch root.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from qwen3vl_aws.contract import instance_contract
from qwen3vl_aws.keys.keygen import generate_key
from qwen3vl_aws.paths import userdata_dir

from .net import free_port
from .procs import held_signals
from .tools_env import BASE_PATH, link_tools

SECRET_NAME = "qwen3vl/gateway-rig"
REGION = "us-east-1"
START_TIMEOUT_S = 15.0


class GatewayRigError(RuntimeError):
    """A prerequisite is missing or a piece of the gateway did not start."""


def require(command: str, how: str) -> str:
    """The path of ``command`` on PATH (venv bin first), or fail saying how to install it."""
    path = shutil.which(command, path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if path is None:
        raise GatewayRigError(f"`{command}` is missing: {how}")
    return path


@contextmanager
def instance_roots() -> Iterator[Callable[[str], Path]]:
    """Make scratch instance roots (``make(name)``), all removed on exit.

    They live under a directory of mode 0755 outside pytest's and tempfile's owner-only (0700)
    directories, so the gateway's unprivileged nginx workers can reach their temp dirs under
    var/lib as they can on the instance (where / and /var/lib/qwen3vl are 0755). Under an
    owner-only directory every request body larger than client_body_buffer_size got a 500.
    """
    base = Path(tempfile.mkdtemp(prefix="qwen3vl-instances-"))
    base.chmod(0o755)

    def make(name: str) -> Path:
        root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
        root.chmod(0o755)
        return root

    try:
        yield make
    finally:
        shutil.rmtree(base, ignore_errors=True)


def install_instance(root: Path, settings: Mapping[str, str]) -> None:
    """Install the instance's scripts and templates under ``root`` and write its deploy.env."""
    source = userdata_dir()
    contract = instance_contract()
    # What cloud-init's write_files installs; the fleet agent too (its units are rendered only
    # when deploy.env names a fleet group).
    for target, spec in {**contract.files, **contract.fleet_files}.items():
        dest = root / target.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / spec.source, dest)
        dest.chmod(int(spec.mode, 8))
    write_deploy_env(root, settings)


def install_stage0(root: Path, settings: Mapping[str, str]) -> None:
    """Stage 0 as the user data installs it, with ``settings`` as its deploy.env."""
    source = userdata_dir()
    for target, spec in instance_contract().stage0.items():
        dest = root / target.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / spec.source, dest)
        dest.chmod(int(spec.mode, 8))
    write_deploy_env(root, settings)


def run_stage0(root: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run stage 0 (installed under ``root``) as the boot unit's ExecStartPre does, its boto3
    venv being the rig's tools environment (the same pin); ``env``: endpoint and credentials."""
    link_tools(root, "stage0")
    (fetch,) = [p for p in instance_contract().stage0 if p.endswith("-fetch-bundle")]
    return subprocess.run(
        [str(root / fetch.lstrip("/"))],
        env=instance_env(root, env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_deploy_env(root: Path, settings: Mapping[str, str]) -> None:
    """deploy.env as the userdata module renders it: sorted KEY='value' lines."""
    env = root / "etc" / "qwen3vl" / "deploy.env"
    env.parent.mkdir(parents=True, exist_ok=True)
    env.write_text("".join(f"{k}='{settings[k]}'\n" for k in sorted(settings)))


def instance_env(root: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the instance's scripts run with in the rig: the base OS's PATH only (what
    the bootstrap installs lives under the root: /opt/qwen3vl/tools), the scratch root, and
    ``env`` (the emulator's endpoint and the caller's credentials)."""
    base = {"HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", "PATH": BASE_PATH}
    return {**base, **(env or {}), "QWEN3VL_ROOT": str(root)}


def run_script(root: Path, name: str, *args: str, env: Mapping[str, str] | None = None):
    """Run /opt/qwen3vl/bin/<name> from the scratch root; return the CompletedProcess."""
    return subprocess.run(
        [str(root / "opt" / "qwen3vl" / "bin" / name), *args],
        env=instance_env(root, env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise GatewayRigError(f"nginx exited with {process.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise GatewayRigError(f"nginx did not listen on {port} within {START_TIMEOUT_S:.0f} s")


@dataclass
class Gateway:
    """A running gateway: real nginx, the rendered config, the instance's certificate."""

    root: Path
    port: int
    engine_port: int
    served_model_name: str
    aws_env: dict[str, str]
    secret_arn: str = ""
    current_key: str = field(default="", repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def cert_path(self) -> Path:
        """The certificate clients pin (what the CLI fetches from the instance)."""
        return self.root / "etc" / "qwen3vl" / "tls" / "cert.pem"

    @property
    def key_file(self) -> Path:
        return self.root / "etc" / "qwen3vl" / "keys.conf"

    @property
    def conf_path(self) -> Path:
        return self.root / "etc" / "qwen3vl" / "gateway.conf"

    @property
    def error_log(self) -> Path:
        return self.root / "var" / "log" / "qwen3vl" / "gateway-error.log"

    def accepting_workers(self) -> set[str]:
        """The pids of nginx's workers that accept connections; one stopping after a reload is
        renamed "nginx: worker process is shutting down" and exits when its requests are done."""
        master = (self.root / "run" / "qwen3vl-gateway" / "nginx.pid").read_text().strip()
        ps = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", master], capture_output=True, text=True, check=True
        )
        return {
            line.split(None, 1)[0]
            for line in ps.stdout.splitlines()
            if line.rstrip().endswith("nginx: worker process")
        }

    def settings(self) -> dict[str, str]:
        return {
            "DEPLOYMENT_NAME": "gateway-rig",
            "REGION": REGION,
            "SECRET_ARN": self.secret_arn or f"arn:aws:secretsmanager:{REGION}:0:secret:unset",
            "ENGINE": "vllm",
            "MODEL_ID": "Qwen/Qwen3-VL-8B-Instruct",
            "SERVED_MODEL_NAME": self.served_model_name,
            "ENGINE_ARGS": "",
            "PUBLIC_HOST": "127.0.0.1",
            "DOMAIN": "",
            "PORT": str(self.port),
            "ALLOWED_MEDIA_DOMAINS": "",
            # Rig-only: the engine's loopback port, and an unprivileged user that exists here.
            "ENGINE_PORT": str(self.engine_port),
            "GATEWAY_USER": "nobody",
            "ENGINE_USER": "nobody",
            "CACHE_DIR": str(self.root / "var" / "cache" / "qwen3vl"),
        }

    def render(self) -> None:
        """The bootstrap's render stage: certificate, engine.env, gateway config, units."""
        install_instance(self.root, self.settings())
        link_tools(self.root)
        result = run_script(self.root, "qwen3vl-bootstrap", "render")
        if result.returncode != 0:
            raise GatewayRigError(f"qwen3vl-bootstrap render failed:\n{result.stderr}")

    def set_keys(self, current: str, pending: str | None = None) -> subprocess.CompletedProcess:
        """Put ``current`` (AWSCURRENT) and optionally ``pending`` (AWSPENDING) into the secret
        in the emulator, then run the real qwen3vl-keysync (no arguments: it resolves the
        labels itself). Returns keysync's CompletedProcess."""
        import boto3

        client = boto3.client("secretsmanager", region_name=REGION, **self._boto_args())
        try:
            self.secret_arn = client.describe_secret(SecretId=SECRET_NAME)["ARN"]
        except client.exceptions.ResourceNotFoundException:
            # The emulator is shared and reset by other tests: recreate the secret when gone.
            self.secret_arn = client.create_secret(Name=SECRET_NAME)["ARN"]
        client.put_secret_value(SecretId=self.secret_arn, SecretString=current)
        if pending is not None:
            client.put_secret_value(
                SecretId=self.secret_arn, SecretString=pending, VersionStages=["AWSPENDING"]
            )
        else:
            for version in client.list_secret_version_ids(SecretId=self.secret_arn)["Versions"]:
                if "AWSPENDING" in version["VersionStages"]:
                    client.update_secret_version_stage(
                        SecretId=self.secret_arn,
                        VersionStage="AWSPENDING",
                        RemoveFromVersionId=version["VersionId"],
                    )
        write_deploy_env(self.root, self.settings())
        result = self.keysync()
        if result.returncode == 0:
            self.current_key = current
        return result

    def keysync(self, *args: str) -> subprocess.CompletedProcess:
        return run_script(self.root, "qwen3vl-keysync", *args, env=self.aws_env)

    def _boto_args(self) -> dict[str, str]:
        return {
            "endpoint_url": self.aws_env["AWS_ENDPOINT_URL"],
            "aws_access_key_id": self.aws_env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": self.aws_env["AWS_SECRET_ACCESS_KEY"],
        }

    def start(self) -> None:
        """Start nginx in the foreground with the rendered config (as the unit would)."""
        nginx = require("nginx", "apt-get install nginx")
        subprocess.run([nginx, "-q", "-t", "-c", str(self.conf_path)], check=True)
        log = self.root / "nginx-stdio.log"
        with held_signals(), log.open("wb") as out:
            self.process = subprocess.Popen(
                [nginx, "-c", str(self.conf_path), "-g", "daemon off;"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        _wait_listening(self.port, self.process, log)

    def record(self, **fields: object):
        """This gateway recorded as deployment ``qwen3vl`` (as ``apply`` saves it) with its
        certificate pinned (as ``wait`` does); ``fields`` override the recorded values."""
        from qwen3vl_aws.deployment import Deployment

        deployment = Deployment(
            **{
                "name": "qwen3vl",
                "region": REGION,
                "instance_type": "g5.xlarge",
                "instance_id": "i-0noderig0000000",
                "endpoint": self.base_url,
                "port": self.port,
                "secret_arn": self.secret_arn,
                "served_model_name": self.served_model_name,
                **fields,
            }
        )
        deployment.save()
        shutil.copyfile(self.cert_path, deployment.cert_path)
        return deployment

    def stop(self) -> None:
        """Graceful stop (SIGQUIT, as the unit's KillSignal), then SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def emulator_env(endpoint: str, scratch: Path) -> dict[str, str]:
    """Environment for the instance scripts' AWS calls: the emulator and fake credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
        "AWS_PAGER": "",
    }


@contextmanager
def run_gateway(
    root: Path,
    engine_port: int,
    served_model_name: str,
    moto_endpoint: str,
    initial_key: str | None = None,
    *,
    secret_arn: str | None = None,
) -> Iterator[Gateway]:
    """Render, sync the key(s) and start nginx in front of the engine; always stops it.

    With ``secret_arn`` (e.g. the secret ``apply`` created in the emulator) the key sync reads
    that secret as the instance would; otherwise the rig's own secret gets ``initial_key``.
    """
    require("openssl", "apt-get install openssl")
    gateway = Gateway(
        root=root,
        port=free_port(),
        engine_port=engine_port,
        served_model_name=served_model_name,
        aws_env=emulator_env(moto_endpoint, root),
    )
    gateway.render()
    if secret_arn:
        gateway.secret_arn = secret_arn
        write_deploy_env(root, gateway.settings())
        synced = gateway.keysync()
    else:
        synced = gateway.set_keys(initial_key or generate_key())
    if synced.returncode != 0:
        raise GatewayRigError(f"qwen3vl-keysync failed:\n{synced.stderr}")
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()
