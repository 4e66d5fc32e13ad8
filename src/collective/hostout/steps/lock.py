"""The deploy lock on the server: deploy, rollback, buildout and bootstrap take it.

The lock is a file, ``path.hostout/lock``, saying who holds it, from which machine, since
when, for what, and which SSH connection on the server serves the holder (the pid and start
time of its sshd process). Every operation on it runs under ``flock`` of
``path.hostout/lock.guard``, so taking, refreshing and releasing never race.

A holder that is gone never blocks for long:

* its connection is gone (Ctrl-C, a killed process, a cut connection: sshd notices the
  closed TCP connection and exits): the lock is stale at once;
* its connection hangs on (a network that silently dropped, a suspended laptop): the holder
  refreshes the lock's mtime every ``lock-timeout / 6`` seconds from a heartbeat thread; a
  lock not refreshed for ``lock-timeout`` seconds (default 30) is stale.

A stale lock is taken over (with a warning naming its holder). A holder that finds its lock
taken over stops before its next switch (:meth:`HeldLock.checkpoint`). ``unlock`` removes a
lock explicitly. On Ctrl-C the runner releases every held lock (:func:`interrupt`), after
letting a switch in progress finish.

The lock is taken as the buildout user; where that user cannot (a bare host, or the first
release-layout deploy, whose ``path.hostout`` must be made by root) as root through sudo.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..commands.context import Context
from ..errors import (
    HostoutError,
    Interrupted,
    LockHeld,
    LockLost,
    NotBootstrapped,
)
from ..output import Output
from ..remote.base import Result
from ..shell import Account, RemoteCommand, q
from . import history
from .history import HistoryEntry, utc

#: Exit statuses of the lock scripts.
HELD, CANNOT, BUSY = 3, 4, 5
#: The lock file's text for a holder whose session is unknown (a container, a console).
NO_SESSION = ""
#: How long Ctrl-C lets a switch in progress (pre-commands .. post-commands) finish.
CRITICAL_WAIT = 60.0

#: Shell function printing "PID STARTTIME" of the sshd process serving this connection.
SESSION_SH = r"""session() {
  p=$$
  while [ "${p:-0}" -gt 1 ]; do
    case "$(cat /proc/$p/comm 2>/dev/null)" in
      sshd*) printf '%s %s' "$p" "$(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f20)"; return 0;;
    esac
    p=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f2)
  done
}"""

#: Shell function: is the holder of ./lock still there? (sets $age: seconds since its
#: last heartbeat)
ALIVE_SH = r"""alive() {
  age=$(( $(date +%s) - $(stat -c %Y lock) ))
  set -- $(sed -n 's/^session //p' lock)
  if [ -n "${1:-}" ]; then
    [ "$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f20)" = "${2:-}" ] || return 1
  fi
  ttl=$(sed -n 's/^stale-after //p' lock)
  [ "$age" -le "${ttl:-30}" ]
}"""


def _guard(state: str) -> str:
    """Shell text: cd into the state directory and hold its guard (exit 4: cannot)."""
    return "\n".join([
        f"cd {state} 2>/dev/null || exit {CANNOT}",
        f"[ -e lock.guard ] || : >> lock.guard 2>/dev/null || exit {CANNOT}",
        f"[ -r lock.guard ] || exit {CANNOT}",
        "exec 9< lock.guard",
        f"flock -w 10 9 || exit {BUSY}",
    ])


#: Shell text: as root, give what the scripts wrote to the state directory's owner.
_OWN = ('[ "$(id -u)" != 0 ] || chown "$(stat -c %u:%g .)" lock.guard lock history.jsonl '
        '2>/dev/null')


@dataclass(frozen=True)
class LockRecord:
    """What the lock file says."""

    token: str
    who: str
    origin: str  # the machine
    command: str
    since: str  # UTC, ISO 8601
    pid: int  # of bin/hostout on its machine
    stale_after: int  # seconds without a heartbeat
    session: str = NO_SESSION  # "PID STARTTIME" of the holder's sshd on the server
    age: int | None = None  # seconds since the last heartbeat (as the server read it)

    @classmethod
    def new(cls, command: str, stale_after: float) -> LockRecord:
        return cls(uuid.uuid4().hex, history.who(), history.machine(), command,
                   utc(time.time()), os.getpid(), max(1, round(stale_after)))

    def text(self) -> str:
        """The lock file's lines (the server adds ``session``)."""
        return "\n".join([f"token {self.token}", f"who {self.who}", f"from {self.origin}",
                          f"command {self.command}", f"since {self.since}",
                          f"pid {self.pid}", f"stale-after {self.stale_after}"])

    @classmethod
    def parse(cls, text: str) -> LockRecord | None:
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, _, value = line.strip().partition(" ")
            fields.setdefault(key, value.strip())
        if "token" not in fields:
            return None
        return cls(fields["token"], fields.get("who", "?"), fields.get("from", "?"),
                   fields.get("command", "?"), fields.get("since", "?"),
                   _int(fields.get("pid")) or 0, _int(fields.get("stale-after")) or 30,
                   fields.get("session", ""), _int(fields.get("age")))

    def describe(self) -> str:
        """``alice@laptop (deploy since 2026-12-07T10:15:22Z, pid 4242)``"""
        return (f"{self.who}@{self.origin} ({self.command} since {self.since}, "
                f"pid {self.pid})")


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass
class LockState:
    """Per host: how long to wait for a held lock (``--lock-wait``), and the lock held."""

    wait: float = 0.0
    held: HeldLock | None = None


