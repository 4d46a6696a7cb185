#!/usr/bin/env python3
"""`make bench`: measures the performance budgets of ARCHITECTURE.md on this machine and writes BENCHMARKS.md.

1. Init: process start → first `GET /runtime/invocation/next` under a local Lambda Runtime API,
   for the release `ddb-export-remediator` and for `hello_floor` (a bare lambda_runtime echo
   built with the same profile), 20 runs each.
2. First invocation against the emulator (a fresh process each run): latency of one diagnosis
   and the process's peak RSS (VmHWM) after it.
3. Round trips: the same diagnoses through tools/latency_proxy.py at +0 ms and +100 ms a request;
   (wall(100) - wall(0)) / 100 ms = dependent requests on the critical path.
4. Package: `cargo lambda build --release --arm64`: bootstrap size, zipped size.
5. Peer: Cloud Custodian 0.9.53 (`export-description` filter, ExportStatus FAILED) and the
   function's first sweep on the same emulator data (10 tables, 10,000 exports, 500 FAILED),
   calls counted by the proxy; 3 runs each, in this run.
6. Sweep scale (examples/bench_sweep.rs) and pure diagnosis throughput
   (examples/bench_diagnosis.rs) are run and their tables included.

Every process started is stopped by its PID on exit. Not part of `make test`.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from local import MEMBER_ROLE, ROOT, VENV_BIN, WORK, seed, start, stop_all

RELEASE = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
BENCH_VENV = ROOT / ".venv-bench"
DELAY_MS = 100.0
TRIP_RUNS = 5


class QuietServer(ThreadingHTTPServer):
    """A killed function process resets its open long poll: nothing to report."""

    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:
        pass


class RuntimeApi:
    """The Lambda Runtime API of one function process, on a free loopback port."""

    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.ready_at = 0.0
        self.delivered: dict[str, float] = {}
        self.done: dict[str, tuple[float, bytes, bool]] = {}
        self.answered = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_a) -> None:
                pass

            def _reply(self, code: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if not api.ready.is_set():
                    api.ready_at = time.monotonic()
                    api.ready.set()
                request_id, body = api.events.get()
                api.delivered[request_id] = time.monotonic()
                deadline = int(time.time() * 1000) + 120_000
                self._reply(200, body, {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn":
                        "arn:aws:lambda:us-east-1:123456789012:function:ddb-export-remediator",
                    "Content-Type": "application/json",
                })

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = self.path.strip("/").split("/")
                self._reply(202, b"{}")
                if len(parts) >= 5 and parts[2] == "invocation":
                    with api.answered:
                        api.done[parts[3]] = (time.monotonic(), body, parts[4] == "error")
                        api.answered.notify_all()

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_port}"

    def invoke(self, event: dict, timeout: float = 300) -> tuple[float, dict]:
        """(seconds from delivery to answer, the answer)."""
        request_id = str(uuid.uuid4())
        self.events.put((request_id, json.dumps(event).encode()))
        with self.answered:
            if not self.answered.wait_for(lambda: request_id in self.done, timeout):
                raise SystemExit(f"no answer to {event} within {timeout}s")
        at, body, error = self.done[request_id]
        answer = json.loads(body or b"{}")
        if error:
            raise SystemExit(f"function error: {answer}")
        return at - self.delivered[request_id], answer

    def deliver(self, event: dict, retries: int = 2, timeout: float = 300) -> tuple[float, dict]:
        """`invoke`, delivered as Lambda delivers an asynchronous event: a function error (for
        example `EvidenceIncomplete` after a read failed transiently) is delivered again, at most
        `retries` more times ("How Lambda handles errors and retries with asynchronous
        invocation", https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
        Each redelivery is counted in `self.redelivered`."""
        for attempt in range(retries + 1):
            try:
                return self.invoke(event, timeout)
            except SystemExit as e:
                if not str(e).startswith("function error") or attempt == retries:
                    raise
                self.redelivered = getattr(self, "redelivered", 0) + 1
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def function_env(api: RuntimeApi, endpoint: str | None, extra: dict | None = None) -> dict:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "ddb-export-remediator",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ddb-export-remediator",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "S3_FORCE_PATH_STYLE": "true",
        "MEMBER_ROLE_NAME": MEMBER_ROLE,
        "RUST_LOG": "error",
    }
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(extra or {})
    return env


def spawn(binary: Path, env: dict) -> subprocess.Popen:
    return start([str(binary)], WORK / f"bench-{binary.name}.log", env=env)


def kill(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def fmt(values: list[float], unit: str = "ms", scale: float = 1000.0, digits: int = 1) -> str:
    lo, mid, hi = stats(values)
    return f"{lo * scale:.{digits}f} / {mid * scale:.{digits}f} / {hi * scale:.{digits}f} {unit}"


def start_server(cmd: list[str], prefix: str, log: str) -> str:
    proc = start(cmd, WORK / log, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode().strip()
    if not line.startswith(prefix):
        raise SystemExit(f"{cmd[1]} did not start: {line!r}")
    return line.split(" ", 1)[1]


def emulator() -> str:
    py = str(VENV_BIN / "python")
    return start_server([py, "tools/moto_server.py", "--parent-pid", str(os.getpid())],
                        "MOTO_READY ", "bench-moto.log")


def proxy(upstream: str, delay_ms: float, log: Path) -> str:
    py = str(VENV_BIN / "python")
    return start_server([py, "tools/latency_proxy.py", "--upstream", upstream, "--delay-ms",
                         str(delay_ms), "--log", str(log), "--parent-pid", str(os.getpid())],
                        "PROXY_READY ", f"bench-proxy-{int(delay_ms)}.log")


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def lines(path: Path) -> int:
    return len(read_lines(path))


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, check=True, **kw)


# ------------------------------------------------------------------ measurements

def measure_init(binary: Path, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        api = RuntimeApi()
        t0 = time.monotonic()
        proc = spawn(binary, function_env(api, "http://127.0.0.1:9"))
        if not api.ready.wait(10):
            raise SystemExit(f"{binary.name} never asked for an event (see {WORK})")
        out.append(api.ready_at - t0)
        kill(proc)
        api.close()
    return out


def failed_event(endpoint: str, export_arn: str, creds: dict | None = None) -> dict:
    """The `DynamoDB Export Failed` event the sweep publishes for this export (its detail as
    src/domain/sweep.rs writes it when the ledger recorded the export's CloudTrail start, which
    names the destination; the sweep no longer describes a failure its id dates, so there is no
    failure code), the trigger that starts remediation in a deployment."""
    import boto3

    c = creds or {"accessKeyId": "testing", "secretAccessKey": "testing"}
    d = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id=c["accessKeyId"], aws_secret_access_key=c["secretAccessKey"],
                     aws_session_token=c.get("sessionToken")
                     ).describe_export(ExportArn=export_arn)["ExportDescription"]
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "DynamoDB Export Failed",
            "source": "ddb-export-remediator", "account": export_arn.split(":")[4],
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": "us-east-1",
            "resources": [export_arn],
            "detail": {"exportArn": export_arn, "tableArn": d["TableArn"], "s3Bucket": d["S3Bucket"],
                       "s3BucketOwner": d.get("S3BucketOwner"),
                       "s3SseAlgorithm": d.get("S3SseAlgorithm"),
                       "s3SseKmsKeyId": d.get("S3SseKmsKeyId")}}


def diagnosis_runs(endpoint: str, ledger: str, events: dict[str, dict], runs: int,
                   via: str | None = None, log: Path | None = None,
                   envs: dict[str, dict] | None = None) -> dict[str, list[dict]]:
    """Per scenario and run, a fresh process: the first (cold) invocation, the process's peak RSS
    (VmHWM) after it, a second (warm) invocation of the same incident, and, when `log` is the
    request log of the proxy at `via`, the requests each invocation made."""
    binary = RELEASE / "ddb-export-remediator"
    out: dict[str, list[dict]] = {name: [] for name in events}
    for _ in range(runs):
        for name, event in events.items():
            api = RuntimeApi()
            extra = {"LEDGER_TABLE_NAME": ledger, "MODE": "diagnose", **(envs or {}).get(name, {})}
            proc = spawn(binary, function_env(api, via or endpoint, extra))
            # Process start and init are not part of the invocation: wait for the first poll.
            if not api.ready.wait(10):
                raise SystemExit(f"{name}: the function never asked for an event (see {WORK})")
            run: dict = {}
            for phase in ("first", "warm"):
                before = lines(log) if log else 0
                took, answer = api.invoke(event)
                if not answer.get("findings"):
                    raise SystemExit(f"{name}: no findings: {answer}")
                run[phase] = took
                if log:
                    run[f"{phase}_requests"] = read_lines(log)[before:]
                if phase == "first":
                    run["rss"] = peak_rss_kib(proc.pid)
            out[name].append(run)
            kill(proc)
            api.close()
    return out


def split_rounds(requests: list[str], delay_ms: float) -> tuple[list[list[str]], bool]:
    """One invocation's slice of the log of the proxy that delays each request by `delay_ms`, cut
    into rounds (the operations of each), and whether the last round is the report's PutEvents.
    A request that depends on another's answer is logged at least `delay_ms` after it, so a
    request logged `delay_ms` or more after the first of the current round starts the next one
    (requests sent together, even if the emulator answers them one by one, stay in one round).
    Requests after the report's PutEvents (calls the function had already given up on) and
    before the first DescribeExport/GetItem (the same, from the invocation before) are left out."""
    rows = [(float(t), op) for t, op in (r.split(" ", 1) for r in requests)]
    first = next((i for i, (_, op) in enumerate(rows)
                  if "DescribeExport" in op or "GetItem" in op), 0)
    rows = rows[first:]
    report = next((i for i, (_, op) in enumerate(rows) if op.endswith("PutEvents")), None)
    out: list[list[str]] = []
    start = None
    for t, op in rows[:None if report is None else report + 1]:
        if start is None or t - start >= delay_ms:
            out.append([])
            start = t
        out[-1].append(op)
    return out, report is not None


def rounds(requests: list[str], delay_ms: float) -> tuple[int, int]:
    """(rounds before the report, rounds in all) of one invocation (see split_rounds)."""
    cut, reported = split_rounds(requests, delay_ms)
    # The report depends on the whole diagnosis: its round is always the last.
    return (len(cut) - 1 if reported else len(cut)), len(cut)


def chain(requests: list[str], delay_ms: float) -> str:
    """The rounds of one invocation as `R1: op, op×2; R2: …` (S3 calls by method: the bucket
    is in the path)."""
    def name(op: str) -> str:
        if " " in op:  # S3: METHOD /path
            method, path = op.split(" ", 1)
            return "S3 ListBuckets" if path == "/" else f"S3 {method} bucket"
        return op.rsplit(".", 1)[-1]
    parts = []
    for i, ops in enumerate(split_rounds(requests, delay_ms)[0], 1):
        counted: dict[str, int] = {}
        for op in ops:
            counted[name(op)] = counted.get(name(op), 0) + 1
        parts.append(f"R{i}: " + ", ".join(f"{k}×{v}" if v > 1 else k for k, v in counted.items()))
    return "; ".join(parts)


def round_trips(endpoint: str, ledger: str, events: dict[str, dict], runs: int,
                envs: dict[str, dict]) -> dict:
    """Runs at +0 and +DELAY_MS alternate, so a drift of the machine or the emulator hits both."""
    logs = {d: WORK / f"bench-proxy-{int(d)}.requests" for d in (0.0, DELAY_MS)}
    for log in logs.values():
        log.unlink(missing_ok=True)
    fast, slow = proxy(endpoint, 0.0, logs[0.0]), proxy(endpoint, DELAY_MS, logs[DELAY_MS])
    zero: dict[str, list[dict]] = {name: [] for name in events}
    delayed: dict[str, list[dict]] = {name: [] for name in events}
    for _ in range(runs):
        for name, event in events.items():
            zero[name] += diagnosis_runs(endpoint, ledger, {name: event}, 1, fast, logs[0.0],
                                         envs)[name]
            delayed[name] += diagnosis_runs(endpoint, ledger, {name: event}, 1, slow,
                                            logs[DELAY_MS], envs)[name]
    result = {}
    for name in events:
        r: dict = {}
        for phase in ("first", "warm"):
            z = statistics.median(x[phase] for x in zero[name])
            d = statistics.median(x[phase] for x in delayed[name])
            seen = [rounds(x[f"{phase}_requests"], DELAY_MS) for x in delayed[name]]
            longest = max(delayed[name], key=lambda x: rounds(x[f"{phase}_requests"], DELAY_MS)[1])
            r[phase] = {
                "chain": chain(longest[f"{phase}_requests"], DELAY_MS),
                "timed": (d - z) * 1000 / DELAY_MS,
                "diagnosis": sorted({s[0] for s in seen}),
                "total": sorted({s[1] for s in seen}),
                "requests": statistics.median(len(x[f"{phase}_requests"]) for x in zero[name]),
                "wall_delayed": d,
            }
        result[name] = r
    return result


def package() -> tuple[int, int, float]:
    t0 = time.monotonic()
    sh([str(VENV_BIN / "cargo-lambda"), "lambda", "build", "--release", "--arm64",
        "--bin", "ddb-export-remediator"])
    took = time.monotonic() - t0
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    bootstrap = target / "lambda" / "ddb-export-remediator" / "bootstrap"
    zipped = WORK / "bootstrap.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(bootstrap, "bootstrap")
    return bootstrap.stat().st_size, zipped.stat().st_size, took


C7N_POLICY = """policies:
  - name: dynamodb-exports-failed
    resource: aws.dynamodb-table
    filters:
      - type: export-description
        key: ExportStatus
        value: FAILED
"""


def peer(runs: int) -> dict:
    endpoint = emulator()
    t0 = time.monotonic()
    bulk = seed(endpoint, "bulk", "--tables", "10", "--exports", "10000", "--failed", "500")
    seeded_in = time.monotonic() - t0
    log = WORK / "bench-peer.requests"
    log.unlink(missing_ok=True)
    via = proxy(endpoint, 0.0, log)
    policy = WORK / "c7n-failed-exports.yml"
    policy.write_text(C7N_POLICY)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
           "AWS_ENDPOINT_URL": via, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    c7n, ours, steady = [], [], []
    requests: dict[str, int] = {}
    direct = {**env, "AWS_ENDPOINT_URL": endpoint}
    for i in range(runs):
        # Straight to the emulator (the proxy would slow it): Cloud Custodian counts its own
        # API calls in metadata.json ("api-stats").
        out_dir = WORK / f"c7n-out-{i}"
        t = time.monotonic()
        # No resource cache: every run reads this emulator (the default keeps 15 minutes).
        subprocess.run([str(BENCH_VENV / "bin" / "custodian"), "run", "-s", str(out_dir),
                        "--cache-period", "0", "-r", "us-east-1", str(policy)], cwd=ROOT,
                       env=direct, check=True, capture_output=True)
        wall = time.monotonic() - t
        found = 0
        run_dir = out_dir / "dynamodb-exports-failed"
        for table in json.loads((run_dir / "resources.json").read_text()):
            found += len(table.get("c7n:ExportDescription", []))
        stats_ = json.loads((run_dir / "metadata.json").read_text()).get("api-stats", {})
        c7n.append((wall, sum(stats_.values()), found))

        # Ours straight to the emulator too, for the wall time; one more run through the
        # counting proxy gives its requests (the proxy's own CPU would slow the emulator).
        for counted in ([False, True] if i == 0 else [False]):
            ledger = seed(endpoint, "ledger", "--table", f"bench-ledger-{i}-{int(counted)}")["ledgerTable"]
            api = RuntimeApi()
            proc = spawn(RELEASE / "ddb-export-remediator",
                         function_env(api, via if counted else endpoint,
                                      {"LEDGER_TABLE_NAME": ledger, "MODE": "diagnose"}))
            schedule = {"version": "0", "id": "bench", "detail-type": "Scheduled Event",
                        "source": "aws.events", "detail": {}}
            api.ready.wait(10)
            before = lines(log)
            wall, answer = api.invoke(schedule)
            first_run = (wall, lines(log) - before, len(answer["sweep"]["published"]))
            before = lines(log)
            wall, answer = api.invoke(schedule)
            steady_run = (wall, lines(log) - before, len(answer["sweep"]["published"]))
            kill(proc)
            api.close()
            if counted:
                requests["first"], requests["steady"] = first_run[1], steady_run[1]
            else:
                ours.append(first_run)
                steady.append(steady_run)
    return {"c7n": c7n, "ours": ours, "steady": steady, "requests": requests, "seeded_in": seeded_in,
            "exports": len(bulk.get("failed", [])), "tables": len(bulk.get("tables", []))}


def trips_table(trips: dict) -> list[str]:
    def seen(v: list[int]) -> str:
        return "/".join(str(x) for x in v)

    md = [f"Through tools/latency_proxy.py at +0 and +{DELAY_MS:.0f} ms a request, {TRIP_RUNS} "
          "runs each, alternating. **Rounds seen**: in the +100 ms proxy's log, a request "
          f"logged {DELAY_MS:.0f} ms or more after the first request of the current round starts "
          "the next (a request that needs another's answer cannot come sooner; every run, "
          "several values when runs differ). The report's PutEvents depends on the "
          "whole diagnosis and is always the last round: *diagnosis* counts the rounds before "
          "it, *invocation* includes it. **Timed**: (median wall at +100 − median wall at +0) / "
          "100 ms, which also counts the emulator answering a round's concurrent requests one "
          "after another. Cold: the process's first invocation (its first DescribeExport, STS "
          "sessions, organization account list); warm: the same incident again in that process. "
          "Two triggers: the manual payload (`{exportArn, mode}`: the bucket is known only from "
          "DescribeExport) and the sweep's `DynamoDB Export Failed` event as it publishes it when the "
          "ledger recorded the export's CloudTrail start (it names the destination, so the evidence "
          "is read beside DescribeExport, which then confirms it; without that record it carries "
          "only the ARNs and behaves like the manual payload).",
          "", "| scenario, trigger | process | rounds seen: diagnosis | invocation | timed | requests | "
          "wall at +100 ms |", "|---|---|---|---|---|---|---|"]
    for name, r in trips.items():
        for phase, label in (("first", "cold"), ("warm", "warm")):
            x = r[phase]
            md.append(f"| {name} | {label} | {seen(x['diagnosis'])} | {seen(x['total'])} | "
                      f"{x['timed']:.1f} | {x['requests']:.0f} | "
                      f"{x['wall_delayed'] * 1000:.0f} ms |")
    rows = [r[p] for r in trips.values() for p in ("first", "warm")]
    within = sum(max(x["total"]) <= 3 for x in rows)
    diag = sum(max(x["diagnosis"]) <= 3 for x in rows)
    over = [f"{name} ({'cold' if p == 'first' else 'warm'}: {max(r[p]['total'])})"
            for name, r in trips.items() for p in ("first", "warm") if max(r[p]["total"]) > 3]
    md += ["", f"Within the budget of 3 dependent rounds: {within} of {len(rows)} rows for the whole "
           f"invocation (report included), {diag} of {len(rows)} for the diagnosis alone. Over 3: "
           + (", ".join(over) if over else "none") + "."]
    long = [(name, p, r[p]) for name, r in trips.items() for p in ("first", "warm")
            if max(r[p]["total"]) > 3]
    if long:
        md += ["", "The requests of each row over 3, by round (its longest run at +100 ms):", ""]
        md += [f"- {name} ({'cold' if p == 'first' else 'warm'}): {x['chain']}" for name, p, x in long]
    return md + [""]


PHASES: dict[str, float] = {}


def timed(name: str, run):
    """run(), its wall time added to PHASES[name]."""
    t0 = time.monotonic()
    try:
        return run()
    finally:
        PHASES[name] = PHASES.get(name, 0.0) + time.monotonic() - t0


def section(path: Path) -> str:
    """A benchmark file's body without its title."""
    text = path.read_text() if path.exists() else "(not produced)\n"
    return "\n".join(l for l in text.splitlines() if not l.startswith("# ")).strip() + "\n"


def main() -> int:
    """`tools/bench.py` runs everything and writes BENCHMARKS.md; `tools/bench.py trips` only
    prints the round trips (for working on them)."""
    WORK.mkdir(exist_ok=True)
    started = time.monotonic()
    only_trips = sys.argv[1:] == ["trips"]
    try:
        # Everything host-native in one cargo call (its crates build in parallel).
        timed("build", lambda: sh(["cargo", "build", "--release", "--bin",
                                   "ddb-export-remediator", "--example", "hello_floor",
                                   "--example", "bench_diagnosis", "--example", "bench_sweep"]))
        endpoint = emulator()
        ledger = seed(endpoint, "ledger", "--table", "bench-ledger")["ledgerTable"]
        events, triggers = {}, {}
        for scenario in ("cross-account-no-owner", "sse-kms-required", "kms-key-policy-denies"):
            s = seed(endpoint, scenario)
            events[scenario] = {"exportArn": s["exportArn"], "mode": "diagnose"}
            triggers[f"{scenario}, manual payload"] = events[scenario]
            triggers[f"{scenario}, sweep's event"] = failed_event(endpoint, s["exportArn"])
        # The usual deployment: the function in a member account, reading SCPs through
        # ORG_ROLE_ARN (no ledger: the ledger table above is the management account's).
        org = seed(endpoint, "scp-denies-kms")
        c = org["credentials"]
        member = {"AWS_ACCESS_KEY_ID": c["accessKeyId"], "AWS_SECRET_ACCESS_KEY": c["secretAccessKey"],
                  "AWS_SESSION_TOKEN": c["sessionToken"], "ORG_ROLE_ARN": org["orgRoleArn"],
                  "LEDGER_TABLE_NAME": ""}
        envs = {}
        for trigger, event in (("manual payload", {"exportArn": org["exportArn"], "mode": "diagnose"}),
                               ("sweep's event", failed_event(endpoint, org["exportArn"], c))):
            triggers[f"scp-denies-kms (member account), {trigger}"] = event
            envs[f"scp-denies-kms (member account), {trigger}"] = member
        trips = timed("round trips",
                      lambda: round_trips(endpoint, ledger, triggers, TRIP_RUNS, envs))
        if only_trips:
            print("\n".join(trips_table(trips)))
            return 0
        ours_init = timed("init", lambda: measure_init(RELEASE / "ddb-export-remediator", 20))
        floor_init = timed("init", lambda: measure_init(RELEASE / "examples" / "hello_floor", 20))
        first = timed("first invocation", lambda: diagnosis_runs(endpoint, ledger, events, 3))
        size, zipped, build_secs = timed("package", package)
        peer_runs = timed("peer", lambda: peer(3))
        timed("diagnosis throughput", lambda: sh(
            ["cargo", "run", "--release", "--example", "bench_diagnosis"], stdout=subprocess.DEVNULL))
        timed("sweep scale", lambda: sh(
            ["cargo", "run", "--release", "--example", "bench_sweep", "--", "1000", "10000"],
            stdout=subprocess.DEVNULL))
        # The organization sweep and one spoke incident (its own emulator; issue 19).
        timed("organization", lambda: sh([str(VENV_BIN / "python"), "tools/bench_org.py",
                                          "--no-build"], stdout=subprocess.DEVNULL))
        # The steady cost of following retries in flight, and of closing them (issue 27).
        timed("following", lambda: sh([str(VENV_BIN / "python"), "tools/bench_follow.py",
                                       "--no-build"], stdout=subprocess.DEVNULL))
    finally:
        stop_all()

    o_lo, o_mid, o_hi = stats(ours_init)
    f_lo, f_mid, f_hi = stats(floor_init)
    md = ["# Benchmarks", "",
          f"Command: `make bench` (tools/bench.py), {time.strftime('%Y-%m-%d')}, "
          f"{(time.monotonic() - started) / 60:.1f} min in all.",
          f"Machine: {os.cpu_count()} cores, {platform.machine()}, {platform.system()} "
          f"{platform.release()}; Python {platform.python_version()}; emulator moto 5.2.5 (patched) "
          "on 127.0.0.1. Numbers are min / median / max over the runs named. Host-native release "
          "builds (the arm64 build is only measured for size: this machine cannot run it).", ""]
    md += ["Time by part: " + ", ".join(f"{k} {v:.0f} s" for k, v in PHASES.items()) + ".", ""]
    md += ["## 1. Init (budget: ≤ 30 ms; floor ~14 ms p50 on Lambda)", "",
           "Process start until the runtime's first `GET /runtime/invocation/next` on a local "
           "Runtime API, 20 runs each:", "",
           "| binary | init |", "|---|---|",
           f"| `ddb-export-remediator` (release) | {fmt(ours_init)} |",
           f"| `hello_floor` (bare lambda_runtime echo, same profile) | {fmt(floor_init)} |",
           "", f"Ratio of medians: {o_mid / f_mid:.2f}× the floor "
           f"(+{(o_mid - f_mid) * 1000:.1f} ms).", ""]
    md += ["## 2. First invocation, peak memory (budget: RSS ≤ 40 MB)", "",
           "A fresh process per run (cold), `MODE=diagnose`, ledger on, against the emulator "
           "directly; then a second, warm invocation of the same incident. 3 runs per scenario.", "",
           "| scenario | first invocation | warm invocation | peak RSS after the first |",
           "|---|---|---|---|"]
    for name, rows in first.items():
        md.append(f"| {name} | {fmt([r['first'] for r in rows])} | "
                  f"{fmt([r['warm'] for r in rows])} | "
                  f"{fmt([r['rss'] / 1024 for r in rows], 'MiB', 1.0)} |")
    md += ["", "## 3. Dependent round trips of one diagnosis (budget: ≤ 3)", ""]
    md += trips_table(trips)
    md += ["", "## 4. Package (budget: ≤ 4 MB zipped)", "",
           f"`cargo lambda build --release --arm64`: bootstrap {size / 1e6:.2f} MB, "
           f"{zipped / 1e6:.2f} MB zipped (deflate -9); the build took {build_secs:.0f} s "
           "with this machine's target directory as it was.", ""]
    c7n, ours, steady = peer_runs["c7n"], peer_runs["ours"], peer_runs["steady"]
    req = peer_runs["requests"]
    c_wall, o_wall = statistics.median(r[0] for r in c7n), statistics.median(r[0] for r in ours)
    c_calls = statistics.median(r[1] for r in c7n)
    md += ["## 5. Side by side with Cloud Custodian (budget: ≥ 5× fewer calls and wall time)", "",
           f"One emulator, {peer_runs['tables']} tables, 10,000 exports of which "
           f"{peer_runs['exports']} FAILED (seeded in {peer_runs['seeded_in']:.0f} s). Cloud "
           "Custodian 0.9.53 (`.venv-bench`), policy `aws.dynamodb-table` + `export-description` "
           "(`ExportStatus: FAILED`), `custodian run`, its calls from its own `api-stats`; ours: "
           "the release function's first sweep (a fresh ledger each run) under a local Runtime "
           "API — it lists, describes each new failure, publishes one `DynamoDB Export Failed` "
           "event for each and records it in the ledger — then a steady sweep. Both straight to "
           "the emulator, 3 runs each; our requests counted by one more run through the latency "
           "proxy at +0 ms. An event the emulator's bus or DescribeExport refused under load is "
           "published by the next sweep: first + steady always add up to every failure.", "",
           "| tool | wall | requests | failed exports found/published |", "|---|---|---|---|",
           f"| Cloud Custodian 0.9.53 | {fmt([r[0] for r in c7n], 's', 1.0)} | "
           f"{', '.join(str(r[1]) for r in c7n)} | {', '.join(str(r[2]) for r in c7n)} |",
           f"| ddb-export-remediator, first sweep | {fmt([r[0] for r in ours], 's', 1.0, 2)} | "
           f"{req.get('first')} | {', '.join(str(r[2]) for r in ours)} |",
           f"| ddb-export-remediator, steady sweep | {fmt([r[0] for r in steady], 's', 1.0, 2)} | "
           f"{req.get('steady')} | {', '.join(str(r[2]) for r in steady)} |",
           "", f"Ratios of medians (Cloud Custodian / ours, first sweep): "
           f"{c_calls / max(req.get('first') or 1, 1):.1f}× the requests, {c_wall / o_wall:.1f}× "
           "the wall time.", ""]
    md += ["## 6. Sweep scale", "", section(ROOT / "BENCHMARKS-sweep.md"),
           "## 7. Pure diagnosis throughput (budget: ≥ 10,000 incidents/s on one core)", "",
           section(ROOT / "BENCHMARKS-diagnosis.md"),
           "## 8. Organization mode: the sweep over 200 accounts × 2 Regions, one spoke incident", "",
           section(ROOT / "BENCHMARKS-org.md"),
           "## 9. Reliability: faults, duplicate deliveries and crashes (`make bench-reliability`)", "",
           section(ROOT / "BENCHMARKS-reliability.md"),
           "## 10. Following retries in flight: requests per run at 0, 10 and 1,000, and to "
           "close them", "", section(ROOT / "BENCHMARKS-follow.md")]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
