"""The buildout user's login key: made locally when absent, always 0600."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import ConfigError


def ensure_key(path: Path, comment: str) -> str:
    """The OpenSSH public key line of the private key at ``path``, made if missing."""
    public = path.with_name(path.name + ".pub")
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        private_bytes = key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_bytes)
        line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode()
        public.write_text(f"{line} {comment}\n")
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # a key others can read is refused by ssh; keep it private
    if public.exists():
        return public.read_text().strip()
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"identity-file {path} is not an unencrypted OpenSSH private key "
                          f"and has no {public.name} beside it", cause=err) from err
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}"
