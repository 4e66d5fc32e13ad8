"""The commands of hostout.cloud (``extends = hostout.cloud``): the host's VM.

``start``/``stop`` power the VM; a host that extends hostout.supervisor later in ``extends``
gets supervisor's ``start``/``stop`` (programs) under those names, so the VM's are also
``vmstart``/``vmstop``.
"""

from __future__ import annotations

from ...commands.context import Context
from ...commands.registry import command
from . import control


@command(quiet=True)
def create(c: Context) -> None:
    """Create the host's VM (or find it), wait until it runs and answers SSH"""
    c.report(control.create(c))


@command(name="list")
def list_vms(c: Context) -> list[dict[str, str]]:
    """List the provider's VMs (this host's marked with its name)"""
    rows = control.listing(c)
    for row in rows:
        mark = f"  <- {row['host']}" if row["host"] else ""
        c.out.output(c.name, f"{row['name']:<24} {row['state']:<10} {row['address']:<22} "
                             f"{row['id']}{mark}")
    if not rows:
        c.out.output(c.name, "no VMs")
    return rows


@command(quiet=True)
def start(c: Context) -> None:
    """Start the host's VM and wait until it answers SSH"""
    c.report(control.power(c, "start"))


@command(quiet=True)
def stop(c: Context) -> None:
    """Stop (power off) the host's VM"""
    c.report(control.power(c, "stop"))


@command(name="vmstart", quiet=True)
def vmstart(c: Context) -> None:
    """Start the host's VM (start, whatever other plugins call start)"""
    c.report(control.power(c, "start"))


@command(name="vmstop", quiet=True)
def vmstop(c: Context) -> None:
    """Stop the host's VM (stop, whatever other plugins call stop)"""
    c.report(control.power(c, "stop"))


@command(quiet=True)
def reboot(c: Context) -> None:
    """Reboot the host's VM and wait until it answers SSH"""
    c.report(control.power(c, "reboot"))


@command(quiet=True)
def wait(c: Context) -> None:
    """Wait until the host's VM runs and answers SSH"""
    c.report(control.wait(c))


@command(quiet=True)
def destroy(c: Context, confirm: str = "") -> None:
    """Destroy the host's VM and its disks (asks first; --yes does not)"""
    c.report(control.destroy(c, confirm))


@command
def sizes(c: Context) -> None:
    """The provider's VM sizes (for the size or hostsize options)"""
    opts = control.options(c)
    d = control.driver(c, opts)
    for s in sorted(control.call(c, "list sizes", d.list_sizes),
                    key=lambda s: (s.ram or 0, str(s.id))):
        c.out.output(c.name, f"{s.id!s:<16} {s.name!s:<24} {s.ram or '?'} MB  "
                             f"{s.disk or '?'} GB  {s.price if s.price is not None else '?'}")


@command
def images(c: Context) -> None:
    """The provider's images (for the image option)"""
    opts = control.options(c)
    d = control.driver(c, opts)
    for i in sorted(control.call(c, "list images", d.list_images), key=lambda i: str(i.name)):
        c.out.output(c.name, f"{i.id!s:<24} {i.name}")


@command(quiet=True)
def predeploy(c: Context) -> None:
    """Install buildout and its dependencies if needed (the host's VM must exist)"""
    control.check_created(c)
    c.super()
