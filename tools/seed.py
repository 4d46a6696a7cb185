#!/usr/bin/env python3
"""Create one export scenario in the local emulator and print what was made as JSON.

Usage: seed.py --endpoint URL SCENARIO [--suffix S] [--wait]

Scenarios (each creates its own table and bucket, named with the suffix):
  same-account-ok         AES256 export to a bucket in the table's account: COMPLETED
  cross-account-no-owner  bucket in another account of the organization, exported without
                          --s3-bucket-owner: FAILED S3AccessDenied "Access Denied"
  sse-kms-required        bucket policy denies PutObject without aws:kms, default encryption
                          with a customer managed key, exported with AES256: FAILED
  bucket-missing          export to a bucket that does not exist: FAILED S3NoSuchBucket
  cross-account-no-grant  bucket in another account with no bucket policy, exported with the
                          right --s3-bucket-owner: FAILED S3AccessDenied "Access Denied"
  caller-lacks-s3         the exporter role may export but not write to S3 (its policy says so);
                          the failure message names the role: FAILED S3AccessDenied
  kms-key-policy-denies   SSE-KMS export started by a pipeline role, with a customer managed key
                          whose policy neither delegates to the account nor names that role
                          (it names the function's own principal): FAILED, the emulator
                          enforcing the key policy
  pitr-disabled           table without point-in-time recovery: the start call fails
  scp-denies-kms          organization scenario: a member account in an OU whose SCP denies
                          kms:GenerateDataKey exports its table with SSE-KMS (a key that
                          delegates to the account): FAILED S3AccessDenied "Access Denied"; the
                          function runs as that account (credentials in the output) and reads
                          the SCPs through orgRoleArn in the management account
  backdated-history       one table with 12 FAILED and 6 COMPLETED exports from 40 days ago and
                          2 FAILED ones from now (a new deployment's first sweep)
  incremental-ion         an incremental ION export under a deep prefix to another account's bucket,
                          without --s3-bucket-owner: FAILED, its description (as AWS's can) without
                          S3Prefix, ExportType and ExportFormat; PITR dated 2 hours back
  cross-account-aws-s3-default  another account's bucket whose default encryption is SSE-KMS with
                          the AWS managed key, exported with the right owner and no SSE flags: FAILED
  bulk                    --tables T --exports N --failed F: N exports spread over T tables,
                          F of them FAILED (bucket tagged with an injected S3AccessDenied)
  capture-events          an SQS queue and a rule that copies every "DynamoDB Export Failed"
                          event of the default bus into it (for counting what was published)
  count-events            --queue URL: drain the queue and print how many events, by exportArn
  capture-outcomes        an SQS queue and a rule that copies every report with a top-level
                          "outcome" (RESOLVED, GAVE_UP, NEEDS_PERSON) of the default bus into it
  read-events             --queue URL: drain the queue and print each event's detail
  ledger                  --table NAME: the ledger table (pk/sk, TTL expiresAt, PITR on)
  org-spokes              organization mode: two new accounts in a new OU and one outside it;
                          org/spoke-roles.yaml (KeyPolicyPatch=on, two ExportBuckets) and
                          org/spoke-rules.yaml (us-east-1 and us-west-2) deployed to the OU by
                          moto's SERVICE_MANAGED StackSets; a hub bus in this account whose rule
                          copies what arrives into an SQS queue (read it with count-events)
  org-incident            org-spokes, then in member A, us-west-2: an export to member B's
                          bucket without --s3-bucket-owner (FAILED) and a table without PITR;
                          its DynamoDB Export Failed event and a recorded CloudTrail error event
                          are put on A's default bus there; returns what reached the hub bus
  org-scale               --accounts N: N new member accounts, each with a table in us-east-1
                          and us-west-2, and a bucket in the first (us-west-2) whose exports
                          fail (the organization sweep's benchmark)
  fail-bucket             --bucket NAME [--account ID]: from now on every export to the bucket
                          fails with a bare S3AccessDenied (tags set in the owner's account)
  delay-bucket            --bucket NAME [--account ID] [--seconds S]: exports to the bucket stay
                          IN_PROGRESS S seconds, then meet whatever the bucket enforces by then
  require-kms             --bucket NAME [--account ID]: from now on the bucket's policy denies
                          PutObject without aws:kms, its default encryption is a new key in the
                          owner's account, and the emulator enforces it

The function's own account is the emulator's default account. Other accounts are created in
an organization it manages; the member role the function assumes there is MEMBER_ROLE_NAME.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import urllib.request

import boto3
from botocore.config import Config

REGION = "us-east-1"
MEMBER_ROLE_NAME = "DdbExportRemediatorMember"


def client(endpoint: str, service: str, creds: dict | None = None, attempts: int = 2,
           region: str = REGION):
    kwargs = dict(
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"},
                      retries={"max_attempts": attempts, "mode": "standard"}),
    )
    if creds:
        kwargs.update(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
    return boto3.client(service, **kwargs)


def own_account(endpoint: str) -> str:
    return client(endpoint, "sts").get_caller_identity()["Account"]


def member_account(endpoint: str, suffix: str) -> tuple[str, dict]:
    """A new account in the organization, with the member role, and credentials inside it."""
    org = client(endpoint, "organizations")
    try:
        org.create_organization(FeatureSet="ALL")
    except org.exceptions.AlreadyInOrganizationException:
        pass
    status = org.create_account(Email=f"data-{suffix}@example.com", AccountName=f"data-{suffix}")
    account_id = status["CreateAccountStatus"]["AccountId"]
    creds = client(endpoint, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="seed",
    )["Credentials"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{own_account(endpoint)}:root"},
            "Action": "sts:AssumeRole",
        }],
    }
    client(endpoint, "iam", creds).create_role(
        RoleName=MEMBER_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust)
    )
    return account_id, creds


def make_table(endpoint: str, name: str, pitr: bool = True, creds: dict | None = None,
               region: str = REGION) -> str:
    ddb = client(endpoint, "dynamodb", creds, region=region)
    table = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]
    for i in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"item-{i}"}, "n": {"N": str(i)}})
    if pitr:
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return table["TableArn"]


def raw_call(endpoint: str, target: str, body: dict) -> dict:
    """A DynamoDB call with the emulator's seeding extensions (botocore would refuse them)."""
    req = urllib.request.Request(endpoint.rstrip("/") + "/", data=json.dumps(body).encode(), headers={
        "X-Amz-Target": f"DynamoDB_20120810.{target}",
        "Content-Type": "application/x-amz-json-1.0",
        # The emulator reads the account (testing -> its default) and region from this.
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/dynamodb/"
                         "aws4_request, SignedHeaders=host, Signature=0"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.load(resp)


def granting_bucket(endpoint: str, suffix: str, bucket: str, table_account: str) -> tuple[str, dict]:
    """A bucket in a new member account whose policy lets the table's account write exports."""
    account_id, creds = member_account(endpoint, suffix)
    s3_owner = client(endpoint, "s3", creds)
    s3_owner.create_bucket(Bucket=bucket)
    s3_owner.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "AllowExportsFromTableAccount", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{table_account}:root"},
        "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"],
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }]}))
    return account_id, creds


