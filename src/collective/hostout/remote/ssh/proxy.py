"""The HTTP proxy a firewalled server reaches through hostout's tunnel (``tunnel = true``).

It serves one client connection at a time on any socket-like stream (a paramiko channel
forwarded from the server, a socket in tests): ``CONNECT host:port`` for https (then bytes
are relayed both ways, TLS stays end to end) and absolute-URI requests for plain http
(sent on as origin-form requests, one per connection). It connects only to what the client
asks for, after checking the destination:

- a token: the client must send ``Proxy-Authorization`` with the tunnel's password (the
  proxy URL hostout gives the command carries it), so other processes on the server that
  find the port cannot use it;
- the destination must not resolve to this machine or its link-local neighbours (loopback,
  ``169.254.0.0/16`` such as a cloud's metadata service, unspecified, multicast): the server
  gets to the internet and its mirrors through us, not to our own services. The checked
  address is the one connected to, so a name cannot change its answer in between.

When this machine itself uses a proxy (``https_proxy``/``http_proxy`` in its environment,
``no_proxy`` honoured), requests go on through it.

No Fabric or paramiko here: :mod:`.tunnel` forwards the server's port to :meth:`serve`.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import ipaddress
import socket
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024
CONNECT_TIMEOUT = 30.0
BUFFER = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
              "proxy-authenticate", "te", "trailer", "upgrade"}
USER = "hostout"


class Stream(Protocol):
    """What the proxy needs of a connection: a socket or a paramiko channel."""

    def recv(self, size: int) -> bytes: ...
    def sendall(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class Refused(Exception):
    """A request the proxy answers itself with an HTTP error."""

    def __init__(self, status: int, reason: str, detail: str,
                 headers: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers


def forbidden_address(address: str) -> bool:
    """Addresses the server may not reach through us: ours and our link's."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast


