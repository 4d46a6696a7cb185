#!/usr/bin/env python3
"""make bench-reliability: many failed exports, three concurrent deliveries of each, injected
faults and process kills; then counts, from the emulator itself, what became of every failure.

Setup (straight to the emulator, never faulted):
- one table with point-in-time recovery and a ledger table;
- a bucket whose policy denies uploads without SSE-KMS (the emulator enforces it, tag
  moto-export-require-sse=KMS) and whose default encryption is a customer managed key: each
  export to it with SSE-S3 fails, SSE_MISMATCH_REQUIRES_KMS; one retry with KMS flags fixes it;
- a handful of customer managed keys whose policies the emulator enforces (tag
  moto-enforce-key-policy=true), each naming neither the account nor the pipeline roles; every
  key-policy failure is an SSE-KMS export started by its own pipeline role
  (KMS_KEY_POLICY_DENIES_EXPORTER): fixed by one key-policy statement (KEY_POLICY_PATCH=on) and
  one retry. The function learns each exporter from the CloudTrail start event, delivered once
  before the run with no faults;
- every failure under its own S3 prefix, so a retry export (same prefix) names its root;
- an EventBridge rule that copies what the function publishes ("DynamoDB Export Failed", the
  sweep's findings) into an SQS queue; the harness delivers those to the function, as the
  deployed rule would.

Run: tools/lambda_pool.py's processes of the real binary, AWS_ENDPOINT_URL = tools/fault_proxy.py
in front of the emulator. Each process receives every failure event once, in its own seeded
order, at the same time as the others; the schedule's sweep event is delivered every
--sweep-every seconds once half the deliveries are handed out; --kills processes are SIGKILLed at seeded moments inside invocations (the
event is then delivered again, as Lambda does for a function error).

Then the sweep runs until quiet (nothing queued, nothing published, for longer than a claim's
lease), and the emulator is read directly: retry exports per failure (lost = none, duplicate =
more than one), key-policy statements the function added vs. the ledger's audit records, and
deliveries Lambda would have given up on.

Usage: bench_reliability.py [--failures 1000] [--key-policy 60] [--keys 5] [--kills 20]
       [--fraction 0.1] [--seed 24] [--binary PATH] [--write BENCHMARKS-reliability.md] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

import seed  # noqa: E402
from lambda_pool import Pool  # noqa: E402

REGION = seed.REGION
PATCH_SID_PREFIX = "DdbExportRemediator"


def launch(args: list[str], ready: str) -> tuple[subprocess.Popen, str]:
    """Starts a tool that prints `<ready> <endpoint>` and exits with this process."""
    proc = subprocess.Popen([sys.executable, *args, "--parent-pid", str(os.getpid())],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip() if proc.stdout else ""
    if not line.startswith(ready + " "):
        proc.kill()
        raise SystemExit(f"{args[0]} said {line!r}")
    return proc, line.split(" ", 1)[1]


def failed_event(account: str, export_arn: str) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "DynamoDB Export Failed",
            "source": "ddb-export-remediator", "account": account,
            "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION, "resources": [export_arn], "detail": {"exportArn": export_arn}}


def sweep_event(account: str) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": account,
            "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{account}:rule/ddb-export-remediator-Sweep"],
            "detail": {}}


def started_event(account: str, role_arn: str, params: dict, export_arn: str) -> dict:
    """The CloudTrail record of an ExportTableToPointInTime call by `role_arn`."""
    role = role_arn.rsplit("/", 1)[1]
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.dynamodb", "account": account,
            "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION, "resources": [],
            "detail": {
                "eventVersion": "1.09",
                "userIdentity": {"type": "AssumedRole",
                                 "arn": f"arn:aws:sts::{account}:assumed-role/{role}/pipeline",
                                 "accountId": account,
                                 "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role_arn,
                                                                      "accountId": account}}},
                "eventTime": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": "dynamodb.amazonaws.com", "eventName": "ExportTableToPointInTime",
                "awsRegion": REGION,
                "requestParameters": {"tableArn": params["TableArn"], "s3Bucket": params["S3Bucket"],
                                      "s3Prefix": params["S3Prefix"], "s3SseAlgorithm": "KMS",
                                      "s3SseKmsKeyId": params["S3SseKmsKeyId"],
                                      "exportFormat": "DYNAMODB_JSON"},
                "responseElements": {"exportDescription": {"exportArn": export_arn,
                                                           "exportStatus": "IN_PROGRESS"}},
                "eventType": "AwsApiCall", "recipientAccountId": account}}


# -- setup --------------------------------------------------------------------------------------

def setup(m: str, n: int, n_kp: int, n_keys: int, suffix: str, log) -> dict:
    """Creates the failures (see the module's docstring); returns what the run needs."""
    account = seed.own_account(m)
    ledger = f"ledger-{suffix}"
    seed.ledger_table(m, ledger)
    queue = seed.capture_events(m, suffix)["queueUrl"]
    table_arn = seed.make_table(m, f"orders-{suffix}")
    s3 = seed.client(m, "s3")
    sse_bucket, kp_bucket = f"sse-{suffix}", f"kp-{suffix}"
    s3.create_bucket(Bucket=sse_bucket)
    s3.create_bucket(Bucket=kp_bucket)
    bucket_key = seed.require_kms(m, sse_bucket, None)["keyArn"]
    ddb = seed.client(m, "dynamodb")

    roots: dict[str, dict] = {}  # export ARN -> {"prefix", "kind", "key"?}
    for i in range(n - n_kp):
        prefix = f"sse/{i:05d}"
        d = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=sse_bucket, S3Prefix=prefix,
                                              ExportFormat="DYNAMODB_JSON", S3SseAlgorithm="AES256")
        roots[d["ExportDescription"]["ExportArn"]] = {"prefix": prefix, "kind": "sse"}
    log(f"setup: {n - n_kp} SSE-mismatch exports started")

    iam, kms, sts = seed.client(m, "iam"), seed.client(m, "kms"), seed.client(m, "sts")
    keys = []
    for k in range(n_keys if n_kp else 0):
        policy = {"Version": "2012-10-17", "Statement": [
            {"Sid": "KeyAdministrators", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{account}:role/KeyAdmin"}, "Action": "kms:*", "Resource": "*"},
            # The function's own principal in the emulator (the default credentials).
            {"Sid": "RemediatorUsesKey", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{account}:user/moto"},
             "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}]}
        keys.append(kms.create_key(Description=f"reliability {k}", Policy=json.dumps(policy),
                                   BypassPolicyLockoutSafetyCheck=True,
                                   Tags=[{"TagKey": "moto-enforce-key-policy", "TagValue": "true"}]
                                   )["KeyMetadata"]["Arn"])
    starts = []
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]}
    for i in range(n_kp):
        name = f"Pipeline-{suffix}-{i:03d}"
        role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="exports", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "dynamodb:ExportTableToPointInTime", "Resource": table_arn},
                {"Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"],
                 "Resource": f"arn:aws:s3:::{kp_bucket}/*"},
                {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}]}))
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="pipeline")["Credentials"]
        key = keys[i % len(keys)]
        params = dict(TableArn=table_arn, S3Bucket=kp_bucket, S3Prefix=f"kp/{i:05d}",
                      ExportFormat="DYNAMODB_JSON", S3SseAlgorithm="KMS", S3SseKmsKeyId=key)
        arn = seed.client(m, "dynamodb", creds).export_table_to_point_in_time(**params)["ExportDescription"]["ExportArn"]
        roots[arn] = {"prefix": params["S3Prefix"], "kind": "key-policy", "key": key}
        starts.append(started_event(account, role_arn, params, arn))
    log(f"setup: {n_kp} key-policy exports started on {len(keys)} keys")

    # Every export must have FAILED before the run.
    deadline = time.time() + 120
    while True:
        statuses = list_exports(m, table_arn)
        running = [a for a in roots if statuses.get(a) == "IN_PROGRESS" or a not in statuses]
        if not running or time.time() > deadline:
            break
        time.sleep(0.5)
    not_failed = [a for a in roots if statuses.get(a) != "FAILED"]
    if not_failed:
        raise SystemExit(f"setup: {len(not_failed)} exports did not fail, e.g. {not_failed[0]}")
    return {"account": account, "ledger": ledger, "queue": queue, "tableArn": table_arn,
            "buckets": [sse_bucket, kp_bucket], "keys": keys + [bucket_key], "patchKeys": keys,
            "roots": roots, "starts": starts}


