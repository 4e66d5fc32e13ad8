"""``hostout-testhost``: a throwaway bare server for your buildout, to deploy to before production.

    hostout-testhost start [NAME] [--like PART] [--publish [LOCAL:]PORT]...
    hostout-testhost list [--json]
    hostout-testhost remove [NAME...] [--all]
    hostout-testhost image [--base] [--rebuild] [--mirror URL]

``start`` runs a podman container of a bare Debian server (sshd, sudo, no Python) on a free
port of 127.0.0.1 and writes ``NAME.cfg`` (default ``testhost.cfg``) next to the buildout: it
extends the buildout and adds a host part NAME pointing at the container, with the
container's login and password, its host keys in a known_hosts file of its own
(``host-key-checking = yes``), no ssh_config of yours and a key of its own, all under
``.hostout-testhost/NAME/``. ``--like PART`` copies the options of your host part PART
(hostout's ``extends``): path, users, group, buildout, fabfiles, plugins... Then::

    buildout -c testhost.cfg        (or bin/buildout, where you have one)
    bin/hostout testhost deploy

A test host belongs to the buildout directory it was started for: NAME is unique there, as a
part name is. ``remove`` removes the container, NAME.cfg and ``.hostout-testhost/NAME/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ..errors import HostoutError, UsageError
from .hosts import TestHost, start_named_host
from .image import (
    BASE_IMAGE,
    IMAGE,
    Mirrors,
    build_image,
    build_problem,
    debian_mirrors,
    image_exists,
)
from .podman import NO_PODMAN, TestHostError, podman

DEFAULT_NAME = "testhost"
LABEL = "hostout-testhost"  # its value: the NAME
DIR_LABEL = "hostout-testhost.directory"
CFG_LABEL = "hostout-testhost.cfg"
USER_LABEL = "hostout-testhost.user"
LIKE_LABEL = "hostout-testhost.like"
STATE = ".hostout-testhost"
MARKER = "# Written by hostout-testhost"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other error
        raise UsageError(f"{message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hostout-testhost", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="{start,list,remove,image}",
                           parser_class=_Parser)

    start = sub.add_parser("start", help="start a test host and write NAME.cfg for it",
                           description="Start a throwaway bare host and write NAME.cfg, which "
                           "extends your buildout with a host part NAME pointing at it.")
    start.add_argument("name", nargs="?", default=DEFAULT_NAME, metavar="NAME",
                       help=f"the host part's name (default {DEFAULT_NAME})")
    _buildout_option(start)
    start.add_argument("--like", metavar="PART",
                       help="copy the options of this host part (hostout's extends = PART)")
    start.add_argument("--user", default="deploy",
                       help="the sudo-capable login user (default deploy)")
    start.add_argument("--publish", "-p", metavar="[LOCAL:]PORT", action="append", default=[],
                       type=_publish, help="reach the host's PORT at 127.0.0.1:LOCAL "
                       "(default: a free port); repeatable")
    start.add_argument("--network", metavar="NET",
                       help="a podman network to put the host on (e.g. one made with "
                       "`podman network create --internal NET`: a host with no way out)")
    start.add_argument("--image", default=IMAGE, help=f"the image (default {IMAGE})")
    start.add_argument("--replace", action="store_true",
                       help="remove a test host of that name first")
    start.add_argument("--json", action="store_true", help="print the host as JSON")

    lst = sub.add_parser("list", help="list this machine's test hosts",
                         description="List the test hosts on this machine (all buildouts).")
    lst.add_argument("--json", action="store_true", help="print JSON")

    rm = sub.add_parser("remove", help="remove test hosts, their cfg files and state",
                        description="Remove test hosts of this buildout: the container, "
                        "NAME.cfg and .hostout-testhost/NAME/.")
    rm.add_argument("names", nargs="*", metavar="NAME",
                    help=f"test hosts of this buildout (default {DEFAULT_NAME})")
    _buildout_option(rm)
    rm.add_argument("--all", action="store_true",
                    help="every test host on this machine (as `list` shows them)")

    img = sub.add_parser("image", help=f"build the bare server image ({IMAGE})",
                         description="Build the image the test hosts run, if it is missing. "
                         "Needs root, debootstrap and this machine's Debian mirror (its apt "
                         "sources), or --mirror.")
    img.add_argument("--rebuild", action="store_true", help="build it even if it exists")
    img.add_argument("--base", action="store_true", help=f"build {BASE_IMAGE} instead: the "
                     "same Debian without sshd, sudo or users, a base image (docker-image) "
                     "for bin/hostout PART docker where no registry can be reached")
    img.add_argument("--mirror", metavar="URL", help="a Debian mirror (default: this "
                     "machine's, from its apt sources)")
    img.add_argument("--security-mirror", metavar="URL",
                     help="Debian's security mirror (default: this machine's, if any)")
    return p


def _buildout_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--buildout", metavar="FILE", type=Path, default=Path("buildout.cfg"),
                   help="your buildout's cfg file; its directory is the buildout's "
                   "(default buildout.cfg)")


def _publish(text: str) -> tuple[int, int | None]:
    local, _, port = text.rpartition(":")
    try:
        numbers = [int(port), *([int(local)] if local else [])]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not PORT or LOCAL:PORT") from None
    if not all(0 < n < 65536 for n in numbers):
        raise argparse.ArgumentTypeError(f"{text!r}: ports are 1-65535")
    return int(port), int(local) if local else None


# -- what podman knows about our hosts ----------------------------------------------------------
@dataclass(frozen=True)
class Listed:
    name: str
    container: str
    status: str
    ssh: str
    user: str
    ports: dict[int, str]
    directory: Path
    cfg: Path
    like: str
    image: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "container": self.container, "status": self.status,
                "ssh": self.ssh, "user": self.user,
                "ports": {str(k): v for k, v in self.ports.items()},
                "directory": str(self.directory), "cfg": str(self.cfg),
                "like": self.like or None, "image": self.image}


def listed() -> list[Listed]:
    """This machine's test hosts, as podman knows them."""
    out = podman("ps", "--all", "--filter", f"label={LABEL}", "--format", "json").stdout
    found = []
    for entry in json.loads(out or "[]"):
        labels = entry.get("Labels") or {}
        ports = {p["container_port"]: f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}"
                 for p in entry.get("Ports") or []}
        ssh = ports.pop(22, "")
        if not ssh and entry.get("State") == "running":  # on a network of its own: its address
            template = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
            address = podman("inspect", "--format", template, entry["Id"]).stdout.split()
            ssh = f"{address[0]}:22" if address else ""
        found.append(Listed(
            name=labels.get(LABEL, ""), container=entry["Names"][0], status=entry["State"],
            ssh=ssh, user=labels.get(USER_LABEL, ""), ports=ports,
            directory=Path(labels.get(DIR_LABEL, "")), cfg=Path(labels.get(CFG_LABEL, "")),
            like=labels.get(LIKE_LABEL, ""), image=entry.get("Image", ""),
        ))  # fmt: skip
    return sorted(found, key=lambda h: (str(h.directory), h.name))


