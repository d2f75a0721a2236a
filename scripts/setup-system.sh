#!/usr/bin/env bash
# Make sure the system tools the node and static tests run for real are on this machine:
# nginx, sshd, cloud-init (schema check), shellcheck, systemd-analyze, openssl, curl,
# HAProxy (the stand-in for the fleet's load balancer) and logrotate (the gateway's log rotation).
# On Debian/Ubuntu it installs what is missing with apt-get (as root, or through sudo);
# elsewhere it lists what to install and fails.
set -euo pipefail

declare -A package_of=(
  [nginx]=nginx
  [sshd]=openssh-server
  [ssh-keygen]=openssh-client
  [cloud-init]=cloud-init
  [shellcheck]=shellcheck
  [systemd-analyze]=systemd
  [openssl]=openssl
  [curl]=curl
  [haproxy]=haproxy
  [logrotate]=logrotate
)

missing=()
for tool in "${!package_of[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" ]]; then
    missing+=("${package_of[$tool]}")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system tools: all present"
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "system tools: installing ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Not a Debian/Ubuntu machine: install ${missing[*]} with your package manager." >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "Run as root or install sudo: need ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts the packaged services on install; the tests run their own instances.
for unit in nginx ssh haproxy; do
  "${sudo[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
done
