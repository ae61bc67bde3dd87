#!/usr/bin/env bash
# Runs the Containerfile's steps without a container builder, as closely as a chroot allows, then
# runs the installed proxyctl the way the DaemonSet's image would (docs/cluster.md, "The image").
#
# 1. debootstraps a minimal Debian bookworm root (variant minbase) into a temporary directory;
# 2. stands in for FROM python:3.11-slim-bookworm with Debian's own python3 and python3-venv:
#    bookworm's python3 is 3.11 too (3.11.2, where the image has the newest 3.11 built into
#    /usr/local). Debian's pip refuses to install into the system Python (PEP 668,
#    "externally-managed-environment"), which the image's pip does not, so a venv at /opt/venv is
#    put first on PATH: `pip` and `proxyctl` in the Containerfile's RUN lines are the venv's;
# 3. reads the Containerfile at run time and replays it in the chroot: every RUN verbatim (so the
#    same apt-get line and the same check that both iptables backends' tools exist), ENV, WORKDIR,
#    and COPY from this checkout (without what .dockerignore drops: __pycache__, *.pyc). An
#    instruction or flag this script does not know stops it, rather than being skipped;
# 4. runs in the chroot, in a network namespace of its own (nothing is discovered or programmed):
#    `proxyctl --version`, the tools' versions, `proxyctl config validate --strict` on the
#    KubeProxyConfiguration of each ConfigMap in examples/deploy/, `proxyctl compile` of the
#    examples with an explicit --node-facts file, and the ENTRYPOINT with --help (`proxyctl run
#    --help`).
#
# What it cannot show: the real base image (its Python build, its packages), an actual image build
# (layers, the build context as a builder sends it), or the image running as a DaemonSet.
#
# Needs root and the network: Debian's mirror and PyPI, about 200 MB. Installs debootstrap with
# apt-get if missing; changes nothing else on the host: everything else happens in a temporary
# directory, removed at the end, also on failure. Not part of the test suite or CI for that reason.
#
#   sudo scripts/check-image-steps.sh
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR
# (default http://deb.debian.org/debian-security), TMPDIR (where the root goes; default /var/tmp).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
containerfile=$repo/Containerfile
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
base_image=docker.io/library/python:3.11-slim-bookworm
venv=/opt/venv
chroot_path=$venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf '== %s\n' "$*"; }
die() { printf 'check-image-steps: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap and chroot need it)"
[[ -f $containerfile ]] || die "no Containerfile at $containerfile"

# --- the temporary root, and its removal whatever happens --------------------------------------
workdir=
root=
mounts_under_root() {
    # Mount points at or below $root, deepest first (/proc/self/mounts escapes spaces; mktemp's
    # names have none).
    awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
cleanup() {
    local status=$? mnt left
    trap - EXIT INT TERM
    if [[ -n $workdir && -d $workdir ]]; then
        while read -r mnt; do
            [[ -n $mnt ]] && { umount "$mnt" 2>/dev/null || umount -l "$mnt" || true; }
        done < <(mounts_under_root)
        left=$(mounts_under_root)
        if [[ -n $left ]]; then
            printf 'check-image-steps: still mounted, %s NOT removed:\n%s\n' "$workdir" "$left" >&2
            status=1
        else
            rm -rf --one-file-system "$workdir"
            say "removed $workdir"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS

# --- debootstrap --------------------------------------------------------------------------------
if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap on the host (apt-get)"
    apt-get install -y --no-install-recommends debootstrap \
        || { apt-get update && apt-get install -y --no-install-recommends debootstrap; }
fi

workdir=$(mktemp -d -p "${TMPDIR:-/var/tmp}" proxyctl-image-steps.XXXXXX)
root=$workdir/root
mkdir "$root"

say "debootstrap --variant=minbase $suite into $root ($mirror)"
# ca-certificates, python3, python3-venv: the stand-in for python:3.11-slim-bookworm (which has
# ca-certificates too).
debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv \
    "$suite" "$root" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
    || { tail -n 30 "$workdir/debootstrap.log" >&2; die "debootstrap failed"; }
[[ -z $(mounts_under_root) ]] || die "debootstrap left mounts under $root"

# The image's apt sources: bookworm, bookworm-updates and bookworm-security.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
# No package's maintainer script may start a service (they would run in the host's namespaces).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

# The chroot's environment: nothing from the host's but what is set here (and the Containerfile's
# ENV, added below).
chroot_env=(PATH="$chroot_path" HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
# The host's network setup, where it has one: its proxy variables, and the certificate authorities
# it added locally (a TLS-inspecting proxy's), which pip then trusts through Debian's bundle
# (it would otherwise use its own certifi bundle only).
for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -z ${!name:-} ]] || chroot_env+=("$name=${!name}")
done
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null
    chroot_env+=(PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
    say "the host's local CAs added: $(cd /usr/local/share/ca-certificates && echo ./*.crt)"
fi
in_root() { chroot "$root" /usr/bin/env -i "${chroot_env[@]}" "$@"; }
# The same, in a new, empty network namespace: whatever it runs cannot see or change the host's.
in_root_isolated() { unshare --net chroot "$root" /usr/bin/env -i "${chroot_env[@]}" "$@"; }

say "FROM $base_image, stood in for by Debian $(cat "$root/etc/debian_version")'s $(in_root python3 --version)"
in_root python3 -m venv "$venv"
in_root pip --version

# /proc is not mounted in the chroot: nothing below needs it (debootstrap mounts and unmounts its
# own while it installs). Should anything stay mounted under the root, the root is not removed.

# --- the Containerfile, replayed ----------------------------------------------------------------
# Logical instructions, one a line: comment lines dropped (also inside a continued instruction,
# as the builders do), backslash-continued lines joined as the builders join them.
instructions=$(awk '
    /^[[:space:]]*#/ { next }
    /^[[:space:]]*$/ { next }
    {
        line = $0
        if (line ~ /\\[[:space:]]*$/) { sub(/\\[[:space:]]*$/, "", line); cur = cur line; next }
        print cur line; cur = ""
    }
    END { if (cur != "") print cur }
' "$containerfile")

# What a RUN may not do here: program netfilter, load modules, set sysctls, or run proxyctl against
# a node (the RUNs run in the host's network namespace: they need the network for apt and pip).
# Looked for at a command's position; `--version` is allowed.
forbidden='(^|[;&|({]|\$\(|(then|do|else)[[:space:]])[[:space:]]*(iptables[a-z-]*|ip6tables[a-z-]*|ebtables|arptables|nft|ipset|conntrack|nfacct|ip|tc|modprobe|insmod|rmmod|sysctl|proxyctl[[:space:]]+(run|apply|cleanup|lab|diff|trace))([[:space:]]+[^-[:space:]]|[[:space:]]+-[^-]|[[:space:]]+--[^v]|[[:space:]]*$|[[:space:]]*[;&|)])'

workdir_in_root=/
entrypoint=()
froms=0
packages=()
while IFS= read -r instruction; do
    keyword=${instruction%%[[:space:]]*}
    args=${instruction#"$keyword"}
    args=${args#"${args%%[![:space:]]*}"}
    case ${keyword^^} in
        FROM)
            froms=$((froms + 1))
            [[ $froms -eq 1 && $args == "$base_image" ]] \
                || die "FROM $args: this script stands in for $base_image only, in one stage; update it"
            ;;
        ENV)
            read -r -a words <<<"$args"
            for word in "${words[@]}"; do
                [[ $word =~ ^[A-Za-z_][A-Za-z0-9_]*=[^\"\'\$]*$ ]] \
                    || die "ENV $args: only unquoted NAME=value pairs are handled; update this script"
                chroot_env+=("$word")
            done
            say "ENV $args"
            ;;
        WORKDIR)
            [[ $args == /* ]] || die "WORKDIR $args: only absolute paths are handled"
            workdir_in_root=$args
            mkdir -p "$root$workdir_in_root"
            say "WORKDIR $args"
            ;;
        COPY)
            [[ $args != -* ]] || die "COPY $args: flags are not handled; update this script"
            read -r -a words <<<"$args"
            [[ ${#words[@]} -ge 2 ]] || die "COPY $args: needs a source and a destination"
            dest=${words[-1]}
            unset 'words[-1]'
            [[ $dest == /* ]] || dest=$workdir_in_root/$dest
            for src in "${words[@]}"; do
                [[ $src != /* && $src != *..* && -e $repo/$src ]] || die "COPY: no $src in $repo"
                if [[ -d $repo/$src ]]; then
                    mkdir -p "$root$dest"
                    cp -a "$repo/$src/." "$root$dest/"
                elif [[ $dest == */ || ${#words[@]} -gt 1 ]]; then
                    mkdir -p "$root$dest"
                    cp -a "$repo/$src" "$root$dest/"
                else
                    mkdir -p "$(dirname "$root$dest")"
                    cp -a "$repo/$src" "$root$dest"
                fi
            done
            # What .dockerignore keeps out of the build context.
            find "$root$workdir_in_root" -name __pycache__ -type d -prune -exec rm -rf {} +
            find "$root$workdir_in_root" -name '*.pyc' -type f -delete
            say "COPY $args"
            ;;
        RUN)
            [[ $args != -* ]] || die "RUN $args: flags (--mount, --network, ...) are not handled"
            [[ $args != \[* ]] || die "RUN $args: the exec form is not handled"
            [[ $args != *'<<'* ]] || die "RUN $args: heredocs are not handled"
            if grep -Eq "$forbidden" <<<"$args"; then
                die "RUN $args: would program the host's netfilter, modules or sysctls; not run here"
            fi
            rest=$args
            while [[ $rest =~ apt-get[[:space:]]+install[[:space:]]+([^&;|]*)(.*) ]]; do
                read -r -a words <<<"${BASH_REMATCH[1]}"
                for word in "${words[@]}"; do [[ $word == -* ]] || packages+=("$word"); done
                rest=${BASH_REMATCH[2]}
            done
            say "RUN $args"
            run_start=$SECONDS
            # As the builders do: /bin/sh -c '<the line>' in the WORKDIR.
            # shellcheck disable=SC2016  # $1 and $2 are the inner shell's
            in_root /bin/sh -c 'cd "$1" || exit; eval "$2"' sh "$workdir_in_root" "$args" \
                || die "this RUN failed (above)"
            say "RUN done in $((SECONDS - run_start)) s"
            ;;
        ENTRYPOINT)
            [[ $args =~ ^\[[[:space:]]*\"[^\"]+\"([[:space:]]*,[[:space:]]*\"[^\"]*\")*[[:space:]]*\]$ ]] \
                || die "ENTRYPOINT $args: only the exec form of plain strings is handled"
            mapfile -t entrypoint < <(grep -o '"[^"]*"' <<<"$args" | sed 's/^"//; s/"$//')
            say "ENTRYPOINT ${entrypoint[*]}"
            ;;
        *)
            die "$keyword: an instruction this script does not handle; update it"
            ;;
    esac
done <<<"$instructions"

[[ ${#packages[@]} -gt 0 ]] || die "found no apt-get install line in the Containerfile"
[[ ${#entrypoint[@]} -gt 0 ]] || die "found no ENTRYPOINT in the Containerfile"

# --- proxyctl in the image ----------------------------------------------------------------------
say "the packages of the Containerfile's apt-get install lines, at the end"
for package in "${packages[@]}"; do
    # shellcheck disable=SC2016  # dpkg-query's own ${field} syntax
    state=$(in_root dpkg-query -W -f '${db:Status-Status} ${Version}' "$package" 2>/dev/null) || state=
    [[ $state == installed\ * ]] || state="not installed (removed again, or never)"
    printf '   %s %s\n' "$package" "${state#installed }"
done
say "tools"
for tool in iptables-nft iptables-legacy ip6tables-nft ip6tables-legacy; do
    in_root_isolated "$tool" --version | sed "s/^/   $tool: /"
done
in_root_isolated nft --version | sed 's/^/   /'
in_root_isolated ipset --version | sed 's/^/   /'
in_root_isolated conntrack --version | sed 's/^/   /'
in_root_isolated ip -V | sed 's/^/   /'
in_root_isolated modprobe --version | sed -n 1p | sed 's/^/   /'
in_root_isolated python --version | sed 's/^/   /'
[[ ! -e $root/src ]] || die "/src is still there: the Containerfile removes it after pip install"

say "proxyctl --version"
in_root_isolated proxyctl --version
# python-iptables loads the C extension pip built (libxtwrapper) and libiptc/libxtables on import.
say "python-iptables (libiptc, for reading legacy tables)"
in_root_isolated python -c 'import iptc, iptc.version; print("   python-iptables", iptc.version.__version__, "imports")'

# A command in the chroot's directory $check, in a network namespace of its own.
# shellcheck disable=SC2016  # $1 and $@ are the inner shell's
in_check() { in_root_isolated sh -c 'cd "$1" && shift && exec "$@"' sh "$check" "$@"; }

# Checked from a directory of its own, never /src (the image has none).
check=/tmp/proxyctl-check
mkdir -p "$root$check"
cp -a "$repo/examples" "$root$check/"

# Each ConfigMap's KubeProxyConfiguration (data.config.conf), with the image's PyYAML.
say "ConfigMaps' config.conf in examples/deploy/"
in_root_isolated python - "$check" <<'EOF'
import pathlib, sys, yaml
check = pathlib.Path(sys.argv[1])
for manifest in sorted((check / "examples" / "deploy").glob("*/*.yaml")):
    for doc in yaml.safe_load_all(manifest.read_text()):
        if doc and doc.get("kind") == "ConfigMap" and "config.conf" in doc.get("data", {}):
            out = check / f"{manifest.parent.name}.conf"
            out.write_text(doc["data"]["config.conf"])
            print(f"   {manifest.relative_to(check)} {doc['metadata']['name']} -> {out}")
EOF
configs=()
for conf in "$root$check"/*.conf; do
    [[ -e $conf ]] || die "no ConfigMap with a config.conf in examples/deploy/"
    configs+=("$check/${conf##*/}")
done

for conf in "${configs[@]}"; do
    say "proxyctl config validate --strict $conf"
    in_check proxyctl config validate --strict "$conf"
done

facts=examples/demo/node.yaml
compile() {
    local out lines
    say "proxyctl compile $*"
    out=$(in_check proxyctl compile "$@") \
        || die "proxyctl compile $* failed"
    lines=$(wc -l <<<"$out")
    if ! grep -qx '\*nat' <<<"$out" || ! grep -qx 'COMMIT' <<<"$out" || ! grep -q '^-A KUBE-SERVICES ' <<<"$out"
    then
        die "proxyctl compile $*: no *nat table, COMMIT or KUBE-SERVICES rule in its output"
    fi
    printf '   %s lines, %s rules, %s KUBE-SVC- chains\n' "$lines" "$(grep -c '^-A ' <<<"$out")" \
        "$(grep -c '^:KUBE-SVC-' <<<"$out")"
}
compile -f examples/demo/cluster.yaml --config examples/demo/kube-proxy-config.yaml --node-facts "$facts"
for conf in "${configs[@]}"; do
    compile -f examples/demo/cluster.yaml --config "$conf" --node-facts "$facts"
done
compile -f examples/lab/cluster.yaml --config examples/lab/kube-proxy-config.yaml --node-facts "$facts" \
    --ip-family IPv4

say "ENTRYPOINT --help: ${entrypoint[*]} --help"
in_root_isolated "${entrypoint[@]}" --help | sed -n 1,5p

say "all the Containerfile's steps ran; $((SECONDS - start)) s"
