"""The instance's scripts and units, checked without an instance: shellcheck, systemd-analyze
verify, the engine launcher's argv, and an idempotent bootstrap run twice in a scratch root with
the system commands it calls replaced by recording stubs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from command_stub import NAMES
from qwen3vl_aws.instance.status import STAGE_NAMES, BootstrapStatus, parse_status
from qwen3vl_aws.paths import userdata_dir
from qwen3vl_aws.serving.planner import DRAFT_DIR_PLACEHOLDER, plan_serving
from qwen3vl_aws.serving.versions import pinned_revision, pinned_versions, tools_requirements

from rig.gateway import install_instance
from rig.tools_env import BASE_PATH

REPO = Path(__file__).resolve().parents[2]
STUB = Path(__file__).resolve().parent / "command_stub.py"
PLAN_FLAGS = [
    "--max-model-len", "5120",
    "--limit-mm-per-prompt.video", "0",
    "--mm-processor-kwargs", '{"images_kwargs":{"max_pixels":4454400}}',
]  # fmt: skip
# Keys newer than the oldest systemd the units run on (Ubuntu 22.04: 249) are ignored there;
# on a systemd older than 254 verify reports them as unknown.
NEWER_SYSTEMD_KEYS = ("RestartSteps", "RestartMaxDelaySec")


def shell_scripts() -> list[Path]:
    """Every shell script in the repository's userdata/ and scripts/."""
    candidates = [*(userdata_dir() / "bin").iterdir(), *(REPO / "scripts").glob("*")]
    return sorted(
        p for p in candidates if p.is_file() and re.match(r"#!.*\b(ba)?sh\b", p.read_text()[:80])
    )


def require(command: str, package: str) -> str:
    path = shutil.which(command)
    assert path, f"{command} is missing: apt-get install {package}"
    return path


def settings(root: Path, **overrides: str) -> dict[str, str]:
    values = {
        "DEPLOYMENT_NAME": "qwen3vl",
        "REGION": "us-east-1",
        "SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:qwen3vl-AbCdEf",
        "ENGINE": "vllm",
        "MODEL_ID": "Qwen/Qwen3-VL-8B-Instruct",
        "SERVED_MODEL_NAME": "Qwen/Qwen3-VL-8B-Instruct",
        "ENGINE_ARGS": " ".join(PLAN_FLAGS),
        "PUBLIC_HOST": "203.0.113.10",
        "DOMAIN": "",
        "PORT": "443",
        "ALLOWED_MEDIA_DOMAINS": "upload.wikimedia.org",
        "GATEWAY_USER": "nobody",
        "ENGINE_USER": "nobody",
        "CACHE_DIR": str(root / "nvme"),
    }
    return {**values, **overrides}


def render(root: Path, **overrides: str) -> Path:
    install_instance(root, settings(root, **overrides))
    env = {**os.environ, "QWEN3VL_ROOT": str(root)}
    bootstrap = root / "opt/qwen3vl/bin/qwen3vl-bootstrap"
    subprocess.run([str(bootstrap), "render"], env=env, check=True, capture_output=True)
    return root


