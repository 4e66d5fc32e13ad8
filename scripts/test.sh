#!/usr/bin/env bash
# The one command that sets everything up and runs the tests:
#   bash scripts/test.sh [pytest arguments...]
# Makes .venv (with the package and its test extra), prepares podman and the test-host
# image (ci/setup-hosts.sh, needs root the first time), then runs pytest. No stdin needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]' </dev/null
bash ci/setup-hosts.sh </dev/null
# Two workers, a test file each (module fixtures share a host per file): the tests wait on
# hosts and builds as much as they compute. HOSTOUT_TEST_WORKERS=0 runs them in this process.
exec .venv/bin/python -m pytest -q -n "${HOSTOUT_TEST_WORKERS:-2}" --dist loadfile "$@" </dev/null
