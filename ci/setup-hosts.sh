#!/usr/bin/env bash
# Prepare this machine for the throwaway hosts: install podman & co. with apt (if missing),
# then build their image (collective.hostout.testing.image: a bare Debian server, sshd,
# sudo, no python) if missing. Idempotent; run as root. PYTHON names an interpreter where
# collective.hostout is installed (default: this checkout's .venv).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
export DEBIAN_FRONTEND=noninteractive

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

# Builds the image (about 30 s, needs root) unless it exists.
"$PYTHON" -m collective.hostout.testing image
# The base image of the image builds (bin/hostout PART docker; no registry here), likewise.
"$PYTHON" -m collective.hostout.testing image --base
