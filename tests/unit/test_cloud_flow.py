"""hostout.cloud's command flow with Libcloud's own dummy driver (VMs in memory, addresses
that nothing answers on: the remote is the recording fake). Settings come from a real
options file and the host's record, as in bin/hostout; tests/test_cloud.py runs the flow
on real hosts with the podman driver."""

from __future__ import annotations

from pathlib import Path

import pytest
from libcloud.compute.base import Node
from libcloud.compute.drivers.dummy import DummyNodeDriver

from collective.hostout import RecordingRemote
from collective.hostout.config import records
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.optionsfile import OptionsFile
from collective.hostout.config.settings import HostSettings
from collective.hostout.errors import ConfigError, ConnectError
from collective.hostout.output import QUIET, Output
from collective.hostout.plugins import cloud
from collective.hostout.plugins.cloud import control
from collective.hostout.plugins.cloud.control import CloudError
from collective.hostout.plugins.cloud.options import CloudOptions
from collective.hostout.remote.passwords import Passwords
from collective.hostout.runner import Invocation


class Remotes:
    """Makes a recording remote per settings, as the runner makes SSH remotes."""

    def __init__(self) -> None:
        self.made: list[tuple[HostSettings, RecordingRemote]] = []

    def __call__(self, settings: HostSettings) -> RecordingRemote:
        remote = RecordingRemote(settings.name)
        self.made.append((settings, remote))
        return remote


def invocation(tmp_path: Path, remotes: Remotes | None = None,
               **options: str) -> tuple[Invocation, Output]:
    opts = {"provider": "dummy", "provider-creds": "0", "identity-file": str(tmp_path / "k"),
            "known-hosts": str(tmp_path / "known_hosts"), "cloud-timeout": "5", **options}
    facts = BuildoutFacts.of_directory(tmp_path)
    optionsfile = OptionsFile(location=tmp_path / "parts" / "hostout" / "hostout.json",
                              facts=facts, hosts={"host1": {"options": opts,
                                                            "plugins": ["hostout.cloud"]}})
    out = Output(verbosity=QUIET)
    return Invocation(optionsfile, out, Passwords(out, interactive=False),
                      remote_factory=remotes or Remotes()), out


def test_create_records_the_vm_and_the_same_run_goes_there(tmp_path: Path):
    remotes = Remotes()
    inv, _ = invocation(tmp_path, remotes, hostsize="500", image="ubuntu")
    c = inv.context("host1")
    assert c.settings.hostname == "host1"  # before: the part's name, as for any host
    c.call("create")
    record = records.read(tmp_path / "parts", "host1")
    assert record.options == {"host": "127.0.0.3", "user": "root"}
    assert record.data["cloud"] == {"provider": "dummy", "id": "3", "name": "dummy-3"}
    assert (tmp_path / "parts/hostout/records/host1.json").stat().st_mode & 0o777 == 0o600
    # the context reloaded: new settings, a new remote, on which SSH was waited for
    assert (c.settings.hostname, c.settings.user) == ("127.0.0.3", "root")
    (first, _), (second, remote) = remotes.made
    assert first.hostname == "host1" and second.hostname == "127.0.0.3"
    assert c.remote is remote and remote.scripts() == ["true"]
    # the key the VM's login takes was made for it
    assert (tmp_path / "k").is_file() and (tmp_path / "k.pub").is_file()


def test_a_later_run_reads_the_record(tmp_path: Path):
    inv, _ = invocation(tmp_path)
    inv.context("host1").call("create")
    again, _ = invocation(tmp_path, user="admin")  # the part's own options win
    settings = again.context("host1").settings
    assert (settings.hostname, settings.user) == ("127.0.0.3", "admin")


def test_create_chooses_size_and_image(tmp_path: Path):
    inv, out = invocation(tmp_path, hostsize="500", image="ubuntu")
    reports: list[str] = []
    out.report = lambda host, command, text: reports.append(text)  # type: ignore[method-assign]
    inv.context("host1").call("create")
    assert reports[0].startswith("created VM dummy-3 (Medium, Ubuntu 9.10) at 127.0.0.3;")
    for options, message in [({"hostsize": "100000"}, "no size with hostsize = 100000 MB"),
                             ({"size": "huge"}, r"has no size .huge. \(it has Small, Medium"),
                             ({"image": "windows"}, "has no image 'windows'")]:
        records.remove(tmp_path / "parts", "host1")
        inv, _ = invocation(tmp_path, **options)
        with pytest.raises(CloudError, match=message):
            inv.context("host1").call("create")