def list_exports(m: str, table_arn: str) -> dict[str, str]:
    ddb = seed.client(m, "dynamodb")
    out: dict[str, str] = {}
    kwargs = {"TableArn": table_arn, "MaxResults": 25}
    while True:
        page = ddb.list_exports(**kwargs)
        for e in page.get("ExportSummaries", []):
            out[e["ExportArn"]] = e["ExportStatus"]
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]


# -- the run -----------------------------------------------------------------------------------

def function_env(endpoint: str, world: dict, lease_s: int) -> dict:
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": "ddb-export-remediator",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ddb-export-remediator",
        "AWS_LAMBDA_LOG_LEVEL": "WARN",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "S3_FORCE_PATH_STYLE": "true",
        "MEMBER_ROLE_NAME": seed.MEMBER_ROLE_NAME,
        "LEDGER_TABLE_NAME": world["ledger"],
        "MODE": "apply",
        "KEY_POLICY_PATCH": "on",
        "EXPORT_BUCKETS": ",".join(world["buckets"]),
        "KEY_ARNS": ",".join(world["keys"]),
        "CLAIM_LEASE_SECONDS": str(lease_s),
    }


def drain(m: str, queue: str) -> list[dict]:
    sqs = seed.client(m, "sqs")
    events = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return events
        for msg in msgs:
            events.append(json.loads(msg["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"])


def run(args, log) -> dict:
    t0 = time.monotonic()
    moto_proc, m = launch([os.path.join(TOOLS, "moto_server.py")], "MOTO_READY")
    suffix = f"rel{args.seed}"
    world = setup(m, args.failures, args.key_policy, args.keys, suffix, log)
    t_setup = time.monotonic() - t0
    log(f"setup done in {t_setup:.0f} s")
    log_dir = tempfile.mkdtemp(prefix="bench-reliability-")

    # The exporters' CloudTrail start events, once each, with no faults (they happened earlier).
    if world["starts"]:
        pool = Pool(args.binary, function_env(m, world, args.lease), 1, args.seed, timeout_s=args.timeout)
        for e in world["starts"]:
            pool.submit(e, "start")
        pool.wait_idle(600)
        pool.stop()
        if pool.stats["responses"] != len(world["starts"]):
            raise SystemExit(f"setup: start events answered {pool.stats}")

    proxy_proc, proxy = launch([os.path.join(TOOLS, "fault_proxy.py"), "--upstream", m,
                                "--fraction", str(args.fraction), "--seed", str(args.seed),
                                "--max-seconds", str(args.max_minutes * 60 + 600)], "PROXY_READY")
    published: list[int] = [0]
    answers: dict[str, int] = {}

    last_activity = [time.monotonic()]

    def on_answer(delivery, outcome, body) -> None:
        key = f"{delivery.label}:{outcome}"
        answers[key] = answers.get(key, 0) + 1
        if delivery.label != "sweep":
            last_activity[0] = time.monotonic()

    pool = Pool(args.binary, function_env(proxy, world, args.lease), args.processes, args.seed,
                timeout_s=args.timeout, retry_delays=(args.retry_delay, 2 * args.retry_delay),
                log_dir=log_dir if args.keep_logs else None, on_answer=on_answer)
    rng = random.Random(args.seed)
    events = [failed_event(world["account"], arn) for arn in world["roots"]]
    for slot in range(args.processes):
        order = events[:]
        rng.shuffle(order)
        for e in order:
            pool.submit(e, "failure", slot)
    deliveries = args.processes * len(events)
    pool.kill_on_attempts(sorted(rng.sample(range(1, deliveries + 1), min(args.kills, deliveries))),
                          args.seed)

    stop = threading.Event()
    sweeps = [0]

    def background() -> None:
        # The schedule starts once half the deliveries are handed out: on AWS the sweep runs every
        # 5 minutes and a failure's own event usually comes first; a sweep at once would publish
        # every failure a fourth time (the run's time, not its outcome).
        while not stop.is_set() and pool.pending_own() > deliveries // 2:
            stop.wait(1.0)
        next_sweep = time.monotonic()
        while not stop.is_set():
            for e in drain(m, world["queue"]):
                published[0] += 1
                last_activity[0] = time.monotonic()
                pool.submit(e, "published")
            if time.monotonic() >= next_sweep:
                sweeps[0] += 1
                pool.submit(sweep_event(world["account"]), "sweep")
                next_sweep = time.monotonic() + args.sweep_every
            stop.wait(1.0)

    bg = threading.Thread(target=background, daemon=True)
    bg.start()
    t_run = time.monotonic()
    next_progress = time.monotonic() + 60
    while pool.pending_own() > 0 and time.monotonic() - t0 < args.max_minutes * 60:
        time.sleep(1)
        if time.monotonic() >= next_progress:
            next_progress += 60
            log(f"{time.monotonic() - t_run:.0f} s: {deliveries - pool.pending_own()} of {deliveries} "
                f"deliveries handed out; {pool.stats['attempts']} attempts, "
                f"{pool.stats['errors'] + pool.stats['crashes'] + pool.stats['timeouts']} function errors, "
                f"{pool.stats['kills']} kills, {published[0]} published")
    t_delivered = time.monotonic() - t_run
    log(f"every delivery handed out in {t_delivered:.0f} s; the sweep runs until quiet")
    # Quiet: besides the sweep's own events, nothing queued, running, answered or published for
    # longer than a lease and two sweeps (a claim left by a killed process is taken over by then).
    quiet_for = args.lease + 2 * args.sweep_every + 5
    quiet = False
    while time.monotonic() - t0 < args.max_minutes * 60:
        if pool.pending(ignore="sweep") > 0:
            last_activity[0] = time.monotonic()
        if time.monotonic() - last_activity[0] > quiet_for:
            quiet = True
            break
        time.sleep(1)
    stop.set()
    bg.join()
    pool.wait_idle(args.timeout + 5)
    pool.stop()
    t_total_run = time.monotonic() - t_run
    counts = json.load(urllib.request.urlopen(proxy.rstrip("/") + "/__counts", timeout=10))
    proxy_proc.kill()
    proxy_proc.wait()

    result = verify(m, world)
    moto_proc.kill()
    moto_proc.wait()
    given_up = {}
    for d in pool.given_up:
        given_up[d.label] = given_up.get(d.label, 0) + 1
    result.update({
        "seed": args.seed, "failures": args.failures, "keyPolicyFailures": args.key_policy,
        "keys": args.keys, "processes": args.processes, "kills": pool.stats["kills"],
        "killsMidInvocation": pool.stats["kills_mid_invocation"], "faultFraction": args.fraction,
        "deliveries": deliveries, "attempts": pool.stats["attempts"],
        "functionErrors": pool.stats["errors"] + pool.stats["crashes"] + pool.stats["timeouts"],
        "errorTypes": pool.stats["error_types"], "givenUp": sum(given_up.values()),
        "givenUpByEvent": given_up, "sweeps": sweeps[0], "published": published[0],
        "answers": answers, "coldStarts": pool.stats["cold_starts"],
        "proxiedRequests": counts["requests"], "faults": counts["faults"],
        "faultsInjected": sum(sum(v.values()) for v in counts["faults"].values()),
        "leaseSeconds": args.lease, "timeoutSeconds": args.timeout, "sweepEverySeconds": args.sweep_every,
        "retryDelaySeconds": [args.retry_delay, 2 * args.retry_delay],
        "seconds": {"setup": round(t_setup), "deliveries": round(t_delivered),
                    "run": round(t_total_run), "total": round(time.monotonic() - t0)},
        "quiet": quiet,
        "logs": log_dir if args.keep_logs else None,
    })
    return result


# -- verification (straight to the emulator) ----------------------------------------------------

def verify(m: str, world: dict) -> dict:
    ddb = seed.client(m, "dynamodb")
    roots = world["roots"]
    by_prefix = {r["prefix"]: arn for arn, r in roots.items()}
    retries: dict[str, list[tuple[str, str]]] = {arn: [] for arn in roots}
    stray = 0
    for arn, status in list_exports(m, world["tableArn"]).items():
        if arn in roots:
            continue
        d = ddb.describe_export(ExportArn=arn)["ExportDescription"]
        root = by_prefix.get(d.get("S3Prefix", ""))
        if root is None:
            stray += 1
        else:
            retries[root].append((arn, d["ExportStatus"]))
    lost = [a for a, rs in retries.items() if not rs]
    dupes = {a: len(rs) for a, rs in retries.items() if len(rs) > 1}
    completed = sum(1 for rs in retries.values() for _, s in rs if s == "COMPLETED")

    # Key-policy statements the function added, against the ledger's audit records.
    audited: set[tuple[str, str]] = set()
    status_counts: dict[str, int] = {}
    changes: dict[str, int] = {}
    recorded: dict[str, str] = {}  # export ARN -> the ledger's status of it
    for item in scan(m, world["ledger"]):
        pk = item.get("pk", {}).get("S", "")
        st = item.get("status", {}).get("S", "-")
        if "exportArn" in item and not pk.startswith("CHANGE#"):
            recorded.setdefault(item["exportArn"]["S"], st)
        if pk.startswith("CHANGE#"):
            audited.add((item["keyArn"]["S"], item["sid"]["S"]))
            changes[st] = changes.get(st, 0) + 1
        else:
            kind = pk.split("#", 1)[0] if "#" in pk else "other"
            status_counts[f"{kind}:{st}"] = status_counts.get(f"{kind}:{st}", 0) + 1
    kms = seed.client(m, "kms")
    statements = unaudited = 0
    for key in world["patchKeys"]:
        policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
        for st in policy.get("Statement", []):
            sid = st.get("Sid", "")
            if sid.startswith(PATCH_SID_PREFIX):
                statements += 1
                unaudited += (key, sid) not in audited
    kinds: dict[str, int] = {}
    for a in lost:
        kind = f"{roots[a]['kind']} (ledger: {recorded.get(a, 'no record')})"
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"retriesStarted": sum(len(rs) for rs in retries.values()),
            "rootsRetried": sum(1 for rs in retries.values() if rs),
            "retriesCompleted": completed, "incidentsLost": len(lost), "lostByKind": kinds,
            "lostExamples": lost[:5], "duplicateExports": sum(n - 1 for n in dupes.values()),
            "rootsWithDuplicates": len(dupes), "strayExports": stray,
            "keyStatementsAdded": statements, "keyChangesRecorded": changes,
            "unauditedKeyChanges": unaudited, "ledgerItems": status_counts}


