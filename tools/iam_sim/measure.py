#!/usr/bin/env python3
"""How long the enforcing mode takes to judge one export (docs/emulator-enforcing.md).

Starts the launcher with --enforce-exports and --enforce-log on a free loopback port, builds one
account with an exporter role, a KMS key and four buckets (allowed; denied by a bucket policy;
denied by the key policy; SSE-KMS with the key), runs N exports round-robin over them as the
role's session, and prints the launcher's own per-export evaluation time (evaluationMs in the
log: building the requests, reading moto, one round trip to iam-simulate, the message) and the
wall time of each export from the call to its end state. Prints; asserts nothing.

Usage: .venv/bin/python tools/iam_sim/measure.py [N]   (default 200)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    log = Path(tempfile.mkdtemp()) / "enforce.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tools/moto_server.py"), "--enforce-exports", "--enforce-log", str(log),
         "--parent-pid", str(os.getpid())],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        endpoint = proc.stdout.readline().split()[1]
        run(endpoint, log, n)
    finally:
        proc.kill()
        proc.wait()


def run(endpoint: str, log: Path, n: int) -> None:
    def client(service: str, creds: dict | None = None):
        kwargs = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
        if creds:
            kwargs.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                          aws_session_token=creds["SessionToken"])
        return boto3.client(service, **kwargs)

    account = client("sts").get_caller_identity()["Account"]
    iam = client("iam")
    iam.create_role(RoleName="exporter", AssumeRolePolicyDocument="{}")
    iam.put_role_policy(RoleName="exporter", PolicyName="export", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
            "dynamodb:ExportTableToPointInTime", "s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload",
            "kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}]}))
    creds = client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/exporter",
                                      RoleSessionName="measure")["Credentials"]
    ddb = client("dynamodb")
    table = ddb.create_table(TableName="orders", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                             BillingMode="PAY_PER_REQUEST")["TableDescription"]["TableArn"]
    ddb.update_continuous_backups(TableName="orders",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    kms = client("kms")
    root = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}]}
    key_ok = kms.create_key(Policy=json.dumps(root))["KeyMetadata"]["Arn"]
    key_out = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:role/admin"}, "Action": "kms:*",
        "Resource": "*"}]}))["KeyMetadata"]["Arn"]
    s3 = client("s3")
    for name in ("allowed", "requires-kms"):
        s3.create_bucket(Bucket=f"measure-{name}")
    s3.put_bucket_policy(Bucket="measure-requires-kms", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::measure-requires-kms/*",
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}]}))
    shapes = [
        ("allowed", "measure-allowed", {}),
        ("bucket policy denies", "measure-requires-kms", {}),
        ("key policy denies", "measure-allowed", {"S3SseAlgorithm": "KMS", "S3SseKmsKeyId": key_out}),
        ("SSE-KMS allowed", "measure-requires-kms", {"S3SseAlgorithm": "KMS", "S3SseKmsKeyId": key_ok}),
    ]
    exporter = client("dynamodb", creds)
    walls: dict[str, list[float]] = {s[0]: [] for s in shapes}
    for i in range(n):
        label, bucket, extra = shapes[i % len(shapes)]
        started = time.perf_counter()
        arn = exporter.export_table_to_point_in_time(TableArn=table, S3Bucket=bucket, S3Prefix="m",
                                                     **extra)["ExportDescription"]["ExportArn"]
        while ddb.describe_export(ExportArn=arn)["ExportDescription"]["ExportStatus"] == "IN_PROGRESS":
            time.sleep(0.005)
        walls[label].append((time.perf_counter() - started) * 1000)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    evals = [x["evaluationMs"] for x in lines]
    refused = sum(1 for x in lines if x["refused"])
    print(f"{len(lines)} enforced exports, {refused} refused; node and iam-simulate were started "
          f"with the launcher")
    print(f"evaluation (ms): first {evals[0]:.1f}, p50 {statistics.median(evals):.1f}, "
          f"p95 {sorted(evals)[int(len(evals) * 0.95) - 1]:.1f}, max {max(evals):.1f}")
    for label, values in walls.items():
        print(f"  export wall time, {label}: p50 {statistics.median(values):.1f} ms over {len(values)}")


if __name__ == "__main__":
    main()