def test_create_again_finds_the_vm(tmp_path: Path):
    inv, out = invocation(tmp_path)
    c = inv.context("host1")
    c.call("create")
    reports: list[str] = []
    out.report = lambda host, command, text: reports.append(text)  # type: ignore[method-assign]
    c.call("create")
    assert reports == ["VM dummy-3 exists, running at 127.0.0.3"]
    assert len(c.state(control.CloudState).driver.list_nodes()) == 3


def test_list_marks_the_hosts_vm(tmp_path: Path):
    inv, _ = invocation(tmp_path)
    c = inv.context("host1")
    c.call("create")
    rows = c.call("list")
    assert [(r["name"], r["address"], r["host"]) for r in rows] == [
        ("dummy-1", "127.0.0.1", ""), ("dummy-2", "127.0.0.1", ""),
        ("dummy-3", "127.0.0.3", "host1")]


def test_what_a_provider_cannot_do_is_one_line(tmp_path: Path):
    inv, _ = invocation(tmp_path)
    c = inv.context("host1")
    with pytest.raises(CloudError, match="no VM host1 at provider dummy: run 'bin/hostout "
                                         "host1 create'"):
        c.call("stop")
    c.call("create")
    with pytest.raises(CloudError, match="provider dummy cannot stop VMs"):
        c.call("stop")
    with pytest.raises(CloudError, match="provider dummy cannot start VMs"):
        c.call("vmstart")


def test_destroy_wants_confirmation_then_forgets_the_vm(tmp_path: Path):
    inv, _ = invocation(tmp_path)
    c = inv.context("host1")
    c.call("create")
    with pytest.raises(CloudError, match=r"confirm with 'bin/hostout host1 destroy --yes'"):
        c.call("destroy")  # not a terminal: never asked
    with pytest.raises(CloudError, match="destroy takes --yes"):
        c.call("destroy", "please")
    driver = c.state(control.CloudState).driver
    assert len(driver.list_nodes()) == 3 and records.read(tmp_path / "parts", "host1")
    c.call("destroy", "--yes")
    assert [n.name for n in driver.list_nodes()] == ["dummy-1", "dummy-2"]
    assert not records.read(tmp_path / "parts", "host1")
    c.call("destroy", "--yes")  # nothing left: says so, succeeds


def test_destroy_on_a_terminal_asks_for_the_vms_name(tmp_path: Path, monkeypatch):
    inv, out = invocation(tmp_path)
    c = inv.context("host1")
    c.call("create")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []
    out.ask = lambda prompt: asked.append(prompt) or "host1"  # type: ignore[method-assign]
    with pytest.raises(CloudError, match="not confirmed: VM dummy-3 left as it is"):
        c.call("destroy")  # its name at the provider (the dummy driver names VMs itself)
    assert asked == ["Destroy VM dummy-3 of host1 at dummy, with its disks? Type its name to "
                     "confirm: "]
    out.ask = lambda prompt: "dummy-3"  # type: ignore[method-assign]
    c.call("destroy")
    assert not records.read(tmp_path / "parts", "host1")


def test_deploy_without_a_vm_says_to_create_it_before_connecting(tmp_path: Path):
    remotes = Remotes()
    inv, _ = invocation(tmp_path, remotes)
    with pytest.raises(CloudError, match="host1 has no VM yet: run 'bin/hostout host1 create "
                                         "deploy'"):
        inv.context("host1").call("deploy")
    assert remotes.made[0][1].calls == []


def test_a_host_with_its_own_address_is_not_created(tmp_path: Path):
    inv, _ = invocation(tmp_path, host="server.example.com")
    with pytest.raises(CloudError, match=r"option host = server\.example\.com is set"):
        inv.context("host1").call("create")


