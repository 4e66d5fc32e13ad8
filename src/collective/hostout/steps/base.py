"""What every step shares: the typed state of a deploy, and running a step's command."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..commands.context import Context
from ..errors import BootstrapError, CommandFailed, NotBootstrapped
from ..packaging import dists
from ..packaging.resolve import Resolution
from ..remote.base import Result
from ..server import system
from ..shell import Account, RemoteCommand


@dataclass
class DeployState:
    """What one step of a deploy learns for the next, per host (``c.state(DeployState)``)."""

    target: dists.Target | None = None  # the server's Python and platform, once known
    bootstrapped: bool = False  # bootstrap ran in this invocation (so sudo is in use)
    pins: dict[str, str] | None = None  # every version the server's build may need
    resolution: Resolution | None = None  # the chosen cfg as buildout resolved it here
    build_digest: str | None = None  # what decides the build: the uploaded inputs


def state(c: Context) -> DeployState:
    return c.state(DeployState)


def run_step(c: Context, step: str, cmd: RemoteCommand) -> Result:
    """A bootstrap step's command: its failure names the step and how to rerun it."""
    try:
        return c.remote.execute(cmd)
    except CommandFailed as err:
        raise BootstrapError(f"{step} failed: {err.message}; fix the cause and rerun "
                             f"'bin/hostout {c.name} {step}' (or deploy)",
                             host=c.name, cause=err) from err


def remote_target(c: Context, python: str | None = None,
                  account: Account = Account.LOGIN) -> dists.Target | None:
    """The platform of the server's pythonX.Y (or ``python``), or None when it has none."""
    probe = replace(system.probe_python(c.settings.python_version, python), account=account,
                    reads_only=True)
    res = c.remote.execute(probe, warn=True, hide=True, echo=False)
    if not res.ok:
        return None
    platform, version, *full = res.stdout.split()
    return dists.Target(version, platform, python_full=full[0] if full else "")


def target(c: Context) -> dists.Target:
    """The server's Python and platform: learnt by bootstrap_python, else asked of the venv."""
    st = state(c)
    if st.target is None:
        st.target = remote_target(c, str(c.settings.layout.python), Account.BUILDOUT)
        if st.target is None:
            raise NotBootstrapped(f"python{c.settings.python_version} is missing; run "
                                  f"'bin/hostout {c.name} bootstrap' (or deploy)", host=c.name)
    return st.target
