#!/usr/bin/env python3
"""Shared pieces of the local runs (demo and `make invoke`): the patched emulator, the function
under `cargo lambda watch`, and `cargo lambda invoke`. Every process started here is tracked
and stopped by its PID (process group) in stop_all()."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
WORK = ROOT / ".demo"  # logs and payload files of local runs (git-ignored)
MEMBER_ROLE = "DdbExportRemediatorMember"
STARTED: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path, env: dict | None = None, stdout=None) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=stdout or open(log, "w"), stderr=open(log, "a"),
        start_new_session=True,
    )
    STARTED.append(proc)
    return proc


def stop_all() -> None:
    for proc in reversed(STARTED):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # the group we started, by its leader's PID
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def start_emulator() -> str:
    WORK.mkdir(exist_ok=True)
    proc = start(
        [str(VENV_BIN / "python"), "tools/moto_server.py", "--parent-pid", str(os.getpid())],
        WORK / "moto.log",
        stdout=subprocess.PIPE,
    )
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("MOTO_READY "):
        sys.exit(f"emulator did not start: {line!r} (see {WORK / 'moto.log'})")
    return line.split(" ", 1)[1]


def seed(endpoint: str, scenario: str, *args: str) -> dict:
    out = subprocess.run(
        [str(VENV_BIN / "python"), "tools/seed.py", "--endpoint", endpoint, *args, scenario],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def function_env(endpoint: str, ledger_table: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        S3_FORCE_PATH_STYLE="true",
        MEMBER_ROLE_NAME=MEMBER_ROLE,
        MODE="apply",
        # The demo shows the opt-in key-policy patch; a deployment defaults to off.
        KEY_POLICY_PATCH="on",
        RUST_LOG=os.environ.get("DEMO_RUST_LOG", "warn"),
    )
    if ledger_table:
        env["LEDGER_TABLE_NAME"] = ledger_table
    return env


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited early; see {WORK}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    sys.exit(f"{what} did not listen on {port} within {timeout:.0f}s")


def invoke(port: int, payload: dict, env: dict, allow_error: bool = False) -> dict:
    """Sends one event; a function error is returned as {"error": ...} when allow_error."""
    data = WORK / "payload.json"
    data.write_text(json.dumps(payload))
    out = subprocess.run(
        [str(VENV_BIN / "cargo-lambda"), "lambda", "invoke", "--invoke-address", "127.0.0.1",
         "--invoke-port", str(port),
         "--data-file", str(data), "--output-format", "json", "ddb-export-remediator"],
        cwd=ROOT, env={**env, "COLUMNS": "1000"}, capture_output=True, text=True, timeout=900,
    )
    if out.returncode != 0:
        if allow_error:
            return function_error(out.stdout + out.stderr)
        sys.exit(f"cargo lambda invoke failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout)


def function_error(text: str) -> dict:
    """cargo lambda prints a function error as "Error: <type>" and a boxed message."""
    lines = [l.strip().lstrip("×│").strip() for l in text.splitlines()]
    error_type = next((l[len("Error: "):] for l in lines if l.startswith("Error: ")), "Unknown")
    body = [l for l in lines if l and not l.startswith("Error: ")]
    body = body[: next((i for i, l in enumerate(body) if l.startswith("Was this behavior")), len(body))]
    return {"errorType": error_type, "errorMessage": "".join(body)}


def wait_export(endpoint: str, arn: str, timeout: float = 60) -> dict:
    ddb = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    deadline = time.time() + timeout
    while True:
        desc = ddb.describe_export(ExportArn=arn)["ExportDescription"]
        if desc["ExportStatus"] != "IN_PROGRESS" or time.time() > deadline:
            return desc
        time.sleep(0.2)


# The measured figures are the README's ("Requirements, time and disk"): a first `make demo`
# takes about 11 minutes cold on 2 cores, most of it this build.
COLD_BUILD = "cold: most of a first make demo's 11 minutes on 2 cores"


def build_function(env: dict) -> None:
    """Builds the function binary with cargo's own progress on this terminal, so the watch below
    finds it built: `cargo lambda watch` runs `cargo run --bin ddb-export-remediator` (same
    profile, features and environment), and would otherwise compile silently into its log."""
    print(f"building the function with cargo ({COLD_BUILD}; warm: seconds)", flush=True)
    started = time.monotonic()
    done = subprocess.run(["cargo", "build", "--bin", "ddb-export-remediator"], cwd=ROOT, env=env)
    if done.returncode != 0:
        sys.exit("cargo build failed (its errors are above)")
    print(f"built in {time.monotonic() - started:.0f} s", flush=True)


def start_function(endpoint: str, ledger_table: str | None = None,
                   build: bool = True) -> tuple[int, dict]:
    """Builds the function (unless the caller did), then starts it under `cargo lambda watch` on
    a free port; returns (port, env)."""
    env = function_env(endpoint, ledger_table)
    if build:
        build_function(env)
    port = free_port()
    watch = start(
        [str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "--invoke-address", "127.0.0.1",
         "--invoke-port", str(port), "--ignore-changes", "--timeout", "900"],
        WORK / "watch.log", env=env,
    )
    wait_for_port(port, watch, "cargo lambda watch", 120)
    return port, env


def receive_events(endpoint: str, queue_url: str) -> list[dict]:
    """The EventBridge events a capture queue holds (each once: they are deleted)."""
    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    events = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return events
        for m in msgs:
            events.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
