#!/usr/bin/env python3
"""A loopback HTTP proxy that adds a fixed latency to every request it forwards to the emulator.

Used by the benchmarks: with +D ms per request, (wall time with D - wall time with 0) / D is
the number of *dependent* requests on an invocation's critical path (concurrent requests
overlap their delays). Every request is logged as one line "<ms since start> <operation>" to
--log, where the operation is the X-Amz-Target header (JSON protocols), the Action form field
(query protocols) or "METHOD /path" (S3).

Usage: latency_proxy.py --upstream http://127.0.0.1:PORT [--delay-ms 50] [--log FILE]
       [--parent-pid PID]
Prints "PROXY_READY http://127.0.0.1:PORT" once it accepts connections.
"""

from __future__ import annotations

import argparse
import http.client
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


def make_handler(upstream: urllib.parse.ParseResult, delay: float, log, started: float):
    lock = threading.Lock()
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args) -> None:  # quiet
            pass

        def _operation(self, body: bytes) -> str:
            target = self.headers.get("X-Amz-Target")
            if target:
                return target
            if body.startswith(b"Action="):
                return body.split(b"&", 1)[0][7:].decode(errors="replace")
            return f"{self.command} {self.path.split('?', 1)[0]}"

        def _forward(self) -> None:
            try:
                self._relay()
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                # The client went away, or the emulator twice: drop this connection.
                self.close_connection = True

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if delay:
                time.sleep(delay)
            if log is not None:
                with lock:
                    log.write(f"{(time.monotonic() - started) * 1000:.1f} {self._operation(body)}\n")
                    log.flush()
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = local.conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

    return Handler


def _exit_with_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--log")
    parser.add_argument("--parent-pid", type=int)
    args = parser.parse_args()
    upstream = urllib.parse.urlparse(args.upstream)
    if upstream.hostname not in ("127.0.0.1", "localhost"):
        parser.error("the upstream must be on loopback")
    log = open(args.log, "a", encoding="utf-8") if args.log else None
    handler = make_handler(upstream, args.delay_ms / 1000.0, log, time.monotonic())
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if args.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    print(f"PROXY_READY http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
