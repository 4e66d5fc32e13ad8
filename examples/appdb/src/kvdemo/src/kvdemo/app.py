"""The application: answers every request with the ``greeting`` it reads from the server.

Its configuration file (written by buildout from ``app.ini.in``) names the server::

    [app]
    port = 8080
    server = http://db:8100

    bin/kvapp CONFIG
"""

from __future__ import annotations

import configparser
import signal
import sys
import threading
import urllib.error
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server


def application(server: str):
    def app(environ, start_response):
        url = f"{server}/greeting"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                status, text = "200 OK", response.read().decode()
        except (OSError, urllib.error.URLError) as err:
            status, text = "502 Bad Gateway", f"cannot read {url}: {err}"
        body = f"{text} (read from {server})\n".encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(body)))])
        return [body]

    return app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def main(argv: list[str] | None = None) -> None:
    (config,) = (argv if argv is not None else sys.argv[1:])[:1]
    parser = configparser.ConfigParser()
    parser.read(config)
    port, server = int(parser["app"]["port"]), parser["app"]["server"]
    httpd = make_server("0.0.0.0", port, application(server), handler_class=QuietHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    print(f"kvdemo app on port {port}, reading {server}", flush=True)
    httpd.serve_forever()