def backdated_history(endpoint: str, suffix: str) -> dict:
    s3 = client(endpoint, "s3")
    ok_bucket, bad_bucket = f"hist-ok-{suffix}", f"hist-bad-{suffix}"
    s3.create_bucket(Bucket=ok_bucket)
    s3.create_bucket(Bucket=bad_bucket)
    s3.put_bucket_tagging(Bucket=bad_bucket, Tagging={"TagSet": [
        {"Key": "moto-export-failure-code", "Value": "S3AccessDenied"},
        {"Key": "moto-export-failure-message", "Value": "Access Denied"},
    ]})
    table_arn = make_table(endpoint, f"history-{suffix}")
    old = raw_call(endpoint, "ExportTableToPointInTime", {
        "TableArn": table_arn, "S3Prefix": "nightly", "MotoBackdateHours": 40 * 24,
        "MotoBulkBuckets": [bad_bucket] * 12 + [ok_bucket] * 6})["MotoBulkExports"]
    recent = raw_call(endpoint, "ExportTableToPointInTime", {
        "TableArn": table_arn, "S3Prefix": "nightly",
        "MotoBulkBuckets": [bad_bucket] * 2})["MotoBulkExports"]
    return {"scenario": "backdated-history", "tableArn": table_arn,
            "oldFailed": [a for a, s in old if s == "FAILED"],
            "recentFailed": [a for a, s in recent if s == "FAILED"]}


