"""What hostout.cloud does: the host's VM through a Libcloud driver, and where it is.

Where the VM is goes into the host's record (:mod:`collective.hostout.config.records`):
``host`` (address, and port when the provider says one), ``user`` (the provider's, else
root) and ``password`` (when the provider gives one) fill in what the host part leaves unset,
for every later command; ``data["cloud"]`` keeps the provider and the VM's id and name, so
the VM is found again even where a provider renames it. After ``create``, ``start`` or
``wait`` the command's own context reloads its settings, so ``create deploy`` deploys to the
new VM in the same run.
"""

from __future__ import annotations

import importlib
import inspect
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...commands.context import Context
from ...config import records
from ...config.settings import boolean
from ...errors import AuthError, ConfigError, ConnectError, HostoutError
from ...server import keys
from ...shell import RemoteCommand
from .options import CloudOptions

RECORDED_BY = "cloud"
POLL = 2.0
#: Providers hostout adds to Libcloud's: name -> (module, class).
PROVIDERS = {"podman": ("collective.hostout.testing.cloud", "PodmanNodeDriver")}
CONFIRM_WORDS = ("--yes", "-y", "yes")


class CloudError(HostoutError):
    """The provider refused, or a VM did not come (or go) as asked."""


def _libcloud() -> Any:
    try:
        import libcloud.compute.providers as providers
    except ImportError:
        from . import MISSING_LIBCLOUD

        raise ConfigError(MISSING_LIBCLOUD) from None
    return providers


# -- the driver -----------------------------------------------------------------------------
def driver_class(provider: str, host: str) -> type:
    """The NodeDriver class of a provider name (Libcloud's, hostout's, or module:Class)."""
    providers = _libcloud()
    if provider.lower() in PROVIDERS or ":" in provider:
        module, name = PROVIDERS.get(provider.lower()) or tuple(provider.split(":", 1))
        try:
            return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"provider = {provider}: cannot load {module}:{name} ({err})",
                              host=host) from err
    from libcloud.compute.types import Provider

    key = provider.lower()
    if key not in providers.DRIVERS:
        key = getattr(Provider, provider.upper(), "")
    if key not in providers.DRIVERS:
        known = ", ".join(sorted(str(k) for k in providers.DRIVERS)[:12])
        raise ConfigError(f"provider = {provider}: not a Libcloud compute provider (such as "
                          f"{known}, ...), podman, or module:Class", host=host)
    return providers.get_driver(key)  # type: ignore[no-any-return]


def _convert(value: str, default: Any, name: str, host: str) -> Any:
    if isinstance(default, bool):
        return boolean(value, f"provider-{name}", host)
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"option provider-{name} = {value!r} is not a number",
                              host=host) from None
    return value


def make_driver(opts: CloudOptions, host: str) -> Any:
    """The provider's driver, made with its ``provider-ARG`` options."""
    cls = driver_class(opts.provider, host)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    named = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params)
    kwargs: dict[str, Any] = {}
    for name, value in opts.arguments.items():
        param = named.get(name)
        if param is None and not open_ended:
            raise ConfigError(f"option provider-{name.replace('_', '-')}: provider "
                              f"{opts.provider} takes {_names(named)}", host=host)
        default = param.default if param is not None else None
        kwargs[name] = _convert(value, default, name, host)
    missing = [n for n, p in named.items() if p.default is p.empty and n not in kwargs]
    if missing:
        raise ConfigError(f"provider {opts.provider} needs option "
                          f"{', '.join('provider-' + m.replace('_', '-') for m in missing)}",
                          host=host)
    try:
        return cls(**kwargs)
    except Exception as err:
        raise CloudError(f"provider {opts.provider}: {type(err).__name__}: {err}", host=host,
                         cause=err) from err


def _names(params: Mapping[str, Any]) -> str:
    return ", ".join("provider-" + n.replace("_", "-") for n in params) or "no options"


# -- the VM -------------------------------------------------------------------------------------
@dataclass
class CloudState:
    """Per host and invocation: the driver, made once."""

    driver: Any = None


def options(c: Context) -> CloudOptions:
    opts = CloudOptions.of(c.options, c.name)
    for secret in opts.secrets:
        c.out.add_secret(secret)
    return opts


def driver(c: Context, opts: CloudOptions) -> Any:
    state = c.state(CloudState)
    if state.driver is None:
        state.driver = make_driver(opts, c.name)
    return state.driver