def container_name(name: str, directory: Path) -> str:
    """Unique on this machine: the NAME and which buildout directory it belongs to."""
    return f"hostout-testhost-{name}-{hashlib.sha256(str(directory).encode()).hexdigest()[:6]}"


# -- start ------------------------------------------------------------------------------------
def _buildout_directory(cfg: Path, *, must_exist: bool) -> tuple[Path, Path]:
    cfg = cfg.expanduser().resolve()
    if must_exist and not cfg.is_file():
        raise UsageError(f"no buildout file {cfg}; -c FILE names the buildout to extend")
    return cfg.parent, cfg


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise UsageError(f"test host name {name!r}: use letters, digits, '_', '.', '-' (at "
                         "most 40, starting with a letter or digit)")


def _known_host_parts(directory: Path, *, stale: bool = False) -> list[str] | None:
    """The host parts buildout last wrote for this buildout (bin/hostout's), or None if
    unknown, or if a cfg file changed since (unless ``stale``)."""
    from ..config import optionsfile

    try:
        options = optionsfile.load(directory / "parts" / "hostout" / "hostout.json")
    except HostoutError:
        return None
    return None if options.stale_sources() and not stale else options.host_names


def start(args: argparse.Namespace) -> int:
    name: str = args.name
    _check_name(name)
    directory, base = _buildout_directory(args.buildout, must_exist=True)
    if not _USER.fullmatch(args.user) or args.user == "root":
        raise UsageError(f"--user {args.user!r}: a lower-case login name other than root")
    if args.like is not None:
        if args.like == name:
            raise UsageError(f"--like {args.like}: the test host needs a name of its own")
        parts = _known_host_parts(directory)
        if parts is not None and args.like not in parts:
            known = ", ".join(parts) or "none"
            raise UsageError(f"--like {args.like}: no such host part in this buildout "
                             f"(its host parts: {known})")
    cfg = directory / f"{name}.cfg"
    if cfg == base or (cfg.exists() and not _ours(cfg)):
        raise UsageError(f"{cfg} exists and is not a test host's; choose another NAME")
    ports = dict(args.publish)
    if 22 in ports:
        raise UsageError("--publish 22: sshd is published already")

    if shutil.which("podman") is None:
        raise TestHostError(NO_PODMAN)
    existing = [h for h in listed() if h.name == name and h.directory == directory]
    if existing and not args.replace:
        raise TestHostError(f"test host {name} exists ({existing[0].ssh or existing[0].status})"
                            f"; `hostout-testhost remove {name}` first, or start --replace")
    for old in existing:
        podman("rm", "--force", "--time", "0", old.container)
        _clean(directory, name, old.cfg)
    if not image_exists(args.image):
        if args.image != IMAGE:
            raise TestHostError(f"no image {args.image} here (podman images lists them)")
        problem = build_problem()
        if problem:
            raise TestHostError(f"image {args.image} is missing; {problem}")
        build_image(args.image, log=_progress(args.json))

    labels = {LABEL: name, DIR_LABEL: str(directory), CFG_LABEL: str(cfg),
              USER_LABEL: args.user, LIKE_LABEL: args.like or ""}
    host = start_named_host(container_name(name, directory), labels=labels,
                            network=args.network, publish=ports, image=args.image)
    try:
        host.set_login(args.user, secrets.token_hex(12))
        state = _write_state(directory, name, host)
        _write_cfg(cfg, base, name, host, state, args.like)
    except BaseException:
        host.remove()
        shutil.rmtree(directory / STATE / name, ignore_errors=True)
        raise
    if args.json:
        print(json.dumps(_describe(name, host, directory, cfg, args).to_json()))
    else:
        _tell(name, host, base, cfg, args.like)
    return 0