def incremental_ion(endpoint: str, suffix: str, out: dict) -> dict:
    bucket = f"lake-{suffix}"
    table_arn = make_table(endpoint, f"orders-{suffix}")
    raw_call(endpoint, "UpdateContinuousBackups", {
        "TableName": table_arn.rsplit("/", 1)[1], "MotoEnabledHoursAgo": 2,
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})
    account_id, _ = granting_bucket(endpoint, suffix, bucket, out["tableAccount"])
    add_tags(endpoint, bucket, account_id, {
        "moto-export-omit-fields": "S3Prefix,ExportType,ExportFormat"})
    now = time.time()
    params = dict(
        TableArn=table_arn, S3Bucket=bucket, S3Prefix=f"lake/raw/orders-{suffix}/incremental/2026/12/02",
        S3SseAlgorithm="AES256", ExportFormat="ION", ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification={"ExportFromTime": int(now - 5400), "ExportToTime": int(now - 1800),
                                        "ExportViewType": "NEW_IMAGE"},
    )
    desc = wait_terminal(endpoint, start_export(endpoint, **params)["ExportArn"])
    out.update(tableArn=table_arn, bucket=bucket, bucketAccount=account_id, request=params,
               exportArn=desc["ExportArn"], exportStatus=desc["ExportStatus"],
               failureCode=desc.get("FailureCode"), describedPrefix=desc.get("S3Prefix"))
    return out


def start_export(endpoint: str, creds: dict | None = None, region: str = REGION, **params) -> dict:
    ddb = client(endpoint, "dynamodb", creds, region=region)
    return ddb.export_table_to_point_in_time(**params)["ExportDescription"]


def wait_terminal(endpoint: str, export_arn: str, timeout: float = 30.0,
                  creds: dict | None = None, region: str = REGION) -> dict:
    ddb = client(endpoint, "dynamodb", creds, region=region)
    deadline = time.time() + timeout
    while True:
        desc = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
        if desc["ExportStatus"] != "IN_PROGRESS" or time.time() > deadline:
            return desc
        time.sleep(0.1)


