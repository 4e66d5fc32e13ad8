"""Issue 8, item 3: files that recipes and ``extends`` download, deployed to a bare host.

One host, two local HTTP servers: ``near`` on the host's podman network gateway (the host
reaches it: the server fetches those files itself) and ``far`` on 127.0.0.1 of this machine
(the host cannot reach it: hostout ships those files from here). The buildout compiles a
small C program with hexagonit.recipe.cmmi from a tarball on ``far``, downloads a file with
hexagonit.recipe.download from ``near``, and extends cfg files by URL from both (one of
them extends another, relatively). The local build keeps no download cache, so what is
shipped is downloaded here at deploy time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildouts import buildout, hostout, write
from fileserver import FileServer, c_tarball
from hosts import TestHost, podman, start_host
from registries import index_hosts

pytestmark = pytest.mark.integration

GREETING = "from-near+nested+from-far"
PATH = "/var/buildout/host1"


@dataclass
class Site:
    host: TestHost
    directory: Path
    near: FileServer
    far: FileServer
    first: object  # the first deploy's CompletedProcess

    def app_cfg(self, hello_url: str, md5sum: str = "") -> None:
        checksum = f"md5sum = {md5sum}" if md5sum else ""
        write(self.directory, "app.cfg", f"""
            [buildout]
            extends = {self.near.url}/base.cfg {self.far.url}/far.cfg
            parts = hello data

            [hello]
            recipe = hexagonit.recipe.cmmi
            url = {hello_url}
            {checksum}
            configure-options = --greeting=${{settings:near}}+${{settings:nested}}+${{settings:far}}

            [data]
            recipe = hexagonit.recipe.download
            url = {self.near.url}/data.txt
            download-only = true
            """)

    def server_state(self) -> str:
        """What a failed deploy must leave alone: the server's cfg files and caches."""
        return self.host.exec(f"cd {PATH} && sha256sum app.cfg hostout.cfg pinned.cfg && "
                              "find buildout-cache/downloads buildout-cache/extends -type f "
                              "-not -path '*/dist/*' | sort").stdout


def gateway(host: TestHost) -> str:
    """This machine's address on the host's podman network: where the host reaches us."""
    template = "{{range .NetworkSettings.Networks}}{{.Gateway}} {{end}}"
    return podman("inspect", "--format", template, host.container).stdout.split()[0]