class HeldLock:
    """The lock this run holds on one host, its heartbeat, and the history entry it writes
    when released."""

    def __init__(self, c: Context, record: LockRecord, account: Account, sudo: bool) -> None:
        self.c = c
        self.record = record
        self.account = account
        self.sudo = sudo
        self.entry = HistoryEntry(record.command, c.name, record.who, record.origin)
        self.depth = 1  # nested commands (deploy > buildout) share it
        self.lost: str | None = None  # who took it over, once the heartbeat found out
        self.interrupted = threading.Event()
        self.calm = threading.Event()  # set while no switch is in progress
        self.calm.set()
        self._critical = 0
        self._mutex = threading.Lock()
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def released(self) -> bool:
        return self._released

    def command(self, script: str, label: str) -> RemoteCommand:
        return RemoteCommand(script, account=self.account, sudo=self.sudo, label=label)

    # -- heartbeat ---------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        interval = max(1.0, self.record.stale_after / 6)
        self._thread = threading.Thread(target=self._beat, args=(interval,), daemon=True,
                                        name=f"hostout-lock-{self.c.name}")
        self._thread.start()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if not self.refresh():
                    return
            except Exception:  # the connection is in trouble: the main thread will see it
                continue

    def refresh(self) -> bool:
        """Touch the lock if it is still ours; False (and ``lost`` set) if it is not."""
        state = q(self.c.settings.layout.state)
        script = "\n".join([
            _guard(state),
            f"[ \"$(sed -n 's/^token //p' lock 2>/dev/null)\" = {q(self.record.token)} ] || "
            f"{{ echo lost; cat lock 2>/dev/null; exit {HELD}; }}",
            "touch lock",
        ])
        res = self.c.remote.execute(self.command(script, f"refresh the lock in {state}"),
                                    warn=True, hide=True, echo=False)
        if res.exited == HELD:
            taker = LockRecord.parse(res.stdout.partition("lost")[2])
            self.lost = taker.describe() if taker else "nobody (it was removed)"
            return False
        return True

    # -- what steps ask ------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Raise if the run was interrupted, or the lock lost: before anything is switched."""
        if self.interrupted.is_set():
            raise Interrupted("interrupted; the lock was released", host=self.c.name)
        if self.lost is not None:
            raise LockLost(f"the lock went stale (no heartbeat for {self.record.stale_after} s)"
                           f" and was taken by {self.lost}; stopped before switching",
                           host=self.c.name)

    @contextmanager
    def critical(self) -> Iterator[None]:
        """pre-commands .. switch .. post-commands: Ctrl-C waits for this to finish. Entered
        only with the lock still ours (asked of the server, not only of the heartbeat)."""
        self.checkpoint()
        if not self._critical:
            self.refresh()
            self.checkpoint()
        with self._mutex:
            self._critical += 1
            self.calm.clear()
        try:
            yield
        finally:
            with self._mutex:
                self._critical -= 1
                if not self._critical:
                    self.calm.set()

    # -- release -------------------------------------------------------------------------------
    def release(self, result: str | None = None, error: str | None = None) -> bool:
        """Append the history entry and remove the lock (once; thread safe). False when the
        lock was no longer ours."""
        with self._mutex:
            if self._released:
                return True
            self._released = True
        self._stop.set()
        entry = self.entry
        if result is not None:
            entry.result = result
        if error is not None:
            entry.error = error
        entry.seconds = round(time.time() - entry.started, 1)
        state = q(self.c.settings.layout.state)
        script = "\n".join([
            "umask 007",
            _guard(state),
            history.append_line(entry),
            f"if [ \"$(sed -n 's/^token //p' lock 2>/dev/null)\" = {q(self.record.token)} ]; "
            "then rm -f lock; else echo lost; fi",
            _OWN,
            "exit 0",
        ])
        label = f"release the lock in {state}; history: {entry.result}"
        res = self.c.remote.execute(self.command(script, label), warn=True, hide=True,
                                    echo=False)
        if not res.ok:
            raise HostoutError(f"could not release the lock in {self.c.settings.layout.state}"
                               f" (exit {res.exited}); it goes stale {self.record.stale_after}"
                               f" s after this run, or run 'bin/hostout {self.c.name} unlock'",
                               host=self.c.name)
        return "lost" not in res.stdout.split()


