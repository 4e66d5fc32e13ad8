"""The bare server image of the throwaway hosts, built here with debootstrap.

A Debian ``minbase`` as a deployment target finds it: sshd, sudo and CA certificates, no
Python. The login user ``deploy`` (password ``deploypw``) may sudo after giving its password;
root cannot log in. Host keys are made when a container first starts, so each has its own.

The Debian mirror is this machine's own (its apt sources), read at run time; the image's apt
uses the same. The machine's CA bundle is copied in, so that pip inside a host trusts what
this machine trusts. Building needs root (debootstrap, chroot) and about half a minute; the
finished root file system is cached in ``/var/cache/hostout-testhost``, so building again
after ``podman rmi`` is a plain import.

Beside it, :data:`BASE_IMAGE` is the same minbase without sshd, sudo or users: a base image
for ``hostout docker`` (``docker-image``) where no registry can be reached, in the place of
``debian:bookworm-slim``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .podman import TestHostError, podman

IMAGE = "localhost/hostout-bare:bookworm"
BASE_IMAGE = "localhost/hostout-base:bookworm"
SUITE = "bookworm"
PACKAGES = ("openssh-server", "sudo", "ca-certificates")
BASE_PACKAGES = ("ca-certificates",)
LOGIN_USER = "deploy"
LOGIN_PASSWORD = "deploypw"
CACHE = Path("/var/cache/hostout-testhost")
CONTROLLER_CA = Path("/etc/ssl/certs/ca-certificates.crt")
APT_ROOT = Path("/etc/apt")
# Makes a container's host keys on first start (kept across stop/start), then runs sshd.
SSHD_CMD = ('CMD ["/bin/sh", "-c", '
            '"mkdir -p /run/sshd && ssh-keygen -A && exec /usr/sbin/sshd -D -e"]')


# -- this machine's apt sources ---------------------------------------------------------------
@dataclass(frozen=True)
class AptSource:
    """One ``deb`` line, or one URI of a deb822 stanza."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def apt_sources(root: Path = APT_ROOT) -> list[AptSource]:
    """The ``deb`` sources of ``root`` (``/etc/apt``): sources.list and sources.list.d/."""
    found: list[AptSource] = []
    for path in [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            found += _one_line_sources(path.read_text(errors="replace"))
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        found += _deb822_sources(path.read_text(errors="replace"))
    return found


def _one_line_sources(text: str) -> Iterator[AptSource]:
    for raw in text.splitlines():
        line = re.sub(r"\[[^]]*\]", " ", raw.split("#", 1)[0])  # no comments, no [options]
        words = line.split()
        if len(words) >= 3 and words[0] == "deb":
            yield AptSource(words[1], (words[2],), tuple(words[3:]))


def _deb822_sources(text: str) -> Iterator[AptSource]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:  # a continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        components = tuple(fields.get("components", "").split())
        for uri in fields.get("uris", "").split():
            yield AptSource(uri, suites, components)


@dataclass(frozen=True)
class Mirrors:
    """Where the image's packages come from: ``main`` for SUITE (and SUITE-updates),
    ``security`` for SUITE-security (None: no security updates)."""

    main: str
    security: str | None

    def sources_list(self, suite: str) -> str:
        lines = [f"deb {self.main} {suite} main", f"deb {self.main} {suite}-updates main"]
        if self.security:
            lines.append(f"deb {self.security} {suite}-security main")
        return "\n".join(lines) + "\n"


def debian_mirrors(suite: str = SUITE, sources: Sequence[AptSource] | None = None) -> Mirrors:
    """This machine's Debian mirror for ``suite`` (and its security mirror), from its apt
    sources; a clear error when it has none (say, an Ubuntu machine)."""
    if sources is None:
        sources = apt_sources()
    main = next((s.uri for s in sources if suite in s.suites), None)
    if main is None:
        raise TestHostError(
            f"no Debian mirror for {suite} in this machine's apt sources ({APT_ROOT}/"
            "sources.list, sources.list.d/); name one: hostout-testhost image --mirror URL"
        )
    security = next((s.uri for s in sources if f"{suite}-security" in s.suites), None)
    return Mirrors(main.rstrip("/"), security.rstrip("/") if security else None)


def mirror_host(suite: str = SUITE) -> str:
    """The host name of this machine's Debian mirror (to probe whether a host reaches it)."""
    from urllib.parse import urlsplit

    host = urlsplit(debian_mirrors(suite).main).hostname
    if not host:
        raise TestHostError(f"the Debian mirror for {suite} has no host name")
    return host


# -- building ---------------------------------------------------------------------------------
def image_exists(image: str = IMAGE) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def build_problem() -> str | None:
    """Why the image cannot be built here, or None."""
    if os.geteuid() != 0:
        return "building it needs root (debootstrap, chroot): run `hostout-testhost image` as root"
    for tool in ("debootstrap", "chroot"):
        if shutil.which(tool) is None:
            return f"building it needs {tool} (as root: apt-get install debootstrap)"
    return None


def ensure_image(image: str = IMAGE, *, log: Callable[[str], None] = print) -> None:
    """Build ``image`` unless it exists."""
    if not image_exists(image):
        build_image(image, log=log)


def ensure_base_image(image: str = BASE_IMAGE, *,
                      log: Callable[[str], None] = print) -> None:
    """Build the base image for ``hostout docker`` (no sshd, sudo or users) unless it
    exists."""
    if not image_exists(image):
        build_image(image, log=log, server=False)


def build_image(image: str = IMAGE, suite: str = SUITE, *, mirrors: Mirrors | None = None,
                cache: Path = CACHE, log: Callable[[str], None] = print,
                server: bool = True) -> None:
    """Build ``image`` (replacing one of that name); concurrent builds wait for each other.
    ``server``: the throwaway hosts' server (sshd, sudo, the login user); else a bare base
    image whose command is a shell."""
    problem = build_problem()
    if problem:
        raise TestHostError(f"cannot build image {image}: {problem}")
    mirrors = mirrors or debian_mirrors(suite)
    cache.mkdir(parents=True, exist_ok=True)
    kind = "hostout-bare" if server else "hostout-base"
    with _locked(cache / ".lock"):
        rootfs = cache / f"{kind}-{suite}-{_recipe_key(suite, mirrors, server)}.tar"
        if not rootfs.is_file():
            log(f"building {image}: debootstrap {suite} from {mirrors.main}")
            _build_rootfs(rootfs, suite, mirrors, cache, server=server)
        changes = (["--change", SSHD_CMD, "--change", "EXPOSE 22"] if server
                   else ["--change", 'CMD ["/bin/bash"]'])
        podman("import", "--quiet", *changes, str(rootfs), image)
    log(f"built {image}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _recipe_key(suite: str, mirrors: Mirrors, server: bool = True) -> str:
    """What the root file system depends on: this recipe, the mirrors and the CA bundle."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(f"{suite} {mirrors}{'' if server else ' base'}".encode())
    if CONTROLLER_CA.is_file():
        digest.update(CONTROLLER_CA.read_bytes())
    return digest.hexdigest()[:12]


# Like Debian's official container images: no docs, man pages or translations, now and for
# whatever apt installs later (a smaller image, faster installs).
NODOC = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
"""
SSHD_CONFIG = "PermitRootLogin no\nPasswordAuthentication yes\n"


def _build_rootfs(target: Path, suite: str, mirrors: Mirrors, cache: Path, *,
                  server: bool = True) -> None:
    debs = cache / "debs"
    debs.mkdir(exist_ok=True)
    packages = PACKAGES if server else BASE_PACKAGES
    with tempfile.TemporaryDirectory(prefix="root.", dir=cache) as tmp:
        root = Path(tmp)
        # --foreign: unpack only, so dpkg's settings below apply to the packages' install
        _run("debootstrap", "--foreign", "--variant=minbase", f"--include={','.join(packages)}",
             f"--cache-dir={debs}", suite, str(root), mirrors.main)
        dpkg = root / "etc/dpkg/dpkg.cfg.d"
        (dpkg / "hostout-nodoc").write_text(NODOC)
        (dpkg / "unsafe-io").write_text("force-unsafe-io\n")  # while building only: no fsyncs
        _run("chroot", str(root), "/debootstrap/debootstrap", "--second-stage")
        (dpkg / "unsafe-io").unlink()
        for doc in (root / "usr/share/doc").glob("*/*"):
            if doc.name != "copyright" and not doc.is_dir():
                doc.unlink()
        for directory in ("usr/share/man", "usr/share/info", "usr/share/locale",
                          "var/lib/apt/lists"):
            for entry in (root / directory).glob("*"):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        for pattern in ("var/cache/apt/*.bin", "var/cache/apt/archives/*.deb"):
            for entry in root.glob(pattern):
                entry.unlink()

        (root / "etc/apt/sources.list").write_text(mirrors.sources_list(suite))
        if CONTROLLER_CA.is_file():  # pip inside a host must trust what this machine trusts
            kept = root / "usr/local/share/ca-certificates/controller.crt"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(CONTROLLER_CA, kept)  # where update-ca-certificates keeps it
            shutil.copyfile(CONTROLLER_CA, root / "etc/ssl/certs/ca-certificates.crt")

        if server:
            _run("chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash",
                 "--groups", "sudo", LOGIN_USER)
            _run("chroot", str(root), "chpasswd", input=f"{LOGIN_USER}:{LOGIN_PASSWORD}\n")
            _run("chroot", str(root), "passwd", "--lock", "root")
            (root / "etc/ssh/sshd_config.d/hostout-testhost.conf").write_text(SSHD_CONFIG)
            for key in (root / "etc/ssh").glob("ssh_host_*"):
                key.unlink()  # made per container, when it starts
            (root / "run/sshd").mkdir(parents=True, exist_ok=True)

        for old in cache.glob(f"{target.name.rsplit('-', 1)[0]}-*.tar"):
            old.unlink()
        partial = target.with_suffix(".tmp")
        _run("tar", "-C", str(root), "-cf", str(partial), ".")
        partial.replace(target)


def _run(*cmd: str, input: str | None = None) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(cmd, text=True, capture_output=True, env=env, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise TestHostError(f"{cmd[0]} failed ({proc.returncode}): {' / '.join(tail)}")
