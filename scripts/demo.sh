#!/usr/bin/env bash
# Set up (venv, podman, the bare host image) and run the main job: deploy the example app to
# a throwaway local bare host and print its URL. `bash scripts/demo.sh --remove` cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="$PWD/ci/containers.conf"
export PIP_NO_BUILD_ISOLATION=0
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e . 2>&1 | grep -v "is ignored" || true
bash ci/setup-hosts.sh
exec .venv/bin/python scripts/demo.py "$@"
