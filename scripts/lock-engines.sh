#!/usr/bin/env bash
# Regenerate the engines' hashed locks (userdata/locks/{vllm,sglang}.txt) from the pins in
# userdata/versions.env. The instance installs its engine with `uv pip install --require-hashes`
# from these files, so every distribution it downloads is checked against a sha256 recorded here.
#
# Usage: scripts/lock-engines.sh        (needs network access to PyPI; uv at versions.env's pin)
# Run it after changing VLLM_VERSION, SGLANG_VERSION, RUNAI_STREAMER_VERSION or PYTHON_VERSION;
# tests/static/test_engine_locks.py fails until the locks match the pins.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
source "$REPO_ROOT/userdata/versions.env"
# The Deep Learning Base AMI (Ubuntu 22.04) has glibc 2.35; SGLang ships manylinux_2_34 wheels.
PLATFORM=x86_64-manylinux_2_35

uv_bin=$(command -v uv || true)
if [[ -z $uv_bin || "$("$uv_bin" --version)" != "uv $UV_VERSION"* ]]; then
  tools=$(mktemp -d)
  trap 'rm -rf "$tools"' EXIT
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q "uv==$UV_VERSION"
  uv_bin="$tools/venv/bin/uv"
fi

lock() {
  local name=$1
  shift
  printf '%s\n' "$@" | "$uv_bin" pip compile - --generate-hashes --no-header --quiet \
    --python-version "$PYTHON_VERSION" --python-platform "$PLATFORM" \
    --index-url https://pypi.org/simple -o "$REPO_ROOT/userdata/locks/$name.txt"
  echo "userdata/locks/$name.txt: $(grep -c '^[A-Za-z0-9]' "$REPO_ROOT/userdata/locks/$name.txt") pins"
}

lock vllm "vllm==$VLLM_VERSION" "runai-model-streamer[s3]==$RUNAI_STREAMER_VERSION"
lock sglang "sglang[all]==$SGLANG_VERSION"
