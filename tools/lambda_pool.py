#!/usr/bin/env python3
"""Warm processes of the real function binary behind a Lambda Runtime API emulator, with
Lambda's asynchronous-invocation delivery semantics and process kills.

Each process gets its own Runtime API endpoint on loopback (AWS_LAMBDA_RUNTIME_API) and speaks
the protocol tests/handler/runtime.rs serves: GET /2018-06-01/runtime/invocation/next hands out
one event (headers Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn,
-Trace-Id), then POST .../invocation/<id>/response or .../invocation/<id>/error. A replaced
process gets a new endpoint, so nothing handed to a dead one is mistaken for delivered.

Delivery, as "How Lambda handles errors and retries with asynchronous invocation"
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html) says:
"If the function returns an error, by default Lambda attempts to run it two more times, with a
one-minute wait between the first two attempts, and two minutes between the second and third
attempts. Function errors include errors returned by the function's code and errors returned by
the function's runtime, such as timeouts." Here:
- an /error answer, a process that dies mid-invocation (SIGKILL) and an invocation past its
  deadline (the process is then killed, as Lambda stops a timed-out environment) are function
  errors: the event is delivered again after `retry_delays` (scaled down from 60 s and 120 s),
  to whichever process is free; after the third attempt it is given up (counted);
- a dead or killed process is replaced by a new one (a cold start) in the same slot;
- every attempt has a new request id (the function must not rely on a retry carrying the same
  one).
Each slot has its own queue (its own order of events); retries that are due and events for "any
process" (the sweep's schedule, events the function published) go first to whichever slot is
free.

What this cannot show: Lambda's scaling (the slots are fixed), the queue's own duplicates and
event age limits, and the throttling retries of the 429/500-series kind (none happen here).
"""

from __future__ import annotations

import heapq
import json
import os
import queue
import random
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:ddb-export-remediator"


def _die_with_parent() -> None:
    """In the child: SIGKILL it when the pool's process ends (Linux prctl PR_SET_PDEATHSIG);
    elsewhere it exits when its Runtime API endpoint goes away."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


@dataclass
class Delivery:
    """One event as Lambda's async queue holds it: the event and how often it was tried."""
    event: dict
    label: str
    attempt: int = 0
    errors: list = field(default_factory=list)


