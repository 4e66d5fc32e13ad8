"""``fabric.contrib.project``: ``upload_project``; ``rsync_project`` is refused."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import HostoutError
from ..legacy import operations as ops
from ..legacy.current import ctx
from ..shell import q


def upload_project(local_dir: str | None = None, remote_dir: str = "",
                   use_sudo: bool = False) -> None:
    """Upload the local directory ``local_dir`` (default: the local working directory)
    into ``remote_dir`` (default: the remote working directory), as a tarball unpacked
    there."""
    local = ops.resolve_local(local_dir or ".").resolve()
    if not local.is_dir():
        raise HostoutError(f"upload_project: {local} is not a directory", host=ctx().name)
    target = ops.resolve_remote(remote_dir)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / f"{local.name}.tar.gz"
        with tarfile.open(tarball, "w:gz") as tar:
            tar.add(str(local), arcname=local.name)
        staging = ops.run("mktemp -d", quiet=True).strip()
        remote_tar = str(PurePosixPath(staging) / tarball.name)
        ops.put(tarball, remote_tar)
    run = ops.sudo if use_sudo else ops.run
    run(f"mkdir -p {ops.quote_path(target)} && tar -xzf {q(remote_tar)} -C "
        f"{ops.quote_path(target)}")
    ops.run(f"rm -rf {q(staging)}")


def rsync_project(*args: Any, **kwargs: Any) -> None:
    """Not in hostout 2: rsync would need its own ssh login, outside hostout's connection,
    host key checks and passwords."""
    raise HostoutError("contrib.project.rsync_project is not supported by hostout 2 (rsync "
                       "would log in outside hostout's connection): use "
                       "contrib.project.upload_project or api.put, which uploads "
                       "directories too", host=ctx().name)
