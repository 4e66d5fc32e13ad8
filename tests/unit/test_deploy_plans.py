"""Pure pieces of deploy: OS detection and install plans, users and owners scripts, keys,
versions and distribution files. Real hosts are in tests/test_deploy.py."""

from __future__ import annotations

import shlex
from pathlib import Path, PurePosixPath

import pytest

from collective.hostout.config.settings import Accounts, Layout
from collective.hostout.packaging import dists, versions
from collective.hostout.server import debs, keys, system
from collective.hostout.steps.accounts import owners_script, users_script

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' \
         'VERSION_CODENAME=bookworm\n'
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n' \
         'VERSION_CODENAME=noble\nPRETTY_NAME="Ubuntu 24.04 LTS"\n'
ROCKY = 'ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\nPRETTY_NAME="Rocky 9.4"\n'
FEDORA = 'ID=fedora\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40"\n'
ALPINE = 'ID=alpine\nVERSION_ID=3.20.0\nPRETTY_NAME="Alpine Linux v3.20"\n'
ARCH = 'ID=arch\nPRETTY_NAME="Arch Linux"\n'


@pytest.mark.parametrize(("text", "family"), [(DEBIAN, "debian"), (UBUNTU, "debian"),
                                              (ROCKY, "redhat"), (FEDORA, "redhat"),
                                              (ALPINE, "alpine"), (ARCH, "arch")])
def test_os_family(text, family):
    assert system.OsRelease.parse(text).family == family


def test_os_release_fields():
    r = system.OsRelease.parse(UBUNTU)
    assert (r.id, r.like, r.codename, r.pretty) == ("ubuntu", ("debian",), "noble",
                                                    "Ubuntu 24.04 LTS")


def words(cmds):
    return [shlex.split(c.script) for c in cmds]


def test_debian_installs_versioned_python_and_venv_with_apt():
    cmds = system.install_python(system.OsRelease.parse(DEBIAN), "3.11")
    assert all(c.sudo for c in cmds)
    update, install = words(cmds)
    assert update[:3] == ["DEBIAN_FRONTEND=noninteractive", "apt-get", "update"]
    assert install[1:3] == ["apt-get", "install"]
    assert install[-3:] == ["python3.11", "python3.11-venv", "ca-certificates"]


def test_redhat_uses_dnf_and_alpine_apk_with_version_check():
    (dnf,) = words(system.install_python(system.OsRelease.parse(ROCKY), "3.12"))
    assert dnf == ["dnf", "install", "-y", "python3.12", "ca-certificates"]
    apk, check = system.install_python(system.OsRelease.parse(ALPINE), "3.12")
    assert shlex.split(apk.script) == ["apk", "add", "--no-cache", "python3",
                                       "ca-certificates"]
    assert "python3.12" in check.script and "sys.version_info[:2] == (3, 12)" in check.script


def test_hostos_overrides_detection_and_extra_packages():
    cmds = system.install_python(system.OsRelease.parse(ARCH), "3.11", hostos="redhat",
                                 extra=("gcc",))
    assert words(cmds) == [["dnf", "install", "-y", "python3.11", "ca-certificates", "gcc"]]


def test_unknown_os_is_a_clear_error():
    with pytest.raises(system.UnsupportedSystem, match="cannot install Python on Arch Linux"):
        system.install_python(system.OsRelease.parse(ARCH), "3.11")


APT_DEPENDS = """\
python3.11
  Depends: python3.11-minimal
 |Depends: media-types
  Depends: mime-support
  Recommends: ca-certificates
python3.11-minimal
  PreDepends: libc6
  Depends: <python3:any>
    python3
media-types
mime-support
  Depends: cdebconf
python3
  Depends: python3.11
"""


def test_apt_depends_parser_groups_alternatives_and_virtuals():
    parsed = debs.parse_depends(APT_DEPENDS)
    assert parsed["python3.11"] == [[["python3.11-minimal"]],
                                    [["media-types"], ["mime-support"]]]
    assert parsed["python3.11-minimal"] == [[["libc6"]], [["python3"]]]
    assert parsed["media-types"] == []


def test_closure_takes_first_alternative_and_skips_what_the_server_has():
    table = debs.parse_depends(APT_DEPENDS)
    asked: list[list[str]] = []

    def depends(names):
        asked.append(list(names))
        return {n: table[n] for n in names if n in table}

    assert debs.closure(["python3.11"], {"libc6"}, depends) == [
        "media-types", "python3", "python3.11", "python3.11-minimal"]
    assert all("mime-support" not in batch for batch in asked)  # the 2nd alternative
    with pytest.raises(Exception, match="package lists have no nosuch"):
        debs.closure(["nosuch"], set(), depends)