def call(c: Context, what: str, action: Callable[[], Any]) -> Any:
    """A provider call; its failure is one line naming what was asked."""
    try:
        return action()
    except HostoutError:
        raise
    except NotImplementedError:
        raise CloudError(f"provider {options(c).provider} cannot {what}", host=c.name) from None
    except Exception as err:
        raise CloudError(f"provider {options(c).provider} failed to {what}: "
                         f"{type(err).__name__}: {err}", host=c.name, cause=err) from err


def record(c: Context) -> records.HostRecord:
    return records.read(c.facts.parts_directory, c.name)


def recorded_id(c: Context) -> str | None:
    found = record(c).data.get(RECORDED_BY) or {}
    return str(found["id"]) if "id" in found else None


def alive(node: Any) -> bool:
    from libcloud.compute.types import NodeState

    return node.state != NodeState.TERMINATED


def find(c: Context, opts: CloudOptions) -> Any | None:
    """The host's VM: the recorded one (by id), else the one named ``vm-name``."""
    nodes = [n for n in call(c, "list VMs", driver(c, opts).list_nodes) if alive(n)]
    wanted = recorded_id(c)
    if wanted is not None:
        found = next((n for n in nodes if str(n.id) == wanted), None)
        if found is not None:
            return found  # else: gone (destroyed elsewhere); one of its name may be there
    named = [n for n in nodes if n.name == opts.name]
    if len(named) > 1:
        raise CloudError(f"{len(named)} VMs are named {opts.name}; set vm-name to tell them "
                         "apart", host=c.name)
    return named[0] if named else None


def require(c: Context, opts: CloudOptions) -> Any:
    node = find(c, opts)
    if node is None:
        raise CloudError(f"no VM {opts.name} at provider {opts.provider}: run 'bin/hostout "
                         f"{c.name} create'", host=c.name)
    return node


def explicit_host(c: Context) -> str | None:
    """The part's own ``host`` option, if it sets one (then hostout.cloud leaves it)."""
    if "host" in c.options and not records.recorded(c.options, record(c), "host"):
        return c.options["host"].strip() or None
    return None


def choose(c: Context, kind: str, items: list[Any], wanted: str | None,
           key: Callable[[Any], Any] | None = None) -> Any:
    """The size/image/location whose id or name is ``wanted`` (an image: whose name starts
    with it too); without ``wanted``, the first by ``key``."""
    if not items:
        raise CloudError(f"provider {options(c).provider} lists no {kind}s", host=c.name)
    if wanted is None:
        return sorted(items, key=key)[0] if key else items[0]
    low = wanted.lower()
    exact = [i for i in items if low in (str(i.id).lower(), str(i.name).lower())]
    if exact:
        return exact[0]
    if kind == "image":
        starting = sorted((i for i in items if str(i.name).lower().startswith(low)),
                          key=lambda i: str(i.name))
        if starting:
            return starting[-1]  # the newest-looking of e.g. "Ubuntu 24.04 ..." names
    names = ", ".join(str(i.name) for i in items[:10])
    raise CloudError(f"provider {options(c).provider} has no {kind} {wanted!r} (it has "
                     f"{names}{', ...' if len(items) > 10 else ''})", host=c.name)


def choose_size(c: Context, opts: CloudOptions, sizes: list[Any]) -> Any:
    if opts.size is not None or opts.ram is None:
        return choose(c, "size", sizes, opts.size, key=lambda s: (s.ram or 0, str(s.id)))
    big_enough = sorted((s for s in sizes if (s.ram or 0) >= opts.ram),
                        key=lambda s: (s.ram or 0, s.price or 0))
    if not big_enough:
        biggest = max(s.ram or 0 for s in sizes)
        raise CloudError(f"provider {opts.provider} has no size with hostsize = {opts.ram} MB "
                         f"of memory (the most is {biggest} MB)", host=c.name)
    return big_enough[0]


def address(node: Any) -> str | None:
    ips = [*(node.public_ips or ()), *(node.private_ips or ())]
    return str(ips[0]) if ips else None


def hoststring(node: Any) -> str | None:
    ip = address(node)
    if ip is None:
        return None
    port = (node.extra or {}).get("ssh_port")
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}" if port and int(port) != 22 else ip