@pytest.fixture(scope="module")
def site(host_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("downloads")
    host = start_host()
    try:
        near_dir, far_dir, d = work / "near", work / "far", work / "buildout"
        write(near_dir, "base.cfg", "[buildout]\nextends = more.cfg\n[settings]\n"
              "near = from-near\n")
        write(near_dir, "more.cfg", "[settings]\nnested = nested\n")
        write(near_dir, "data.txt", "data the server fetched\n")
        write(far_dir, "far.cfg", "[settings]\nfar = from-far\n")
        c_tarball(far_dir / "hello-1.0.tar.gz", "1.0")
        with FileServer(near_dir, gateway(host)) as near, FileServer(far_dir) as far:
            (d / "ssh_config").parent.mkdir(parents=True)
            (d / "ssh_config").touch()
            s = Site(host, d, near, far, None)
            s.app_cfg(f"{far.url}/hello-1.0.tar.gz")
            write(d, "buildout.cfg", f"""
                [buildout]
                extends = app.cfg
                parts += host1

                [host1]
                recipe = collective.hostout
                host = {host.hoststring}
                user = deploy
                password = {host.password}
                known-hosts = {d / "known_hosts"}
                ssh-config = {d / "ssh_config"}
                buildout = app.cfg
                path = {PATH}
                buildout-user = buildout
                buildout-group = grp
                system-packages = gcc make libc6-dev
                """)
            buildout(d)
            s.first = hostout(d, "host1", "deploy")
            yield s
    finally:
        host.remove()


def test_local_build_recorded_every_download(site: Site):
    import json

    record = json.loads((site.directory / "parts/hostout/downloads.json").read_text())
    urls = {f["url"]: f for files in record["parts"].values() for f in files}
    extends = {f["url"]: f for f in record["extends"]}
    assert sorted(urls) == [f"{site.near.url}/data.txt", f"{site.far.url}/hello-1.0.tar.gz"]
    assert sorted(extends) == sorted([f"{site.near.url}/base.cfg", f"{site.near.url}/more.cfg",
                                      f"{site.far.url}/far.cfg"])
    tarball = (site.far.directory / "hello-1.0.tar.gz").read_bytes()
    hello = urls[f"{site.far.url}/hello-1.0.tar.gz"]
    assert hello["sha256"] == hashlib.sha256(tarball).hexdigest()
    # the cmmi recipe asks buildout to name cache files by a hash of the URL
    assert hello["name"] == hashlib.md5(hello["url"].encode()).hexdigest()
    assert "kept" not in hello  # no download cache here: a deploy must download it again
    assert record["unseen"] == []


def test_server_fetches_what_it_reaches_and_gets_the_rest_from_here(site: Site):
    proc = site.first
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    m = re.search(r"^\[host1\] uploadbuildout: downloads: 3 fetched by the server, 2 shipped "
                  r"from here \(far\.cfg, hello-1\.0\.tar\.gz; \d+ (bytes|KB)\)$",
                  proc.stdout, re.M)
    assert m, proc.stdout
    container = site.host.inspect_ip()
    for path in ("/base.cfg", "/more.cfg", "/data.txt"):
        assert site.near.asked(path, client=container) == 1, site.near.requests
    # what the server could not reach, this machine downloaded again (no cache kept it)
    # the local build, deploy's scratch build of the chosen cfg (which sees prod-only
    # downloads too), then the deploy shipping it
    assert site.far.asked("/hello-1.0.tar.gz") == 3
    assert site.far.asked("/far.cfg") >= 2
    assert {who for who, _ in site.far.requests} == {"127.0.0.1"}


def test_compiled_program_runs_on_the_server(site: Site):
    assert site.first.returncode == 0, site.first.stderr
    ran = site.host.exec(f"su buildout -c {PATH}/parts/hello/bin/hello")
    assert (ran.returncode, ran.stdout) == (0, GREETING + "\n"), ran.stderr
    data = site.host.exec(f"cat {PATH}/parts/data/data.txt").stdout
    assert data == "data the server fetched\n"


def test_server_read_no_package_index(site: Site):
    (log,) = (site.directory / "parts/hostout/logs").glob("*-host1-deploy.log")
    kept = log.read_text()
    assert "Installing hello." in kept  # the log has the server's build output
    indexes = index_hosts()
    assert indexes
    assert [i for i in indexes if i in kept] == []


def test_unchanged_redeploy_fetches_and_ships_nothing(site: Site):
    asked = len(site.near.requests) + len(site.far.requests)
    proc = hostout(site.directory, "host1", "deploy")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "downloads:" not in proc.stdout
    assert "nothing changed since the last successful build" in proc.stdout
    assert len(site.near.requests) + len(site.far.requests) == asked


def test_download_that_fails_everywhere_is_one_line_and_uploads_nothing(site: Site):
    c_tarball(site.far.directory / "hello-2.0.tar.gz", "2.0")
    site.app_cfg(f"{site.far.url}/hello-2.0.tar.gz")
    buildout(site.directory)  # builds here
    (site.far.directory / "hello-2.0.tar.gz").unlink()  # and is gone since
    before = site.server_state()
    proc = hostout(site.directory, "host1", "deploy")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"Error: host1: cannot get {site.far.url}/hello-2.0.tar.gz: on the server: "
        "Connection refused; here: HTTP Error 404: File not found")
    assert site.server_state() == before
    assert site.host.exec(f"find {PATH} -name '*.part'").stdout == ""


def test_checksum_mismatch_is_an_error(site: Site):
    tarball = c_tarball(site.far.directory / "hello-3.0.tar.gz", "3.0")
    md5 = hashlib.md5(tarball.read_bytes()).hexdigest()
    site.app_cfg(f"{site.far.url}/hello-3.0.tar.gz", md5sum=md5)
    buildout(site.directory)
    c_tarball(tarball, "3.0", comment="replaced upstream")  # same URL, other content
    before = site.server_state()
    proc = hostout(site.directory, "host1", "deploy")
    assert proc.returncode == 1, proc.stdout[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: host1: cannot get {site.far.url}/hello-3.0.tar.gz: "
                           "on the server: Connection refused; here: checksum mismatch: "), last
    assert f"md5sum {md5}" in last
    assert site.server_state() == before
