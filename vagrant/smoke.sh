#!/usr/bin/env bash
# The lab's smoke check, run on the last worker once every node has been provisioned: every node
# Ready with proxyctl running, a Deployment and its Services (examples/deploy/smoke/web.yaml), curl
# from a pod to the Service, a NodePort from the node, and `proxyctl diff` on each node (inside that
# node's proxyctl pod: the node's own network namespace and the pod's credentials) exiting 0.
# Run it again with: vagrant provision worker-2 --provision-with smoke
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

CURL_IMAGE=docker.io/curlimages/curl:8.5.0
export KUBECONFIG=/root/.kube/proxyctl-lab-admin.conf

log "kubeconfig for the lab admin token"
install -d -m 0700 /root/.kube
kubectl config set-cluster lab --server="https://$CONTROL_PLANE_IP:6443" \
  --certificate-authority=/etc/kubernetes/pki/ca.crt --embed-certs >/dev/null
kubectl config set-credentials lab-admin --token="$ADMIN_TOKEN" >/dev/null
kubectl config set-context lab --cluster=lab --user=lab-admin >/dev/null
kubectl config use-context lab >/dev/null
retry 600 5 kubectl get --raw /readyz >/dev/null || die "cannot reach the API server with the lab admin token"

log "waiting for $NODE_COUNT Ready nodes, proxyctl on each, CoreDNS"
node_count() { [ "$(kubectl get nodes --no-headers 2>/dev/null | wc -l)" -eq "$NODE_COUNT" ]; }
retry 1200 10 node_count || die "expected $NODE_COUNT nodes: $(kubectl get nodes --no-headers | wc -l) registered"
kubectl wait --for=condition=Ready nodes --all --timeout=15m
kubectl -n kube-system rollout status "daemonset/$DAEMONSET" --timeout=10m
kubectl -n kube-system rollout status deployment/coredns --timeout=10m

log "a Deployment and its Services"
kubectl apply -f "$DEPLOY/smoke/web.yaml"
kubectl -n proxyctl-smoke rollout status deployment/web --timeout=10m
services=(web)
if [ "$PROXYCTL_LAB_VARIANT" = beside ]; then
  services+=(web-proxyctl)  # proxyctl's, while kube-proxy serves web
fi

log "curl from a pod to ${services[*]} (by DNS name: CoreDNS itself needs the kubernetes Service)"
kubectl -n proxyctl-smoke delete pod smoke-curl --ignore-not-found --wait=true >/dev/null
urls=()
for svc in "${services[@]}"; do
  urls+=("http://$svc.proxyctl-smoke.svc.cluster.local/hostname")
done
# shellcheck disable=SC2016  # $url expands in the pod's shell
answers=$(kubectl -n proxyctl-smoke run smoke-curl --image="$CURL_IMAGE" --restart=Never --rm -i --quiet \
  --pod-running-timeout=5m \
  --command -- sh -c 'for url in "$@"; do for i in 1 2 3 4 5 6; do curl -fsS --max-time 5 "$url" && echo; done; done' \
  sh "${urls[@]}")
echo "$answers"
expected=$((6 * ${#services[@]}))
[ "$(grep -c '^web-' <<<"$answers")" -eq "$expected" ] || die "expected $expected answers from web pods"
log "pods that answered: $(grep '^web-' <<<"$answers" | sort -u | tr '\n' ' ')"

for svc in "${services[@]}"; do
  port=$(kubectl -n proxyctl-smoke get service "$svc" -o jsonpath='{.spec.ports[0].nodePort}')
  for ip in "$NODE_IP" "$CONTROL_PLANE_IP"; do
    log "NodePort $ip:$port ($svc) from this node: $(curl -fsS --max-time 5 "http://$ip:$port/hostname")"
  done
done

log "proxyctl diff on each node"
# shellcheck disable=SC2016  # $NODE_NAME expands in the proxyctl container
diff_on_node() {
  kubectl -n kube-system exec "$1" -- sh -c \
    'exec proxyctl diff --from-cluster --config=/var/lib/proxyctl/config.conf --hostname-override="$NODE_NAME" "$@"' \
    sh ${PROXY_NAME_FLAG:+"$PROXY_NAME_FLAG"}
}
checked=0
while read -r pod node; do
  # A sync may be under way: the rules follow the API by up to minSyncPeriod. Quiet retries, then
  # one last run whose report is shown.
  if ! retry 60 5 diff_on_node "$pod" >/dev/null 2>&1 && ! diff_on_node "$pod"; then
    die "proxyctl diff found differences on $node"
  fi
  log "$node: proxyctl diff exited 0"
  checked=$((checked + 1))
done < <(kubectl -n kube-system get pods -l "k8s-app=$DAEMONSET" \
           -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}')
[ "$checked" -eq "$NODE_COUNT" ] || die "proxyctl diff ran on $checked nodes, not $NODE_COUNT"
log "smoke check passed: $PROXYCTL_LAB_VARIANT variant, $NODE_COUNT nodes"
