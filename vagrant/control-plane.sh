#!/usr/bin/env bash
# The control plane: kubeadm init (without kube-proxy when proxyctl replaces it), proxyctl deployed
# from examples/deploy/, then flannel for the pod network. proxyctl goes first: flannel and CoreDNS
# reach the API server through the `kubernetes` Service, and without kube-proxy only proxyctl's
# rules make that ClusterIP answer.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

FLANNEL_VERSION=v0.28.4
export KUBECONFIG=/etc/kubernetes/admin.conf

if [ ! -f "$KUBECONFIG" ]; then
  skip=()
  if [ "$PROXYCTL_LAB_VARIANT" = replace ]; then
    skip=(--skip-phases=addon/kube-proxy)
  fi
  log "kubeadm init (${skip[*]:-with kube-proxy})"
  kubeadm init --apiserver-advertise-address="$NODE_IP" --pod-network-cidr="$POD_CIDR" \
    --token="$JOIN_TOKEN" --token-ttl=0 --node-name="$(hostname)" "${skip[@]}"
fi
install -d -o vagrant -g vagrant /home/vagrant/.kube
install -o vagrant -g vagrant -m 0600 "$KUBECONFIG" /home/vagrant/.kube/config

log "a bootstrap token for the smoke check (cluster-admin: this is a throwaway lab)"
if ! kubeadm token list | awk 'NR > 1 {print $1}' | grep -qx "$ADMIN_TOKEN"; then
  kubeadm token create "$ADMIN_TOKEN" --ttl=0 --usages=authentication \
    --groups=system:bootstrappers:proxyctl-lab-admin --description="proxyctl lab smoke check"
fi
kubectl create clusterrolebinding proxyctl-lab-admin --clusterrole=cluster-admin \
  --group=system:bootstrappers:proxyctl-lab-admin --dry-run=client -o yaml | kubectl apply -f -

log "proxyctl from $MANIFESTS"
for manifest in "$MANIFESTS"/*.yaml; do
  lab_manifest "$manifest" | kubectl apply -f -
done
kubectl -n kube-system rollout status "daemonset/$DAEMONSET" --timeout=10m

log "flannel $FLANNEL_VERSION on the lab network's interface, pod network $POD_CIDR"
iface=$(ip -o -4 addr show | awk -v ip="$NODE_IP" '{split($4, a, "/"); if (a[1] == ip) print $2}')
[ -n "$iface" ] || die "no interface holds $NODE_IP"
curl -fsSL "https://github.com/flannel-io/flannel/releases/download/$FLANNEL_VERSION/kube-flannel.yml" \
  | sed -e "s#10.244.0.0/16#$POD_CIDR#" -e "s#^\(\s*\)- --kube-subnet-mgr\$#&\n\1- --iface=$iface#" \
  >/var/tmp/kube-flannel.yml
grep -q -- "--iface=$iface" /var/tmp/kube-flannel.yml || die "could not point flannel at $iface"
kubectl apply -f /var/tmp/kube-flannel.yml
kubectl -n kube-flannel rollout status daemonset/kube-flannel-ds --timeout=10m
kubectl wait --for=condition=Ready "node/$(hostname)" --timeout=10m
log "control plane ready: vagrant ssh cp, then kubectl get pods -A"
