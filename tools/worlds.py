#!/usr/bin/env python3
"""Random export worlds, judged by an IAM evaluator nobody here wrote (docs/worlds.md).

Each world is one export setup drawn from a seed: accounts, S3BucketOwner, bucket policy, bucket
default encryption, key policy, the exporter's identity (boundary, session policy), the SCP on
the table account, the request's SSE flags, PITR and requester pays. It is built in the emulator
with boto3, and the export is started with the exporter's role-session credentials on a bucket
tagged `moto-export-enforce=on`, so the launcher (tools/moto_server.py, enforcing mode) decides
it with @cloud-copilot/iam-simulate and writes its decision to the enforce log.

Then the property (README, "Random worlds"): a FAILED export goes to the real function binary
(apply mode, KEY_POLICY_PATCH=on, allow-lists covering the world), running as a function role in
the table account, exactly as a deployment hands it one: the CloudTrail start event first (the
ledger records the caller), then the "DynamoDB Export Failed" event. Exactly one of
  (a) fixed: its retry COMPLETES under the same evaluator, judged as the function's role, with no
      other change, no weaker encryption and no stand-in for the caller's own missing permission;
  (b) not fixable: no change; the top cause names a layer that denied;
  (c) UNCLASSIFIED, listed.
A COMPLETED export handed to the product gives no finding (CONSUMER_CANNOT_DECRYPT aside) and no
change.

Usage:
  worlds.py run --seed S --count N [--json OUT] [--markdown BENCHMARKS-worlds.md]
  worlds.py show --seed S --index I      print one world's draw (reproducible from seed, index)

Every process started here (one emulator, one function process) is stopped by its PID on exit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
OTHER_REGION = "us-west-2"
MANAGEMENT = "123456789012"  # the emulator's default account: the organization's management
OUTSIDE = "210987654321"  # an account outside the organization
WRONG_OWNER = "444455556666"  # an account that owns nothing here
MEMBER_ROLE = "DdbExportRemediatorMember"
FUNCTION_ROLE = "ddb-export-remediator-fn"

# ------------------------------------------------------------------ the draw

# Each dimension drawn independently; the weights keep failures common (issue 25, part 2).
DIMENSIONS: dict[str, list[tuple[str, float]]] = {
    "accounts": [("same", 0.4), ("org", 0.35), ("outside", 0.25)],
    "owner": [("given", 0.55), ("absent", 0.3), ("wrong", 0.15)],
    "bucket_policy": [
        ("none", 0.16), ("deny_unless_kms", 0.1), ("deny_unless_key", 0.08),
        ("deny_insecure_transport", 0.1), ("grant_role", 0.14), ("grant_root", 0.14),
        ("grant_session", 0.08), ("grant_other", 0.08), ("deny_exporter", 0.06),
        ("grant_root_deny_unless_kms", 0.06),
    ],
    "default_encryption": [("none", 0.25), ("aes256", 0.2), ("cmk", 0.25), ("aws_s3", 0.15),
                           ("other_region", 0.15)],
    "key_policy": [("root_only", 0.3), ("exporter_named", 0.2), ("exporter_left_out", 0.25),
                   ("deny", 0.1), ("grant", 0.15)],
    "identity": [("full", 0.45), ("no_put", 0.1), ("no_gdk", 0.1), ("other_prefix", 0.1),
                 ("boundary_no_kms", 0.12), ("session_no_kms", 0.13)],
    "scp": [("full", 0.6), ("deny_kms_outside_org", 0.2), ("deny_unencrypted_put", 0.2)],
    "flags": [("none", 0.35), ("aes256", 0.2), ("kms_arn", 0.2), ("kms_alias", 0.15),
              ("kms_other_region", 0.1)],
    "pitr": [("on", 0.94), ("off", 0.06)],
    "requester_pays": [("off", 0.94), ("on", 0.06)],
}


def draw(seed: int, index: int) -> dict[str, str]:
    """One world's choices: a function of (seed, index) only."""
    rng = random.Random(f"{seed}/{index}")
    out = {}
    for name, options in DIMENSIONS.items():
        values, weights = zip(*options)
        out[name] = rng.choices(values, weights)[0]
    return out


# ------------------------------------------------------------------ emulator clients


def client(endpoint: str, service: str, account: str | None = None, creds: dict | None = None,
           region: str = REGION):
    """A boto3 client: as the account's administrator (moto's `x-moto-account-id` header), or
    with role-session credentials."""
    import boto3
    from botocore.config import Config

    kwargs = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                  aws_secret_access_key="testing",
                  config=Config(s3={"addressing_style": "path"},
                                retries={"max_attempts": 2, "mode": "standard"}))
    if creds:
        kwargs.update(aws_access_key_id=creds["AccessKeyId"],
                      aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
    c = boto3.client(service, **kwargs)
    if account and not creds:
        def header(request, **_):
            request.headers["x-moto-account-id"] = account
        c.meta.events.register("before-send.*.*", header)
    return c


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resources="*", sid=None, **extra) -> dict:
    s = {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}
    if sid:
        s["Sid"] = sid
    return s


EXPORT_S3 = ["s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload"]
EXPORT_KMS = ["kms:GenerateDataKey", "kms:Decrypt"]


@dataclass
class Site:
    """What every world shares: the organization, the table account, the function's role."""
    endpoint: str
    table_account: str = ""
    member_account: str = ""
    org_id: str = ""
    ledger: str = "worlds-ledger"
    function_role_arn: str = ""
    function_creds: dict = field(default_factory=dict)
    org_reader_arn: str = ""
    scp_ids: dict = field(default_factory=dict)
    attached_scp: str | None = None
    function_policy: dict = field(default_factory=dict)
    scp_docs: dict = field(default_factory=dict)