# -- taking it ---------------------------------------------------------------------------------
def acquire(c: Context, what: str) -> HeldLock:
    """Take the lock for ``what``, waiting up to ``--lock-wait`` seconds for another holder;
    LockHeld naming the holder if it is still held."""
    record = LockRecord.new(what, c.settings.lock_timeout)
    wait = c.state(LockState).wait
    deadline = time.monotonic() + wait
    said = False
    while True:
        account, sudo, result = _try(c, record)
        if result.exited == 0:
            break
        holder = LockRecord.parse(result.stdout)
        left = deadline - time.monotonic()
        if left <= 0:  # refused: nothing was written (not even history)
            raise LockHeld(_held_message(c, holder, wait), host=c.name)
        if not said:
            c.out.line(c.name, f"waiting up to {wait:g} s for the lock held by "
                       + (holder.describe() if holder else "another run"))
            said = True
        time.sleep(min(2.0, left))
    held = HeldLock(c, record, account, sudo)
    stale = [line.removeprefix("stale ") for line in result.stdout.splitlines()
             if line.startswith("stale ")]
    if stale:
        old = LockRecord.parse("\n".join(stale))
        c.warn(f"took over a stale lock of {old.describe() if old else 'an unknown holder'}"
               " (its connection or its heartbeat was gone)")
    held.start_heartbeat()
    return held


def _held_message(c: Context, holder: LockRecord | None, wait: float) -> str:
    who = holder.describe() if holder else "another run (its guard stayed busy)"
    waited = f" after waiting {wait:g} s" if wait else ""
    beat = f"; last heartbeat {holder.age} s ago" if holder and holder.age is not None else ""
    return (f"locked by {who}{beat}{waited}; try again later, wait with --lock-wait "
            f"SECONDS, or if that run is gone: bin/hostout {c.name} unlock")


def _try(c: Context, record: LockRecord) -> tuple[Account, bool, Result]:
    """One attempt, as the buildout user, else (it cannot log in, or cannot write the state
    directory) as root."""
    cmd = RemoteCommand(_acquire_script(c, record), account=Account.BUILDOUT,
                        label=f"take the lock in {c.settings.layout.state} ({record.command})")
    try:
        res = c.remote.execute(cmd, warn=True, hide=True, echo=False)
        if res.exited != CANNOT:
            return Account.BUILDOUT, False, _checked(c, res)
    except NotBootstrapped:
        pass
    cmd = replace(cmd, account=Account.LOGIN, sudo=True)
    try:
        res = c.remote.execute(cmd, warn=True, hide=True, echo=False)
    except HostoutError as err:
        raise type(err)(f"taking the lock in {c.settings.layout.state} needs root here (the "
                        f"buildout user cannot write it yet): {err.message}", host=c.name,
                        cause=err) from err
    return Account.LOGIN, True, _checked(c, res)


def _checked(c: Context, res: Result) -> Result:
    if res.exited not in (0, HELD, BUSY):
        err = res.stderr.strip().splitlines()
        raise HostoutError(f"cannot take the lock in {c.settings.layout.state} (exit "
                           f"{res.exited}{': ' + err[-1] if err else ''})", host=c.name)
    return res


def _acquire_script(c: Context, record: LockRecord) -> str:
    state, path = q(c.settings.layout.state), q(c.settings.layout.path)
    return "\n".join([
        # made here (as root, on a server whose buildout user cannot): it belongs to path's
        # owner, the buildout user, as bootstrap would have made it
        f"umask 022; [ -d {state} ] || {{ mkdir -p {state} 2>/dev/null || exit {CANNOT}; "
        f"[ ! -e {path} ] || chown \"$(stat -L -c %u:%g {path})\" {state}; }}",
        f"[ -w {state} ] || exit {CANNOT}",
        "umask 007",
        _guard(state),
        SESSION_SH,
        ALIVE_SH,
        "if [ -f lock ]; then",
        f"  if alive; then cat lock; echo \"age $age\"; exit {HELD}; fi",
        "  sed 's/^/stale /' lock",
        "fi",
        f"{{ printf '%s\\n' {q(record.text())}; echo \"session $(session)\"; }} > lock.$$ "
        f"&& mv -f lock.$$ lock || exit {CANNOT}",
        _OWN,
        "exit 0",
    ])


# -- what commands use -------------------------------------------------------------------------
def held(c: Context) -> HeldLock | None:
    found = c.state(LockState).held
    return found if found is not None and not found.released else None


