"""Issue 8, item 7: realistic buildouts (tests/corpus/) each deployed with ONE
`bin/hostout host1 deploy` to a bare host with no way out (it reaches no package index and
no apt mirror: whatever the build needs must come from here), and shown running there.

Two buildouts share the host at different paths (see tests/corpus/README.md for what each
holds): `legacy` answers over HTTP from supervisord, `mrdev` prints from a script."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildouts import buildout, fetch, hostout, write
from hosts import TestHost, start_host
from registries import index_hosts

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parent / "corpus"


def prepare(name: str, workdir: Path, host: TestHost) -> Path:
    """A copy of tests/corpus/NAME whose host1 is ``host``, built with bin/buildout."""
    target = workdir / name
    shutil.copytree(CORPUS / name, target)
    (target / "ssh_config").touch()
    write(target, "deploy.cfg", f"""
        [buildout]
        extends = buildout.cfg
        [host1]
        host = {host.address}:22
        user = {host.user}
        password = {host.password}
        known-hosts = {target / "known_hosts"}
        ssh-config = {target / "ssh_config"}
    """)
    return target


def git_repository(path: Path) -> Path:
    """A local git repository holding the package `corpusgit` (pyproject.toml only)."""
    write(path, "pyproject.toml", """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "corpusgit"
        version = "2.0"
        dependencies = ["Pygments"]
        [project.scripts]
        corpusgit = "corpusgit:main"
    """)
    write(path, "src/corpusgit/__init__.py", """
        import importlib.metadata


        def main() -> None:
            print(f"corpusgit from git; Pygments {importlib.metadata.version('Pygments')}")
    """)
    git = ["git", "-c", "user.name=hostout", "-c", "user.email=hostout@example.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "corpusgit 2.0"]):
        subprocess.run([*git, *args], cwd=path, check=True, capture_output=True)
    return path


class Deployed:
    def __init__(self, directory: Path, proc: subprocess.CompletedProcess[str]) -> None:
        self.directory, self.proc = directory, proc

    def run(self, *cmd: str) -> str:
        """What CMD printed on the server (run as the buildout user in its path)."""
        proc = hostout(self.directory, "host1", "run", *cmd)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        prefix = "[host1] out: "
        return "\n".join(ln.removeprefix(prefix) for ln in proc.stdout.splitlines()
                         if ln.startswith(prefix))


@pytest.fixture(scope="module")
def host(host_image: str, internal_network: str) -> Iterator[TestHost]:
    started = start_host(network=internal_network, publish=(8081,))
    try:
        yield started
    finally:
        started.remove()


@pytest.fixture(scope="module")
def legacy(host: TestHost, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    d = prepare("legacy", tmp_path_factory.mktemp("corpus"), host)
    buildout(d, "-c", "deploy.cfg")
    return Deployed(d, hostout(d, "-v", "host1", "deploy"))


@pytest.fixture(scope="module")
def mrdev(host: TestHost, legacy: Deployed, tmp_path_factory: pytest.TempPathFactory
          ) -> Deployed:
    work = tmp_path_factory.mktemp("corpus")
    repo = git_repository(work / "corpusgit.git")
    d = prepare("mrdev", work, host)
    write(d, "sources.cfg", f"[sources]\ncorpusgit = git file://{repo}\n")
    buildout(d, "-c", "deploy.cfg")
    assert (d / "src" / "corpusgit" / ".git").is_dir()  # mr.developer checked it out
    return Deployed(d, hostout(d, "-v", "host1", "deploy"))


def local_versions(d: Path) -> dict[str, str]:
    from collective.hostout.packaging import versions

    return versions.read(d / "hostoutversions.cfg")


def test_unpinned_buildout_deploys_and_serves(legacy: Deployed, host: TestHost):
    proc = legacy.proc
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    used = local_versions(legacy.directory)
    # rich (hostout's own dependency, from buildout's environment here) and httpcore
    # (pinned by httpx's metadata) are what the server runs: the versions tested here
    answer = fetch(host.url(8081), timeout=60)
    assert answer == (f"legacyapp: hello from the corpus; rich {used['rich']}, "
                      f"httpx {used['httpx']}, httpcore {used['httpcore']}")
    # the setup.py-only, old-style namespace develop package runs as released
    out = legacy.run("bin/legacyapp", "etc/app.conf")
    assert out.strip().endswith(answer)
    assert re.search(r"corpusns[._]legacyapp-1\.0\.dev0\+[0-9a-f]+\.tar\.gz", proc.stdout)


def test_production_only_eggs_are_pinned_and_said_in_one_line(legacy: Deployed):
    lines = [ln for ln in legacy.proc.stdout.splitlines() if "that no cfg pins" in ln]
    assert len(lines) == 1, legacy.proc.stdout[-3000:]
    assert re.fullmatch(
        r"\[host1\] deploy: pinned 3 eggs that no cfg pins: collective\.recipe\.supervisor "
        r"\S+, plone\.recipe\.command \S+, supervisor \S+ \(as resolved here; pin them in "
        r"prod\.cfg to choose\)", lines[0])
    pinned = legacy.run("cat", "pinned.cfg")
    assert re.search(r"^supervisor = \S+$", pinned, re.M)
    assert legacy.run("cat", "var/stamp.txt").strip() == "stamped by plone.recipe.command"


def test_part_list_from_another_section_builds_from_the_cache(legacy: Deployed):
    cfg = legacy.run("cat", "hostout.cfg")
    assert "parts = conf app supervisor stamp" in cfg.splitlines()
    indexes = index_hosts()
    assert indexes  # so the check below can fail
    # -v shows the server's build output: it read no index (it cannot reach one anyway)
    assert [i for i in indexes if i in legacy.proc.stdout] == []
    # buildout read only its download cache (as a file:// "index" of the shipped dists)
    reads = [ln for ln in legacy.proc.stdout.splitlines()
             if re.search(r"\b(Reading|Downloading) ", ln)]
    assert not [ln for ln in reads if "http" in ln], reads


def test_mr_developer_checkout_deploys_as_a_develop_release(mrdev: Deployed):
    proc = mrdev.proc
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert re.search(r"corpusgit-2\.0\.dev0\+[0-9a-f]+\.tar\.gz", proc.stdout)
    used = local_versions(mrdev.directory)
    assert used["Pygments"] == "2.19.2"  # the cfg's pin, not the version beside buildout
    out = mrdev.run("bin/corpusgit")
    assert out.strip().endswith("corpusgit from git; Pygments 2.19.2")
    cfg = mrdev.run("cat", "hostout.cfg")
    assert "extensions = " in cfg.splitlines()  # the server loads no mr.developer
    assert "no cfg pins" not in proc.stdout  # everything it uses was used here too