@pytest.mark.parametrize("model_cache", ["ebs", "instance-store"])
def test_model_cache_survives_stop_start_on_ebs_unless_instance_store_asked(
    tmp_path: Path, model_cache: str
):
    """The weights live on the root volume by default (a stop/start keeps them); the instance
    store is used only when asked, and only when the instance has one (this machine has none)."""
    overrides = {"MODEL_CACHE": model_cache}
    values = settings(tmp_path, **overrides)
    del values["CACHE_DIR"]
    install_instance(tmp_path, values)
    env = {**os.environ, "QWEN3VL_ROOT": str(tmp_path)}
    bootstrap = tmp_path / "opt/qwen3vl/bin/qwen3vl-bootstrap"
    subprocess.run([str(bootstrap), "render"], env=env, check=True, capture_output=True)
    engine_env = (tmp_path / "etc/qwen3vl/engine.env").read_text()
    model_dir = tmp_path / "var/cache/qwen3vl/models/Qwen/Qwen3-VL-8B-Instruct"
    assert f"--model {model_dir} " in engine_env


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: p.name)
def test_shellcheck_is_clean(script: Path):
    # Plain, as anyone runs it: userdata/.shellcheckrc has it follow the files a script sources.
    result = subprocess.run(
        [require("shellcheck", "shellcheck"), "--severity=style", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_systemd_analyze_verify_accepts_rendered_units(tmp_path: Path):
    root = render(tmp_path, ENGINE_USER="qwen3vl")  # the instance's engine user
    units = root / "etc/systemd/system"
    result = subprocess.run(
        [
            require("systemd-analyze", "systemd"),
            "verify",
            str(units / "qwen3vl-engine.service"),
            str(units / "qwen3vl-gateway.service"),
            str(units / "qwen3vl-bootstrap.service"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and not any(f"Unknown key '{k}'" in line for k in NEWER_SYSTEMD_KEYS)
    ]
    assert problems == []


def test_a_fleet_replica_renders_its_agent_units_and_a_certificate_for_the_balancer(
    tmp_path: Path,
):
    root = render(
        tmp_path,
        PUBLIC_HOST="fleettest-1.us-east-1.elb.amazonaws.com",
        FLEET_GROUP="qwen3vl-fleet",
        FLEET_DRAIN_HOOK="drain",
        FLEET_METRIC_NAMESPACE="qwen3vl-aws/qwen3vl",
    )
    units = root / "etc/systemd/system"
    fleet_units = sorted(units.glob("qwen3vl-fleet-*"))
    assert [u.name for u in fleet_units] == [
        "qwen3vl-fleet-drain.service",
        "qwen3vl-fleet-drain.timer",
        "qwen3vl-fleet-publish.service",
        "qwen3vl-fleet-publish.timer",
    ]
    # The agent runs on the tools venv's Python, which the bootstrap installs (with boto3).
    tools_python = root / "opt/qwen3vl/tools/bin/python"
    tools_python.parent.mkdir(parents=True)
    tools_python.symlink_to(sys.executable)
    result = subprocess.run(
        [require("systemd-analyze", "systemd"), "verify", *map(str, fleet_units)],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [line for line in result.stderr.splitlines() if "qwen3vl-fleet" in line]
    assert problems == []
    agent = f"{root}/opt/qwen3vl/bin/qwen3vl-fleet"
    publish = (units / "qwen3vl-fleet-publish.service").read_text()
    assert f"ExecStart={tools_python} {agent} publish" in publish
    cert = root / "etc/qwen3vl/tls/cert.pem"
    san = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:fleettest-1.us-east-1.elb.amazonaws.com" in san


def test_a_single_instance_renders_no_fleet_unit(tmp_path: Path):
    root = render(tmp_path)
    assert list((root / "etc/systemd/system").glob("qwen3vl-fleet-*")) == []


def test_engine_unit_is_hardened_and_bound_to_loopback(tmp_path: Path):
    root = render(tmp_path)
    unit = (root / "etc/systemd/system/qwen3vl-engine.service").read_text()
    for setting in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
        "DeviceAllow=char-nvidia-frontend rw",
        "Restart=on-failure",
        "IPAddressAllow=localhost",
        f"EnvironmentFile={root}/etc/qwen3vl/engine.env",
        f"ExecStart={root}/opt/qwen3vl/bin/qwen3vl-engine",
    ):
        assert setting in unit.splitlines(), setting
    assert "169.254.0.0/16" in unit
    engine_env = (root / "etc/qwen3vl/engine.env").read_text()
    assert "--host 127.0.0.1" in engine_env
    assert "VLLM_MEDIA_URL_ALLOW_REDIRECTS=0" in engine_env.splitlines()
    assert "--allowed-media-domains upload.wikimedia.org" in engine_env


def systemd_bytes(value: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_engine_memory_limits_are_sized_from_the_instance_ram(tmp_path: Path):
    """MemoryMax leaves the rest of the host (sshd, the SSM agent, the gateway) a tenth of the
    RAM, at least 1 GiB; MemoryHigh throttles the engine before that."""
    root = render(tmp_path)
    unit = (root / "etc/systemd/system/qwen3vl-engine.service").read_text().splitlines()
    limits = dict(line.split("=", 1) for line in unit if line.startswith("Memory"))
    ram = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    high, top = systemd_bytes(limits["MemoryHigh"]), systemd_bytes(limits["MemoryMax"])
    assert 0 < high < top < ram
    assert ram - top >= max(ram // 10, 2**30) - 2**20  # rounded down to whole MiB
    assert ram - top <= max(ram // 10, 2**30) + 2**20
    assert limits["MemorySwapMax"] == "0"


def test_engine_env_caps_decoded_pixels_and_guards_media_urls(tmp_path: Path):
    root = render(tmp_path, MAX_IMAGE_PIXELS="16777216")
    env = (root / "etc/qwen3vl/engine.env").read_text().splitlines()
    assert "VLLM_MAX_IMAGE_PIXELS=16777216" in env
    assert "VLLM_MEDIA_CONNECTOR=qwen3vl-public" in env
    guard_dir = root / "opt/qwen3vl/lib/python"
    assert f"PYTHONPATH={guard_dir}" in env
    assert (guard_dir / "qwen3vl_media_guard.py").is_file()
    entry_points = (guard_dir / "qwen3vl_media_guard-1.0.dist-info/entry_points.txt").read_text()
    assert "[vllm.general_plugins]" in entry_points
    assert "qwen3vl_media_guard:register" in entry_points


def test_engine_launcher_passes_the_flags_intact(tmp_path: Path):
    """engine.env as systemd reads it, through qwen3vl-engine, reaches the engine's argv
    exactly: JSON values keep their quotes."""
    root = render(tmp_path)
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(
        f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n"
    )
    fake_python.chmod(0o755)
    script = (
        f"set -a; source {root}/etc/qwen3vl/engine.env; ENGINE_PYTHON={fake_python}; "
        f"exec {root}/opt/qwen3vl/bin/qwen3vl-engine"
    )
    out = subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", "bash", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    model_dir = f"{root}/nvme/models/Qwen/Qwen3-VL-8B-Instruct"
    assert json.loads(out.stdout) == [
        "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_dir,
        "--allowed-media-domains", "upload.wikimedia.org",
        "--served-model-name", "Qwen/Qwen3-VL-8B-Instruct",
        "--host", "127.0.0.1",
        "--port", "8000",
        *PLAN_FLAGS,
    ]  # fmt: skip


def test_the_eagle3_drafts_directory_reaches_the_engine(tmp_path: Path):
    """apply --speculative eagle3: the plan names the draft's directory with a placeholder; the
    bootstrap fills in where it downloads the draft, next to the model."""
    plan = plan_serving("g6e.xlarge", speculative="eagle3")
    root = render(
        tmp_path,
        ENGINE_ARGS=" ".join(plan.flags),
        DRAFT_MODEL_ID=plan.draft_model_id,
    )
    engine_env = (root / "etc/qwen3vl/engine.env").read_text()
    draft_dir = f"{root}/nvme/models/{plan.draft_model_id}"
    assert DRAFT_DIR_PLACEHOLDER not in engine_env
    config = json.loads(
        re.search(r"--speculative-config (\S+)", engine_env).group(1)  # type: ignore[union-attr]
    )
    assert config["model"] == draft_dir


def test_sglang_engine_gets_its_own_entrypoint(tmp_path: Path):
    root = render(tmp_path, ENGINE="sglang", ENGINE_ARGS="--mem-fraction-static 0.85")
    engine_env = (root / "etc/qwen3vl/engine.env").read_text()
    assert "ENGINE_ENTRYPOINT=sglang.launch_server" in engine_env.splitlines()
    assert "--model-path " in engine_env
    # SGLang enforces the media allowlist too (same flag name, redirects checked as well).
    assert "--allowed-media-domains upload.wikimedia.org" in engine_env


def test_bootstrap_refuses_an_unknown_engine(tmp_path: Path):
    install_instance(tmp_path, settings(tmp_path, ENGINE="tgi"))
    result = subprocess.run(
        [str(tmp_path / "opt/qwen3vl/bin/qwen3vl-bootstrap"), "render"],
        env={**os.environ, "QWEN3VL_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "ENGINE must be vllm or sglang, not 'tgi'" in result.stdout
    assert not (tmp_path / "etc/qwen3vl/engine.env").exists()


# --- idempotency --------------------------------------------------------------------------

#: Files the bootstrap rewrites on every run by design (the record of the latest run).
RUN_RECORDS = {"var/lib/qwen3vl/status.json", "var/lib/qwen3vl/status.json.lock"}
RUN_LOGS = {"var/log/qwen3vl/bootstrap.log"}


def stub_path(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    for name in NAMES:
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {STUB} {name} "$@"\n')
        wrapper.chmod(0o755)
    return bin_dir


def installed_instance(tmp_path: Path, **overrides: str) -> tuple[Path, Path, Path, Path]:
    """An instance root holding the installed user-data, and stubs for the tools the bootstrap
    runs: (root, the stubs' bin directory, their call log, their state directory)."""
    root = tmp_path / "root"
    install_instance(root, settings(root, **overrides))
    state = tmp_path / "stub-state"
    state.mkdir()
    return root, stub_path(tmp_path), tmp_path / "calls.jsonl", state


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file under root: content hash, mode and mtime."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_file() and rel not in RUN_RECORDS | RUN_LOGS:
            stat = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files[rel] = (digest, stat.st_mode, stat.st_mtime_ns)
    return files


def run_bootstrap(
    root: Path,
    stubs: Path,
    log: Path,
    state: Path,
    *,
    fail: str = "",
    fail_arg: str = "",
    denied: str = "",
) -> subprocess.CompletedProcess[str]:
    log.write_text("")
    env = {
        "STUB_FAIL": fail,
        "STUB_FAIL_ARG": fail_arg,
        "STUB_DENIED": denied,
        "PATH": f"{stubs}:{BASE_PATH}",
        "QWEN3VL_ROOT": str(root),
        "STUB_LOG": str(log),
        "STUB_STATE": str(state),
        "STUB_UV_VERSION": pinned_versions()["UV_VERSION"],
        "HOME": str(root),
    }
    bootstrap = root / "opt/qwen3vl/bin/qwen3vl-bootstrap"
    return subprocess.run(
        [str(bootstrap)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def calls(log: Path) -> list[str]:
    return [" ".join(json.loads(line)["argv"]) for line in log.read_text().splitlines()]


def read_status(root: Path) -> BootstrapStatus:
    """status.json through the CLI's own parser (the contract between the two sides)."""
    return parse_status((root / "var/lib/qwen3vl/status.json").read_text())


def assert_all_stages_done(root: Path) -> None:
    status = read_status(root)
    assert [(s.name, s.state) for s in status.stages] == [(n, "done") for n in STAGE_NAMES]
    for stage in status.stages:
        assert stage.started_at <= stage.finished_at
    assert status.model_bytes == status.model_bytes_total == 4096


CHANGING = re.compile(
    r"^(apt-get .*install|uv (venv|pip)|hf download|useradd|mkfs|mount|nginx"
    r"|systemctl (enable|start|restart|reload|daemon-reload|disable))\b"
)


@pytest.mark.slow
def test_bootstrap_twice_changes_nothing_the_second_time(tmp_path: Path):
    root, stubs, log, state = installed_instance(tmp_path)

    result = run_bootstrap(root, stubs, log, state)
    assert result.returncode == 0, result.stdout + result.stderr
    first = calls(log)
    assert_all_stages_done(root)
    versions = pinned_versions()
    # The first run did the work: packages, the pinned engine, the model, units, services.
    assert any(c.startswith("apt-get") and " install " in c and "nginx" in c for c in first)
    # The engine from its hashed lock only (tests/static/test_engine_locks.py holds the lock).
    engine = root / "opt/qwen3vl/engine/bin/python"
    lock = root / "opt/qwen3vl/share/locks/vllm.txt"
    assert f"uv pip install --python {engine} --require-hashes -r {lock}" in first
    assert any(c.startswith("hf download Qwen/Qwen3-VL-8B-Instruct --local-dir") for c in first)
    # Everything the instance scripts call beyond the base OS comes from the tools environment.
    tools = root / "opt/qwen3vl/tools"
    assert f"uv pip install --python {tools}/bin/python {' '.join(tools_requirements())}" in first
    # exactly the pinned commit of the checkpoint, never the moving "main"
    revision = versions["MODEL_REVISION_QWEN3_VL_8B_INSTRUCT"]
    assert any(c.startswith("hf download") and f"--revision {revision}" in c for c in first)
    assert "systemctl start qwen3vl-gateway.service" in first
    assert "systemctl start --no-block qwen3vl-engine.service" in first
    # Boot: the bootstrap unit and the gateway come back; the engine waits for the bootstrap.
    enabled = [c.split()[-1] for c in first if c.startswith("systemctl enable")]
    assert enabled == ["qwen3vl-bootstrap.service", "qwen3vl-gateway.service"]
    assert (root / "etc/qwen3vl/tls/cert.pem").is_file()
    assert (root / "etc/qwen3vl/keys.conf").stat().st_mode & 0o777 == 0o600
    before = snapshot(root)

    result = run_bootstrap(root, stubs, log, state)
    assert result.returncode == 0, result.stdout + result.stderr
    second = calls(log)
    assert_all_stages_done(root)
    assert [c for c in second if CHANGING.match(c)] == []
    assert snapshot(root) == before


DRAFT_REVISION = "d" * 40


@pytest.mark.slow
def test_an_eagle3_draft_is_downloaded_once_beside_the_model_at_its_pinned_revision(
    tmp_path: Path,
):
    plan = plan_serving("g6e.xlarge", speculative="eagle3")
    root, stubs, log, state = installed_instance(
        tmp_path,
        DRAFT_MODEL_ID=plan.draft_model_id,
        DRAFT_MODEL_REVISION=DRAFT_REVISION,
        ENGINE_ARGS=" ".join(plan.flags),
    )
    result = run_bootstrap(root, stubs, log, state)
    assert result.returncode == 0, result.stdout + result.stderr
    draft_dir = root / "nvme/models" / plan.draft_model_id
    fetches = [c for c in calls(log) if c.startswith("hf download")]
    assert (
        f"hf download {plan.draft_model_id} --local-dir {draft_dir} --revision {DRAFT_REVISION} "
        "--quiet"
    ) in fetches
    assert (draft_dir / ".qwen3vl-complete").read_text() == DRAFT_REVISION
    engine_env = (root / "etc/qwen3vl/engine.env").read_text()
    assert f'"model":"{draft_dir}"' in engine_env
    result = run_bootstrap(root, stubs, log, state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [c for c in calls(log) if c.startswith("hf download")]
    # another pin is another download, over the old one
    env_file = root / "etc/qwen3vl/deploy.env"
    env_file.write_text(env_file.read_text().replace(DRAFT_REVISION, "e" * 40))
    result = run_bootstrap(root, stubs, log, state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c for c in calls(log) if c.startswith(f"hf download {plan.draft_model_id}")] == [
        f"hf download {plan.draft_model_id} --local-dir {draft_dir} --revision {'e' * 40} --quiet"
    ]


@pytest.mark.slow
def test_a_draft_pinned_nowhere_stops_the_model_stage_before_any_download(tmp_path: Path):
    """No DRAFT_MODEL_REVISION and no pin in versions.env: refused, not fetched from main."""
    draft = "example/Unpinned-Draft"
    assert pinned_revision(draft) is None
    root, stubs, log, state = installed_instance(tmp_path, DRAFT_MODEL_ID=draft)
    result = run_bootstrap(root, stubs, log, state)
    assert result.returncode != 0
    assert (
        f"versions.env pins no revision for {draft} (MODEL_REVISION_UNPINNED_DRAFT)"
        in result.stdout
    )
    assert not [c for c in calls(log) if c.startswith("hf download")]
    assert ("model", "failed") in [(s.name, s.state) for s in read_status(root).stages]


@pytest.mark.slow
def test_a_failing_stage_is_recorded_and_stops_the_bootstrap(tmp_path: Path):
    root, stubs, log, state = installed_instance(tmp_path)
    result = run_bootstrap(root, stubs, log, state, fail="hf")
    assert result.returncode != 0
    assert "model" in result.stdout and "the model prefetch failed" in result.stdout
    status = read_status(root)
    assert [(s.name, s.state) for s in status.stages] == [
        ("packages", "done"),
        ("model", "failed"),
        ("configure", "pending"),
        ("engine", "pending"),
        ("ready", "pending"),
    ]
    assert not any(c.startswith("systemctl start") for c in calls(log))
    assert "bootstrap.log" in {p.name for p in (root / "var/log/qwen3vl").iterdir()}


@pytest.mark.slow
def test_a_denied_key_sync_names_the_action_in_the_log_and_status(tmp_path: Path):
    root, stubs, log, state = installed_instance(tmp_path)
    install_instance(root, settings(root, KEYSYNC_ATTEMPTS="2"))
    secret = settings(root)["SECRET_ARN"]
    refusal = "the instance role may not call secretsmanager:{} on " + secret
    result = run_bootstrap(root, stubs, log, state, denied=refusal)
    assert result.returncode != 0
    said = refusal.format("DescribeSecret")
    assert f"key sync attempt 1 of 2 failed: qwen3vl-keysync: access denied: {said}" in (
        result.stdout
    )
    assert "has no AWSCURRENT version" not in result.stdout
    configure = read_status(root).stage("configure")
    assert configure.state == "failed"
    assert said in configure.error


# --- warm-up before ready -----------------------------------------------------------------

CHAT_URL = "http://127.0.0.1:8000/v1/chat/completions"


def chat_posts(log: Path) -> list[tuple[list[str], str | None]]:
    """(argv, the ready stage's state at the time) of every curl call to the chat endpoint."""
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return [
        (e["argv"], e["ready_stage"])
        for e in entries
        if e["argv"][0] == "curl" and CHAT_URL in e["argv"]
    ]


def posted_body(argv: list[str]) -> dict:
    """The JSON body a curl call sends (inline ``-d`` or ``--data-binary @file``)."""
    flag = next(a for a in argv if a in ("-d", "--data-binary"))
    value = argv[argv.index(flag) + 1]
    return json.loads(Path(value[1:]).read_text() if value.startswith("@") else value)


@pytest.mark.slow
def test_ready_stage_warms_text_and_image_before_declaring_ready(tmp_path: Path):
    """After the readiness answer, a text chat with the served sampling defaults and an image
    chat reach the engine on loopback while the ready stage is still running."""
    import base64

    from PIL import Image

    root, stubs, log, state = installed_instance(tmp_path)
    result = run_bootstrap(root, stubs, log, state)
    assert result.returncode == 0, result.stdout + result.stderr
    posts = chat_posts(log)
    assert [stage for _, stage in posts] == ["running"] * 3
    readiness, text, image = (posted_body(argv) for argv, _ in posts)
    assert readiness["max_tokens"] == 1
    sampling = {"temperature", "top_p", "top_k", "min_p", "seed", "repetition_penalty"}
    for body in (text, image):
        assert body["model"] == "Qwen/Qwen3-VL-8B-Instruct"
        assert body["max_tokens"] > 1 and not sampling & set(body)
    assert isinstance(text["messages"][0]["content"], str)
    parts = {p["type"]: p for p in image["messages"][0]["content"]}
    url = parts["image_url"]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    import io

    picture = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    picture.load()
    assert picture.size == (640, 480)
    assert "warm-up: text chat answered" in result.stdout
    assert "warm-up: image chat answered" in result.stdout
    assert_all_stages_done(root)


@pytest.mark.slow
def test_a_failed_warm_up_fails_the_ready_stage(tmp_path: Path):
    root, stubs, log, state = installed_instance(tmp_path)
    result = run_bootstrap(root, stubs, log, state, fail_arg="warmup/image.json")
    assert result.returncode != 0
    assert "the image warm-up chat failed" in result.stdout
    assert read_status(root).stage("ready").state == "failed"


# --- the TLS certificate ------------------------------------------------------------------


def certificate(root: Path):
    from cryptography import x509

    return x509.load_pem_x509_certificate((root / "etc/qwen3vl/tls/cert.pem").read_bytes())


def subject_alt_names(root: Path) -> list[str]:
    from cryptography import x509

    san = certificate(root).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return [str(name.value) for name in san.value]


def test_certificate_names_the_elastic_ip_and_keeps_its_key_private(tmp_path: Path):
    root = render(tmp_path)
    assert subject_alt_names(root) == ["203.0.113.10"]
    key = root / "etc/qwen3vl/tls/key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (root / "etc/qwen3vl/tls/cert.pem").stat().st_mode & 0o777 == 0o644


def test_certificate_names_the_domain_when_one_is_given(tmp_path: Path):
    root = render(tmp_path, DOMAIN="llm.example.com")
    assert subject_alt_names(root) == ["llm.example.com", "203.0.113.10"]


def test_certificate_is_kept_across_renders_and_remade_when_the_host_changes(tmp_path: Path):
    root = render(tmp_path)
    first = certificate(root).serial_number
    render(tmp_path)
    assert certificate(root).serial_number == first  # clients that pinned it keep working
    render(tmp_path, PUBLIC_HOST="198.51.100.7")
    assert certificate(root).serial_number != first
    assert subject_alt_names(root) == ["198.51.100.7"]


def test_engine_wrapper_exports_the_reader_session_verbatim_and_nothing_else(
    tmp_path: Path,
) -> None:
    """qwen3vl-engine reads the session the unit's ExecStartPre wrote: AWS_* values exactly as
    written (base64 secrets and tokens end in "="), any other line ignored."""
    session = tmp_path / "s3.env"
    session.write_text(
        "AWS_ACCESS_KEY_ID=ASIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=ab/c+d=\n"
        "AWS_SESSION_TOKEN=FwoG==\nAWS_EC2_METADATA_DISABLED=true\nPATH=/tmp/evil\n"
    )
    (tmp_path / "dumpenv.py").write_text("import json, os; print(json.dumps(dict(os.environ)))")
    run = subprocess.run(
        [str(userdata_dir() / "bin" / "qwen3vl-engine")],
        env={
            "PATH": BASE_PATH,
            "PYTHONPATH": str(tmp_path),
            "ENGINE_PYTHON": sys.executable,
            "ENGINE_ENTRYPOINT": "dumpenv",
            "ENGINE_ARGS": "--model s3://bucket/models/m/rev",
            "ENGINE_S3_CREDENTIALS": str(session),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    env = json.loads(run.stdout)
    assert env["AWS_SECRET_ACCESS_KEY"] == "ab/c+d=" and env["AWS_SESSION_TOKEN"] == "FwoG=="
    assert env["AWS_ACCESS_KEY_ID"] == "ASIAEXAMPLE"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["PATH"] == BASE_PATH
