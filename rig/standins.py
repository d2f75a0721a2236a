"""Stand-ins for what this machine lacks: systemd (``systemctl``, ``journalctl``) and a GPU
(``nvidia-smi``).

``systemctl show`` reports a unit active exactly when its process answers on its port (read from
the rig's deploy.env); ``nvidia-smi`` prints a recorded A10G line. They are put first on the PATH
of the command channel that reaches the rig, so the CLI's instance checks run unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

SYSTEMCTL = """#!/bin/bash
# systemctl stand-in: `show` reports a unit active when its process answers on its port.
set -u
source "$QWEN3VL_ROOT/etc/qwen3vl/deploy.env"
[[ $1 == show ]] || { echo "stand-in supports only show" >&2; exit 1; }
unit() {
  local state=failed sub=failed result=exit-code
  if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
    state=active sub=running result=success
  fi
  printf 'Id=%s\\nLoadState=loaded\\nActiveState=%s\\nSubState=%s\\nResult=%s\\nNRestarts=0\\n' \\
    "$1" "$state" "$sub" "$result"
}
unit qwen3vl-engine.service "$ENGINE_PORT"
echo
unit qwen3vl-gateway.service "$PORT"
"""
#: What the nvidia-smi stand-in reports: the GPU, and the engine as its one compute process.
GPU_LINE = "NVIDIA A10G, 17210, 23028, 3"
COMPUTE_APP_LINE = "4242, /opt/qwen3vl/engine/bin/python3, 17100"
NVIDIA_SMI = f"""#!/bin/bash
case "$*" in
  *--query-compute-apps=*) echo '{COMPUTE_APP_LINE}' ;;
  *) echo '{GPU_LINE}' ;;
esac
"""
#: journalctl stand-in: the engine unit's journal is the rig's vLLM log ($QWEN3VL_ENGINE_LOG);
#: without one, the host's own journalctl answers.
JOURNALCTL = """#!/bin/bash
[[ -n ${QWEN3VL_ENGINE_LOG:-} ]] || exec /usr/bin/journalctl "$@"
cat "$QWEN3VL_ENGINE_LOG"
"""
STAGES = ("packages", "model", "configure", "engine", "ready")
#: Per stage (started_at, finished_at) of a recorded completed bootstrap.
RECORDED_TIMES = tuple(
    (f"2026-11-24T10:0{i}:00Z", f"2026-11-24T10:0{i}:30Z") for i in range(len(STAGES))
)


def install_standins(bin_dir: Path) -> Path:
    """Write the ``systemctl``, ``nvidia-smi`` and ``journalctl`` stand-ins into ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("systemctl", SYSTEMCTL),
        ("nvidia-smi", NVIDIA_SMI),
        ("journalctl", JOURNALCTL),
    ):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def rig_env(root: Path, bin_dir: Path, engine_log: Path | None = None) -> dict[str, str]:
    """Environment of a command run "on the instance": its root prefix, stand-ins first, and
    the engine's log for the journalctl stand-in."""
    env = dict(os.environ, QWEN3VL_ROOT=str(root), PATH=f"{bin_dir}:{os.environ['PATH']}")
    if engine_log is not None:
        env["QWEN3VL_ENGINE_LOG"] = str(engine_log)
    return env


def finished_status(
    times: Sequence[tuple[str, str]] = RECORDED_TIMES,
    model_bytes: int = 17_000_000_000,
    *,
    weights: dict[str, object] | None = None,
    engine_log: str = "",
) -> str:
    """status.json after a completed bootstrap, in the shape its ``status`` helper writes
    (``weights`` and ``engine_log`` as its ``record`` command keeps them).

    The bootstrap's ``all`` mode installs packages and starts units, which cannot run here.
    """
    stages = [
        {"name": name, "state": "done", "started_at": start, "finished_at": end}
        for name, (start, end) in zip(STAGES, times, strict=True)
    ]
    return json.dumps(
        {
            "stages": stages,
            "model_bytes": model_bytes,
            "model_bytes_total": model_bytes,
            "updated_at": times[-1][1],
            "weights": weights,
            "engine_log": engine_log,
        }
    )
