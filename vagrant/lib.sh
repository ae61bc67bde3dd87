#!/usr/bin/env bash
# Sourced by the lab's provisioners: strict mode, logging, retries, and the settings the
# Vagrantfile passes in the environment (every one is required: the scripts guess nothing).
set -euo pipefail

: "${PROXYCTL_LAB_VARIANT:?replace or beside, from the Vagrantfile}"
: "${CONTROL_PLANE_IP:?the address of the control plane on the lab network}"
: "${NODE_IP:?the address of this node on the lab network}"
: "${POD_CIDR:?the pod network (kubeadm --pod-network-cidr, the Network of flannel)}"
: "${KUBERNETES_MINOR:?e.g. v1.36: the pkgs.k8s.io repository to install from}"
: "${JOIN_TOKEN:?the kubeadm bootstrap token workers join with}"
: "${ADMIN_TOKEN:?the bootstrap token the smoke check authenticates with}"
: "${NODE_COUNT:?how many nodes the lab has}"

export DEBIAN_FRONTEND=noninteractive
REPO=${PROXYCTL_LAB_REPO:-/vagrant}  # the synced repository (tests point it at a checkout)
DEPLOY="$REPO/examples/deploy"
case "$PROXYCTL_LAB_VARIANT" in
  replace) DAEMONSET=proxyctl; PROXY_NAME_FLAG="" ;;
  beside) DAEMONSET=proxyctl-beside; PROXY_NAME_FLAG=--service-proxy-name=proxyctl ;;
  *) echo "PROXYCTL_LAB_VARIANT must be replace or beside, not $PROXYCTL_LAB_VARIANT" >&2; exit 2 ;;
esac
MANIFESTS="$DEPLOY/$PROXYCTL_LAB_VARIANT-kube-proxy"
# What the manifests say, read once: the image the DaemonSet runs, and the API server address and
# pod network of the ConfigMap (rewritten by lab_manifest when the lab uses others).
IMAGE=$(awk '$1 == "image:" {print $2; exit}' "$MANIFESTS/daemonset.yaml")
SHIPPED_SERVER=$(awk '$1 == "server:" {print $2; exit}' "$MANIFESTS/configmap.yaml")
SHIPPED_POD_CIDR=$(awk '$1 == "clusterCIDR:" {print $2; exit}' "$MANIFESTS/configmap.yaml")
# Exported for the scripts that source this file.
export REPO DEPLOY DAEMONSET PROXY_NAME_FLAG MANIFESTS IMAGE SHIPPED_SERVER SHIPPED_POD_CIDR

log() { printf '==> [%s] %s\n' "$(hostname)" "$*"; }
die() { printf '!!! [%s] %s\n' "$(hostname)" "$*" >&2; exit 1; }

# retry SECONDS INTERVAL COMMAND...: run COMMAND until it succeeds; fail once SECONDS have passed.
retry() {
  local deadline=$((SECONDS + $1)) interval=$2
  shift 2
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep "$interval"
  done
}

# The deploy manifests with the lab's API server address and pod network written in.
lab_manifest() {
  sed -e "s#$SHIPPED_SERVER#https://$CONTROL_PLANE_IP:6443#" -e "s#$SHIPPED_POD_CIDR#$POD_CIDR#" "$1"
}
