"""The HTTP anchor: nginx answering 204 on the webhook path, loaded by wrk, in a temp folder.

Nothing is installed or started system-wide: nginx runs as the current user on 127.0.0.1 with a
free port and its config, logs and pid file in a temporary folder (``benchmarks/setup.sh``
installs the two programs). wrk POSTs the vendor page's shipment-update body with one thread
and 8 connections, which is what ``d1sim replay --concurrency 8`` is compared against.

Example::

    with Nginx() as nginx:
        print(wrk(nginx.url + WEBHOOK, seconds=3).requests_per_second)
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

WEBHOOK = "/notifications/d1/v2/issuers/ISSUER0001/cards"
BODY = Path(__file__).resolve().parent.parent / "tests" / "data" / "seed" / "card-shipped-update.json"
_CONFIG = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    client_body_buffer_size 1m;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 204; }}
    }}
}}
"""


def missing_tools() -> list[str]:
    """Which of nginx and wrk are not on PATH (see benchmarks/setup.sh)."""
    return [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """nginx in the foreground, one worker, 204 to every request; a context manager."""

    def __init__(self) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="d1sim-nginx-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        tmp = self.folder.name
        config = Path(tmp) / "nginx.conf"
        config.write_text(_CONFIG.format(tmp=tmp, port=self.port))
        self.process = subprocess.Popen(["nginx", "-c", str(config), "-p", tmp],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for_port(self.port, self.process)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.folder.cleanup()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"nginx exited at start: {error.strip()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"nginx did not listen on port {port} within {limit:g} s")


@dataclass(frozen=True)
class WrkResult:
    """What wrk reported: requests per second, total requests, non-2xx answers."""

    requests_per_second: float
    requests: int
    errors: int


def wrk(url: str, *, seconds: float = 5, connections: int = 8, threads: int = 1) -> WrkResult:
    """POST the shipment-update body to ``url`` with wrk for ``seconds``; its throughput."""
    compact = orjson.dumps(orjson.loads(BODY.read_bytes())).decode()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     f"wrk.body = {_lua_string(compact)}\n")
    try:
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
                              "-s", script.name, url], capture_output=True, text=True, check=True,
                             timeout=seconds + 30).stdout
    finally:
        Path(script.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(rate, total, int(bad.group(1)) if bad else 0)


def _lua_string(text: str) -> str:
    # A Lua long string holds any bytes except its own closing bracket.
    level = "=" * next(n for n in range(8) if f"]{'=' * n}]" not in text)
    return f"[{level}[{text}]{level}]"
