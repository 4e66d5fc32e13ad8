"""A local HTTP server for tests that download: serves a directory on an address of this
machine (127.0.0.1, or a podman network's gateway, which that network's hosts reach) and
remembers who asked for what. Plus the small C source tarball the cmmi tests compile."""

from __future__ import annotations

import functools
import io
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

CONFIGURE = """\
#!/bin/sh
# a configure script as cmmi recipes run it: ./configure --prefix=DIR [options]
prefix=/usr/local
greeting=hello
for arg; do
  case "$arg" in
    --prefix=*) prefix="${arg#--prefix=}" ;;
    --greeting=*) greeting="${arg#--greeting=}" ;;
  esac
done
printf 'PREFIX = %s\\nGREETING = %s\\n' "$prefix" "$greeting" > Makefile
cat Makefile.in >> Makefile
"""
MAKEFILE_IN = """\
hello: hello.c
\t$(CC) -DGREETING='"$(GREETING)"' -o hello hello.c
install: hello
\tmkdir -p $(PREFIX)/bin && cp hello $(PREFIX)/bin/hello
"""
HELLO_C = """\
#include <stdio.h>
int main(void) { puts(GREETING); return 0; }
"""


def c_tarball(path: Path, version: str, *, comment: str = "") -> Path:
    """``hello-VERSION.tar.gz``: ./configure --greeting=WORD && make install gives
    PREFIX/bin/hello, which prints WORD. ``comment`` changes the content, not the program."""
    top = f"hello-{version}"
    files = {"configure": (CONFIGURE, 0o755), "Makefile.in": (MAKEFILE_IN, 0o644),
             "hello.c": (HELLO_C + (f"/* {comment} */\n" if comment else ""), 0o644)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return path


class FileServer:
    """``with FileServer(directory, "127.0.0.1") as srv:`` serves directory at ``srv.url``;
    ``srv.requests`` lists (client address, path) of every GET."""

    def __init__(self, directory: Path, address: str = "127.0.0.1") -> None:
        self.directory = directory
        self.requests: list[tuple[str, str]] = []
        requests = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append((self.client_address[0], self.path))
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        handler = functools.partial(Handler, directory=str(directory))
        self.server = ThreadingHTTPServer((address, 0), handler)
        self.address = address
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def asked(self, path: str, client: str | None = None) -> int:
        """How many GETs of ``path`` (from ``client``) it served."""
        return sum(1 for who, p in self.requests if p == path and client in (None, who))

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
