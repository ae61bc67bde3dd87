#!/usr/bin/env bash
# Installs what proxyctl needs on Debian/Ubuntu (run as root): the kernel tools kube-proxy shells
# out to, and proxyctl itself with its Python dependencies in ./.venv.
#   scripts/install.sh          proxyctl only
#   scripts/install.sh --dev    plus the test tools (pytest, hypothesis, ruff, kubernetes-validate;
#                               ruby and ShellCheck for the lab scripts)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(iptables ipset nftables conntrack nfacct iproute2 kmod)
[ "${1:-}" = "--dev" ] && packages+=(shellcheck ruby)  # tests/test_vagrant.py: the lab's scripts
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv python3-pip)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "proxyctl needs Python 3.11 or newer; this is $(python3 --version)" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".${extra}"
