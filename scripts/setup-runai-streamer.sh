#!/usr/bin/env bash
# Install the Run:ai Model Streamer (with its S3 backend) for the CPU vLLM of the test rig, into
# a separate directory that the rig puts on the vLLM server's PYTHONPATH. The vLLM venv itself is
# left as setup-vllm-cpu.sh made it. The instance installs the same pins next to vLLM.
#
# Usage: scripts/setup-runai-streamer.sh [TARGET_DIR]   (default: <repo>/.venv-runai)
# Needs the vLLM venv (its python and pip); writes TARGET_DIR/.ready last, and does nothing when
# it already holds the pinned version.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:-$REPO_ROOT/.venv-runai}"
VLLM_PYTHON="${QWEN3VL_VLLM_VENV:-$REPO_ROOT/.venv-vllm}/bin/python"
# shellcheck source=/dev/null
source "$REPO_ROOT/userdata/versions.env"
: "${RUNAI_STREAMER_VERSION:?versions.env pins RUNAI_STREAMER_VERSION}" "${BOTO3_VERSION:?versions.env pins BOTO3_VERSION}"

if [[ "$(cat "$TARGET/.ready" 2>/dev/null)" == "$RUNAI_STREAMER_VERSION" ]]; then
  echo "runai-model-streamer $RUNAI_STREAMER_VERSION already in $TARGET"
  exit 0
fi
[[ -x $VLLM_PYTHON ]] || { echo "the vLLM venv is missing: run scripts/setup-vllm-cpu.sh first" >&2; exit 1; }

rm -rf "$TARGET"
# --no-deps: torch and numpy come from the vLLM venv; only what that venv lacks is added here
# (the S3 backend resolves credentials with boto3).
"$VLLM_PYTHON" -m pip install --quiet --no-deps --target "$TARGET" \
  "runai-model-streamer==$RUNAI_STREAMER_VERSION" "runai-model-streamer-s3==$RUNAI_STREAMER_VERSION" \
  "boto3==$BOTO3_VERSION" "botocore==$BOTO3_VERSION" s3transfer jmespath python-dateutil six humanize
PYTHONPATH="$TARGET" "$VLLM_PYTHON" -c 'import runai_model_streamer, runai_model_streamer_s3.files.files, boto3'
echo "$RUNAI_STREAMER_VERSION" >"$TARGET/.ready"
echo "runai-model-streamer $RUNAI_STREAMER_VERSION installed in $TARGET"
