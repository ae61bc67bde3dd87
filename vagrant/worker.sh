#!/usr/bin/env bash
# A worker: wait for the control plane's API server, then kubeadm join. proxyctl's DaemonSet (and
# flannel's) start on the node as soon as it has joined; the image is already in containerd.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

if [ -f /etc/kubernetes/kubelet.conf ]; then
  log "already joined"
  exit 0
fi
log "waiting for the API server at $CONTROL_PLANE_IP:6443"
retry 1800 10 curl -ksf --max-time 5 "https://$CONTROL_PLANE_IP:6443/readyz" >/dev/null \
  || die "the control plane's API server did not become ready"
join() {
  # A lab on a host-only network: the token is checked, the CA is taken on trust.
  kubeadm join "$CONTROL_PLANE_IP:6443" --token="$JOIN_TOKEN" --discovery-token-unsafe-skip-ca-verification \
    --node-name="$(hostname)" || { kubeadm reset --force >/dev/null 2>&1; return 1; }
}
log "kubeadm join"
retry 900 15 join || die "kubeadm join kept failing"
log "joined"