def resolve(host: str, port: int) -> list[tuple[int, str]]:
    """(family, address) of ``host``, every one of them checked."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise Refused(502, "Bad Gateway", f"cannot resolve {host}: {err.strerror}") from None
    found = [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]
    bad = [a for _, a in found if forbidden_address(a)]
    if bad:
        raise Refused(403, "Forbidden", f"{host} is {bad[0]}: hostout's tunnel does not lead "
                                        "to this machine's own or link-local addresses")
    return found


def connect_checked(host: str, port: int) -> socket.socket:
    """A connection to ``host:port`` at an address that passed the check."""
    last: OSError | None = None
    for family, address in resolve(host, port):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect((address, port))
        except OSError as err:
            sock.close()
            last = err
            continue
        sock.settimeout(None)
        return sock
    raise Refused(502, "Bad Gateway", f"cannot connect to {host}:{port}: "
                                      f"{getattr(last, 'strerror', None) or last}")


def connect_open(host: str, port: int) -> socket.socket:
    """Any destination (tests, and the proxy this machine uses)."""
    try:
        return socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as err:
        raise Refused(502, "Bad Gateway", f"cannot connect to {host}:{port}: "
                                          f"{err.strerror or err}") from None


Connector = Callable[[str, int], socket.socket]


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    rest: bytes  # what the client sent after the head

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


def read_head(stream: Stream, limit: int = HEAD_LIMIT) -> tuple[bytes, bytes]:
    """The bytes up to the blank line ending an HTTP head, and what followed them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = stream.recv(BUFFER)
        if not chunk:
            raise EOFError("closed before the end of the head")
        data += chunk
        if len(data) > limit:
            raise Refused(431, "Request Header Fields Too Large", "head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def parse_request(head: bytes, rest: bytes) -> Request:
    lines = head.decode("iso-8859-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise Refused(400, "Bad Request",
                      f"not an HTTP request line: {lines[0][:80]!r}") from None
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise Refused(400, "Bad Request", "a header line without a colon")
        headers.append((name.strip(), value.strip()))
    return Request(method.upper(), target, version, headers, rest)


def relay(a: Stream, b: Stream) -> None:
    """Copy bytes both ways until both sides are done, then close both."""
    def pump(src: Stream, dst: Stream) -> None:
        try:
            while chunk := src.recv(BUFFER):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            _half_close(dst)

    other = threading.Thread(target=pump, args=(b, a), daemon=True)
    other.start()
    pump(a, b)
    other.join()
    for s in (a, b):
        with contextlib.suppress(Exception):
            s.close()


def _half_close(stream: Stream) -> None:
    with contextlib.suppress(Exception):
        if hasattr(stream, "shutdown_write"):  # a paramiko channel
            stream.shutdown_write()
        else:
            stream.shutdown(socket.SHUT_WR)  # type: ignore[attr-defined]


@dataclass
class HttpProxy:
    """Serves proxied connections; ``log`` hears one line per request."""

    token: str
    log: Callable[[str], None] = lambda line: None
    connect: Connector = connect_checked
    upstream: Callable[[str, str], tuple[str, int] | None] | None = None  # (scheme, host)
    requests: list[str] = field(default_factory=list)  # "CONNECT host:443", "GET http://..."

    def serve(self, client: Stream) -> None:
        """One client connection, start to end (closes it)."""
        try:
            head, rest = read_head(client)
            request = parse_request(head, rest)
            self._authorise(request)
            if request.method == "CONNECT":
                self._tunnel(client, request)
            else:
                self._forward(client, request)
        except Refused as refusal:
            self.log(f"refused: {refusal.detail}")
            _answer(client, refusal)
        except (EOFError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def _authorise(self, request: Request) -> None:
        given = request.header("proxy-authorization") or ""
        scheme, _, encoded = given.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user = password = ""
        if scheme.lower() != "basic" or user != USER or not hmac.compare_digest(
                password.encode(), self.token.encode()):
            raise Refused(407, "Proxy Authentication Required",
                          f"{request.method} {request.target} without the tunnel's token",
                          ('Proxy-Authenticate: Basic realm="hostout"',))

    def _open(self, scheme: str, host: str, port: int) -> tuple[socket.socket, bool]:
        """A connection to host:port (or to this machine's proxy for it); True if proxied."""
        via = self.upstream(scheme, host) if self.upstream else None
        if via is None:
            return self.connect(host, port), False
        if self.connect is connect_checked:  # through this machine's proxy: same refusals
            try:
                resolve(host, port)
            except Refused as refusal:
                if refusal.status == 403:
                    raise
                # a name only this machine's proxy can resolve: it decides
        return connect_open(*via), True

    def _tunnel(self, client: Stream, request: Request) -> None:
        host, port = split_authority(request.target, default_port=443)
        self.requests.append(f"CONNECT {host}:{port}")
        self.log(f"CONNECT {host}:{port}")
        upstream, proxied = self._open("https", host, port)
        if proxied:  # ask this machine's proxy for the same tunnel
            upstream.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
                             .encode())
            answer, early = read_head(upstream)
            status = answer.split(b" ", 2)[1:2]
            if status != [b"200"]:
                upstream.close()
                raise Refused(502, "Bad Gateway", f"this machine's proxy refused CONNECT "
                                                  f"{host}:{port}: {answer.splitlines()[0]!r}")
            if early:
                client.sendall(early)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if request.rest:
            upstream.sendall(request.rest)
        relay(client, upstream)

    def _forward(self, client: Stream, request: Request) -> None:
        url = urlsplit(request.target)
        if url.scheme != "http" or not url.hostname:
            raise Refused(400, "Bad Request", f"{request.method} {request.target[:80]}: only "
                                              "http:// URLs and CONNECT are proxied")
        if (request.header("transfer-encoding") or "").lower() not in ("", "identity"):
            raise Refused(411, "Length Required", "chunked request bodies are not proxied")
        port = url.port or 80
        self.requests.append(f"{request.method} {request.target}")
        self.log(f"{request.method} {request.target}")
        upstream, proxied = self._open("http", url.hostname, port)
        path = request.target if proxied else (url.path or "/") + (
            f"?{url.query}" if url.query else "")
        lines = [f"{request.method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in request.headers if k.lower() not in HOP_BY_HOP]
        if request.header("host") is None:
            lines.append(f"Host: {url.netloc}")
        lines.append("Connection: close")  # one request per connection
        body = request.rest
        length = int(request.header("content-length") or 0)
        while len(body) < length:
            chunk = client.recv(BUFFER)
            if not chunk:
                break
            body += chunk
        upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")
                         + body[:length])
        try:
            head, rest = read_head(upstream)
        except EOFError:
            upstream.close()
            raise Refused(502, "Bad Gateway",
                          f"{url.hostname} closed without an answer") from None
        status, *fields = head.decode("iso-8859-1").split("\r\n")
        kept = [f for f in fields if f.partition(":")[0].strip().lower() not in HOP_BY_HOP]
        client.sendall(("\r\n".join([status, *kept, "Connection: close"]) + "\r\n\r\n")
                       .encode("iso-8859-1"))
        try:
            copy_body(_Reader(upstream, rest), client, request.method, status, fields)
        finally:
            upstream.close()


class _Reader:
    """A socket read from, with what was read past the head first."""

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self.sock, self.buffer = sock, buffered

    def some(self, most: int = BUFFER) -> bytes:
        if self.buffer:
            data, self.buffer = self.buffer[:most], self.buffer[most:]
            return data
        return self.sock.recv(min(most, BUFFER))

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(BUFFER)
            if not chunk:
                raise EOFError("closed inside a chunked body")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def copy(self, n: int, to: Stream) -> None:
        while n > 0:
            chunk = self.some(n)
            if not chunk:
                raise EOFError("closed inside a body")
            to.sendall(chunk)
            n -= len(chunk)


def copy_body(upstream: _Reader, client: Stream, method: str, status: str,
              fields: list[str]) -> None:
    """The response body, by its framing: the origin may keep its connection open after
    it even though it was asked to close."""
    code = status.split(" ")[1] if status.count(" ") else ""
    headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    if method == "HEAD" or code in ("204", "304") or code.startswith("1"):
        return
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = upstream.line()
            client.sendall(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (trailer := upstream.line()) != b"\r\n":
                    client.sendall(trailer)
                client.sendall(b"\r\n")
                return
            upstream.copy(size, client)
            client.sendall(upstream.line())
    if headers.get("content-length", "").isdigit():
        upstream.copy(int(headers["content-length"]), client)
        return
    while chunk := upstream.some():
        client.sendall(chunk)


def split_authority(target: str, default_port: int) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` of a CONNECT request."""
    url = urlsplit(f"//{target}")
    try:
        port = url.port or default_port
    except ValueError:
        raise Refused(400, "Bad Request", f"bad port in {target[:80]!r}") from None
    if not url.hostname:
        raise Refused(400, "Bad Request", f"no host in {target[:80]!r}")
    return url.hostname, port


def _answer(client: Stream, refusal: Refused) -> None:
    text = refusal.detail + "\n"
    head = [f"HTTP/1.1 {refusal.status} {refusal.reason}", "Content-Type: text/plain",
            f"Content-Length: {len(text.encode())}", "Connection: close", *refusal.headers]
    with contextlib.suppress(Exception):
        client.sendall(("\r\n".join(head) + "\r\n\r\n" + text).encode())


def this_machines_proxy(scheme: str, host: str) -> tuple[str, int] | None:
    """The proxy this machine's environment names for ``scheme`` (none for no_proxy hosts)."""
    proxies = urllib.request.getproxies()
    url = proxies.get(scheme) or (proxies.get("http") if scheme == "https" else None)
    if not url or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or 80
