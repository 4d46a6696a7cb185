#!/usr/bin/env python3
"""`make bench-follow`: the steady cost of following N retries in flight, and of closing them,
on the emulator, written to BENCHMARKS-follow.md (`make bench` includes it).

One account (single-account mode, a ledger): the function's scheduled run sweeps the account's
tables and, while the ledger counts a followed retry, runs the in-flight poller (docs/outcomes.md,
"How the function learns the end"). Every request it makes goes through tools/latency_proxy.py,
whose log gives the requests by operation.

The account holds the same exports in every row: 1,000 that stay IN_PROGRESS for the whole
run (a bucket tagged with the emulator's export delay) and 1,000 COMPLETED. Only the ledger
changes between rows: this script writes, for the first N of them, what the function writes
when it starts a retry (its followed record `EXPORT#<retry>`/`FOLLOW`, its `INFLIGHT` row and
the `MARKER`/`following` count; src/aws/ledger). So each row's extra requests over the row with
nothing followed are the cost of following. The `INFLIGHT` rows are written due now
(`nextCheckAt` 0) for the "due" rows; the function then re-schedules them itself (back-off), so
the run after a due run is the "none due" row.

AWS behaviour this relies on: DescribeExport's `ExportStatus` is IN_PROGRESS, COMPLETED or
FAILED (Amazon DynamoDB API Reference, "DescribeExport",
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DescribeExport.html); the
poller's one Query of the `INFLIGHT` partition reads up to 1 MB a page whatever its filter
(Amazon DynamoDB Developer Guide, "Filter expressions for the Query operation",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.FilterExpression.html).
The emulator cannot show how long a real export runs (it moves the due time, not the clock),
nor the latency or throttling of DynamoDB and EventBridge at 1,000 requests in one run: the
numbers are requests, and the wall times are the emulator's.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import RELEASE, emulator, proxy, sh
from bench_org import SCHEDULE, Hub, by_op, ddb, ops
from local import ROOT, WORK, seed, stop_all
from seed import add_tags, client, make_table, raw_call

IN_FLIGHT = [0, 10, 1000]
# The poller describes at most this many a run (src/domain/org_sweep.rs, POLL_LIMIT).
MOST = max(IN_FLIGHT)
# Retries that COMPLETE, closed by one run each: 10, then 100 more. The poller closes them one
# after another (about 0.5 s each on the emulator with the debug build), so 1,000 in one run
# would outlast the Runtime API's 300 s answer wait here.
CLOSE = [10, 100]
CLOSED = sum(CLOSE)
CAUSE = "BUCKET_OWNER_MISSING"


def write_all(endpoint: str, ledger: str, items: list[dict]) -> None:
    """BatchWriteItem, 25 items a request, until nothing is left unprocessed."""
    db = ddb(endpoint)
    for i in range(0, len(items), 25):
        batch = {ledger: [{"PutRequest": {"Item": it}} for it in items[i:i + 25]]}
        while batch:
            batch = db.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}


def follow(endpoint: str, ledger: str, table_arn: str, bucket: str, retries: list[str]) -> None:
    """What the function writes when it starts these retries (src/domain/follow.rs,
    follow_retry): the followed record, the in-flight row (due now) and the count."""
    now = int(time.time())
    items = []
    for retry in retries:
        # The root (the failed export the retry is for) named after the retry, so that each
        # incident has its own: the outcome is recorded once per root.
        root = f"{table_arn}/export/00000000000000-{retry[-8:]}"
        followed = {
            "subject": {"rootExportArn": root, "tableArn": table_arn, "s3Bucket": bucket,
                        "failedAt": now - 600},
            "retryExportArn": retry, "attempt": 1, "causes": [CAUSE],
            "corrections": ["S3BucketOwner 111122223333"], "changeIds": [],
            "history": [{"attempt": 0, "exportArn": root, "causes": [CAUSE]}],
        }
        items.append({"pk": {"S": f"EXPORT#{retry}"}, "sk": {"S": "FOLLOW"},
                      "updatedAt": {"N": str(now)}, "followed": {"S": json.dumps(followed)}})
        items.append({"pk": {"S": "INFLIGHT"}, "sk": {"S": retry}, "updatedAt": {"N": str(now)},
                      "expiresAt": {"N": str(now + 7 * 86400)}, "nextCheckAt": {"N": "0"},
                      "checks": {"N": "0"}})
    write_all(endpoint, ledger, items)
    ddb(endpoint).update_item(
        TableName=ledger, Key={"pk": {"S": "MARKER"}, "sk": {"S": "following"}},
        UpdateExpression="ADD #v :d", ExpressionAttributeNames={"#v": "value"},
        ExpressionAttributeValues={":d": {"N": str(len(retries))}})


def unfollow(endpoint: str, ledger: str, retries: list[str]) -> None:
    """Back to nothing followed: the rows above removed, the count at 0."""
    db = ddb(endpoint)
    keys = [k for r in retries for k in ({"pk": {"S": f"EXPORT#{r}"}, "sk": {"S": "FOLLOW"}},
                                         {"pk": {"S": "INFLIGHT"}, "sk": {"S": r}})]
    for i in range(0, len(keys), 25):
        batch = {ledger: [{"DeleteRequest": {"Key": k}} for k in keys[i:i + 25]]}
        while batch:
            batch = db.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}
    db.put_item(TableName=ledger, Item={"pk": {"S": "MARKER"}, "sk": {"S": "following"},
                                        "value": {"N": "0"}})


def following(endpoint: str, ledger: str) -> int:
    item = ddb(endpoint).get_item(TableName=ledger, ConsistentRead=True, Key={
        "pk": {"S": "MARKER"}, "sk": {"S": "following"}}).get("Item", {})
    return int(item.get("value", {}).get("N", "0"))


def running_exports(endpoint: str, table_arn: str, bucket: str, n: int) -> list[str]:
    """n exports that stay IN_PROGRESS (the bucket's delay), started one by one (the emulator's
    bulk extension runs its exports to the end at once)."""
    db = client(endpoint, "dynamodb")  # boto3 clients are safe to share between threads

    def one(i: int) -> str:
        return db.export_table_to_point_in_time(
            TableArn=table_arn, S3Bucket=bucket, S3Prefix=f"retry-{i}",
            ExportFormat="DYNAMODB_JSON")["ExportDescription"]["ExportArn"]
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def main() -> int:
    WORK.mkdir(exist_ok=True)
    started = time.monotonic()
    debug = "--debug" in sys.argv
    binary = (RELEASE.parent / "debug" if debug else RELEASE) / "ddb-export-remediator"
    if "--no-build" not in sys.argv:
        sh(["cargo", "build", *([] if debug else ["--release"]), "--bin", "ddb-export-remediator"])
    rows: list[dict] = []
    try:
        endpoint = emulator()
        ledger = seed(endpoint, "ledger", "--table", "bench-follow-ledger")["ledgerTable"]
        s3 = client(endpoint, "s3")
        slow, done = "follow-running", "follow-completed"
        for b in (slow, done):
            s3.create_bucket(Bucket=b)
        add_tags(endpoint, slow, None, {"moto-export-delay-seconds": "7200"})
        table = make_table(endpoint, "follow-orders")
        t0 = time.monotonic()
        running = running_exports(endpoint, table, slow, MOST)
        completed = [a for a, status in raw_call(endpoint, "ExportTableToPointInTime", {
            "TableArn": table, "S3Prefix": "retry-done",
            "MotoBulkBuckets": [done] * CLOSED})["MotoBulkExports"] if status == "COMPLETED"]
        if len(completed) != CLOSED:
            raise SystemExit(f"{len(completed)} of {CLOSED} seeded exports COMPLETED")
        seeded_in = time.monotonic() - t0
        log = WORK / "bench-follow.requests"
        log.unlink(missing_ok=True)
        via = proxy(endpoint, 0.0, log)
        fn = Hub(via, log, {"LEDGER_TABLE_NAME": ledger, "MODE": "apply"}, binary)

        def run(label: str, in_flight: int, due: int) -> dict:
            took, answer, reqs = fn.invoke(SCHEDULE)
            sweep = answer.get("sweep") or {}
            row = {"label": label, "in_flight": in_flight, "due": due, "requests": len(reqs),
                   "ops": ops(reqs), "wall": took, "sweep": sweep}
            rows.append(row)
            print(f"{label}: {len(reqs)} requests, {took:.2f} s, {by_op(row['ops'])}", flush=True)
            # An error (a DescribeExport the emulator did not answer in time) is kept in the
            # row: the function re-schedules that retry, as it would on AWS.
            row["errors"] = sweep.get("errors", [])
            return row

        # Two runs first: the first sweep records the account's exports; the second is a
        # usual run, the baseline every row is compared with.
        fn.invoke(SCHEDULE)
        run("nothing followed (the count 0: no poller)", 0, 0)
        for n in IN_FLIGHT[1:]:
            follow(endpoint, ledger, table, slow, running[:n])
            r = run(f"{n:,} followed, all due (IN_PROGRESS)", n, n)
            if r["sweep"].get("describeCalls") != n:
                raise SystemExit(f"{n} due, {r['sweep'].get('describeCalls')} described")
            run(f"{n:,} followed, none due (re-scheduled by the run before)", n, 0)
            unfollow(endpoint, ledger, running[:n])
        run("nothing followed again", 0, 0)
        # The retries COMPLETE: the run that closes them, one RESOLVED outcome each.
        for n in CLOSE:
            batch = completed[:n]
            follow(endpoint, ledger, table, done, batch)
            r = run(f"{n:,} followed, all COMPLETED: closed", n, n)
            closed = [o for o in r["sweep"].get("outcomes", []) if o.get("outcome") == "RESOLVED"]
            if len(closed) != n:
                raise SystemExit(f"{n} completed, {len(closed)} RESOLVED")
            if (left := following(endpoint, ledger)) != 0:
                raise SystemExit(f"the count is {left} after closing every followed retry")
            run("after the close (the function brought the count back to 0)", 0, 0)
            completed = completed[n:]
        fn.close()
    finally:
        stop_all()

    base = rows[0]

    def extra(r: dict) -> tuple[int, str]:
        diff = Counter(r["ops"])
        diff.subtract(base["ops"])
        text = ", ".join(f"{'+' if v > 0 else ''}{v} {op}" for op, v in diff.most_common() if v)
        return r["requests"] - base["requests"], text or "none"

    md = ["# Following retries in flight (issue 27)", "",
          f"Command: `make bench-follow` (tools/bench_follow.py{' --debug' if debug else ''}), "
          f"{time.strftime('%Y-%m-%d')}, {(time.monotonic() - started) / 60:.1f} min. Machine: "
          f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}; "
          f"the patched moto 5.2.5 on 127.0.0.1. The {'debug' if debug else 'release'} function in "
          "single-account mode (`MODE=apply`, a ledger) under a local Runtime API, its scheduled "
          "run; every request counted by tools/latency_proxy.py. The account holds one table with "
          f"{MOST:,} exports IN_PROGRESS and {CLOSED:,} COMPLETED in every row (seeded in "
          f"{seeded_in:.0f} s), so the sweep's own requests (ListExports pages, the marks of the "
          "IN_PROGRESS ones) are the same in every row; only the ledger's followed retries "
          "change. The script writes the followed records, in-flight rows (due now) and count as "
          "the function does when it starts a retry; the function re-schedules and closes them "
          "itself. Requests, not wall times, are the result: the wall is the emulator's.", "",
          "| run | followed | due | requests | over nothing followed | per retry due | extra by operation | wall |",
          "|---|---|---|---|---|---|---|---|"]
    retried: list[tuple[str, int]] = []
    for r in rows:
        more, text = extra(r)
        described = r["sweep"].get("describeCalls", 0)
        if r["ops"]["DescribeExport"] > described:
            retried.append((r["label"], r["ops"]["DescribeExport"] - described))
        per = f"{more / r['due']:.2f}" if r["due"] else "–"
        md.append(f"| {r['label']} | {r['in_flight']:,} | {r['due']:,} | {r['requests']:,} | "
                  f"{more:+,} | {per} | {text} | {r['wall']:.2f} s |")
    md += ["", f"Nothing followed, a run made {base['requests']:,} requests: "
           f"{by_op(base['ops'])} (the sweep's listing and marks, and in `apply` mode its Query of "
           "the ledger's open incidents). The followed-retry count is read in the BatchGetItem "
           "that reads the tables' marks and the sweep's cursor (one more key, not one more "
           "request), so with nothing followed the poller does not run at all.", ""]
    for r in rows:
        if r["errors"]:
            md += [f"\"{r['label']}\": the run reported {len(r['errors'])} error(s), e.g. "
                   f"`{r['errors'][0]}`; the function re-scheduled those retries (they stay "
                   "followed, described again by a later run).", ""]
    for label, n in retried:
        md += [f"\"{label}\": the function counted fewer DescribeExport calls than the proxy saw; "
               f"the {n} more are the SDK's retries of requests the emulator failed under that "
               "many at once (the run reported no error).", ""]
    idle = [r for r in rows if r["in_flight"] == 0]
    if all(r["requests"] == base["requests"] for r in idle):
        md += [f"Every run with nothing followed ({len(idle)} of them, including those after "
               "the function closed every retry) made the same requests.", ""]
    md += ["Reading the table: a retry due and still IN_PROGRESS costs one DescribeExport and one "
           "PutItem (its in-flight row re-scheduled with back-off: 1, 2, 4 … 60 minutes); a "
           "followed retry not due costs nothing but its share of the one Query of the "
           "`INFLIGHT` partition (one request up to 1 MB of rows); a retry that COMPLETED costs "
           "its DescribeExport, the ledger's reads and writes that make its outcome "
           "publish-once, one PutEvents of its `RESOLVED` outcome and its untracking. A run "
           f"describes at most {MOST:,} (the poller's limit); more wait for the next run. It "
           "describes a run's due retries all at once but closes the COMPLETED ones one after "
           "another: their wall time above is the emulator's, not AWS's.", ""]
    (ROOT / "BENCHMARKS-follow.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