def wait_running(c: Context, opts: CloudOptions, node_id: str) -> Any:
    """Poll until the VM runs and has an address."""
    from libcloud.compute.types import NodeState

    deadline = time.monotonic() + opts.timeout
    while True:
        nodes = call(c, "list VMs", driver(c, opts).list_nodes)
        node = next((n for n in nodes if str(n.id) == node_id and alive(n)), None)
        if node is None:
            raise CloudError(f"VM {opts.name} ({node_id}) disappeared while hostout waited "
                             "for it", host=c.name)
        if node.state == NodeState.RUNNING and address(node):
            return node
        if time.monotonic() > deadline:
            raise CloudError(f"VM {opts.name} is still {node.state} after {opts.timeout:.0f} s",
                             host=c.name)
        time.sleep(POLL)


def remember(c: Context, opts: CloudOptions, node: Any, password: str | None = None,
             told: Mapping[str, Any] | None = None) -> str:
    """Record where the VM is; reload this run's settings with it. Returns its host.
    ``told``: what the provider said when it created the VM (a password it made, the
    user), which later listings may not repeat."""
    where = hoststring(node)
    assert where is not None
    extra = {**(told or {}), **(node.extra or {})}
    options = {"host": where, "user": str(extra.get("username") or "root")}
    password = extra.get("password") or password or record(c).options.get("password")
    if password:
        options["password"] = str(password)
        c.out.add_secret(str(password))
    data = {RECORDED_BY: {"provider": opts.provider, "id": str(node.id), "name": node.name}}
    records.write(c.facts.parts_directory, c.name, records.HostRecord(options, data))
    c.reload()
    return where


def wait_ssh(c: Context, opts: CloudOptions) -> float:
    """Until a command runs over SSH as the login user (sshd up, keys or password in)."""
    began = time.monotonic()
    deadline = began + opts.timeout
    while True:
        try:
            c.remote.execute(RemoteCommand("true"), hide=True, echo=False)
            return time.monotonic() - began
        except (ConnectError, AuthError) as err:
            if time.monotonic() > deadline:
                raise CloudError(f"VM {opts.name} at {c.settings.hoststring} does not answer "
                                 f"SSH after {opts.timeout:.0f} s: {err.message}",
                                 host=c.name) from err
            c.remote.close()
            time.sleep(POLL)


# -- commands' work -----------------------------------------------------------------------------
def create(c: Context) -> str:
    opts = options(c)
    if (host := explicit_host(c)) is not None:
        raise CloudError(f"option host = {host} is set, so this host is not a VM that "
                         "hostout.cloud makes; leave host unset (or drop hostout.cloud)",
                         host=c.name)
    began = time.monotonic()
    node = find(c, opts)
    if node is not None:
        node = wait_running(c, opts, str(node.id))
        where = remember(c, opts, node)
        wait_ssh(c, opts)
        return f"VM {node.name} exists, running at {where}"
    d = driver(c, opts)
    sizes = call(c, "list sizes", d.list_sizes)
    size = choose_size(c, opts, sizes)
    image = choose(c, "image", call(c, "list images", d.list_images), opts.image)
    kwargs: dict[str, Any] = {"name": opts.name, "size": size, "image": image}
    if opts.location is not None:
        kwargs["location"] = choose(c, "location", call(c, "list locations",
                                                        d.list_locations), opts.location)
    password = None
    features = (getattr(d, "features", None) or {}).get("create_node", [])
    public = keys.ensure_key(c.settings.identity_file, comment=f"hostout-{c.name}")
    from libcloud.compute.base import NodeAuthPassword, NodeAuthSSHKey

    if "ssh_key" in features:
        kwargs["auth"] = NodeAuthSSHKey(public)
    elif "password" in features:
        password = secrets.token_urlsafe(18)
        c.out.add_secret(password)
        kwargs["auth"] = NodeAuthPassword(password)
    kwargs.update(opts.extra)
    accepted = inspect.signature(d.create_node).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = [k for k in kwargs if k not in accepted]
        if [k for k in unknown if k.startswith("ex_")]:
            raise ConfigError(f"provider {opts.provider} takes no "
                              f"{', '.join(k for k in unknown if k.startswith('ex_'))}",
                              host=c.name)
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    c.out.line(c.name, f"creating VM {opts.name} ({size.name}, {image.name}) at "
                       f"{opts.provider}")
    node = call(c, "create a VM", lambda: d.create_node(**kwargs))
    told = dict(node.extra or {})  # e.g. a password the provider made: said once, here
    node = wait_running(c, opts, str(node.id))
    where = remember(c, opts, node, password, told)
    wait_ssh(c, opts)
    return (f"created VM {node.name} ({size.name}, {image.name}) at {where}; it answers SSH "
            f"({time.monotonic() - began:.0f} s)")


