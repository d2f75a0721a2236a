#!/usr/bin/env bash
# Install checkov into its own virtual environment (its pins clash with the dev dependencies).
# Idempotent: does nothing when the pinned version is already there.
# Usage: scripts/setup-checkov.sh [VENV_DIR]   (default: <repo>/.venv-checkov)
set -euo pipefail

CHECKOV_VERSION="3.3.30"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo_root/.venv-checkov}"
python="${PYTHON:-python3}"

if [[ -x "$venv/bin/checkov" ]] && [[ "$("$venv/bin/checkov" --version 2>/dev/null)" == "$CHECKOV_VERSION" ]]; then
  echo "checkov $CHECKOV_VERSION already in $venv"
  exit 0
fi

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "checkov==$CHECKOV_VERSION"
echo "checkov $("$venv/bin/checkov" --version) installed in $venv"