def _progress(quiet: bool) -> Callable[[str], None]:
    return (lambda line: print(line, file=sys.stderr)) if quiet else print


def _describe(name: str, host: TestHost, directory: Path, cfg: Path,
              args: argparse.Namespace) -> Listed:
    return Listed(name=name, container=host.name, status="running", ssh=host.hoststring,
                  user=host.user, ports={c: f"{host.address}:{p}" for c, p in host.ports.items()},
                  directory=directory, cfg=cfg, like=args.like or "", image=args.image)


def _ours(cfg: Path) -> bool:
    try:
        with cfg.open() as fh:
            return fh.readline().startswith(MARKER)
    except OSError:
        return False


def _write_state(directory: Path, name: str, host: TestHost) -> Path:
    """``.hostout-testhost/NAME/``: the host's keys, an empty ssh_config; git ignores it."""
    top = directory / STATE
    state = top / name
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True, mode=0o700)
    (top / ".gitignore").write_text("# made by hostout-testhost: nothing here is yours\n*\n")
    (state / "known_hosts").write_text("\n".join(host.host_keys()) + "\n")
    (state / "ssh_config").write_text("")  # not yours: your Host * rules are for real servers
    return state


def _write_cfg(cfg: Path, base: Path, name: str, host: TestHost, state: Path,
               like: str | None) -> None:
    rel = state.relative_to(cfg.parent)
    lines = [
        f"{MARKER}: the throwaway test host {name},",
        f"# podman container {host.name}. It holds the host's password:",
        "# keep it out of version control.",
        f"#   buildout -c {cfg.name}   then   bin/hostout {name} deploy",
        f"#   hostout-testhost remove {name}   removes the container, this file and {rel}/",
        "[buildout]",
        f"extends = {base.name}",
        f"parts += {name}",
        "",
        f"[{name}]",
        "recipe = collective.hostout",
        *([f"extends = {like}"] if like else []),
        f"host = {host.hoststring}",
        f"user = {host.user}",
        f"password = {host.password}",
        "host-key-checking = yes",
        f"known-hosts = {rel}/known_hosts",
        f"ssh-config = {rel}/ssh_config",
        f"identity-file = {rel}/buildout_key",
    ]
    tmp = cfg.with_name(f".{cfg.name}.tmp")
    tmp.unlink(missing_ok=True)  # created afresh: 0600 from the start
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    tmp.replace(cfg)


def _tell(name: str, host: TestHost, base: Path, cfg: Path, like: str | None) -> None:
    directory = base.parent
    shaped = f", like {like}" if like else ""
    print(f"{name}: started {host.name}{shaped}: ssh {host.hoststring}, login {host.user} "
          f"(its password is in {cfg.name})")
    for port, local in sorted(host.ports.items()):
        print(f"{name}: port {port} is http://{host.address}:{local}/")
    print(f"wrote {cfg}")
    if not like:
        parts = _known_host_parts(directory)
        if parts:
            print(f"note: {name} has no options of yours; --like PART copies a host part's "
                  f"(this buildout has {', '.join(parts)})")
    here = Path.cwd().resolve()
    buildout = "bin/buildout" if (directory / "bin" / "buildout").exists() else "buildout"
    print("next:")
    if directory != here:
        print(f"    cd {directory}")
    print(f"    {buildout} -c {cfg.name}")
    print(f"    bin/hostout {name} deploy")
    print(f"remove it with: hostout-testhost remove {name}"
          + (f" -c {base}" if directory != here else ""))