def listing(c: Context) -> list[dict[str, str]]:
    opts = options(c)
    mine = recorded_id(c)
    rows = []
    for node in call(c, "list VMs", driver(c, opts).list_nodes):
        is_mine = str(node.id) == mine if mine is not None else node.name == opts.name
        rows.append({"name": str(node.name), "state": str(node.state),
                     "address": hoststring(node) or "-", "id": str(node.id),
                     "host": c.name if is_mine else ""})
    return rows


def power(c: Context, verb: str) -> str:
    """start, stop or reboot the VM; a running VM's address is recorded anew."""
    opts = options(c)
    node = require(c, opts)
    d = driver(c, opts)
    action = {"start": d.start_node, "stop": d.stop_node, "reboot": d.reboot_node}[verb]
    call(c, f"{verb} VMs", lambda: action(node))
    if verb == "stop":
        return f"stopped VM {node.name}"
    node = wait_running(c, opts, str(node.id))
    where = remember(c, opts, node)
    seconds = wait_ssh(c, opts)
    return f"{verb}ed VM {node.name}: running at {where}, answers SSH ({seconds:.0f} s)"


def wait(c: Context) -> str:
    opts = options(c)
    node = wait_running(c, opts, str(require(c, opts).id))
    where = remember(c, opts, node)
    seconds = wait_ssh(c, opts)
    return f"VM {node.name} runs at {where} and answers SSH ({seconds:.0f} s)"


def confirmed(c: Context, opts: CloudOptions, node: Any, answer: str) -> None:
    """``--yes``, or the VM's name typed on a terminal; anything else changes nothing."""
    if answer in CONFIRM_WORDS:
        return
    if answer:
        raise CloudError(f"destroy takes --yes (or nothing, to be asked), not {answer!r}",
                         host=c.name)
    if not sys.stdin.isatty():
        raise CloudError(f"destroy deletes VM {node.name} and its disks: confirm with "
                         f"'bin/hostout {c.name} destroy --yes' (or run it on a terminal)",
                         host=c.name)
    typed = c.out.ask(f"Destroy VM {node.name} of {c.name} at {opts.provider}, with its "
                      f"disks? Type its name to confirm: ")
    if typed.strip() != str(node.name):
        raise CloudError(f"not confirmed: VM {node.name} left as it is", host=c.name)


def destroy(c: Context, answer: str) -> str:
    opts = options(c)
    node = find(c, opts)
    if node is None:
        forget(c)
        return f"no VM {opts.name} at {opts.provider}: nothing to destroy"
    confirmed(c, opts, node, answer)
    where, entry = hoststring(node), known_hosts_entry(node)
    call(c, "destroy VMs", lambda: driver(c, opts).destroy_node(node))
    deadline = time.monotonic() + opts.timeout
    while any(str(n.id) == str(node.id) and alive(n)
              for n in call(c, "list VMs", driver(c, opts).list_nodes)):
        if time.monotonic() > deadline:
            raise CloudError(f"VM {opts.name} still exists {opts.timeout:.0f} s after "
                             "destroy", host=c.name)
        time.sleep(POLL)
    forget(c, entry)
    return f"destroyed VM {node.name}" + (f" (was at {where})" if where else "")


def known_hosts_entry(node: Any) -> str | None:
    """How the VM appears in known_hosts: ``address`` or ``[address]:port``."""
    ip = address(node)
    port = (node.extra or {}).get("ssh_port")
    if ip is None:
        return None
    return f"[{ip}]:{port}" if port and int(port) != 22 else ip


def forget(c: Context, entry: str | None = None) -> None:
    """Drop the record, and the gone VM's host key: a new VM may get its address, and must
    not be refused as a changed host."""
    records.remove(c.facts.parts_directory, c.name)
    known = c.settings.known_hosts
    if entry and known.is_file():
        subprocess.run(["ssh-keygen", "-R", entry, "-f", str(known)], capture_output=True,
                       check=False, stdin=subprocess.DEVNULL)


def check_created(c: Context) -> None:
    """Before a deploy: a host with neither its own host option nor a recorded VM has no
    server to deploy to yet."""
    if explicit_host(c) is None and not record(c).options.get("host"):
        raise CloudError(f"{c.name} has no VM yet: run 'bin/hostout {c.name} create deploy'",
                         host=c.name)
