"""The tunnel's HTTP proxy (``tunnel = true``), served on a socket pair as it is on a
forwarded SSH channel: CONNECT for https, absolute URIs for http, its token, the
destinations it refuses, and this machine's own proxy. The tunnel itself (paramiko's remote
port forwarding) is tested on a real host in tests/test_tunnel.py."""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from collective.hostout.remote.ssh.proxy import (
    HttpProxy,
    connect_open,
    forbidden_address,
    this_machines_proxy,
)
from collective.hostout.remote.ssh.tunnel import proxy_env

TOKEN = "s3cret-token"
AUTH = "Proxy-Authorization: Basic " + base64.b64encode(f"hostout:{TOKEN}".encode()).decode()


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


class Origin(BaseHTTPRequestHandler):
    """Answers with what it got: the request line, the headers, the body."""

    protocol_version = "HTTP/1.1"  # keeps connections open: the proxy must frame bodies

    def _answer(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"first ", b"second"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        text = f"{self.requestline}\n{self.headers}".encode() + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(text)))
        self.send_header("Connection", "keep-alive")
        self.end_headers()
        self.wfile.write(text)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address  # type: ignore[misc]
    server.shutdown()


@pytest.fixture(scope="module")
def origin() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address  # type: ignore[misc]
    server.shutdown()


def served(proxy: HttpProxy) -> socket.socket:
    """A client socket whose other end the proxy serves (as a forwarded channel)."""
    client, end = socket.socketpair()
    threading.Thread(target=proxy.serve, args=(end,), daemon=True).start()
    client.settimeout(10)
    return client


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_connect_opens_a_byte_tunnel(echo):
    lines: list[str] = []
    proxy = HttpProxy(TOKEN, log=lines.append, connect=connect_open)
    client = served(proxy)
    host, port = echo
    client.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}\r\n{AUTH}\r\n\r\n".encode())
    assert client.recv(1024) == b"HTTP/1.1 200 Connection established\r\n\r\n"
    client.sendall(b"\x16\x03\x01 not really TLS")
    assert client.recv(1024) == b"\x16\x03\x01 not really TLS"
    client.close()
    assert lines == [f"CONNECT {host}:{port}"] and proxy.requests == lines


def test_http_requests_go_on_in_origin_form_one_per_connection(origin):
    proxy = HttpProxy(TOKEN, connect=connect_open)
    client = served(proxy)
    host, port = origin
    client.sendall(f"POST http://{host}:{port}/dists/Release?x=1 HTTP/1.1\r\n"
                   f"Host: {host}:{port}\r\n{AUTH}\r\nProxy-Connection: keep-alive\r\n"
                   f"Content-Length: 4\r\n\r\nbody".encode())
    answer = read_all(client).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.0 200") or head.startswith("HTTP/1.1 200")
    assert "Connection: close" in head and "keep-alive" not in head
    assert body.startswith("POST /dists/Release?x=1 HTTP/1.1\n")
    assert "Proxy-Authorization" not in body and "Proxy-Connection" not in body
    assert body.endswith("body")


def test_chunked_answers_end_where_their_last_chunk_does(origin):
    client = served(HttpProxy(TOKEN, connect=connect_open))
    client.sendall(f"GET http://{origin[0]}:{origin[1]}/chunked HTTP/1.1\r\n{AUTH}\r\n\r\n"
                   .encode())
    answer = read_all(client)  # ends although the origin keeps its connection open
    assert answer.endswith(b"6\r\nfirst \r\n6\r\nsecond\r\n0\r\n\r\n")


@pytest.mark.parametrize("auth", ["", "Proxy-Authorization: Basic "
                                  + base64.b64encode(b"hostout:wrong").decode() + "\r\n"])
def test_without_the_token_nothing_is_proxied(echo, auth):
    proxy = HttpProxy(TOKEN, connect=connect_open)
    client = served(proxy)
    client.sendall(f"CONNECT {echo[0]}:{echo[1]} HTTP/1.1\r\n{auth}\r\n".encode())
    answer = read_all(client).decode()
    assert answer.startswith("HTTP/1.1 407 Proxy Authentication Required\r\n")
    assert 'Proxy-Authenticate: Basic realm="hostout"' in answer
    assert proxy.requests == []


@pytest.mark.parametrize("target", ["127.0.0.1:22", "localhost:9001", "169.254.169.254:80",
                                    "[::1]:443"])
