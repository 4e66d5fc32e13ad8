#!/usr/bin/env bash
# Prepare this machine to run the test hosts: install podman & co. (if missing) and
# build the image localhost/hostout-bare:bookworm (if missing). Idempotent; run as root.
#
# The image is a bare Debian server as a deployment target finds it: sshd, sudo,
# CA certificates, NO python. User deploy/deploypw may sudo after giving its password.
# Host keys are generated when a container starts, so every container has its own.
set -euo pipefail

CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$CI_DIR/containers.conf"
export DEBIAN_FRONTEND=noninteractive

IMAGE=localhost/hostout-bare:bookworm
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
INCLUDE=openssh-server,sudo,ca-certificates
CACHE=/var/cache/hostout-tests
CONTROLLER_CA=/etc/ssl/certs/ca-certificates.crt

missing=()
# openssh-client: ssh-keygen for the tests' ssh_key fixture.
for pkg in podman runc debootstrap openssh-client; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
# hostout ships Debian packages to servers that cannot reach a mirror; that needs this
# machine's package lists (a fresh machine has none).
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    apt-get update -qq
fi
if ((${#missing[@]})); then
    echo "setup-hosts: installing ${missing[*]}"
    apt-get update -qq
    # With recommends: that brings netavark, aardvark-dns and iptables (bridge networking).
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if podman image exists "$IMAGE"; then
    exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # concurrent runs: one builds, the others wait
if podman image exists "$IMAGE"; then
    exit 0
fi

# The finished root filesystem is cached, keyed by this script and the CA bundle:
# rebuilding after `podman rmi` is a plain import; downloaded .debs are kept too.
key=$(cat "${BASH_SOURCE[0]}" "$CONTROLLER_CA" | sha256sum | cut -c1-12)
ROOTFS_TAR="$CACHE/hostout-bare-$SUITE-$key.tar"

if [[ ! -s $ROOTFS_TAR ]]; then
    ROOT=$(mktemp -d "$CACHE/root.XXXXXX")
    trap 'rm -rf "$ROOT"' EXIT
    mkdir -p "$CACHE/debs"
    echo "setup-hosts: debootstrap $SUITE"
    debootstrap --foreign --variant=minbase --include="$INCLUDE" --cache-dir="$CACHE/debs" \
        "$SUITE" "$ROOT" "$MIRROR" >/dev/null
    # Like Debian's official container images: no docs, man pages or translations,
    # now and for whatever apt installs later (smaller image, faster installs).
    cat >"$ROOT/etc/dpkg/dpkg.cfg.d/hostout-nodoc" <<EOF
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    echo force-unsafe-io >"$ROOT/etc/dpkg/dpkg.cfg.d/unsafe-io" # build only: no fsyncs
    chroot "$ROOT" /debootstrap/debootstrap --second-stage >/dev/null
    rm "$ROOT/etc/dpkg/dpkg.cfg.d/unsafe-io"
    find "$ROOT/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
    rm -rf "$ROOT"/usr/share/{man,info,locale}/* "$ROOT"/var/lib/apt/lists/* \
        "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb

    cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
    # The controller's CA bundle: pip inside the host must trust what the controller trusts.
    install -D -m 644 "$CONTROLLER_CA" "$ROOT/usr/local/share/ca-certificates/controller.crt"
    install -m 644 "$CONTROLLER_CA" "$ROOT/etc/ssl/certs/ca-certificates.crt"

    chroot "$ROOT" useradd --create-home --shell /bin/bash --groups sudo deploy
    echo 'deploy:deploypw' | chroot "$ROOT" chpasswd
    chroot "$ROOT" passwd --lock root >/dev/null

    cat >"$ROOT/etc/ssh/sshd_config.d/hostout-tests.conf" <<EOF
PermitRootLogin no
PasswordAuthentication yes
EOF
    rm -f "$ROOT"/etc/ssh/ssh_host_* # generated per container, at start
    mkdir -p "$ROOT/run/sshd"

    rm -f "$CACHE"/hostout-bare-*.tar
    tar -C "$ROOT" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
fi

podman import --quiet \
    --change 'CMD ["/bin/sh", "-c", "mkdir -p /run/sshd && ssh-keygen -A && exec /usr/sbin/sshd -D -e"]' \
    --change 'EXPOSE 22' \
    "$ROOTFS_TAR" "$IMAGE" >/dev/null
echo "setup-hosts: built $IMAGE"
