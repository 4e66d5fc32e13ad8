"""The database server: ``GET /KEY`` answers a value, ``PUT /KEY`` stores the request's body.

Values live in a JSON file (under the buildout's var/, the image's volume), written through a
temporary file and a rename. A new file starts with ``greeting``.

    bin/kvserver PORT DATAFILE
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIRST = {"greeting": "Hello from the kvdemo server"}


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        if not path.exists():
            self._write(dict(FIRST))

    def get(self, key: str) -> str | None:
        with self.lock:
            return json.loads(self.path.read_text()).get(key)

    def put(self, key: str, value: str) -> None:
        with self.lock:
            data = json.loads(self.path.read_text())
            data[key] = value
            self._write(data)

    def _write(self, data: dict[str, str]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)


def handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            value = store.get(self.path.strip("/"))
            if value is None:
                self._answer(404, "no such key\n")
            else:
                self._answer(200, value)

        def do_PUT(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            store.put(self.path.strip("/"), self.rfile.read(length).decode())
            self._answer(204, "")

    return Handler


def main(argv: list[str] | None = None) -> None:
    port, data = (argv if argv is not None else sys.argv[1:])[:2]
    server = ThreadingHTTPServer(("0.0.0.0", int(port)), handler(Store(Path(data))))
    # as a container's main process: stop on SIGTERM (compose stop), not after a timeout
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"kvdemo server on port {port}, data in {data}", flush=True)
    server.serve_forever()