def build_site(endpoint: str) -> Site:
    site = Site(endpoint)
    org = client(endpoint, "organizations")
    org.create_organization(FeatureSet="ALL")
    site.org_id = org.describe_organization()["Organization"]["Id"]
    accounts = []
    for name in ("worlds-tables", "worlds-buckets"):
        status = org.create_account(Email=f"{name}@example.com", AccountName=name)
        accounts.append(status["CreateAccountStatus"]["AccountId"])
    site.table_account, site.member_account = accounts
    trust_mgmt = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
                      "Action": "sts:AssumeRole"})
    # The function's member role in the other accounts (trusting the table account, where the
    # function runs). The outside account has none: the function cannot read there.
    for acct in (site.member_account,):
        client(endpoint, "iam", acct).create_role(
            RoleName=MEMBER_ROLE, AssumeRolePolicyDocument=doc({
                "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{site.table_account}:root"},
                "Action": "sts:AssumeRole"}))
        client(endpoint, "iam", acct).put_role_policy(
            RoleName=MEMBER_ROLE, PolicyName="reads", PolicyDocument=doc(allow([
                "s3:GetBucketPolicy", "s3:GetEncryptionConfiguration", "s3:GetBucketLocation",
                "s3:ListBucket", "s3:ListAllMyBuckets", "s3:GetBucketRequestPayment",
                "s3:GetBucketPublicAccessBlock", "kms:DescribeKey", "kms:GetKeyPolicy",
                "kms:ListGrants", "kms:PutKeyPolicy"])))
    # The role the function reads SCPs through, in the management account (ORG_ROLE_ARN).
    site.org_reader_arn = client(endpoint, "iam").create_role(
        RoleName="WorldsOrgReader", AssumeRolePolicyDocument=doc({
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{site.table_account}:root"},
            "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    del trust_mgmt
    # The SCPs a world can draw, attached to the table account one world at a time.
    scps = {
        # Written with aws:ResourceAccount (the organization's accounts) rather than
        # aws:ResourceOrgID, which the launcher's request context does not carry.
        "deny_kms_outside_org": allow("kms:*", "*", sid="DenyKmsOutsideOrg") | {
            "Effect": "Deny",
            "Condition": {"StringNotEquals": {"aws:ResourceAccount": [
                MANAGEMENT, site.table_account, site.member_account]}}},
        "deny_unencrypted_put": allow("s3:PutObject", "*", sid="DenyUnencryptedPut") | {
            "Effect": "Deny",
            "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}},
    }
    site.scp_docs = {name: json.loads(doc(st)) for name, st in scps.items()}
    for name, statement in scps.items():
        site.scp_ids[name] = org.create_policy(
            Name=f"worlds-{name}", Description=name, Type="SERVICE_CONTROL_POLICY",
            Content=doc(statement))["Policy"]["PolicySummary"]["Id"]
    # The function's execution role in the table account, with the template's permissions
    # (template.yaml; ExportBuckets=* and KeyArns=* here, so its write scope is any bucket/key).
    iam_t = client(endpoint, "iam", site.table_account)
    iam_t.create_role(RoleName=FUNCTION_ROLE, AssumeRolePolicyDocument=doc({
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}), MaxSessionDuration=43200)
    site.function_role_arn = f"arn:aws:iam::{site.table_account}:role/{FUNCTION_ROLE}"
    site.function_policy = json.loads(doc(
        allow(["dynamodb:DescribeExport", "dynamodb:DescribeTable",
               "dynamodb:DescribeContinuousBackups", "dynamodb:GetResourcePolicy",
               "dynamodb:ListExports", "dynamodb:ListTables", "dynamodb:GetItem",
               "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
               "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
               "events:PutEvents", "s3:ListBucket", "s3:GetBucketLocation",
               "s3:GetBucketPolicy", "s3:GetEncryptionConfiguration",
               "s3:GetBucketRequestPayment", "s3:GetBucketPublicAccessBlock",
               "s3:ListAllMyBuckets", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants",
               "iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy",
               "iam:ListAttachedRolePolicies", "iam:GetPolicy", "iam:GetPolicyVersion"], "*",
              sid="Reads"),
        allow("dynamodb:ExportTableToPointInTime", "*", sid="Retry"),
        allow(EXPORT_S3, "arn:aws:s3:::*/*", sid="ExportWrites"),
        allow(EXPORT_KMS, "*", sid="ExportKeys"),
        allow("kms:PutKeyPolicy", "*", sid="KeyPolicyPatch"),
        allow("sts:AssumeRole", [f"arn:aws:iam::*:role/{MEMBER_ROLE}", site.org_reader_arn],
              sid="Spokes")))
    iam_t.put_role_policy(RoleName=FUNCTION_ROLE, PolicyName="template",
                          PolicyDocument=json.dumps(site.function_policy))
    site.function_creds = client(endpoint, "sts", site.table_account).assume_role(
        RoleArn=site.function_role_arn, RoleSessionName="ddb-export-remediator",
        DurationSeconds=43200)["Credentials"]
    ddb = client(endpoint, "dynamodb", site.table_account)
    ddb.create_table(
        TableName=site.ledger,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")
    return site


def set_scp(site: Site, choice: str) -> None:
    org = client(site.endpoint, "organizations")
    want = site.scp_ids.get(choice)
    if site.attached_scp == want:
        return
    if site.attached_scp:
        org.detach_policy(PolicyId=site.attached_scp, TargetId=site.table_account)
    if want:
        org.attach_policy(PolicyId=want, TargetId=site.table_account)
    site.attached_scp = want


# ------------------------------------------------------------------ one world


@dataclass
class World:
    seed: int
    index: int
    draw: dict
    name: str = ""
    bucket: str = ""
    bucket_account: str = ""
    table_arn: str = ""
    prefix: str = ""
    exporter_role: str = ""
    exporter_session: str = ""
    key_arn: str | None = None  # the world's customer managed key in the bucket's Region
    other_key_arn: str | None = None  # a key of the bucket account in another Region
    request: dict = field(default_factory=dict)
    # Every policy the world set, by layer (for the offline cross-check with our evaluator).
    policies: list = field(default_factory=list)
    creds: dict = field(default_factory=dict)


def key_policy(w: World, site: Site, key_account: str, choice: str) -> tuple[str, bool]:
    """(policy, whether to add a grant for the exporter)."""
    root = {"Sid": "EnableIamPolicies", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{key_account}:root"}, "Action": "kms:*",
            "Resource": "*"}
    admins = {"Sid": "KeyAdministrators", "Effect": "Allow",
              "Principal": {"AWS": f"arn:aws:iam::{key_account}:role/KeyAdmin"},
              "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:Put*", "kms:Create*",
                         "kms:Enable*", "kms:Disable*", "kms:ScheduleKeyDeletion"],
              "Resource": "*"}
    others = {"Sid": "AnalyticsReaders", "Effect": "Allow",
              "Principal": {"AWS": f"arn:aws:iam::{key_account}:role/Analytics"},
              "Action": EXPORT_KMS, "Resource": "*"}
    exporter = {"Sid": "Exporter", "Effect": "Allow", "Principal": {"AWS": w.exporter_role},
                "Action": EXPORT_KMS, "Resource": "*"}
    if choice == "root_only":
        return doc(root), False
    if choice == "exporter_named":
        return doc(admins, exporter), False
    if choice == "exporter_left_out":
        return doc(admins, others), False
    if choice == "deny":
        return doc(root, {"Sid": "NoExporter", "Effect": "Deny",
                          "Principal": {"AWS": w.exporter_role}, "Action": EXPORT_KMS,
                          "Resource": "*"}), False
    return doc(admins, others), True  # grant


def make_key(w: World, site: Site, region: str) -> str:
    kms = client(site.endpoint, "kms", w.bucket_account, region=region)
    policy, grant = key_policy(w, site, w.bucket_account, w.draw["key_policy"])
    arn = kms.create_key(Description=f"{w.name} exports", Policy=policy)["KeyMetadata"]["Arn"]
    w.policies.append({"kind": "key", "name": f"key:{arn}", "doc": json.loads(policy)})
    if grant:
        kms.create_grant(KeyId=arn, GranteePrincipal=w.exporter_role,
                         Operations=["GenerateDataKey", "Decrypt"], Name=f"{w.name}-exporter")
    return arn


def identity_policy(w: World) -> tuple[dict, dict | None, dict | None]:
    """(the exporter role's policy, its boundary, its session policy)."""
    choice = w.draw["identity"]
    objects = f"arn:aws:s3:::{w.bucket}/{w.prefix}/*"
    if choice == "other_prefix":
        objects = f"arn:aws:s3:::{w.bucket}/somewhere-else/*"
    s3 = [a for a in EXPORT_S3 if not (choice == "no_put" and a == "s3:PutObject")]
    kms = [a for a in EXPORT_KMS if not (choice == "no_gdk" and a == "kms:GenerateDataKey")]
    policy = {"Version": "2012-10-17", "Statement": [
        allow("dynamodb:ExportTableToPointInTime", w.table_arn, sid="Export"),
        allow("dynamodb:DescribeExport", "*", sid="Describe"),
        allow(s3, objects, sid="ExportObjects"),
        allow(kms, "*", sid="ExportKeys"),
    ]}
    without_kms = {"Version": "2012-10-17", "Statement": [
        allow(["dynamodb:*", "s3:*"], "*", sid="DataOnly")]}
    boundary = without_kms if choice == "boundary_no_kms" else None
    session = without_kms if choice == "session_no_kms" else None
    return policy, boundary, session


def build_world(site: Site, seed: int, index: int) -> World:
    d = draw(seed, index)
    w = World(seed, index, d, name=f"w{seed % 100000}-{index}")
    ep = site.endpoint
    t = site.table_account
    w.bucket_account = {"same": t, "org": site.member_account, "outside": OUTSIDE}[d["accounts"]]
    w.bucket = f"{w.name}-dest"
    w.prefix = f"exports/{w.name}"
    # The table.
    ddb = client(ep, "dynamodb", t)
    w.table_arn = ddb.create_table(
        TableName=w.name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")["TableDescription"]["TableArn"]
    ddb.put_item(TableName=w.name, Item={"pk": {"S": "item-0"}})
    if d["pitr"] == "on":
        ddb.update_continuous_backups(
            TableName=w.name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    # The exporter: a role in the table account, used through a role session.
    role = f"{w.name}-exporter"
    w.exporter_role = f"arn:aws:iam::{t}:role/{role}"
    iam = client(ep, "iam", t)
    policy, boundary, session = identity_policy(w)
    kwargs = {}
    if boundary:
        arn = iam.create_policy(PolicyName=f"{role}-boundary",
                                PolicyDocument=json.dumps(boundary))["Policy"]["Arn"]
        kwargs["PermissionsBoundary"] = arn
        w.policies.append({"kind": "boundary", "name": "boundary", "doc": boundary})
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{t}:root"},
        "Action": "sts:AssumeRole"}), **kwargs)
    iam.put_role_policy(RoleName=role, PolicyName="exports", PolicyDocument=json.dumps(policy))
    w.policies.append({"kind": "identity", "name": "exports", "doc": policy})
    if session:
        w.policies.append({"kind": "session", "name": "session", "doc": session})
    # The bucket.
    s3 = client(ep, "s3", w.bucket_account)
    s3.create_bucket(Bucket=w.bucket)
    tags = [{"Key": "moto-export-enforce", "Value": "on"}]
    s3.put_bucket_tagging(Bucket=w.bucket, Tagging={"TagSet": tags})
    if d["requester_pays"] == "on":
        s3.put_bucket_request_payment(Bucket=w.bucket,
                                      RequestPaymentConfiguration={"Payer": "Requester"})
    # Keys, only those the world uses.
    needs_key = (d["flags"] in ("kms_arn", "kms_alias") or d["default_encryption"] == "cmk"
                 or d["bucket_policy"] == "deny_unless_key")
    if needs_key:
        w.key_arn = make_key(w, site, REGION)
        if d["flags"] == "kms_alias":
            client(ep, "kms", w.bucket_account).create_alias(
                AliasName=f"alias/{w.name}", TargetKeyId=w.key_arn)
    if d["flags"] == "kms_other_region" or d["default_encryption"] == "other_region":
        w.other_key_arn = make_key(w, site, OTHER_REGION)
    enc = {"aes256": {"SSEAlgorithm": "AES256"},
           "cmk": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": w.key_arn},
           "aws_s3": {"SSEAlgorithm": "aws:kms"},
           "other_region": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": w.other_key_arn},
           }.get(d["default_encryption"])
    if enc:
        s3.put_bucket_encryption(Bucket=w.bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": enc}]})
    bp = bucket_policy(w, site)
    if bp:
        s3.put_bucket_policy(Bucket=w.bucket, Policy=json.dumps(bp))
        w.policies.append({"kind": "resource", "name": "bucket", "doc": bp})
    set_scp(site, d["scp"])
    # The request.
    req = {"TableArn": w.table_arn, "S3Bucket": w.bucket, "S3Prefix": w.prefix,
           "ClientToken": str(uuid.UUID(int=random.Random(f"{seed}/{index}/token").getrandbits(128)))}
    if d["owner"] == "given":
        req["S3BucketOwner"] = w.bucket_account
    elif d["owner"] == "wrong":
        req["S3BucketOwner"] = WRONG_OWNER
    if d["flags"] == "aes256":
        req["S3SseAlgorithm"] = "AES256"
    elif d["flags"] == "kms_arn":
        req.update(S3SseAlgorithm="KMS", S3SseKmsKeyId=w.key_arn)
    elif d["flags"] == "kms_alias":
        req.update(S3SseAlgorithm="KMS", S3SseKmsKeyId=f"alias/{w.name}")
    elif d["flags"] == "kms_other_region":
        req.update(S3SseAlgorithm="KMS", S3SseKmsKeyId=w.other_key_arn)
    w.request = req
    sts_kwargs = {"Policy": json.dumps(session)} if session else {}
    w.exporter_session = f"arn:aws:sts::{t}:assumed-role/{role}/nightly"
    w.creds = client(ep, "sts", t).assume_role(RoleArn=w.exporter_role, RoleSessionName="nightly",
                                               **sts_kwargs)["Credentials"]
    return w


def bucket_policy(w: World, site: Site) -> dict | None:
    choice = w.draw["bucket_policy"]
    t = site.table_account
    objects = f"arn:aws:s3:::{w.bucket}/*"

    def grant(principal) -> dict:
        return {"Sid": "ExportWriters", "Effect": "Allow", "Principal": {"AWS": principal},
                "Action": EXPORT_S3, "Resource": objects}

    statements = {
        "none": [],
        "deny_unless_kms": [{"Sid": "RequireKms", "Effect": "Deny", "Principal": "*",
                             "Action": "s3:PutObject", "Resource": objects, "Condition": {
                                 "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}],
        "deny_unless_key": [{"Sid": "RequireOurKey", "Effect": "Deny", "Principal": "*",
                             "Action": "s3:PutObject", "Resource": objects, "Condition": {
                                 "StringNotEqualsIfExists": {
                                     "s3:x-amz-server-side-encryption-aws-kms-key-id": w.key_arn}}}],
        "deny_insecure_transport": [{"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*",
                                     "Action": "s3:*", "Resource": [f"arn:aws:s3:::{w.bucket}", objects],
                                     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}],
        "grant_role": [grant(w.exporter_role)],
        "grant_root": [grant(f"arn:aws:iam::{t}:root")],
        "grant_session": [grant(f"arn:aws:sts::{t}:assumed-role/{w.name}-exporter/nightly")],
        "grant_other": [grant(f"arn:aws:iam::{t}:role/SomeoneElse")],
        "deny_exporter": [grant(f"arn:aws:iam::{t}:root"),
                          {"Sid": "NotTheExporter", "Effect": "Deny",
                           "Principal": {"AWS": w.exporter_role}, "Action": "s3:PutObject",
                           "Resource": objects}],
        "grant_root_deny_unless_kms": [grant(f"arn:aws:iam::{t}:root"), {
            "Sid": "RequireKms", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}],
    }[choice]
    if not statements:
        return None
    return {"Version": "2012-10-17", "Statement": statements}


# ------------------------------------------------------------------ the property

# The layer(s) each cause names (the evaluator's denying layers, as the launcher logs them).
CAUSE_LAYERS: dict[str, set[str]] = {
    "CALLER_MISSING_EXPORT_PERMISSION": {"identity"},
    "CALLER_MISSING_S3_PERMISSION": {"identity"},
    "KMS_CALLER_MISSING_PERMISSION": {"identity"},
    "PERMISSIONS_BOUNDARY_DENIES": {"boundary", "session"},
    "SCP_DENIES_EXPORT": {"scp"},
    "SCP_DENIES_S3_OR_KMS": {"scp"},
    "BUCKET_POLICY_MISSING_GRANT": {"bucket_policy"},
    "BUCKET_POLICY_DENIES": {"bucket_policy"},
    "BUCKET_PUBLIC_ACCESS_RESTRICTED": {"bucket_policy"},
    "NETWORK_PERIMETER_DENIES": {"bucket_policy", "key_policy"},
    "SSE_MISMATCH_REQUIRES_KMS": {"bucket_policy", "encryption", "scp"},
    "SSE_MISMATCH_REQUIRES_AES256": {"bucket_policy", "encryption", "scp"},
    "SSE_ALGORITHM_UNSUPPORTED": {"bucket_policy", "encryption"},
    "SSE_KMS_KEY_MISMATCH": {"bucket_policy", "encryption", "key_policy"},
    "KMS_KEY_POLICY_DENIES_EXPORTER": {"key_policy", "grant"},
    "AWS_MANAGED_KEY_CROSS_ACCOUNT": {"key_policy", "encryption"},
    "KMS_KEY_UNUSABLE": {"encryption"},
    "BUCKET_OWNER_MISSING": {"owner"},
    "BUCKET_OWNER_MISMATCH": {"owner"},
    "REQUESTER_PAYS_BUCKET": {"requester_pays"},
    "PITR_DISABLED": {"table"},
    "INVALID_EXPORT_TIME": {"table"},
    "TABLE_NOT_FOUND": {"table"},
    "TABLE_POLICY_DENIES": {"table"},
    "BUCKET_NOT_FOUND": {"bucket"},
}
CALLER_OWN = {"identity", "boundary", "session"}
NON_POLICY = {"owner", "requester_pays", "encryption"}
WORK = ROOT / ".demo"


def denying_layers(entry: dict | None) -> list[str]:
    layers: list[str] = []
    for r in (entry or {}).get("requests") or []:
        if r.get("decision") != "Allow":
            for layer in r.get("denyingLayers") or []:
                if layer not in layers:
                    layers.append(layer)
    return layers


class EnforceLog:
    """The launcher's --enforce-log, read incrementally and indexed by export ARN."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.by_arn: dict[str, dict] = {}

    def get(self, arn: str, timeout: float = 3.0) -> dict | None:
        deadline = time.time() + timeout
        while True:
            if self.path.exists():
                with open(self.path) as f:
                    f.seek(self.offset)
                    for line in f:
                        if not line.endswith("\n"):
                            break
                        self.offset += len(line.encode())
                        try:
                            e = json.loads(line)
                        except json.JSONDecodeError:
                            continue
                        self.by_arn[e.get("exportArn")] = e
            if arn in self.by_arn or time.time() > deadline:
                return self.by_arn.get(arn)
            time.sleep(0.05)


def wait_terminal(site: Site, arn: str, timeout: float = 60.0) -> dict:
    ddb = client(site.endpoint, "dynamodb", site.table_account)
    deadline = time.time() + timeout
    while True:
        desc = ddb.describe_export(ExportArn=arn)["ExportDescription"]
        if desc["ExportStatus"] != "IN_PROGRESS" or time.time() > deadline:
            return desc
        time.sleep(0.05)


def cloudtrail_event(site: Site, w: World, export: dict | None, error: tuple | None) -> dict:
    """The CloudTrail record of the exporter's ExportTableToPointInTime call, as EventBridge
    delivers it (events/cloudtrail-export-started.json has the shape)."""
    t = site.table_account
    params = {k[0].lower() + k[1:]: v for k, v in w.request.items()}
    detail = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "arn": w.exporter_session, "accountId": t,
                         "sessionContext": {"sessionIssuer": {
                             "type": "Role", "arn": w.exporter_role, "accountId": t}}},
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "eventSource": "dynamodb.amazonaws.com", "eventName": "ExportTableToPointInTime",
        "awsRegion": REGION, "requestParameters": params, "eventType": "AwsApiCall",
        "recipientAccountId": t,
        "responseElements": None,
    }
    if export:
        detail["responseElements"] = {"exportDescription": {
            "exportArn": export["ExportArn"], "exportStatus": "IN_PROGRESS"}}
    if error:
        detail["errorCode"], detail["errorMessage"] = error
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.dynamodb", "account": t,
            "time": detail["eventTime"], "region": REGION, "resources": [], "detail": detail}


def failed_event(site: Site, arn: str) -> dict:
    """The `DynamoDB Export Failed` event the function's sweep publishes (tools/bench.py)."""
    d = client(site.endpoint, "dynamodb", site.table_account).describe_export(
        ExportArn=arn)["ExportDescription"]
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "DynamoDB Export Failed",
            "source": "ddb-export-remediator", "account": site.table_account,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
            "resources": [arn],
            "detail": {"exportArn": arn, "tableArn": d["TableArn"], "s3Bucket": d["S3Bucket"],
                       "s3BucketOwner": d.get("S3BucketOwner"),
                       "s3SseAlgorithm": d.get("S3SseAlgorithm"),
                       "s3SseKmsKeyId": d.get("S3SseKmsKeyId")}}


def parse_command(command: str) -> dict:
    """`aws dynamodb export-table-to-point-in-time --table-arn … --s3-bucket …` → request."""
    words = shlex.split(command)
    names = {"--table-arn": "TableArn", "--s3-bucket": "S3Bucket",
             "--s3-bucket-owner": "S3BucketOwner", "--s3-prefix": "S3Prefix",
             "--s3-sse-algorithm": "S3SseAlgorithm", "--s3-sse-kms-key-id": "S3SseKmsKeyId",
             "--export-format": "ExportFormat", "--export-time": "ExportTime"}
    out = {}
    for i, word in enumerate(words):
        if word in names and i + 1 < len(words):
            out[names[word]] = words[i + 1]
    out.pop("ExportTime", None)  # a fresh export: now
    return out


@dataclass
class Outcome:
    seed: int
    index: int
    draw: dict
    status: str = ""  # COMPLETED | FAILED | SYNC:<error> | BUILD_ERROR | REFUSED
    denying: list = field(default_factory=list)
    message_shape: str | None = None
    causes: list = field(default_factory=list)  # [(cause, confidence)]
    applied: list = field(default_factory=list)  # [(action, status)]
    case: str = ""  # a | b | c | ok | completed-finding | sync
    retry_status: str | None = None
    retry_denying: list = field(default_factory=list)
    command_status: str | None = None
    problems: list = field(default_factory=list)  # why the property failed, if it did
    note: str = ""
    explained: list | None = None  # [class, why] when a problem has a recorded explanation
    answer: dict | None = None  # the function's answer to the failure (kept with --answers)


FULL_AWS_ACCESS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"}]}
KEEP_ANSWERS = False
ONLY: set = set()
CASES: list[dict] = []  # every enforced request, as a case for `ddb-export-doctor explain`


def collect_cases(site: Site, w: World, entry: dict | None, tag: str) -> None:
    """Each request iam-simulate judged, as our evaluator's case (README: `explain`), with the
    same policies the world set. KMS grants have no place in a case: such requests are left out
    (counted)."""
    if not entry:
        return
    scps = [{"kind": "scp", "name": "FullAWSAccess", "level": "account", "doc": FULL_AWS_ACCESS}]
    if w.draw["scp"] in site.scp_docs:
        scps.append({"kind": "scp", "name": w.draw["scp"], "level": "account",
                     "doc": site.scp_docs[w.draw["scp"]]})
    for n, r in enumerate(entry.get("requests") or []):
        # Denials by a launcher rule, not by a policy (wrong owner, requester pays, a key of
        # another Region): nothing for an evaluator to decide.
        if r.get("decision") != "Allow" and set(r.get("denyingLayers") or []) <= NON_POLICY:
            continue
        principal = r.get("principal", "")
        if f":assumed-role/{FUNCTION_ROLE}/" in principal:
            identity = [{"kind": "identity", "name": "template", "doc": site.function_policy}]
        else:
            identity = [p for p in w.policies if p["kind"] in ("identity", "boundary", "session")]
        action = r.get("action", "")
        if action.startswith("s3:"):
            resource = [p for p in w.policies if p["kind"] == "resource"]
            account = w.bucket_account
        else:
            resource = [p for p in w.policies if p["kind"] == "key"
                        and p["name"] == f"key:{entry.get('keyArn')}"]
            account = (entry.get("keyArn") or "::::").split(":")[4]
            if w.draw["key_policy"] == "grant" or not resource:
                continue
        CASES.append({"id": f"{w.seed}/{w.index}/{tag}/{n}", "layers": r.get("denyingLayers"),
                      "simulate": r.get("decision"),
                      "policies": identity + resource + scps,
                      "request": {"principal": principal, "action": action,
                                  "resource": r.get("resource", ""),
                                  "resource_account": account,
                                  "context": r.get("context") or {}}})


def cross_check(cases: list[dict]) -> list[dict]:
    """Our evaluator (src/policy/, through `ddb-export-doctor explain`) on every case; the cases
    where it decides otherwise than iam-simulate."""
    if not cases:
        return []
    doctor = binary().parent / "ddb-export-doctor"
    path = WORK / f"worlds-cases-{os.getpid()}.json"
    path.write_text(json.dumps([{k: c[k] for k in ("id", "policies", "request")} for c in cases]))
    out = subprocess.run([str(doctor), "explain", str(path), "--output", "json"],
                         capture_output=True, text=True)
    ours = {}
    for line in out.stdout.splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        ours[d["id"]] = d
    differ = []
    for c in cases:
        o = ours.get(c["id"], {})
        if o.get("decision") != c["simulate"]:
            differ.append({"id": c["id"], "action": c["request"]["action"],
                           "principal": c["request"]["principal"],
                           "simulate": c["simulate"], "layers": c["layers"],
                           "ours": o.get("decision") or o.get("error"),
                           "decidedBy": o.get("decidedBy"), "uncertain": o.get("uncertain", False)})
    return differ


def judge(site: Site, api, log: EnforceLog, w: World) -> Outcome:
    from botocore.exceptions import ClientError

    o = Outcome(w.seed, w.index, w.draw)
    ddb = client(site.endpoint, "dynamodb", creds=w.creds)
    try:
        export = ddb.export_table_to_point_in_time(**w.request)["ExportDescription"]
    except ClientError as e:
        err = e.response["Error"]
        o.status = f"SYNC:{err['Code']}"
        o.case = "sync"
        _, answer = api.deliver(cloudtrail_event(site, w, None, (err["Code"], err["Message"])))
        o.causes = [(f["cause"], f["confidence"]) for f in answer.get("findings", [])]
        o.applied = [(a["action"], a["status"]) for a in answer.get("applied", [])]
        if not o.causes or o.causes[0][0] != "PITR_DISABLED" and "PointInTime" in err["Code"]:
            o.problems.append(f"synchronous {err['Code']}: top cause {o.causes[:1]}")
        return o
    arn = export["ExportArn"]
    api.deliver(cloudtrail_event(site, w, export, None))
    desc = wait_terminal(site, arn)
    entry = log.get(arn)
    o.status = desc["ExportStatus"]
    if entry is None:
        o.problems.append("no enforce-log line for the export")
    elif entry.get("refused"):
        o.status = "REFUSED"
        o.note = entry["refused"]
        return o
    collect_cases(site, w, entry, "export")
    o.denying = denying_layers(entry)
    o.message_shape = (entry or {}).get("messageShape")
    if o.status == "COMPLETED":
        _, answer = api.deliver({"exportArn": arn, "mode": "apply"})
        o.causes = [(f["cause"], f["confidence"]) for f in answer.get("findings", [])]
        o.applied = [(a["action"], a["status"]) for a in answer.get("applied", [])]
        # CONSUMER_CANNOT_DECRYPT is allowed only where the evaluator says the bucket owner's
        # principals cannot decrypt (the launcher's bucketOwnerCanDecrypt).
        owner_can = (entry or {}).get("bucketOwnerCanDecrypt")
        extra = [c for c, _ in o.causes
                 if c != "CONSUMER_CANNOT_DECRYPT" or owner_can is True]
        o.case = "completed-finding" if extra else "ok"
        o.note = f"bucketOwnerCanDecrypt={owner_can}"
        if extra:
            o.problems.append(f"findings on a COMPLETED export: {extra}")
        if any(s == "DONE" for _, s in o.applied):
            o.problems.append(f"needless change on a COMPLETED export: {o.applied}")
        return o
    if o.status != "FAILED":
        o.problems.append(f"export ended {o.status}")
        return o
    _, answer = api.deliver(failed_event(site, arn))
    if KEEP_ANSWERS:
        o.answer = {k: v for k, v in answer.items() if k != "text"}
    findings = answer.get("findings", [])
    o.causes = [(f["cause"], f["confidence"]) for f in findings]
    applied = answer.get("applied", [])
    o.applied = [(a["action"], a["status"]) for a in applied]
    top = o.causes[0][0] if o.causes else "UNCLASSIFIED"
    done = [a for a in applied if a.get("status") == "DONE"]
    retry = next((a for a in done if a["action"] == "RETRY_EXPORT"), None)
    patched = any(a["action"] == "PATCH_KEY_POLICY" for a in done)
    others = [a["action"] for a in done if a["action"] not in ("RETRY_EXPORT", "PATCH_KEY_POLICY")]
    if others:
        o.problems.append(f"other changes: {others}")
    if patched and not set(o.denying) & {"key_policy", "grant"}:
        o.problems.append("key-policy patch where the key policy did not deny")
    if retry:
        o.case = "a"
        rarn = (retry.get("result") or {}).get("exportArn")
        rdesc = wait_terminal(site, rarn) if rarn else {"ExportStatus": "UNKNOWN"}
        o.retry_status = rdesc["ExportStatus"]
        rentry = log.get(rarn) if rarn else None
        collect_cases(site, w, rentry, "retry")
        o.retry_denying = denying_layers(rentry)
        if o.retry_status != "COMPLETED":
            o.problems.append(f"retry ended {o.retry_status} ({o.retry_denying})")
        if set(o.denying) & CALLER_OWN:
            o.problems.append(f"confused deputy: the caller's own {sorted(set(o.denying) & CALLER_OWN)} "
                              "denied, the function's retry stood in")
        # Weaker: KMS became SSE-S3 (except the aws/s3 default of a cross-account bucket, whose
        # documented remedy is AES256), or the key the request named became another.
        before, after = (entry or {}).get("keyArn"), (rentry or {}).get("keyArn")
        aws_s3_default = w.draw["default_encryption"] == "aws_s3" and w.draw["flags"] == "none"
        if before and after is None and not aws_s3_default:
            o.problems.append(f"weaker encryption: key {before} became SSE-S3")
        if w.request.get("S3SseKmsKeyId") and before and after != before:
            o.problems.append(f"weaker encryption: the requested key {before} became {after}")
        return o
    if patched:
        # Patched for the exporter, no retry of the function's own (its role is not admitted):
        # the exporter's next run must pass.
        o.case = "a"
        # The exporter's next run: the corrected command when the findings give one (the
        # parameters the diagnosis fixed), else the same request.
        command = next((f["remedy"].get("command") for f in findings
                        if (f.get("remedy") or {}).get("command")), None)
        rerun = parse_command(command) if command else dict(w.request)
        rerun["ClientToken"] = str(uuid.uuid4())
        again = ddb.export_table_to_point_in_time(**rerun)["ExportDescription"]
        o.retry_status = wait_terminal(site, again["ExportArn"])["ExportStatus"]
        o.retry_denying = denying_layers(log.get(again["ExportArn"]))
        if o.retry_status != "COMPLETED":
            o.problems.append(f"the exporter's run after the patch ended {o.retry_status} "
                              f"({o.retry_denying})")
        return o
    if top == "UNCLASSIFIED":
        o.case = "c"
    else:
        o.case = "b"
    if o.case == "b":
        if not (CAUSE_LAYERS.get(top, set()) & set(o.denying)):
            o.problems.append(f"top cause {top} names none of the denying layers {o.denying}")
        command = next((f["remedy"].get("command") for f in findings
                        if (f.get("remedy") or {}).get("command")), None)
        if command:
            req = parse_command(command)
            req["ClientToken"] = str(uuid.uuid4())
            try:
                again = ddb.export_table_to_point_in_time(**req)["ExportDescription"]
                o.command_status = wait_terminal(site, again["ExportArn"])["ExportStatus"]
            except ClientError as e:
                o.command_status = f"SYNC:{e.response['Error']['Code']}"
    return o


# ------------------------------------------------------------------ runner and report


def function_env(site: Site, api_address: str) -> dict:
    c = site.function_creds
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": api_address,
        "AWS_LAMBDA_FUNCTION_NAME": "ddb-export-remediator",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "worlds",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ddb-export-remediator",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": site.endpoint,
        "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
        "AWS_SESSION_TOKEN": c["SessionToken"],
        "S3_FORCE_PATH_STYLE": "true",
        "MEMBER_ROLE_NAME": MEMBER_ROLE,
        "ORG_ROLE_ARN": site.org_reader_arn,
        "LEDGER_TABLE_NAME": site.ledger,
        "MODE": "apply",
        "KEY_POLICY_PATCH": "on",
        # Allow-lists covering every world: any bucket and key; the bucket accounts as consumers.
        "EXPORT_BUCKETS": "*",
        "KEY_ARNS": "*",
        "DECRYPT_PRINCIPALS": f"{site.member_account},{OUTSIDE}",
        "RUST_LOG": "error",
    }


def binary() -> Path:
    if os.environ.get("WORLDS_FUNCTION_BINARY"):
        return Path(os.environ["WORLDS_FUNCTION_BINARY"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for profile in ("debug", "release"):
        b = target / profile / "ddb-export-remediator"
        if b.exists():
            return b
    raise SystemExit(f"no ddb-export-remediator binary under {target} (cargo build first)")


def run(seeds: list[tuple[int, int]], progress: bool = True) -> tuple[list[Outcome], dict]:
    import local
    from bench import RuntimeApi

    WORK.mkdir(exist_ok=True)
    log_path = WORK / f"worlds-enforce-{os.getpid()}.jsonl"
    log_path.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        proc = local.start([str(local.VENV_BIN / "python"), "tools/moto_server.py", "--parent-pid",
                            str(os.getpid()), "--enforce-log", str(log_path)],
                           WORK / f"worlds-moto-{os.getpid()}.log", stdout=subprocess.PIPE)
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("MOTO_READY "):
            raise SystemExit(f"emulator did not start: {line!r} (see {WORK})")
        endpoint = line.split(" ", 1)[1]
        site = build_site(endpoint)
        function: list = []  # [process, runtime API, the SCP it started under]

        def function_for(scp: str):
            # The function keeps what it read of the SCPs for a while (a warm container's
            # reuse); the worlds change the table account's SCP between exports, which a real
            # organization does not do every minute: a new SCP gets a fresh process.
            if function and function[2] == scp:
                return function[1]
            if function:
                os.killpg(function[0].pid, signal.SIGTERM)
                function[0].wait()
                function[1].close()
                function.clear()
            api = RuntimeApi()
            proc = local.start([str(binary())], WORK / f"worlds-function-{os.getpid()}.log",
                               env=function_env(site, api.address))
            function.extend([proc, api, scp])
            return api

        log = EnforceLog(log_path)
        outcomes = []
        for seed, count in seeds:
            for index in range(count):
                if ONLY and index not in ONLY:
                    continue
                try:
                    api = function_for(draw(seed, index)["scp"])
                    w = build_world(site, seed, index)
                except Exception as e:  # reported with its seed, never skipped silently
                    o = Outcome(seed, index, draw(seed, index), status="BUILD_ERROR",
                                note=f"{type(e).__name__}: {e}"[:300])
                    outcomes.append(o)
                    continue
                try:
                    o = judge(site, api, log, w)
                except Exception as e:
                    o = Outcome(seed, index, w.draw, status="RUN_ERROR",
                                note=f"{type(e).__name__}: {e}"[:300])
                    o.problems.append(o.note)
                outcomes.append(o)
                if progress and len(outcomes) % 50 == 0:
                    print(f"  {len(outcomes)} worlds, {time.monotonic() - started:.0f} s",
                          flush=True)
        if function:
            function[1].close()
    finally:
        local.stop_all()
    differ = cross_check(CASES)
    return outcomes, {"seconds": time.monotonic() - started, "log": str(log_path),
                      "cases": len(CASES), "differ": differ}


def summary(outcomes: list[Outcome]) -> dict:
    by = collections.Counter
    failed = [o for o in outcomes if o.status == "FAILED"]
    return {
        "worlds": len(outcomes),
        "status": dict(by(o.status.split(":")[0] if o.status.startswith("SYNC") else o.status
                          for o in outcomes)),
        "a": sum(o.case == "a" for o in failed),
        "b": sum(o.case == "b" for o in failed),
        "c": sum(o.case == "c" for o in failed),
        "failed_again": sum(o.case == "a" and o.retry_status != "COMPLETED" for o in failed),
        "needless_changes": sum(any("needless" in p or "did not deny" in p or "other changes" in p
                                    for p in o.problems) for o in outcomes),
        "unexplained": sum(bool(o.problems) and not explain(o) for o in outcomes),
        "explained": sum(bool(o.problems) and bool(explain(o)) for o in outcomes),
        "refused": sum(o.status in ("REFUSED", "BUILD_ERROR") for o in outcomes),
    }


def top(o: Outcome) -> str:
    return o.causes[0][0] if o.causes else "UNCLASSIFIED"


def later_cause_names_a_denying_layer(o: Outcome) -> bool:
    return any(CAUSE_LAYERS.get(c, set()) & set(o.denying) for c, _ in o.causes[1:])


def drawn_caller_layers(o: Outcome) -> set[str]:
    """The caller's own layers that deny by construction of the world (its draw), whether or not
    the launcher lists them (it lists the explicit deny where there is one)."""
    kms = o.draw["flags"].startswith("kms") or (
        o.draw["flags"] == "none" and o.draw["default_encryption"] in ("cmk", "aws_s3", "other_region"))
    return {
        "no_put": {"identity"}, "other_prefix": {"identity"},
        "no_gdk": {"identity"} if kms else set(),
        "boundary_no_kms": {"boundary"} if kms else set(),
        "session_no_kms": {"session"} if kms else set(),
    }.get(o.draw["identity"], set())


def only_problem(o: Outcome, phrase: str) -> bool:
    return len(o.problems) == 1 and phrase in o.problems[0]


# Disagreements whose reason is known, each classified (docs/worlds.md explains the classes):
# (predicate over an outcome, class, explanation).
UNDOCUMENTED = "AWS behaviour that is undocumented, with the choice made"
DOCUMENTED = "AWS behaviour, documented"
OPEN_DEFECT = "product defect, open (not fixed in this change)"
DESIGN = "product limitation by design (listed; README: an Unknown answer lets the retry go)"
SESSION = ("a session policy is passed to AssumeRole and kept by no IAM API (IAM User Guide, "
           "'Policies and permissions in AWS Identity and Access Management', Session policies, "
           "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session)")
KNOWN: list[tuple] = [
    (lambda o: o.draw["accounts"] == "outside" and o.draw["owner"] == "wrong"
        and all("after the patch ended FAILED" in p or "names none of the denying layers" in p
                for p in o.problems),
     "emulator artifact (listed)",
     "outside the organization there is no member role, so the function cannot read the bucket "
     "or confirm its owner; moto's AssumeRole ignores trust policies and whether the role exists "
     "(README, emulator facts), so the function still wrote the key-policy patch there, which on "
     "AWS it could not; the wrong S3BucketOwner it could not see then fails the exporter's run"),
    (lambda o: len(o.problems) == 1 and "after the patch ended FAILED" in o.problems[0]
        and o.retry_denying == ["scp"] and o.draw["scp"] == "deny_unencrypted_put"
        and o.draw["flags"] == "none",
     UNDOCUMENTED,
     "whether DynamoDB sends an SSE header when the export has no SSE flags is not documented; "
     "the launcher sends none (its choice 2), so the SCP denying unencrypted PutObject denies the "
     "exporter's corrected run; the product treats the header as Unknown"),
    (lambda o: "session" in o.denying and o.draw["identity"] == "session_no_kms"
        and all("confused deputy" in p or "after the patch ended FAILED" in p
                or "names none of the denying layers" in p for p in o.problems),
     DOCUMENTED,
     SESSION + "; the product cannot see the exporter's session policy, so it cannot know that "
     "its retry (or the exporter's next run after a key-policy patch) meets it. A retry by the "
     "function then does what the session policy kept from the exporter: a residual "
     "confused-deputy risk no readable fact reveals"),
    (lambda o: only_problem(o, "names none of the denying layers")
        and top(o) == "BUCKET_OWNER_MISSING" and o.draw["owner"] == "absent"
        and o.draw["accounts"] == "outside",
     UNDOCUMENTED,
     "outside the organization the function has no member role (by design), so it reads "
     "neither the bucket's policy nor its owner; it names the missing S3BucketOwner (which "
     "AWS's cross-account instructions always pass) while the launcher does not deny for it "
     "(its choice 4); it changes nothing"),
    (lambda o: only_problem(o, "names none of the denying layers")
        and top(o) == "KMS_KEY_POLICY_DENIES_EXPORTER" and "scp" in o.denying
        and any(c == "SCP_DENIES_S3_OR_KMS" for c, _ in o.causes[1:]),
     DOCUMENTED,
     "the key policy of a key in another account does not admit the exporter and an SCP denies "
     "too; iam-simulate stops at the SCP's explicit deny (IAM User Guide, 'Policy evaluation "
     "logic', https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html), "
     "the product names both, the key policy first; it changes nothing"),
    (lambda o: only_problem(o, "retry ended FAILED") and o.retry_denying == ["scp"]
        and o.draw["scp"] == "deny_unencrypted_put" and o.draw["flags"] == "none",
     UNDOCUMENTED,
     "whether DynamoDB sends an SSE header when the export has no SSE flags is not documented; "
     "the launcher sends none (its choice 2), so the SCP denying unencrypted PutObject denies "
     "the function's retry too; the product treats the header as Unknown and retried"),
    (lambda o: only_problem(o, "names none of the denying layers") and o.denying == ["scp"]
        and o.draw["scp"] == "deny_unencrypted_put" and o.draw["flags"] == "none",
     UNDOCUMENTED,
     "whether DynamoDB sends x-amz-server-side-encryption when the export has no SSE flags is "
     "not documented; the launcher sends none (its choice 2; an SCP denying unencrypted "
     "PutObject then denies), "
     "the product treats the header as Unknown and cannot confirm the SCP; it changes nothing"),
    (lambda o: only_problem(o, "retry ended FAILED") and o.draw["bucket_policy"] == "deny_unless_key"
        and "key_policy" in o.retry_denying and not o.draw["flags"].startswith("kms"),
     DESIGN,
     "the retry switches to the key the bucket policy pins, a key the export never used, whose "
     "policy the function does not read before retrying: Unknown, so the retry went and failed "
     "on that key's policy; the failure is the next attempt's diagnosis"),
    (lambda o: only_problem(o, "names none of the denying layers")
        and top(o) == "BUCKET_OWNER_MISSING" and o.draw["owner"] == "absent"
        and later_cause_names_a_denying_layer(o),
     UNDOCUMENTED,
     "whether DynamoDB fails a cross-account export that omits S3BucketOwner is not documented "
     "(AWS's cross-account instructions always pass it); the launcher does not deny for it "
     "(its choice 4), the "
     "product reports it first (CONFIRMED, fixable by a parameter) and names the layer that "
     "denied among its next findings, so it makes no change"),
    (lambda o: only_problem(o, "names none of the denying layers")
        and CAUSE_LAYERS.get(top(o), set()) & drawn_caller_layers(o),
     DOCUMENTED,
     "the exporter's own policy lacks the permission too (the world's draw); iam-simulate lists "
     "the layer of an explicit deny that decided first, and the product names the caller's gap: "
     "both layers deny (IAM User Guide, 'Policy evaluation logic', "
     "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)"),
    (lambda o: only_problem(o, "names none of the denying layers") and o.denying == ["session"]
        and not any(s == "DONE" for _, s in o.applied),
     DOCUMENTED,
     "a session policy is passed to AssumeRole and kept by no IAM API (IAM User Guide, "
     "'Policies and permissions in AWS Identity and Access Management', Session policies, "
     "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session); "
     "the product cannot read it, names what it can evaluate at a confidence that says so, and "
     "changes nothing"),
    (lambda o: only_problem(o, "names none of the denying layers")
        and top(o) == "BUCKET_POLICY_MISSING_GRANT" and o.draw["bucket_policy"] == "grant_session",
     OPEN_DEFECT,
     "the bucket policy grants the exporter's role session (arn:aws:sts::…:assumed-role/…/…); "
     "the product evaluates the bucket policy as the role and its account, not as the session, "
     "so it misses a grant naming the session; it changes nothing"),
]


def explain(o: Outcome) -> tuple[str, str] | None:
    for predicate, cls, why in KNOWN:
        if predicate(o):
            return cls, why
    return None


def markdown(outcomes: list[Outcome], seeds: list[tuple[int, int]], meta: dict) -> str:
    s = summary(outcomes)
    lines = ["# BENCHMARKS-worlds.md: the product against random export worlds", "",
             "Written by `make bench-worlds` (tools/worlds.py; what it checks: docs/worlds.md).",
             f"Seeds: {', '.join(f'{seed} ({count} worlds)' for seed, count in seeds)}. "
             f"Run time: {meta['seconds'] / 60:.1f} min on this machine "
             f"({os.cpu_count()} cores).", "",
             "## Counts", "", "| | worlds |", "|---|---|"]
    for k, v in s["status"].items():
        lines.append(f"| export {k} | {v} |")
    lines += [f"| (a) fixed: the function's retry (or the exporter's run after its key-policy "
              f"patch) | {s['a']} |",
              f"| (b) not fixable: no change, the top cause names a denying layer | {s['b']} |",
              f"| (c) UNCLASSIFIED | {s['c']} |",
              f"| retries that failed again (target 0) | {s['failed_again']} |",
              f"| changes where none was needed (target 0) | {s['needless_changes']} |",
              f"| disagreements explained below | {s['explained']} |",
              f"| **unexplained disagreements (target 0)** | **{s['unexplained']}** |",
              f"| worlds not built or refused by the evaluator (listed) | {s['refused']} |", ""]
    # Confusion table.
    failed = [o for o in outcomes if o.status == "FAILED"]
    rows = collections.Counter()
    for o in failed:
        layer = "+".join(o.denying) or "(none logged)"
        top = o.causes[0][0] if o.causes else "UNCLASSIFIED"
        rows[(layer, top)] += 1
    lines += ["## Confusion: the evaluator's denying layers × the product's top cause", "",
              "| denying layers (iam-simulate) | top cause (product) | worlds | agrees |",
              "|---|---|---|---|"]
    for (layer, top), n in sorted(rows.items(), key=lambda kv: (-kv[1], kv[0])):
        agrees = "yes" if CAUSE_LAYERS.get(top, set()) & set(layer.split("+")) else "no"
        lines.append(f"| {layer} | {top} | {n} | {agrees} |")
    completed = [o for o in outcomes if o.status == "COMPLETED"]
    cc = collections.Counter(",".join(c for c, _ in o.causes) or "(nothing)" for o in completed)
    lines += ["", "## COMPLETED exports handed to the product", "", "| findings | worlds |",
              "|---|---|"] + [f"| {k} | {v} |" for k, v in cc.most_common()]
    shapes = collections.Counter((o.message_shape or "-", o.case) for o in failed)
    lines += ["", "## Failure message shape × case", "", "| message | case | worlds |",
              "|---|---|---|"] + [f"| {m} | {c} | {n} |" for (m, c), n in sorted(shapes.items())]
    # Every disagreement.
    lines += ["", "## Disagreements", ""]
    bad = [o for o in outcomes if o.problems]
    if not bad:
        lines.append("None.")
    for o in bad:
        e = explain(o)
        label = f"{e[0]}: {e[1]}" if e else "**UNEXPLAINED**"
        lines.append(f"- seed {o.seed} world {o.index} ({world_line(o)}): "
                     f"{'; '.join(o.problems)}. Denying {o.denying}, causes "
                     f"{[c for c, _ in o.causes][:3]}, applied {o.applied}. {label}")
    unclassified = [o for o in failed if o.case == "c"]
    lines += ["", "## UNCLASSIFIED worlds", ""] + (
        [f"- seed {o.seed} world {o.index} ({world_line(o)}): denying {o.denying}"
         for o in unclassified] or ["None."])
    refused = [o for o in outcomes if o.status in ("REFUSED", "BUILD_ERROR", "RUN_ERROR")]
    lines += ["", "## Worlds not built, refused or not run", ""] + (
        [f"- seed {o.seed} world {o.index} ({world_line(o)}): {o.status} {o.note}"
         for o in refused] or ["None."])
    commands = collections.Counter(o.command_status for o in failed if o.command_status)
    lines += ["", "## Corrected commands applied as the exporter (case b)", "",
              "| fresh export | worlds |", "|---|---|"] + [
        f"| {k} | {v} |" for k, v in commands.most_common()]
    differ = meta.get("differ", [])
    lines += ["", "## Our evaluator (src/policy/) against iam-simulate, request by request", "",
              f"{meta.get('cases', 0)} requests judged by both (requests on a key with a KMS "
              f"grant are left out: a case has no place for grants); they decide "
              f"{len(differ)} differently.", ""]
    kinds = collections.Counter((d["action"], d["simulate"], str(d["ours"]),
                                 "+".join(d["layers"] or [])) for d in differ)
    if kinds:
        lines += ["| action | iam-simulate | ours | simulate's layers | requests | example |",
                  "|---|---|---|---|---|---|"]
        for (action, sim, ours, layers), n in kinds.most_common():
            ex = next(d["id"] for d in differ if (d["action"], d["simulate"], str(d["ours"]),
                                                   "+".join(d["layers"] or [])) ==
                      (action, sim, ours, layers))
            lines.append(f"| {action} | {sim} | {ours} | {layers} | {n} | {ex} |")
    lines += ["", "## The launcher's choices where AWS is silent (copied from "
              "docs/emulator-enforcing.md)", ""] + launcher_choices()
    return "\n".join(lines) + "\n"


def launcher_choices() -> list[str]:
    """The numbered list of choices the enforcing mode made, as its page states them."""
    page = ROOT / "docs" / "emulator-enforcing.md"
    text = page.read_text() if page.exists() else ""
    start = text.find("## Choices where AWS")
    if start < 0:
        return ["(docs/emulator-enforcing.md has no list of choices)"]
    body = text[start:].split("\n", 1)[1]
    end = body.find("\n## ")
    return [l for l in (body[:end] if end >= 0 else body).strip().splitlines()
            if not l.startswith("Each is marked")]


def world_line(o: Outcome) -> str:
    return ", ".join(f"{k}={v}" for k, v in o.draw.items()
                     if not (k in ("pitr", "requester_pays") and v in ("on", "off") and
                             v == DIMENSIONS[k][0][0]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seed", type=int, action="append", required=True,
                   help="a seed (repeat for several)")
    r.add_argument("--count", type=int, action="append", required=True,
                   help="worlds for the seed at the same position")
    r.add_argument("--json", type=Path)
    r.add_argument("--markdown", type=Path)
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.add_argument("--answers", action="store_true", help="keep the function's answers in --json")
    r.add_argument("--only", type=int, action="append", help="run only these indexes")
    rp = sub.add_parser("report", help="render --markdown again from a --json of a run")
    rp.add_argument("json", type=Path)
    rp.add_argument("--markdown", type=Path, required=True)
    sh = sub.add_parser("show")
    sh.add_argument("--seed", type=int, required=True)
    sh.add_argument("--index", type=int, required=True)
    args = ap.parse_args()
    if args.cmd == "report":
        data = json.loads(args.json.read_text())
        outcomes = [Outcome(**o) for o in data["outcomes"]]
        seeds = [tuple(x) for x in data["seeds"]]
        args.markdown.write_text(markdown(outcomes, seeds, data["meta"]))
        print(json.dumps(summary(outcomes)))
        return 0
    if args.cmd == "show":
        print(json.dumps(draw(args.seed, args.index), indent=2))
        return 0
    if len(args.seed) != len(args.count):
        ap.error("one --count per --seed")
    seeds = list(zip(args.seed, args.count))
    global KEEP_ANSWERS, ONLY
    KEEP_ANSWERS = args.answers
    ONLY = set(args.only or [])
    for seed, count in seeds:
        print(f"seed {seed}: {count} worlds", flush=True)
    outcomes, meta = run(seeds, progress=not args.quiet)
    for o in outcomes:
        e = explain(o) if o.problems else None
        o.explained = list(e) if e else None
    s = summary(outcomes)
    print(json.dumps(s), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"summary": s, "seeds": seeds, "meta": meta,
                                         "outcomes": [asdict(o) for o in outcomes]}, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(outcomes, seeds, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
