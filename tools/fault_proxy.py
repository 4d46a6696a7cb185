#!/usr/bin/env python3
"""A loopback proxy to the emulator that faults a fixed fraction of requests, seeded.

Built on tools/latency_proxy.py (same forwarding, same operation names: the X-Amz-Target
header, the Action form field, or "METHOD /path" for S3). Each faulted request gets, with equal
odds, one of three faults:
  503    answered 503 before it reaches the emulator (not applied)
  reset  the connection is closed unanswered before it reaches the emulator (not applied)
  lost   forwarded and APPLIED, then its answer is replaced by a 500 (a lost answer, as after
         an attempt timeout on a slow but successful call)
The SDK retries all three as transient errors; the third is the one that makes a conditional
write meet its own earlier success.

Requests carrying the header "X-Fault-Proxy: off" are never faulted (a harness's own setup and
verification traffic may use it; tools/bench_reliability.py talks to the emulator directly
instead). GET /__counts answers {"requests": N, "faults": {kind: {operation: count}}}.

The proxy stops by itself: when its parent process is gone, or after --max-seconds.

Usage: fault_proxy.py --upstream http://127.0.0.1:PORT [--fraction 0.1] [--seed S]
       [--parent-pid PID] [--max-seconds 3600]
Prints "PROXY_READY http://127.0.0.1:PORT" once it accepts connections.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from latency_proxy import make_handler, serve  # noqa: E402

KINDS = ("503", "reset", "lost")
SETUP_HEADER = "X-Fault-Proxy"
# The proxy's own paths: the latency proxy's fault rules and this proxy's counts.
ADMIN_PREFIXES = ("/__faults", "/__counts")


class Chooser:
    """Decides, request by request, whether and how to fault; counts what it did."""

    def __init__(self, fraction: float, seed: int) -> None:
        self.fraction = fraction
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.requests = 0
        self.faults: dict[str, dict[str, int]] = {k: {} for k in KINDS}

    def __call__(self, op: str, headers) -> str | None:
        if (headers.get(SETUP_HEADER) or "").lower() == "off":
            return None
        with self.lock:
            self.requests += 1
            if self.rng.random() >= self.fraction:
                return None
            kind = KINDS[self.rng.randrange(len(KINDS))]
            by_op = self.faults[kind]
            by_op[op] = by_op.get(op, 0) + 1
            return kind

    def counts(self) -> dict:
        with self.lock:
            return {"requests": self.requests,
                    "faults": {k: dict(v) for k, v in self.faults.items()}}


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--fraction", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    upstream = urllib.parse.urlparse(args.upstream)
    if upstream.hostname not in ("127.0.0.1", "localhost"):
        parser.error("the upstream must be on loopback")
    if not 0.0 <= args.fraction <= 1.0:
        parser.error("--fraction is between 0 and 1")
    threading.Thread(target=_exit_after, args=(args.max_seconds,), daemon=True).start()
    chooser = Chooser(args.fraction, args.seed)
    serve(make_handler(upstream, 0.0, None, time.monotonic(), chooser=chooser), args.parent_pid)


if __name__ == "__main__":
    main()
