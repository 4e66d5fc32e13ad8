"""known_hosts read once per invocation; each connection learns only its own host's keys."""

from __future__ import annotations

from pathlib import Path

import paramiko

from collective.hostout.remote.ssh import KnownHosts


def key_line(name: str, key: paramiko.PKey) -> str:
    return f"{name} {key.get_name()} {key.get_base64()}\n"


def test_each_client_gets_its_hosts_keys_only(tmp_path: Path):
    keys = [paramiko.Ed25519Key.from_private_key_file(str(write_key(tmp_path, i)))
            for i in range(3)]
    hashed = paramiko.HostKeys.hash_host("[10.0.0.3]:2222")
    known = tmp_path / "known_hosts"
    known.write_text("# a comment\n\n"
                     + key_line("[10.0.0.1]:2222,web1", keys[0])
                     + key_line("10.0.0.2", keys[1])
                     + key_line(hashed, keys[2])
                     + "[10.0.0.9]:22 ssh-ed25519 not-base64!\n")
    shared = KnownHosts()
    clients = {}
    for host, port in (("10.0.0.1", 2222), ("10.0.0.2", 22), ("10.0.0.3", 2222),
                       ("10.0.0.9", 22)):
        client = paramiko.SSHClient()
        shared.install(client, known, host, port)
        clients[host] = client.get_host_keys()
    assert clients["10.0.0.1"].keys() == ["[10.0.0.1]:2222"]
    assert clients["10.0.0.1"]["[10.0.0.1]:2222"]["ssh-ed25519"] == keys[0]
    assert clients["10.0.0.2"]["10.0.0.2"]["ssh-ed25519"] == keys[1]
    assert clients["10.0.0.3"]["[10.0.0.3]:2222"]["ssh-ed25519"] == keys[2]  # hashed entry
    assert len(clients["10.0.0.9"]) == 0  # a broken line is no key


def test_a_file_is_read_once_and_again_when_it_changed(tmp_path: Path, monkeypatch):
    key = paramiko.Ed25519Key.from_private_key_file(str(write_key(tmp_path, 0)))
    known = tmp_path / "known_hosts"
    known.write_text(key_line("10.0.0.1", key))
    reads = []
    real_read = Path.read_text

    def counting_read(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return real_read(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counting_read)
    shared = KnownHosts()
    for port in range(2200, 2250):
        shared.install(paramiko.SSHClient(), known, "10.0.0.1", port)
    assert reads == [known]
    with known.open("a") as fh:  # as AcceptNew does when a host is met the first time
        fh.write(key_line("[10.0.0.2]:2222", key))
    client = paramiko.SSHClient()
    shared.install(client, known, "10.0.0.2", 2222)
    assert reads == [known, known]
    assert client.get_host_keys()["[10.0.0.2]:2222"]["ssh-ed25519"] == key


def write_key(tmp_path: Path, i: int) -> Path:
    import subprocess

    path = tmp_path / f"key{i}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path