def scenario(endpoint: str, name: str, suffix: str) -> dict:
    table_name = f"orders-{suffix}"
    bucket = f"exports-{suffix}"
    out: dict = {"scenario": name, "region": REGION, "tableAccount": own_account(endpoint)}
    s3 = client(endpoint, "s3")

    if name == "pitr-disabled":
        table_arn = make_table(endpoint, table_name, pitr=False)
        s3.create_bucket(Bucket=bucket)
        out.update(tableArn=table_arn, bucket=bucket)
        try:
            start_export(endpoint, TableArn=table_arn, S3Bucket=bucket, S3Prefix="exports")
        except Exception as exc:  # the start call itself is refused
            out["startError"] = getattr(exc, "response", {}).get("Error", {}).get("Code", str(exc))
        return out

    if name == "scp-denies-kms":
        return scp_denies_kms(endpoint, suffix, out)
    if name == "backdated-history":
        return backdated_history(endpoint, suffix)
    if name == "incremental-ion":
        return incremental_ion(endpoint, suffix, out)

    table_arn = make_table(endpoint, table_name)
    out["tableArn"] = table_arn
    params = dict(TableArn=table_arn, S3Bucket=bucket, S3Prefix="exports", ExportFormat="DYNAMODB_JSON")

    if name == "same-account-ok":
        s3.create_bucket(Bucket=bucket)
        params["S3SseAlgorithm"] = "AES256"
    elif name == "cross-account-no-owner":
        # A cross-account export needs the bucket owner's grant to the table's account.
        account_id, _ = granting_bucket(endpoint, suffix, bucket, out["tableAccount"])
        out["bucketAccount"] = account_id
        params["S3SseAlgorithm"] = "AES256"
    elif name == "sse-kms-required":
        kms = client(endpoint, "kms")
        key = kms.create_key(Description=f"exports {suffix}")["KeyMetadata"]
        kms.create_alias(AliasName=f"alias/exports-{suffix}", TargetKeyId=key["KeyId"])
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"],
                },
                "BucketKeyEnabled": True,
            }]},
        )
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyNonKmsUploads",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                    "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        s3.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": "moto-export-require-sse", "Value": "KMS"}]}
        )
        out["keyArn"] = key["Arn"]
        params["S3SseAlgorithm"] = "AES256"
    elif name == "cross-account-aws-s3-default":
        account_id, creds = granting_bucket(endpoint, suffix, bucket, out["tableAccount"])
        # SSE-KMS by default, no key id: S3 uses the bucket account's aws/s3.
        client(endpoint, "s3", creds).put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
        out["bucketAccount"] = account_id
        params["S3BucketOwner"] = account_id
    elif name == "bucket-missing":
        pass
    elif name == "cross-account-no-grant":
        account_id, creds = member_account(endpoint, suffix)
        client(endpoint, "s3", creds).create_bucket(Bucket=bucket)
        out["bucketAccount"] = account_id
        params.update(S3SseAlgorithm="AES256", S3BucketOwner=account_id)
    elif name == "caller-lacks-s3":
        iam = client(endpoint, "iam")
        role = f"Exporter-{suffix}"
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                 "Principal": {"Service": "dynamodb.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=role, PolicyName="export-only", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Sid": "Export", "Effect": "Allow",
            "Action": "dynamodb:ExportTableToPointInTime", "Resource": table_arn}]}))
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
            {"Key": "moto-export-failure-code", "Value": "S3AccessDenied"},
            {"Key": "moto-export-failure-message", "Value": (
                f"User: {role_arn} is not authorized to perform: s3:PutObject on resource: "
                f"\"arn:aws:s3:::{bucket}/exports/AWSDynamoDB/x/_started\" because no identity-based "
                "policy allows the s3:PutObject action")},
        ]})
        out["roleArn"] = role_arn
        params["S3SseAlgorithm"] = "AES256"
    elif name == "kms-key-policy-denies":
        account = out["tableAccount"]
        iam = client(endpoint, "iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                 "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]}
        exporter = iam.create_role(RoleName=f"DataPipeline-{suffix}",
                                   AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        # Its own policies allow everything an export needs: only the key policy is missing.
        iam.put_role_policy(RoleName=f"DataPipeline-{suffix}", PolicyName="exports",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                {"Effect": "Allow", "Action": "dynamodb:ExportTableToPointInTime",
                                 "Resource": table_arn},
                                {"Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload",
                                 "s3:PutObjectAcl"], "Resource": f"arn:aws:s3:::{bucket}/*"},
                                {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                                 "Resource": "*"}]}))
        key_policy = {"Version": "2012-10-17", "Statement": [
            {"Sid": "KeyAdministrators", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{account}:role/KeyAdmin"},
             "Action": "kms:*", "Resource": "*"},
            # The function's own principal in the emulator (the default credentials).
            {"Sid": "RemediatorUsesKey", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{account}:user/moto"},
             "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"},
        ]}
        kms = client(endpoint, "kms")
        key = kms.create_key(Description=f"exports {suffix}", Policy=json.dumps(key_policy),
                             BypassPolicyLockoutSafetyCheck=True,
                             Tags=[{"TagKey": "moto-enforce-key-policy", "TagValue": "true"}])["KeyMetadata"]
        s3.create_bucket(Bucket=bucket)
        out.update(keyArn=key["Arn"], exporterRoleArn=exporter)
        params.update(S3SseAlgorithm="KMS", S3SseKmsKeyId=key["Arn"])
        # The pipeline role starts the export; the emulator checks the key policy for it.
        creds = client(endpoint, "sts").assume_role(RoleArn=exporter, RoleSessionName="pipeline")["Credentials"]
        out["bucket"] = bucket
        desc = client(endpoint, "dynamodb", creds).export_table_to_point_in_time(**params)["ExportDescription"]
        desc = wait_terminal(endpoint, desc["ExportArn"])
        out.update(exportArn=desc["ExportArn"], exportStatus=desc["ExportStatus"],
                   failureCode=desc.get("FailureCode"), failureMessage=desc.get("FailureMessage"))
        return out
    else:
        raise SystemExit(f"unknown scenario: {name}")

    out["bucket"] = bucket
    desc = start_export(endpoint, **params)
    desc = wait_terminal(endpoint, desc["ExportArn"])
    out.update(
        exportArn=desc["ExportArn"],
        exportStatus=desc["ExportStatus"],
        failureCode=desc.get("FailureCode"),
        failureMessage=desc.get("FailureMessage"),
    )
    return out


