#!/usr/bin/env python3
"""A loopback HTTP proxy that adds a fixed latency to every request it forwards to the emulator,
and injects faults on chosen calls.

Used by the benchmarks: with +D ms per request, (wall time with D - wall time with 0) / D is
the number of *dependent* requests on an invocation's critical path (concurrent requests
overlap their delays). Every request is logged as one line "<ms since start> <operation>" to
--log, where the operation is the X-Amz-Target header (JSON protocols), the Action form field
(query protocols) or "METHOD /path" (S3).

Faults (for the fault-injection tests): POST /__faults with a JSON list of rules
  {"match": "<operation substring>", "kind": "throttle|500|503|reset|timeout",
   "count": N, "after": M, "seconds": S}
replaces the rules: the (M+1)th to (M+N)th requests whose operation contains `match` get the
fault instead of being forwarded (throttle answers as the service's protocol does: JSON
ThrottlingException, S3 503 SlowDown, query-protocol Throttling; reset closes the connection
unanswered; timeout holds it S seconds, then closes it). GET /__faults returns the rules with
how many faults each injected.

Usage: latency_proxy.py --upstream http://127.0.0.1:PORT [--delay-ms 50] [--log FILE]
       [--parent-pid PID]
Prints "PROXY_READY http://127.0.0.1:PORT" once it accepts connections.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


def fault_reply(kind: str, op: str, json_protocol: bool) -> tuple[int, dict, bytes]:
    if kind == "throttle":
        if json_protocol:
            return 400, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": "ThrottlingException"}, \
                json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        if op.startswith(("GET ", "PUT ", "POST /", "HEAD ", "DELETE ")):
            return 503, {"Content-Type": "application/xml"}, \
                b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return 400, {"Content-Type": "text/xml"}, (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            b"<Message>Rate exceeded</Message></Error></ErrorResponse>")
    status = int(kind)
    if json_protocol:
        return status, {"Content-Type": "application/x-amz-json-1.0"}, \
            json.dumps({"__type": "InternalServerError", "message": "injected"}).encode()
    return status, {"Content-Type": "application/xml"}, \
        b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"


def make_handler(upstream: urllib.parse.ParseResult, delay: float, log, started: float,
                 chooser=None):
    """`chooser(op, headers)`, when given, picks a fault for a request no rule matched: None, a
    kind above, or "lost" (forward the request, then answer 500 instead of the emulator's
    answer); GET /__counts returns `chooser.counts()`. tools/fault_proxy.py uses it for faults
    at a fixed rate."""
    lock = threading.Lock()
    local = threading.local()
    rules: list[dict] = []

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

        def _admin(self) -> bool:
            if self.path.startswith("/__counts") and chooser is not None:
                self._reply(200, {"Content-Type": "application/json"}, json.dumps(chooser.counts()).encode())
                return True
            if not self.path.startswith("/__faults"):
                return False
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                if self.command == "POST":
                    rules[:] = [{"after": 0, "seconds": 10, **r, "seen": 0, "injected": 0}
                                for r in json.loads(body or b"[]")]
                data = json.dumps(rules).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True

        def _fault(self, op: str) -> str | None:
            with lock:
                for r in rules:
                    if r["match"] in op:
                        r["seen"] += 1
                        if r["after"] < r["seen"] <= r["after"] + r["count"]:
                            r["injected"] += 1
                            return r["kind"] if r["kind"] != "timeout" else f"timeout:{r['seconds']}"
            return None

        def _forward(self) -> None:
            if self._admin():
                return
            try:
                self._relay()
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                # The client went away, or the emulator twice: drop this connection.
                self.close_connection = True

        def _reply(self, status: int, headers: dict, data: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if delay:
                time.sleep(delay)
            op = self._operation(body)
            if log is not None:
                with lock:
                    log.write(f"{(time.monotonic() - started) * 1000:.1f} {op}\n")
                    log.flush()
            fault = self._fault(op)
            if fault is None and chooser is not None:
                fault = chooser(op, self.headers)
            if fault is not None and fault != "lost":
                if fault == "reset" or fault.startswith("timeout:"):
                    if fault.startswith("timeout:"):
                        time.sleep(float(fault.split(":", 1)[1]))
                    self.close_connection = True
                    try:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    except OSError:
                        pass
                    self.connection.close()
                    return
                self._reply(*fault_reply(fault, op, "X-Amz-Target" in self.headers))
                return
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
            if fault == "lost":
                # Applied upstream; the caller sees a server error instead of the answer.
                self._reply(*fault_reply("500", op, "X-Amz-Target" in self.headers))
                return
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
    serve(make_handler(upstream, args.delay_ms / 1000.0, log, time.monotonic()), args.parent_pid)


def serve(handler, parent_pid: int | None) -> None:
    """Serves `handler` on a free loopback port until the parent `parent_pid` is gone."""
    # A cold function opens some 20 connections at once; the default backlog of 5 drops the
    # rest's SYNs, which the kernel retries a second later: a delay that is not the function's.
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if parent_pid:
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    print(f"PROXY_READY http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
