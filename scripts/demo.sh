#!/usr/bin/env bash
# Set up (venv, podman, the bare host image) and run the main job: deploy the example app to
# a throwaway local bare host and print its URL. `bash scripts/demo.sh --remove` cleans up.
# Works from a fresh clone, before or after scripts/test.sh. No stdin needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
# With build isolation (pip's default): a fresh venv's own setuptools (65 on Python 3.11) is
# too old to build this project (PEP 639 license); pip fetches a recent one to build with.
.venv/bin/pip install -q --disable-pip-version-check -e . </dev/null
bash ci/setup-hosts.sh </dev/null
exec .venv/bin/python scripts/demo.py "$@" </dev/null