def bulk(endpoint: str, suffix: str, tables: int, exports: int, failed: int) -> dict:
    """Many exports, quickly: all to two buckets, the failing one tagged to fail."""
    s3 = client(endpoint, "s3")
    ok_bucket, bad_bucket = f"bulk-ok-{suffix}", f"bulk-bad-{suffix}"
    s3.create_bucket(Bucket=ok_bucket)
    s3.create_bucket(Bucket=bad_bucket)
    s3.put_bucket_tagging(Bucket=bad_bucket, Tagging={"TagSet": [
        {"Key": "moto-export-failure-code", "Value": "S3AccessDenied"},
        {"Key": "moto-export-failure-message", "Value": "Access Denied"},
    ]})
    arns = [make_table(endpoint, f"bulk-{suffix}-{t:03d}") for t in range(tables)]
    failed_every = max(1, exports // failed) if failed else 0
    out = {"tables": arns, "failed": [], "exports": 0}
    bad = [bool(failed_every) and i % failed_every == 0 and i // failed_every < failed
           for i in range(exports)]
    # One request per table through the emulator's bulk extension (moto_server.py): 10,000
    # exports one by one took 2-4 minutes of the benchmark.
    by_table: dict[int, list[int]] = {}
    for i in range(exports):
        by_table.setdefault(i % tables, []).append(i)
    for t, indices in by_table.items():
        made = raw_call(endpoint, "ExportTableToPointInTime", {
            "TableArn": arns[t], "S3Prefix": "bulk", "MotoBulkBuckets": [
                bad_bucket if bad[i] else ok_bucket for i in indices]})["MotoBulkExports"]
        for i, (arn, status) in zip(indices, made):
            out["exports"] += 1
            if bad[i]:
                if status != "FAILED":
                    raise SystemExit(f"bulk: {arn} is {status}, expected FAILED")
                out["failed"].append(arn)
    return out


def capture_events(endpoint: str, suffix: str) -> dict:
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName=f"captured-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = client(endpoint, "events")
    rule = f"capture-{suffix}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"detail-type": ["DynamoDB Export Failed"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return {"queueUrl": url}


def count_events(endpoint: str, url: str) -> dict:
    sqs = client(endpoint, "sqs")
    by_export: dict[str, int] = {}
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            arn = json.loads(m["Body"]).get("detail", {}).get("exportArn", "?")
            by_export[arn] = by_export.get(arn, 0) + 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return {"events": sum(by_export.values()), "byExport": by_export}


def capture_outcomes(endpoint: str, suffix: str) -> dict:
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName=f"outcomes-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = client(endpoint, "events")
    rule = f"outcomes-{suffix}"
    # The report topic's rule matches the same top-level field (template.yaml, NotificationRule).
    pattern = {"source": ["ddb-export-remediator"], "detail-type": ["DynamoDB Export Remediation"],
               "detail": {"outcome": ["RESOLVED", "GAVE_UP", "NEEDS_PERSON"]}}
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return {"queueUrl": url}


def read_events(endpoint: str, url: str) -> dict:
    sqs = client(endpoint, "sqs")
    details = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            details.append(json.loads(m["Body"]).get("detail", {}))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return {"details": details}


def ledger_table(endpoint: str, name: str) -> dict:
    ddb = client(endpoint, "dynamodb")
    desc = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"})
    return {"ledgerTable": name, "tableArn": desc["TableArn"]}


def scp_denies_kms(endpoint: str, suffix: str, out: dict) -> dict:
    """A member account under an OU whose SCP denies kms:GenerateDataKey, and its failed export."""
    management = out["tableAccount"]
    account, creds = member_account(endpoint, suffix)
    org = client(endpoint, "organizations")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name=f"data-{suffix}")["OrganizationalUnit"]["Id"]
    org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    scp = {"Version": "2012-10-17", "Statement": [{
        "Sid": "NoDataKeys", "Effect": "Deny", "Action": "kms:GenerateDataKey", "Resource": "*"}]}
    policy = org.create_policy(Name=f"no-data-keys-{suffix}", Description="guardrail",
                               Type="SERVICE_CONTROL_POLICY", Content=json.dumps(scp))["Policy"]
    policy_id = policy["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=policy_id, TargetId=ou)
    # The role the function reads SCPs as (ORG_ROLE_ARN), in the management account.
    reader = client(endpoint, "iam").create_role(
        RoleName=f"OrgReader-{suffix}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    # Inside the member account: its table, bucket and key (the key delegates to the account).
    table_arn = make_table(endpoint, f"orders-{suffix}", creds=creds)
    bucket = f"exports-{suffix}"
    client(endpoint, "s3", creds).create_bucket(Bucket=bucket)
    kms = client(endpoint, "kms", creds)
    key_arn = kms.create_key(Description="exports", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "EnableIam", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*", "Resource": "*"}]}))["KeyMetadata"]["Arn"]
    s3 = client(endpoint, "s3", creds)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
        {"Key": "moto-export-failure-code", "Value": "S3AccessDenied"},
        {"Key": "moto-export-failure-message", "Value": "Access Denied"}]})
    export = start_export(endpoint, creds, TableArn=table_arn, S3Bucket=bucket, S3Prefix="exports",
                          S3SseAlgorithm="KMS", S3SseKmsKeyId=key_arn)
    desc = wait_terminal(endpoint, export["ExportArn"], creds=creds)
    out.update(managementAccount=management, tableAccount=account, tableArn=table_arn,
               bucket=bucket, keyArn=key_arn, exportArn=export["ExportArn"],
               exportStatus=desc["ExportStatus"], scpId=policy_id, ou=ou, orgRoleArn=reader,
               credentials={"accessKeyId": creds["AccessKeyId"],
                            "secretAccessKey": creds["SecretAccessKey"],
                            "sessionToken": creds["SessionToken"]})
    return out


