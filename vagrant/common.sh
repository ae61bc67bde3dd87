#!/usr/bin/env bash
# Every lab node, first: what kubeadm needs (no swap, br_netfilter, forwarding, containerd, kubelet,
# kubeadm, kubectl), proxyctl installed from the synced repository (pip install .), and proxyctl's
# image built from the repository's Containerfile and loaded into containerd, so that the DaemonSet
# of examples/deploy/ starts on this node without a registry.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

CONTAINERD_VERSION=2.2.1
RUNC_VERSION=1.3.0
ARCH=$(dpkg --print-architecture)

log "swap off, kernel modules and sysctls for Kubernetes"
swapoff -a
sed -i '/\sswap\s/ s/^\([^#]\)/# \1/' /etc/fstab
printf 'overlay\nbr_netfilter\n' >/etc/modules-load.d/kubernetes.conf
modprobe overlay
modprobe br_netfilter
cat >/etc/sysctl.d/90-kubernetes.conf <<'CONF'
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward = 1
CONF
sysctl --system >/dev/null

log "packages: the kernel tools proxyctl runs, python3-venv, CNI plugins, buildah"
apt-get update -qq
apt-get install -y -qq ca-certificates curl gpg iptables ipset nftables conntrack nfacct iproute2 kmod \
  socat python3-venv python3-pip containernetworking-plugins buildah >/dev/null

if [ "$(/usr/local/bin/containerd --version 2>/dev/null | awk '{print $3}')" != "v$CONTAINERD_VERSION" ]; then
  log "containerd $CONTAINERD_VERSION and runc $RUNC_VERSION"
  curl -fsSL "https://github.com/containerd/containerd/releases/download/v$CONTAINERD_VERSION/containerd-$CONTAINERD_VERSION-linux-$ARCH.tar.gz" \
    | tar -C /usr/local -xz
  curl -fsSL -o /usr/local/sbin/runc "https://github.com/opencontainers/runc/releases/download/v$RUNC_VERSION/runc.$ARCH"
  chmod 0755 /usr/local/sbin/runc
fi
mkdir -p /etc/containerd /opt/cni/bin
# Only what differs from containerd's defaults: runc under the systemd cgroup driver, as kubelet.
cat >/etc/containerd/config.toml <<'CONF'
version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
    SystemdCgroup = true
CONF
cat >/etc/systemd/system/containerd.service <<'UNIT'
[Unit]
Description=containerd container runtime
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
UNIT
# Debian's CNI plugins (bridge, portmap, host-local, loopback: what flannel delegates to) where
# containerd looks for them; flannel's own plugin is copied there by its DaemonSet.
for plugin in /usr/lib/cni/*; do
  ln -sf "$plugin" "/opt/cni/bin/$(basename "$plugin")"
done
systemctl daemon-reload
systemctl enable containerd >/dev/null 2>&1
systemctl restart containerd
printf 'runtime-endpoint: unix:///run/containerd/containerd.sock\n' >/etc/crictl.yaml

log "kubelet, kubeadm and kubectl $KUBERNETES_MINOR from pkgs.k8s.io"
install -d -m 0755 /etc/apt/keyrings
curl -fsSL "https://pkgs.k8s.io/core:/stable:/$KUBERNETES_MINOR/deb/Release.key" \
  | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/$KUBERNETES_MINOR/deb/ /" \
  >/etc/apt/sources.list.d/kubernetes.list
apt-get update -qq
apt-get install -y -qq kubelet kubeadm kubectl >/dev/null
apt-mark hold kubelet kubeadm kubectl >/dev/null
# The lab network's address, not the NAT interface's (the same 10.0.2.15 on every VirtualBox VM).
echo "KUBELET_EXTRA_ARGS=--node-ip=$NODE_IP" >/etc/default/kubelet
systemctl enable kubelet >/dev/null 2>&1

log "proxyctl from $REPO into /opt/proxyctl (pip install .)"
[ -x /opt/proxyctl/bin/python ] || python3 -m venv /opt/proxyctl
/opt/proxyctl/bin/python -m pip install -q --upgrade pip
/opt/proxyctl/bin/python -m pip install -q "$REPO"
# Again without its dependencies: a reprovisioned node gets the repository's current code.
/opt/proxyctl/bin/python -m pip install -q --force-reinstall --no-deps "$REPO"
ln -sf /opt/proxyctl/bin/proxyctl /usr/local/bin/proxyctl
proxyctl --version

log "image $IMAGE from $REPO/Containerfile, loaded into containerd"
buildah build --quiet --layers -f "$REPO/Containerfile" -t "$IMAGE" "$REPO" >/dev/null
rm -f /var/tmp/proxyctl-image.tar
buildah push --quiet "$IMAGE" "docker-archive:/var/tmp/proxyctl-image.tar:$IMAGE"
/usr/local/bin/ctr --namespace k8s.io images import /var/tmp/proxyctl-image.tar >/dev/null
rm -f /var/tmp/proxyctl-image.tar
/usr/local/bin/ctr --namespace k8s.io images ls -q | grep -qx "$IMAGE" || die "containerd does not list $IMAGE"
log "node prepared"