def test_ssh_that_never_answers_is_an_error_naming_the_vm(tmp_path: Path, monkeypatch):
    class Silent(RecordingRemote):
        def execute(self, cmd, **kwargs):  # type: ignore[no-untyped-def,override]
            raise ConnectError("cannot reach root@127.0.0.3: connection refused")

    monkeypatch.setattr(control, "POLL", 0.01)
    inv, _ = invocation(tmp_path, lambda settings: Silent(settings.name),  # type: ignore[arg-type]
                        **{"cloud-timeout": "0.05"})
    with pytest.raises(CloudError, match=r"VM host1 at 127\.0\.0\.3 does not answer SSH after "
                                         r"0 s: cannot reach root@127\.0\.0\.3"):
        inv.context("host1").call("create")


@pytest.mark.parametrize(("options", "message"), [
    ({"provider": ""}, "hostout.cloud needs option provider"),
    ({"provider": "nosuchcloud"}, "provider = nosuchcloud: not a Libcloud compute provider"),
    ({"provider-region": "eu"}, "option provider-region: provider dummy takes provider-creds"),
    ({"provider-creds": ""}, "provider dummy needs option provider-creds"),
    ({"hostsize": "big"}, "option hostsize = 'big' is not megabytes"),
    ({"vm-name": "a b"}, "option vm-name = 'a b' is not a usable VM name"),
    ({"provider": "nosuch.module:Driver"}, "cannot load nosuch.module:Driver"),
])
def test_bad_options_are_one_line(tmp_path: Path, options: dict[str, str], message: str):
    inv, _ = invocation(tmp_path, **options)
    with pytest.raises(ConfigError, match=message):
        inv.context("host1").call("list")


def test_hostout_1_spellings():
    opts = CloudOptions.of({"hosttype": "rackspace", "key": "me", "secret": "s3", "hostname":
                            "web1", "hostsize": "512", "imageid": "img-1",
                            "hostsize_name": "2GB", "ex-keyname": "deploy"}, "h")
    assert (opts.provider, opts.name, opts.ram, opts.image, opts.size) == (
        "rackspace", "web1", 512, "img-1", "2GB")
    assert opts.arguments == {"key": "me", "secret": "s3"}
    assert opts.extra == {"ex_keyname": "deploy"}
    assert set(opts.secrets) == {"me", "s3"}
    options = {"hosttype": "dummy", "key": "apikey"}
    cloud.Recipe(None, "h", options)
    assert options["identity-file"] == "h_key"  # key is the provider's, not the identity


def test_provider_secrets_are_masked(tmp_path: Path):
    inv, out = invocation(tmp_path, provider="ec2", **{"provider-key": "AKIAEXAMPLE",
                                                       "provider-secret": "wJalrXUtnFEMI"})
    c = inv.context("host1")
    control.options(c)
    assert out.mask("key AKIAEXAMPLE secret wJalrXUtnFEMI") == "key **** secret ****"


class PasswordDriver(DummyNodeDriver):
    """A provider that makes the login's password, and tells it only in create's answer."""

    features = {"create_node": ["password"]}

    def __init__(self, creds: str = "0") -> None:
        super().__init__(creds)

    def create_node(self, name, size, image, auth=None):  # type: ignore[no-untyped-def]
        node = super().create_node(name, size, image)
        node.name = name  # this one keeps the name asked for
        node.extra = {"password": "made-by-the-provider", "username": "admin"}
        self.created_auth = auth
        copy = Node(node.id, node.name, node.state, node.public_ips, [], self, extra={})
        self.nl[-1] = copy  # listings never show the password again
        return node


def test_a_password_the_provider_makes_is_recorded_and_masked(tmp_path: Path):
    inv, out = invocation(tmp_path, provider="test_cloud_flow:PasswordDriver",
                          **{"provider-creds": ""})
    c = inv.context("host1")
    c.call("create")
    record = records.read(tmp_path / "parts", "host1")
    assert record.options == {"host": "127.0.0.3", "user": "admin",
                              "password": "made-by-the-provider"}
    assert record.data["cloud"]["name"] == "host1"
    assert c.settings.password == "made-by-the-provider"
    assert out.mask("made-by-the-provider") == "****"
    # no ssh_key feature: hostout asked for a password login of its own making
    assert type(c.state(control.CloudState).driver.created_auth).__name__ == "NodeAuthPassword"