def org_spokes(endpoint: str, suffix: str) -> dict:
    """Both spoke templates deployed by StackSets to a new OU, and a hub bus that records."""
    import pathlib
    repo = pathlib.Path(__file__).resolve().parent.parent
    hub = own_account(endpoint)
    org = client(endpoint, "organizations")
    try:
        org.create_organization(FeatureSet="ALL")
    except org.exceptions.AlreadyInOrganizationException:
        pass
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name=f"spokes-{suffix}")["OrganizationalUnit"]["Id"]
    accounts = []
    for name in ("a", "b", "outside"):
        status = org.create_account(Email=f"{name}-{suffix}@example.com", AccountName=f"{name}-{suffix}")
        accounts.append(status["CreateAccountStatus"]["AccountId"])
    for account in accounts[:2]:
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    # The hub: a bus, and a rule that copies everything it receives into a queue.
    events = client(endpoint, "events")
    bus_name = f"hub-{suffix}"
    bus_arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName=f"hub-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"record-{suffix}", EventBusName=bus_name,
                    EventPattern=json.dumps({"source": ["ddb-export-remediator", "aws.dynamodb", "other"]}))
    events.put_targets(Rule=f"record-{suffix}", EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    role_name = f"spoke-{suffix}"
    function_role = f"arn:aws:iam::{hub}:role/hub-function-{suffix}"
    buckets = [f"exports-{suffix}", f"exports2-{suffix}"]
    cfn = client(endpoint, "cloudformation")
    stacksets = {
        f"spoke-roles-{suffix}": ("org/spoke-roles.yaml", ["CAPABILITY_NAMED_IAM"], [REGION], {
            "HubAccountId": hub, "HubFunctionRoleArn": function_role, "MemberRoleName": role_name,
            "ExportBuckets": ",".join(buckets), "KeyArns": "", "KeyPolicyPatch": "on"}),
        f"spoke-rules-{suffix}": ("org/spoke-rules.yaml", ["CAPABILITY_IAM"], [REGION, "us-west-2"], {
            "HubBusArn": bus_arn}),
    }
    for name, (path, caps, regions, params) in stacksets.items():
        cfn.create_stack_set(
            StackSetName=name, TemplateBody=(repo / path).read_text(), PermissionModel="SERVICE_MANAGED",
            Capabilities=caps, AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        cfn.create_stack_instances(StackSetName=name, Regions=regions,
                                   DeploymentTargets={"OrganizationalUnitIds": [ou]})
    return {"scenario": "org-spokes", "hubAccount": hub, "ou": ou, "members": accounts[:2],
            "outside": accounts[2], "hubBusArn": bus_arn, "queueUrl": url, "memberRoleName": role_name,
            "hubFunctionRoleArn": function_role, "exportBuckets": buckets}


def org_incident(endpoint: str, suffix: str) -> dict:
    """org-spokes, then two incidents in member A, us-west-2, forwarded to the hub bus."""
    out = org_spokes(endpoint, suffix)
    a, b = out["members"]
    west = "us-west-2"

    def creds_in(account: str) -> dict:
        return client(endpoint, "sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
            RoleSessionName="seed")["Credentials"]

    ca, cb = creds_in(a), creds_in(b)
    # Member B's bucket (in the spokes' ExportBuckets) lets member A's account write exports.
    bucket = out["exportBuckets"][0]
    s3b = client(endpoint, "s3", cb, region=west)
    s3b.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": west})
    s3b.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "AllowExportsFromA", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"},
        "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"],
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    # In A, us-west-2: an export to B's bucket without --s3-bucket-owner (FAILED), and a table
    # without point-in-time recovery, whose export call CloudTrail records as refused.
    table_arn = make_table(endpoint, f"orders-{suffix}", creds=ca, region=west)
    export = start_export(endpoint, ca, region=west, TableArn=table_arn, S3Bucket=bucket,
                          S3Prefix="exports", S3SseAlgorithm="AES256")
    desc = wait_terminal(endpoint, export["ExportArn"], creds=ca, region=west)
    nopitr = make_table(endpoint, f"nopitr-{suffix}", pitr=False, creds=ca, region=west)
    events = client(endpoint, "events", ca, region=west)
    pipeline = f"arn:aws:iam::{a}:role/pipeline-{suffix}"
    entries = [
        {"Source": "ddb-export-remediator", "DetailType": "DynamoDB Export Failed", "Detail": json.dumps({
            "exportArn": export["ExportArn"], "accountId": a, "region": west,
            "failureCode": desc.get("FailureCode"), "failureMessage": desc.get("FailureMessage")})},
        {"Source": "aws.dynamodb", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps({
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{a}:assumed-role/pipeline-{suffix}/run",
                             "accountId": a, "sessionContext": {"sessionIssuer": {
                                 "type": "Role", "arn": pipeline, "accountId": a}}},
            "eventTime": "2026-12-02T10:05:00Z", "eventSource": "dynamodb.amazonaws.com",
            "eventName": "ExportTableToPointInTime", "awsRegion": west,
            "errorCode": "PointInTimeRecoveryUnavailableException",
            "errorMessage": f"Point in time recovery is not enabled for table 'nopitr-{suffix}'",
            "requestParameters": {"tableArn": nopitr, "s3Bucket": bucket, "s3Prefix": "exports"},
            "responseElements": None, "eventType": "AwsApiCall", "recipientAccountId": a})},
    ]
    put = events.put_events(Entries=entries)
    assert put["FailedEntryCount"] == 0, put
    # What arrived on the hub bus (the hub's rule copies it into its queue).
    sqs = client(endpoint, "sqs")
    received = []
    for _ in range(20):
        msgs = sqs.receive_message(QueueUrl=out["queueUrl"], MaxNumberOfMessages=10,
                                   WaitTimeSeconds=0).get("Messages", [])
        for m in msgs:
            received.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=out["queueUrl"], ReceiptHandle=m["ReceiptHandle"])
        if len(received) >= len(entries):
            break
        time.sleep(0.1)
    out.update(scenario="org-incident", memberA=a, memberB=b, region=west, bucket=bucket,
               tableArn=table_arn, exportArn=export["ExportArn"], exportStatus=desc["ExportStatus"],
               noPitrTableArn=nopitr, pipelineRole=pipeline, hubEvents=received)
    return out


