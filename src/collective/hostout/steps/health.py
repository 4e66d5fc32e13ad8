"""The health check: after post-commands, deploy waits until the app answers.

``healthcheck`` is an http(s) URL fetched *on the server* (by the venv's Python and urllib: a
bare server has no curl), or a shell command run there as the buildout user in ``path``.
It is retried every second until it passes or ``healthcheck-timeout`` seconds have gone;
the whole wait is one remote command. A URL passes with a 2xx or 3xx answer; a command with
exit status 0. What it answered last comes back for the report or the error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ..commands.context import Context
from ..shell import Account, RemoteCommand, last_line, q

#: Fetch a URL until it answers 2xx/3xx or the time is up; print the last answer.
URL_PY = r"""
import sys, time, urllib.error, urllib.request
url, limit = sys.argv[1], float(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
deadline = time.monotonic() + limit
while True:
    try:
        with opener.open(url, timeout=max(1.0, min(10.0, deadline - time.monotonic()))) as r:
            print('HTTP %s %s' % (r.status, r.reason))
            sys.exit(0)
    except urllib.error.HTTPError as err:
        body = ' '.join(err.read(300).decode('utf-8', 'replace').split())
        last = 'HTTP %s %s%s' % (err.code, err.reason, (': ' + body[:120]) if body else '')
    except Exception as err:
        last = str(getattr(err, 'reason', '') or err) or type(err).__name__
    if time.monotonic() >= deadline:
        print(last)
        sys.exit(1)
    time.sleep(1)
"""


@dataclass(frozen=True)
class Health:
    ok: bool
    answer: str  # what the check said last: "HTTP 200 OK", "[Errno 111] Connection refused"
    seconds: float


def command(c: Context) -> RemoteCommand | None:
    """The remote command that waits for the health check (None when none is set)."""
    s = c.settings
    if s.healthcheck is None:
        return None
    limit = f"{s.healthcheck_timeout:g}"
    if s.healthcheck_url is not None:
        cmd = RemoteCommand.argv([str(s.layout.python), "-c", URL_PY, s.healthcheck_url,
                                  limit], account=Account.BUILDOUT, reads_only=True)
        return replace(cmd, label=f"fetch {s.healthcheck_url} every second until it answers "
                                  f"2xx/3xx, for up to {limit} s")
    script = "\n".join([
        f"deadline=$(( $(date +%s) + {int(s.healthcheck_timeout + 0.999)} ))",
        "while :; do",
        f"  out=$(sh -c {q(s.healthcheck)} 2>&1 </dev/null) && "
        "{ printf '%s\\n' \"${out:-exit 0}\" | tail -n 1; exit 0; }",
        "  rc=$?",
        "  if [ \"$(date +%s)\" -ge \"$deadline\" ]; then",
        "    printf '%s\\n' \"${out:-exit $rc}\" | tail -n 3; exit 1",
        "  fi",
        "  sleep 1",
        "done",
    ])
    # A command the user wrote may change things: a plan never runs it.
    return RemoteCommand(script, cwd=str(s.path), account=Account.BUILDOUT,
                         label=f"{s.healthcheck}  # every second until it exits 0, for up "
                               f"to {limit} s")


def what(c: Context) -> str:
    return c.settings.healthcheck or ""


def wait(c: Context) -> Health | None:
    """Run the health check until it passes or times out (None when none is set)."""
    cmd = command(c)
    if cmd is None:
        return None
    began = time.monotonic()
    res = c.remote.execute(cmd, warn=True, hide=True, echo=False)
    said = [line.strip() for line in res.stdout.splitlines() if line.strip()]
    if said:
        answer = said[-1] if res.ok else " / ".join(said[-3:])
    else:
        answer = last_line(res.stderr, f"exit {res.exited}")
    return Health(res.ok, " ".join(answer.split())[:300], time.monotonic() - began)