def test_this_machine_and_its_link_are_out_of_reach(target):
    lines: list[str] = []
    proxy = HttpProxy(TOKEN, log=lines.append)  # the default connector checks
    client = served(proxy)
    client.sendall(f"CONNECT {target} HTTP/1.1\r\n{AUTH}\r\n\r\n".encode())
    answer = read_all(client).decode()
    assert answer.startswith("HTTP/1.1 403 Forbidden\r\n"), answer
    assert "does not lead to this machine's own or link-local addresses" in answer
    assert lines[-1].startswith("refused: ")


def test_http_to_this_machine_is_refused_too(origin):
    client = served(HttpProxy(TOKEN))
    client.sendall(f"GET http://127.0.0.1:{origin[1]}/ HTTP/1.1\r\n{AUTH}\r\n\r\n".encode())
    assert read_all(client).startswith(b"HTTP/1.1 403 Forbidden")


@pytest.mark.parametrize(("request_line", "status"), [
    ("GET ftp://example.invalid/x HTTP/1.1", "400"),
    ("GET /relative HTTP/1.1", "400"),
    ("NONSENSE", "400"),
])
def test_what_is_not_a_proxy_request_is_a_400(request_line, status):
    client = served(HttpProxy(TOKEN, connect=connect_open))
    client.sendall(f"{request_line}\r\n{AUTH}\r\n\r\n".encode())
    assert read_all(client).startswith(f"HTTP/1.1 {status} ".encode())


def test_an_unreachable_destination_is_a_502():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = served(HttpProxy(TOKEN, connect=connect_open))
    client.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n{AUTH}\r\n\r\n".encode())
    assert read_all(client).startswith(b"HTTP/1.1 502 Bad Gateway")


class OpenProxy(HttpProxy):
    """This machine's own proxy, in the test: no token."""

    def _authorise(self, request: object) -> None:
        pass


def test_this_machines_proxy_is_used_when_it_has_one(echo, origin):
    upstream = OpenProxy("", connect=connect_open)
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=upstream.serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    via = ("127.0.0.1", listener.getsockname()[1])
    proxy = HttpProxy(TOKEN, connect=connect_open, upstream=lambda scheme, host: via)
    client = served(proxy)
    client.sendall(f"CONNECT {echo[0]}:{echo[1]} HTTP/1.1\r\n{AUTH}\r\n\r\n".encode())
    assert client.recv(1024) == b"HTTP/1.1 200 Connection established\r\n\r\n"
    client.sendall(b"through two proxies")
    assert client.recv(1024) == b"through two proxies"
    client.close()
    client = served(proxy)
    client.sendall(f"GET http://{origin[0]}:{origin[1]}/x HTTP/1.1\r\n{AUTH}\r\n\r\n".encode())
    assert b"GET /x HTTP/1.1" in read_all(client)
    assert upstream.requests == [f"CONNECT {echo[0]}:{echo[1]}",
                                 f"GET http://{origin[0]}:{origin[1]}/x"]
    listener.close()


def test_through_this_machines_proxy_the_same_destinations_are_refused():
    proxy = HttpProxy(TOKEN, upstream=lambda scheme, host: ("127.0.0.1", 9))
    client = served(proxy)
    client.sendall(f"CONNECT 169.254.169.254:80 HTTP/1.1\r\n{AUTH}\r\n\r\n".encode())
    assert read_all(client).startswith(b"HTTP/1.1 403 Forbidden")


def test_this_machines_proxy_is_read_from_its_environment(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy",
                 "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert this_machines_proxy("https", "pypi.example") is None
    monkeypatch.setenv("https_proxy", "http://proxy.corp.example:3128")
    monkeypatch.setenv("no_proxy", "mirror.corp.example")
    assert this_machines_proxy("https", "pypi.example") == ("proxy.corp.example", 3128)
    assert this_machines_proxy("https", "mirror.corp.example") is None


@pytest.mark.parametrize(("address", "forbidden"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("169.254.169.254", True), ("fe80::1%eth0", True), ("0.0.0.0", True), ("224.0.0.1", True),
    ("10.1.2.3", False), ("192.168.1.1", False), ("151.101.0.223", False),
    ("2a04:4e42::223", False),
])
def test_forbidden_addresses(address, forbidden):
    assert forbidden_address(address) is forbidden


def test_the_command_gets_the_proxy_in_both_spellings_and_never_for_the_server_itself():
    env = dict(proxy_env(40123, "tok"))
    url = "http://hostout:tok@127.0.0.1:40123"
    assert {env[k] for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")} == {url}
    assert env["no_proxy"] == env["NO_PROXY"] == "localhost,127.0.0.1,::1"