def org_scale(endpoint: str, suffix: str, accounts: int) -> dict:
    """An organization of `accounts` new member accounts with one table in each of two Regions
    (the organization sweep's benchmark), and a bucket in the first whose exports fail."""
    org = client(endpoint, "organizations")
    try:
        org.create_organization(FeatureSet="ALL")
    except org.exceptions.AlreadyInOrganizationException:
        pass
    sts = client(endpoint, "sts")
    ids, tables = [], []
    for i in range(accounts):
        status = org.create_account(Email=f"scale-{i}-{suffix}@example.com", AccountName=f"scale-{i}-{suffix}")
        account = status["CreateAccountStatus"]["AccountId"]
        ids.append(account)
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                                RoleSessionName="seed")["Credentials"]
        for region in ("us-east-1", "us-west-2"):
            ddb = client(endpoint, "dynamodb", creds, region=region)
            desc = ddb.create_table(TableName=f"orders-{suffix}", BillingMode="PAY_PER_REQUEST",
                                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
            ddb.update_continuous_backups(
                TableName=f"orders-{suffix}",
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
            tables.append(desc["TableDescription"]["TableArn"])
    # The failing destination: a bucket in the first account, us-west-2.
    first = ids[0]
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{first}:role/OrganizationAccountAccessRole",
                            RoleSessionName="seed")["Credentials"]
    bucket = f"scale-exports-{suffix}"
    s3 = client(endpoint, "s3", creds, region="us-west-2")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
        {"Key": "moto-export-failure-code", "Value": "S3AccessDenied"},
        {"Key": "moto-export-failure-message", "Value": "Access Denied"}]})
    table = next(t for t in tables if f":us-west-2:{first}:" in t)
    return {"scenario": "org-scale", "hubAccount": own_account(endpoint), "accounts": ids,
            "tables": len(tables), "failing": {"account": first, "region": "us-west-2",
                                               "tableArn": table, "bucket": bucket},
            "credentials": {"accessKeyId": creds["AccessKeyId"],
                            "secretAccessKey": creds["SecretAccessKey"],
                            "sessionToken": creds["SessionToken"]}}


