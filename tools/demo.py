#!/usr/bin/env python3
"""End-to-end demo on this machine: emulator + the function under `cargo lambda watch`.

1. starts the patched moto emulator on a free 127.0.0.1 port;
2. seeds three exports: a same-account AES256 export that completes, a cross-account bucket
   exported without --s3-bucket-owner, and a bucket whose policy requires SSE-KMS exported
   with AES256;
3. starts the function under `cargo lambda watch` (the Lambda Runtime API emulator) and sends
   each export through `cargo lambda invoke`;
4. prints each diagnosis and the retry it started, and waits for the retry to complete.

Every process it starts is stopped by its PID on exit.
"""

from __future__ import annotations

import json
import sys

from local import WORK, invoke, seed, start_emulator, start_function, stop_all, wait_export


def show(title: str, seeded: dict, result: dict, endpoint: str) -> bool:
    print(f"\n=== {title}")
    print(f"export   {seeded['exportArn']}")
    print(f"status   {seeded['exportStatus']}  {seeded.get('failureCode') or ''}  {seeded.get('failureMessage') or ''}"[:200])
    findings = result.get("findings", [])
    if not findings:
        print("findings none")
    for f in findings:
        print(f"finding  {f['cause']} ({f['confidence']}): {f['summary']}")
        for e in f["evidence"][:3]:
            print(f"         - {e['fact'][:150]}  [{e['source']}]")
        if f["remedy"].get("command"):
            print(f"command  {f['remedy']['command']}")
    for note in result.get("notes", []):
        print(f"note     {note}")
    ok = True
    for a in result.get("applied", []):
        print(f"applied  {a['action']} {a['status']} {json.dumps(a['result'])}")
        arn = a["result"].get("exportArn")
        if a["status"] == "DONE" and arn:
            desc = wait_export(endpoint, arn)
            print(f"retried  {arn} -> {desc['ExportStatus']}")
            ok = ok and desc["ExportStatus"] == "COMPLETED"
    return ok


def main() -> int:
    try:
        endpoint = start_emulator()
        print(f"emulator {endpoint} (moto, patched; log {WORK / 'moto.log'})")
        scenarios = [
            ("same-account AES256 export", seed(endpoint, "same-account-ok")),
            ("cross-account bucket without --s3-bucket-owner", seed(endpoint, "cross-account-no-owner")),
            ("bucket policy requires SSE-KMS, exported with AES256", seed(endpoint, "sse-kms-required")),
        ]
        port, env = start_function(endpoint)
        print(f"function under cargo lambda watch on 127.0.0.1:{port} (log {WORK / 'watch.log'})")
        all_ok = True
        for title, seeded in scenarios:
            result = invoke(port, {"exportArn": seeded["exportArn"], "mode": "apply"}, env)
            ok = show(title, seeded, result, endpoint)
            failed = seeded["exportStatus"] == "FAILED"
            retried = any(a["status"] == "DONE" for a in result.get("applied", []))
            all_ok = all_ok and ok and (retried if failed else not result.get("findings"))
        print("\ndemo " + ("passed: both failures diagnosed and their retries COMPLETED" if all_ok else "FAILED"))
        return 0 if all_ok else 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