def test_users_script_quotes_and_is_idempotent():
    a = Accounts(login="deploy", buildout_user="bo user", effective_user="app", group="grp")
    script = users_script(a, "ssh-ed25519 AAAA hostout-h1")
    assert "getent group grp >/dev/null || groupadd grp" in script
    assert "id -u 'bo user' >/dev/null 2>&1 || useradd -m -s /bin/bash -G grp 'bo user'" in script
    assert "grep -qxF 'ssh-ed25519 AAAA hostout-h1'" in script  # no duplicate key lines
    assert script.startswith("set -e\n")


def test_owners_script_gives_code_to_buildout_user_and_var_to_app():
    a = Accounts(login="deploy", buildout_user="buildout", effective_user="app", group="grp")
    lay = Layout(PurePosixPath("/var/buildout/x"), PurePosixPath("/var/buildout/x/cache"))
    script = owners_script(a, lay)
    assert "chown -R buildout:grp /var/buildout/x" in script
    assert "chmod -R u+rwX,g+rX,g-w,o-rwx /var/buildout/x" in script
    assert "chown -R app:grp /var/buildout/x/var" in script


def test_key_made_0600_and_public_half_reused(tmp_path: Path):
    key = tmp_path / "host1_key"
    line = keys.ensure_key(key, "hostout-host1")
    assert line.startswith("ssh-ed25519 ") and line.endswith(" hostout-host1")
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    assert keys.ensure_key(key, "other") == line  # not regenerated
    assert key.stat().st_mode & 0o777 == 0o600  # and made private again


def test_used_versions_one_per_name_pins_decide_and_bootstrap_from_environment():
    used = versions.used_versions(
        [("WebOb", "1.8.11"), ("Paste", "3.10.1"), ("rich", "13.0.0"), ("rich", "15.0.0"),
         ("attrs", "23.1"), ("attrs", "24.2"), ("setuptools", "80.0.0"), ("zc-buildout", "6.0.1")],
        pins={"rich": "13.0.0", "Plone": "6.0"},
        environment={"setuptools": "81.0.0", "zc.buildout": "6.0.1"})
    # a pin decides between two versions used; otherwise the newest; unused pins stay out;
    # zc.buildout & co. at the versions that run buildout here
    assert used == {"attrs": "24.2", "Paste": "3.10.1", "rich": "13.0.0",
                    "setuptools": "81.0.0", "WebOb": "1.8.11", "zc.buildout": "6.0.1"}


def test_unpinned_names_what_no_cfg_pins():
    assert versions.unpinned({"supervisor": "4.3.0", "WebOb": "1.8.11", "Zope": "5"},
                             {"webob": "1.8.11", "zope": "5"}) == ["supervisor"]


def test_versions_file_roundtrip_and_no_rewrite(tmp_path: Path):
    f = tmp_path / "hostoutversions.cfg"
    assert versions.write(f, {"A": "1", "b.c": "2.0"}) is True
    assert versions.write(f, {"A": "1", "b.c": "2.0"}) is False
    assert versions.read(f) == {"A": "1", "b.c": "2.0"}


def test_dist_filenames():
    assert dists.parse_filename("WebOb-1.8.11-py3-none-any.whl")[::2] == ("webob", True)
    name, version, pure = dists.parse_filename(
        "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.whl")
    assert (name, str(version), pure) == ("pyyaml", "6.0.2", False)
    assert dists.parse_filename("hellowsgi-0.1.dev0+abc123.tar.gz")[:2] == (
        "hellowsgi", dists.Version("0.1.dev0+abc123"))
    assert dists.parse_filename("notes.txt") is None


def test_find_local_prefers_matching_versions_and_reports_missing(tmp_path: Path):
    for name in ("WebOb-1.8.11-py3-none-any.whl", "WebOb-1.8.9-py3-none-any.whl",
                 "Paste-3.10.1.tar.gz"):
        (tmp_path / name).touch()
    found, missing = dists.find_local({"WebOb": "1.8.11", "Paste": "3.10.1", "x": "1"},
                                      [tmp_path], dists.Target.local())
    assert {k: v.name for k, v in found.items()} == {
        "webob": "WebOb-1.8.11-py3-none-any.whl", "paste": "Paste-3.10.1.tar.gz"}
    assert missing == {"x": "1"}


def test_binary_wheels_of_another_platform_are_not_shipped(tmp_path: Path):
    (tmp_path / "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.whl").touch()
    arm = dists.Target("3.11", "linux-aarch64")
    found, missing = dists.find_local({"PyYAML": "6.0.2"}, [tmp_path], arm)
    assert found == {} and missing == {"PyYAML": "6.0.2"}
    argv = dists.pip_download(missing, tmp_path, arm)
    assert "--only-binary=:all:" in argv and "manylinux_2_17_aarch64" in argv
    assert argv[-1] == "PyYAML==6.0.2"