def owner_creds(endpoint: str, account: str | None) -> dict | None:
    if account and account != own_account(endpoint):
        return client(endpoint, "sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{MEMBER_ROLE_NAME}", RoleSessionName="seed",
        )["Credentials"]
    return None


def add_tags(endpoint: str, bucket: str, account: str | None, tags: dict) -> None:
    s3 = client(endpoint, "s3", owner_creds(endpoint, account))
    try:
        current = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    except s3.exceptions.ClientError:
        current = {}
    current.update(tags)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in current.items()]})


def fail_bucket(endpoint: str, bucket: str, account: str | None) -> dict:
    add_tags(endpoint, bucket, account, {
        "moto-export-failure-code": "S3AccessDenied", "moto-export-failure-message": "Access Denied",
    })
    return {"bucket": bucket, "failing": True}


def require_kms(endpoint: str, bucket: str, account: str | None) -> dict:
    creds = owner_creds(endpoint, account)
    owner = account or own_account(endpoint)
    table_account = own_account(endpoint)
    # The owner's key; a cross-account destination key must admit the writers' account.
    key_policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "EnableIamPolicies", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{owner}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "TableAccountWritesExports", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{table_account}:root"},
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"},
    ]}
    key = client(endpoint, "kms", creds).create_key(
        Description=f"exports to {bucket}", Policy=json.dumps(key_policy),
    )["KeyMetadata"]
    s3 = client(endpoint, "s3", creds)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]},
    }]})
    try:
        statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    except s3.exceptions.ClientError:
        statements = []
    statements.append({
        "Sid": "DenyNonKmsUploads", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
    })
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    add_tags(endpoint, bucket, account, {"moto-export-require-sse": "KMS"})
    return {"bucket": bucket, "keyArn": key["Arn"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--suffix", default=None)
    parser.add_argument("--tables", type=int, default=10)
    parser.add_argument("--exports", type=int, default=1000)
    parser.add_argument("--failed", type=int, default=5)
    parser.add_argument("--accounts", type=int, default=200, help="org-scale: member accounts")
    parser.add_argument("--queue", help="count-events: the queue URL")
    parser.add_argument("--table", help="ledger: the table name")
    parser.add_argument("--bucket", help="fail-bucket: the bucket")
    parser.add_argument("--account", help="fail-bucket, delay-bucket, require-kms: the bucket's account")
    parser.add_argument("--seconds", type=float, default=2.0, help="delay-bucket: the delay")
    parser.add_argument("scenario")
    args = parser.parse_args()
    suffix = args.suffix or secrets.token_hex(4)
    if args.scenario == "bulk":
        result = bulk(args.endpoint, suffix, args.tables, args.exports, args.failed)
    elif args.scenario == "capture-events":
        result = capture_events(args.endpoint, suffix)
    elif args.scenario == "count-events":
        result = count_events(args.endpoint, args.queue)
    elif args.scenario == "capture-outcomes":
        result = capture_outcomes(args.endpoint, suffix)
    elif args.scenario == "read-events":
        result = read_events(args.endpoint, args.queue)
    elif args.scenario == "fail-bucket":
        result = fail_bucket(args.endpoint, args.bucket, args.account)
    elif args.scenario == "delay-bucket":
        add_tags(args.endpoint, args.bucket, args.account, {"moto-export-delay-seconds": str(args.seconds)})
        result = {"bucket": args.bucket, "delaySeconds": args.seconds}
    elif args.scenario == "require-kms":
        result = require_kms(args.endpoint, args.bucket, args.account)
    elif args.scenario == "org-spokes":
        result = org_spokes(args.endpoint, suffix)
    elif args.scenario == "org-scale":
        result = org_scale(args.endpoint, suffix, args.accounts)
    elif args.scenario == "org-incident":
        result = org_incident(args.endpoint, suffix)
    elif args.scenario == "ledger":
        result = ledger_table(args.endpoint, args.table or f"ledger-{suffix}")
    else:
        result = scenario(args.endpoint, args.scenario, suffix)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