def scan(m: str, table: str) -> list[dict]:
    ddb = seed.client(m, "dynamodb")
    items, kwargs = [], {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# -- report -------------------------------------------------------------------------------------

def markdown(r: dict, command: str) -> str:
    faults = r["faults"]
    ops = sorted({op for v in faults.values() for op in v},
                 key=lambda op: -sum(faults[k].get(op, 0) for k in faults))
    rows = "\n".join(
        f"| {op} | {faults['503'].get(op, 0)} | {faults['reset'].get(op, 0)} | {faults['lost'].get(op, 0)} |"
        for op in ops)
    total = {k: sum(v.values()) for k, v in faults.items()}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    return f"""# Reliability under faults, duplicates and crashes (`make bench-reliability`)

{r['failures']:,} FAILED exports, each fixable by one retry with KMS flags, each under its own S3
prefix; {r['keyPolicyFailures']} of them also need a key-policy statement (KEY_POLICY_PATCH=on, on
{r['keys']} keys). {r['processes']} warm processes of the function (the debug build, on the emulator)
each receive every failure event once, in their own order, concurrently: {r['deliveries']:,}
deliveries. {r['faultFraction']:.0%} of the function's requests fail, a third each: 503 before
the request is applied, a connection reset before it is applied, or applied with its answer
replaced by a 500. {r['kills']} processes are killed (SIGKILL) at random moments
({r['killsMidInvocation']} mid-invocation) and replaced; their events are delivered again, as
Lambda does. The sweep's schedule event arrives every {r['sweepEverySeconds']} s; claims are
leases of {r['leaseSeconds']} s. How to run and what the numbers mean: docs/reliability-bench.md.

| | result | target |
|---|---:|---:|
| failures retried (retry export started) | {r['rootsRetried']:,} of {r['failures']:,} | all |
| incidents lost (no retry export) | **{r['incidentsLost']}** | 0 |
| duplicate exports (more than one retry per failure) | **{r['duplicateExports']}** | 0 |
| key-policy statements without an audit record | **{r['unauditedKeyChanges']}** of {r['keyStatementsAdded']} added | 0 |
| deliveries given up (function errors after Lambda's 2 retries) | {r['givenUp']} | - |
| retry exports COMPLETED | {r['retriesCompleted']:,} | |
| invocations (attempts) / function errors | {r['attempts']:,} / {r['functionErrors']:,} | |
| events the function published and the harness delivered | {r['published']:,} | |
| sweep events delivered | {r['sweeps']} | |
| faults injected / requests proxied | {r['faultsInjected']:,} / {r['proxiedRequests']:,} | |
| time: setup / deliveries / until quiet / total | {r['seconds']['setup']} s / {r['seconds']['deliveries']} s / {r['seconds']['run']} s / {r['seconds']['total']} s | |

The run {'ended quiet' if r['quiet'] else 'was stopped at its time limit before it was quiet'}.
Lost by kind: {json.dumps(r['lostByKind'])}. Function errors by type: {json.dumps(r['errorTypes'])}.
Deliveries given up, by event: {json.dumps(r['givenUpByEvent'])}. Key-policy changes in the
ledger, by status: {json.dumps(r['keyChangesRecorded'])}.

Faults injected, by kind and operation ({total['503']} × 503, {total['reset']} × reset,
{total['lost']} × lost answer):

| operation | 503 | reset | lost answer |
|---|---:|---:|---:|
{rows}

Command: `{command}` (seed {r['seed']}; the faults' sequence is seeded, which request meets
which fault depends on the processes' timing). Machine: {machine}. Measured
{dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--failures", type=int, default=1000)
    p.add_argument("--key-policy", type=int, default=60)
    p.add_argument("--keys", type=int, default=5)
    p.add_argument("--processes", type=int, default=3)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--fraction", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=24)
    p.add_argument("--lease", type=int, default=45, help="CLAIM_LEASE_SECONDS")
    p.add_argument("--timeout", type=float, default=40.0, help="the function's timeout (deadline)")
    p.add_argument("--retry-delay", type=float, default=3.0,
                   help="Lambda's first async retry delay (60 s on AWS); the second is twice it")
    p.add_argument("--sweep-every", type=float, default=15.0)
    p.add_argument("--max-minutes", type=float, default=75.0)
    p.add_argument("--binary", default=None)
    p.add_argument("--write", default=None, help="write the markdown report to this file")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args()
    if args.key_policy > args.failures:
        p.error("--key-policy is at most --failures")
    if args.binary is None:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        subprocess.run(["cargo", "build", "--bin", "ddb-export-remediator"], cwd=REPO, check=True)
        args.binary = os.path.join(target, "debug", "ddb-export-remediator")

    def log(msg: str) -> None:
        print(f"[bench-reliability] {msg}", file=sys.stderr, flush=True)

    log(f"seed {args.seed}: {args.failures} failures ({args.key_policy} key-policy), "
        f"{args.processes} processes, {args.kills} kills, {args.fraction:.0%} faults")
    result = run(args, log)
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        print(json.dumps(result, indent=2), flush=True)
    if args.write:
        command = "make bench-reliability" if args.failures == 1000 else " ".join(["tools/bench_reliability.py", *sys.argv[1:]])
        with open(args.write, "w", encoding="utf-8") as f:
            f.write(markdown(result, command))
        log(f"wrote {args.write}")


if __name__ == "__main__":
    main()