class Instance:
    """One process of the binary and its own Runtime API endpoint."""

    def __init__(self, pool: "Pool", slot: int) -> None:
        self.handout: queue.Queue = queue.Queue()
        self.answers: dict[str, tuple[str, object]] = {}
        self.answered = threading.Condition()
        instance = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if not self.path.endswith("/invocation/next"):
                    return self._answer(404)
                request_id, delivery, deadline_ms = instance.handout.get()
                if request_id is None:  # the instance is gone
                    self.close_connection = True
                    return None
                body = json.dumps(delivery.event).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.end_headers()
                self.wfile.write(body)
                return None

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = self.path.rstrip("/").split("/")
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode(errors="replace")
                if len(parts) >= 2 and parts[-1] in ("response", "error") and parts[-3] == "invocation":
                    with instance.answered:
                        instance.answers[parts[-2]] = (parts[-1], body)
                        instance.answered.notify_all()
                self._answer(202)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        ThreadingHTTPServer.request_queue_size = 64
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        env = dict(pool.env)
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self.server.server_port}"
        self.stderr = open(os.path.join(pool.log_dir, f"slot{slot}-{pool.next_serial()}.log"), "wb") \
            if pool.log_dir else subprocess.DEVNULL
        self.proc = subprocess.Popen([pool.binary], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr,
                                     preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        self.kill()
        self.handout.put((None, None, 0))
        self.server.shutdown()
        self.server.server_close()
        if self.stderr is not subprocess.DEVNULL:
            self.stderr.close()


class Pool:
    """`slots` warm processes of `binary` with environment `env` (AWS_LAMBDA_RUNTIME_API is set
    per process). submit() queues events; run until idle(); stop() ends everything."""

    def __init__(self, binary: str, env: dict, slots: int, seed: int, timeout_s: float = 60.0,
                 retry_delays: tuple[float, float] = (6.0, 12.0), log_dir: str | None = None,
                 on_answer=None) -> None:
        self.binary = binary
        self.env = env
        self.timeout_s = timeout_s
        self.retry_delays = retry_delays
        self.log_dir = log_dir
        self.on_answer = on_answer
        self.lock = threading.Condition()
        self.serial = 0
        self.own: list[list[Delivery]] = [[] for _ in range(slots)]
        self.shared: list[Delivery] = []
        self.retries: list[tuple[float, int, Delivery]] = []  # (due, tiebreak, delivery)
        self.busy = [False] * slots
        self.current: list[tuple[Instance, str, Delivery] | None] = [None] * slots
        self.instances: list[Instance] = []
        self.stats = {"attempts": 0, "responses": 0, "errors": 0, "crashes": 0, "timeouts": 0,
                      "retried": 0, "given_up": 0, "kills": 0, "kills_mid_invocation": 0,
                      "cold_starts": 0, "error_types": {}}
        self.given_up: list[Delivery] = []
        self.stopping = False
        self.kill_plan: set[int] = set()
        self.kill_rng = random.Random(seed)
        self.durations: list[float] = []
        self.instances = [self._start(i) for i in range(slots)]
        self.threads = [threading.Thread(target=self._dispatch, args=(i,), daemon=True)
                        for i in range(slots)]
        for t in self.threads:
            t.start()

    def next_serial(self) -> int:
        with self.lock:
            self.serial += 1
            return self.serial

    def _start(self, slot: int) -> Instance:
        self.stats["cold_starts"] += 1
        return Instance(self, slot)

    # -- queues ----------------------------------------------------------------------------

    def submit(self, event: dict, label: str, slot: int | None = None) -> None:
        """Queue `event` for `slot`'s process, or (None) for whichever process is free first."""
        with self.lock:
            (self.shared if slot is None else self.own[slot]).append(Delivery(event, label))
            self.lock.notify_all()

    def _take(self, slot: int) -> Delivery | None:
        """The next delivery for `slot`: a due retry, then shared events, then its own queue."""
        with self.lock:
            while not self.stopping:
                now = time.monotonic()
                if self.retries and self.retries[0][0] <= now:
                    return heapq.heappop(self.retries)[2]
                if self.shared:
                    return self.shared.pop(0)
                if self.own[slot]:
                    return self.own[slot].pop(0)
                wait = self.retries[0][0] - now if self.retries else 0.5
                self.lock.wait(min(max(wait, 0.01), 0.5))
            return None

    def pending(self, ignore: str | None = None) -> int:
        """Deliveries queued, due for a retry or running; `ignore`: not those with this label."""
        with self.lock:
            queued = self.shared + [r[2] for r in self.retries] + [d for q in self.own for d in q]
            running = [c[2] for c in self.current if c is not None]
            return sum(1 for d in queued + running if d.label != ignore)

    def wait_idle(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.pending() == 0:
                return True
            time.sleep(0.2)
        return False

    # -- one slot ---------------------------------------------------------------------------

    def _dispatch(self, slot: int) -> None:
        while True:
            delivery = self._take(slot)
            if delivery is None:
                return
            with self.lock:
                self.busy[slot] = True
                instance = self.instances[slot]
                if not instance.alive():
                    instance.close()
                    instance = self.instances[slot] = self._start(slot)
            delivery.attempt += 1
            request_id = str(uuid.uuid4())
            started = time.monotonic()
            deadline_ms = int((time.time() + self.timeout_s) * 1000)
            with self.lock:
                self.stats["attempts"] += 1
                ordinal = self.stats["attempts"]
                self.current[slot] = (instance, request_id, delivery)
            instance.handout.put((request_id, delivery, deadline_ms))
            self._maybe_kill(ordinal, slot, instance, request_id)
            outcome, body = self._await(instance, request_id, started)
            with self.lock:
                self.current[slot] = None
            if outcome == "response":
                with self.lock:
                    self.stats["responses"] += 1
                    self.durations.append(time.monotonic() - started)
            else:
                self._failed(delivery, outcome, body)
            if self.on_answer is not None:
                self.on_answer(delivery, outcome, body)
            if outcome in ("crash", "timeout"):
                instance.close()
                with self.lock:
                    self.instances[slot] = self._start(slot)
            with self.lock:
                self.busy[slot] = False
                self.lock.notify_all()

    def _await(self, instance: Instance, request_id: str, started: float) -> tuple[str, object]:
        end = started + self.timeout_s
        with instance.answered:
            while True:
                if request_id in instance.answers:
                    return instance.answers.pop(request_id)
                if not instance.alive():
                    return "crash", None
                if time.monotonic() > end:
                    instance.kill()  # Lambda stops an invocation at its timeout
                    return "timeout", None
                instance.answered.wait(0.05)

    def _failed(self, delivery: Delivery, outcome: str, body) -> None:
        kind = outcome if outcome != "error" else (
            body.get("errorType", "?") if isinstance(body, dict) else "?")
        delivery.errors.append(kind)
        with self.lock:
            self.stats[{"error": "errors", "crash": "crashes", "timeout": "timeouts"}[outcome]] += 1
            types = self.stats["error_types"]
            types[kind] = types.get(kind, 0) + 1
            if delivery.attempt <= len(self.retry_delays):
                self.stats["retried"] += 1
                due = time.monotonic() + self.retry_delays[delivery.attempt - 1]
                heapq.heappush(self.retries, (due, self.next_tiebreak(), delivery))
            else:
                self.stats["given_up"] += 1
                self.given_up.append(delivery)
            self.lock.notify_all()

    def next_tiebreak(self) -> int:
        self.serial += 1
        return self.serial

    # -- kills ------------------------------------------------------------------------------

    def kill_on_attempts(self, ordinals: list[int], seed: int) -> None:
        """SIGKILLs the process running the attempts with these ordinals (1 = the first event
        handed out), each at a seeded random moment inside the invocation: up to the mean invocation
        time so far, so the kill lands anywhere from the first call to near the answer."""
        with self.lock:
            self.kill_plan = set(ordinals)
            self.kill_rng = random.Random(seed)

    def _maybe_kill(self, ordinal: int, slot: int, instance: Instance, request_id: str) -> None:
        with self.lock:
            if ordinal not in self.kill_plan:
                return
            self.kill_plan.discard(ordinal)
            durations = self.durations[-50:]
            mean = sum(durations) / len(durations) if durations else 0.3
            delay = self.kill_rng.uniform(0.0, mean)

        def fire() -> None:
            with self.lock:
                now = self.current[slot]
                # Mid-invocation: the process is running one (this or, if it was quick, its next).
                mid = now is not None and now[0] is instance
                self.stats["kills"] += 1
                self.stats["kills_mid_invocation"] += int(mid)
            if instance.alive():
                os.kill(instance.proc.pid, signal.SIGKILL)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()

    def pending_own(self) -> int:
        """Events still waiting in the slots' own queues."""
        with self.lock:
            return sum(map(len, self.own))

    def mean_duration(self) -> float:
        with self.lock:
            return sum(self.durations) / len(self.durations) if self.durations else 0.0

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.lock.notify_all()
        for t in self.threads:
            t.join(timeout=self.timeout_s + 5)
        for instance in self.instances:
            instance.close()