def checkpoint(c: Context) -> None:
    lock = held(c)
    if lock is not None:
        lock.checkpoint()


@contextmanager
def critical(c: Context) -> Iterator[None]:
    lock = held(c)
    if lock is None:
        yield
        return
    with lock.critical():
        yield


@contextmanager
def locked(c: Context, what: str) -> Iterator[HeldLock]:
    """Hold the server's lock for ``what`` (nested uses share the outer one); on the way
    out, append the history entry and release it."""
    st = c.state(LockState)
    outer = held(c)
    if outer is not None:
        outer.depth += 1
        try:
            yield outer
        finally:
            outer.depth -= 1
        return
    lock = acquire(c, what)
    st.held = lock
    try:
        yield lock
    except BaseException as err:
        error = str(err) if isinstance(err, HostoutError) else f"{type(err).__name__}: {err}"
        if isinstance(err, HostoutError) and err.host:
            error = error.removeprefix(f"{err.host}: ")
        result = "interrupted" if isinstance(err, (Interrupted, KeyboardInterrupt)) else (
            lock.entry.result if lock.entry.result not in ("ok", "unchanged") else "failed")
        with contextlib.suppress(Exception):  # never hide the error that got us here
            lock.release(result, error)
        raise
    else:
        if not lock.release():
            raise LockLost(f"{what} completed, but its lock had been taken over by "
                           f"{lock.lost or 'another run'} meanwhile", host=c.name)
    finally:
        st.held = None


def unlock(c: Context) -> LockRecord | None:
    """Remove the lock whoever holds it; the record it had, or None when there was none."""
    state = q(c.settings.layout.state)
    entry = HistoryEntry("unlock", c.name)
    entry.seconds = 0.0
    script = "\n".join([
        f"[ -d {state} ] || {{ echo nolock; exit 0; }}",
        _guard(state),
        "if [ -f lock ]; then",
        "  cat lock; rm -f lock",
        f"  {history.append_line(entry)}",
        f"  {_OWN}",
        "else echo nolock; fi",
        "exit 0",
    ])
    cmd = RemoteCommand(script, account=Account.BUILDOUT,
                        label=f"remove the lock in {c.settings.layout.state}")
    try:
        res = c.remote.execute(cmd, warn=True, hide=True, echo=False)
    except NotBootstrapped:
        res = None
    if res is None or res.exited == CANNOT:
        res = c.remote.execute(replace(cmd, account=Account.LOGIN, sudo=True), warn=True,
                               hide=True, echo=False)
    if not res.ok:
        raise HostoutError(f"unlock failed (exit {res.exited})", host=c.name)
    if res.stdout.strip() == "nolock":
        return None
    return LockRecord.parse(res.stdout)


def read(c: Context, account: Account = Account.BUILDOUT) -> LockRecord | None:
    """The lock as it is now, if a live holder has it (reads only: for plans)."""
    lock = q(c.settings.layout.lock)
    script = "\n".join([
        f"[ -f {lock} ] || exit 0",
        f"cd {q(c.settings.layout.state)} || exit 0",
        ALIVE_SH,
        "if alive; then cat lock; echo \"age $age\"; fi",
    ])
    res = c.remote.execute(RemoteCommand(script, account=account, reads_only=True,
                                         label=f"read {c.settings.layout.lock}"),
                           warn=True, hide=True, echo=False)
    return LockRecord.parse(res.stdout) if res.ok else None


# -- Ctrl-C ------------------------------------------------------------------------------------
def interrupt(contexts: Iterable[Context], out: Output, wait: float = CRITICAL_WAIT) -> None:
    """Ctrl-C: let a switch in progress finish (up to ``wait`` s; Ctrl-C again stops at
    once), then release every lock this run holds, recording the interruption."""
    holding = [(c, lock) for c in contexts if (lock := held(c)) is not None]
    for _, lock in holding:
        lock.interrupted.set()
    deadline = time.monotonic() + wait
    try:
        for c, lock in holding:
            if not lock.calm.is_set():
                out.error(f"[{c.name}] interrupted: letting the switch in progress finish, "
                          f"so that post-commands bring the app back (up to {wait:g} s; "
                          "Ctrl-C again stops at once)")
                lock.calm.wait(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        pass
    threads = []
    for c, lock in holding:
        def release(c: Context = c, lock: HeldLock = lock) -> None:
            with contextlib.suppress(Exception):
                lock.release("interrupted", "interrupted (Ctrl-C)")
                out.error(f"[{c.name}] interrupted: lock released")
        thread = threading.Thread(target=release, daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=15)


__all__ = ["HeldLock", "LockRecord", "LockState", "acquire", "checkpoint", "critical",
           "held", "interrupt", "locked", "read", "unlock"]
