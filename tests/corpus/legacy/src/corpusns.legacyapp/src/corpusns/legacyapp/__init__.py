"""legacyapp [CONF]: print what it runs with; legacyapp serve PORT [CONF]: say it over HTTP."""

import http.server
import importlib.metadata
import sys


def message(conf: str | None) -> str:
    import httpcore
    import httpx
    from rich.text import Text

    greeting = "-"
    if conf:
        with open(conf) as f:
            greeting = f.read().strip()
    text = Text(f"legacyapp: {greeting}; rich {importlib.metadata.version('rich')}, "
                f"httpx {httpx.__version__}, httpcore {httpcore.__version__}")
    return text.plain


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["serve"]:
        body = message(args[2] if len(args) > 2 else None).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        http.server.HTTPServer(("0.0.0.0", int(args[1])), Handler).serve_forever()
    print(message(args[0] if args else None))
