#!/usr/bin/env bash
# Installs proxyctl and shows it on the shipped example: the iptables rules kube-proxy would write
# for examples/demo/cluster.yaml on the node described by examples/demo/node.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
demo=(-f examples/demo/cluster.yaml --config examples/demo/kube-proxy-config.yaml
      --node-facts examples/demo/node.yaml)
echo "== proxyctl compile (the iptables-restore payload of a full sync, IPv4) =="
.venv/bin/proxyctl compile "${demo[@]}" --ip-family IPv4
echo
echo "== proxyctl compile --format save (what iptables-save shows on the node afterwards) =="
.venv/bin/proxyctl compile "${demo[@]}" --ip-family IPv4 --format save
echo
echo "== proxyctl trace 10.96.10.10:80 (a pod's packet to demo/web, every branch, and why) =="
.venv/bin/proxyctl trace 10.96.10.10:80 "${demo[@]}"
echo
echo "== proxyctl trace --all (every service port from a pod, the node and outside) =="
.venv/bin/proxyctl trace --all "${demo[@]}"