# -- list, remove, image ------------------------------------------------------------------------
def list_hosts(args: argparse.Namespace) -> int:
    hosts = listed()
    if args.json:
        print(json.dumps([h.to_json() for h in hosts], indent=2))
        return 0
    if not hosts:
        print("no test hosts (hostout-testhost start makes one)")
        return 0
    rows = [("NAME", "STATUS", "SSH", "LOGIN", "PORTS", "CFG")]
    for h in hosts:
        ports = " ".join(f"{c}->{p}" for c, p in sorted(h.ports.items())) or "-"
        rows.append((h.name, h.status, h.ssh or "-", h.user, ports, str(h.cfg)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    return 0


def remove(args: argparse.Namespace) -> int:
    hosts = listed()
    if args.all:
        if args.names:
            raise UsageError("remove: NAMEs or --all, not both")
        chosen = hosts
        leftovers: list[str] = []
        built: set[Path] = set()
    else:
        directory, _ = _buildout_directory(args.buildout, must_exist=False)
        names = list(dict.fromkeys(args.names or [DEFAULT_NAME]))
        for name in names:
            _check_name(name)
        mine = {h.name: h for h in hosts if h.directory == directory}
        chosen = [mine[n] for n in names if n in mine]
        # a container someone removed with podman leaves its cfg and state behind
        leftovers = [n for n in names if n not in mine and _written(directory, n)]
        unknown = [n for n in names if n not in mine and n not in leftovers]
        if unknown:
            there = ", ".join(sorted(mine)) or "none"
            raise UsageError(f"no test host {', '.join(unknown)} for {directory} "
                             f"(its test hosts: {there}; hostout-testhost list shows all)")
        parts = _known_host_parts(directory, stale=True) or ()
        built = {directory} if any(n in parts for n in leftovers) else set()
        for name in leftovers:
            _clean(directory, name, directory / f"{name}.cfg")
            print(f"removed what {name} left: its container was gone already")
    if not chosen and not leftovers:
        print("no test hosts")
    built |= {h.directory for h in chosen
              if h.name in (_known_host_parts(h.directory, stale=True) or ())}
    for h in chosen:
        podman("rm", "--force", "--time", "0", h.container)
        wrote = _clean(h.directory, h.name, h.cfg)
        print(f"removed {h.name} ({h.container}){f' and {h.cfg}' if wrote else ''}")
    for directory in sorted(built):
        print(f"run buildout in {directory} to take what you removed out of bin/hostout")
    return 0


def _written(directory: Path, name: str) -> bool:
    return _ours(directory / f"{name}.cfg") or (directory / STATE / name).is_dir()


def _clean(directory: Path, name: str, cfg: Path) -> bool:
    """Remove what start wrote for a test host; whether its cfg file was there."""
    ours = bool(cfg.name) and _ours(cfg)
    if ours:
        cfg.unlink()
    state = directory / STATE
    shutil.rmtree(state / name, ignore_errors=True)
    if state.is_dir() and [p.name for p in state.iterdir()] == [".gitignore"]:
        shutil.rmtree(state)
    return ours


def image(args: argparse.Namespace) -> int:
    if shutil.which("podman") is None:
        raise TestHostError(NO_PODMAN)
    target = BASE_IMAGE if args.base else IMAGE
    if image_exists(target) and not args.rebuild:
        print(f"{target} exists (--rebuild builds it again)")
        return 0
    mirrors = None
    if args.mirror:
        security = args.security_mirror
        if security is None:
            try:
                security = debian_mirrors().security
            except TestHostError:
                security = None
        mirrors = Mirrors(args.mirror.rstrip("/"), security)
    elif args.security_mirror:
        mirrors = Mirrors(debian_mirrors().main, args.security_mirror.rstrip("/"))
    build_image(target, mirrors=mirrors, server=not args.base)
    return 0


COMMANDS = {"start": start, "list": list_hosts, "remove": remove, "image": image}


def run(argv: Sequence[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return COMMANDS[args.command](args)
    except HostoutError as err:
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> None:
    try:
        code = run(sys.argv[1:] if argv is None else argv)
    except Exception:  # a bug: show everything
        traceback.print_exc()
        code = 70
    sys.exit(code)
