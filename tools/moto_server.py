#!/usr/bin/env python3
"""Pinned moto server, patched so DynamoDB exports look and fail like AWS's.

Stock moto 5.2.5 ignores SSE flags and ClientToken, writes a wrong-format export ARN, can only
fail an export with S3NoSuchBucket, and answers several calls with HTTP 500 where AWS answers
with a modeled error. This launcher patches those spots, and keeps PutBucketRequestPayment
(stock moto ignores it and answers GetBucketRequestPayment with a listing).

Failure injection (moto stores bucket policies but never evaluates them), by bucket tags:
  moto-export-failure-code / moto-export-failure-message  fail every export to the bucket
  moto-export-delay-seconds                               stay IN_PROGRESS this long first
                                                          (the other tags are read after it)
  moto-export-require-sse = AES256|KMS                    emulate a bucket policy that denies
                                                          PutObject with any other SSE
Cross-account buckets behave as on AWS: without the right S3BucketOwner, or without a bucket
policy Allow for PutObject that names the table's account (or a principal in it, or "*"), the
export fails with S3AccessDenied and a bare "Access Denied" message.

Seeding many exports at once: an ExportTableToPointInTime body with "MotoBulkBuckets": [names]
starts and runs one export per name in that request (answer: {"MotoBulkExports": [[arn,
status], ...]}).

Seeding history: "MotoBackdateHours": H in an ExportTableToPointInTime body dates the export
(its id's millisecond stamp, StartTime, EndTime) H hours back. "MotoEnabledHoursAgo": H in an
UpdateContinuousBackups body dates the table's point-in-time recovery H hours back; such a table
then reports LatestRestorableDateTime = now - 5 minutes, as AWS typically does (stock moto
reports the enable time for both ends).

As on AWS, a FAILED export's description can lack fields: a bucket tagged
moto-export-omit-fields = "S3Prefix,ExportType,..." makes DescribeExport leave those out of its
failed exports. An export without S3SseAlgorithm to another account's bucket whose default
encryption is SSE-KMS with the AWS managed key (no key id, or aws/s3) fails with a bare
S3AccessDenied: that key's policy cannot admit another account.

Key policies, for keys tagged moto-enforce-key-policy=true: an SSE-KMS export fails (as KMS
would make it fail) unless an Allow statement for kms:GenerateDataKey names the principal that
started the export (an assumed role's role ARN, else arn:aws:iam::<account>:user/moto), its
account, or "*".

Enforcing mode (docs/emulator-enforcing.md): an export to a bucket tagged
moto-export-enforce = on, or every export with --enforce-exports, fails only because the policies
moto holds deny one of the requests DynamoDB makes for its caller, as judged by
@cloud-copilot/iam-simulate (tools/iam_sim, a test-time tool); --enforce-log FILE gets one JSON
line per enforced export.

Usage: moto_server.py [--host 127.0.0.1] [--port 0] [--parent-pid PID] [--port-file FILE]
                      [--enforce-exports] [--enforce-log FILE]
Prints "MOTO_READY http://HOST:PORT" on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import secrets
import sys
import threading
import time
import uuid

import moto.dynamodb.models.table_export as table_export_mod
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    JsonRESTError,
    MockValidationException,
    PointInTimeRecoveryUnavailable,
    TableNotFoundException,
)
from moto.dynamodb.models.utilities import dynamo_json_dump
from moto.dynamodb.responses import DynamoHandler
from moto.core.responses import ActionResult
from moto.kms.exceptions import NotFoundException as KmsNotFoundException
from moto.kms.models import KmsBackend
from moto.s3.responses import S3Response
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.utilities.utils import get_partition
from werkzeug.serving import make_server
import moto_test_event_pattern  # noqa: F401  TestEventPattern, by moto's own matcher

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "iam_sim"))
import enforce as enforcing  # noqa: E402  (tools/iam_sim/enforce.py: the enforcing mode)

TableExport = table_export_mod.TableExport
PAGE_MAX = 25


class ExportNotFoundException(JsonRESTError):
    def __init__(self, arn: str):
        super().__init__(ERROR_TYPE_PREFIX + "ExportNotFoundException", f"Export not found: {arn}")


class ExportConflictException(JsonRESTError):
    def __init__(self, token: str):
        super().__init__(
            ERROR_TYPE_PREFIX + "ExportConflictException",
            f"Export with ClientToken {token} already exists with different parameters",
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _as_datetime(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)


def _bucket_location(bucket_name: str):
    """(account id, backend, bucket) wherever the bucket lives, or None."""
    from moto.s3.models import s3_backends

    where = s3_backends.bucket_accounts.get(bucket_name)
    if where is None:
        return None
    partition, account_id = where
    backend = s3_backends[account_id][partition]
    bucket = backend.buckets.get(bucket_name)
    return None if bucket is None else (account_id, backend, bucket)


def _grants_writes(bucket, account: str) -> bool:
    """Does the bucket policy have an Allow for PutObject naming `account` (or everyone)?"""
    text = getattr(bucket, "policy", None)
    if not text:
        return False
    try:
        doc = json.loads(text.decode() if isinstance(text, bytes) else text)
    except ValueError:
        return False
    statements = doc.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]

    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _listed(st.get("Action", []))]
        if not any(a in ("*", "s3:*", "s3:put*", "s3:putobject") for a in actions):
            continue
        principal = st.get("Principal")
        names = _listed(principal.get("AWS", [])) if isinstance(principal, dict) else _listed(principal)
        if any(n == "*" or n == account or f":{account}:" in str(n) for n in names):
            return True
    return False


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _caller_principal(handler, account: str) -> str:
    """The IAM principal behind the request's access key, as moto's STS knows it."""
    import re

    from moto.sts.models import sts_backends

    match = re.search(r"Credential=([^/]+)/", handler.headers.get("Authorization", ""))
    if match:
        for acct in list(sts_backends.keys()):
            for backend in list(sts_backends[acct].values()):
                role = backend.get_assumed_role_from_access_key(match.group(1))
                if role is not None:
                    return role.role_arn
    return f"arn:aws:iam::{account}:user/moto"


def _key_admits(key_id: str, principal: str, region: str) -> tuple[bool, str]:
    """(allowed, key ARN) for GenerateDataKey as `principal`, on enforcing keys only."""
    from moto.kms.models import kms_backends

    parts = key_id.split(":")
    account = parts[4] if key_id.startswith("arn:") and len(parts) > 5 else principal.split(":")[4]
    key_region = parts[3] if key_id.startswith("arn:") and len(parts) > 5 else region
    backend = kms_backends[account][key_region]
    try:
        key = backend.keys[backend.get_key_id(key_id)]
    except Exception:  # unknown key: KMS's own failure is not emulated here
        return True, key_id
    tags = {t["TagKey"]: t["TagValue"] for t in backend.list_resource_tags(key.id).get("Tags", [])}
    if tags.get("moto-enforce-key-policy") != "true":
        return True, key.arn
    try:
        statements = _listed(json.loads(key.policy).get("Statement", []))
    except ValueError:
        return False, key.arn
    principal_account = principal.split(":")[4]
    names = {principal, principal_account, f"arn:aws:iam::{principal_account}:root", "*"}
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _listed(st.get("Action", []))]
        if not any(a in ("*", "kms:*", "kms:generatedatakey", "kms:generatedatakey*") for a in actions):
            continue
        p = st.get("Principal")
        who = _listed(p.get("AWS", [])) if isinstance(p, dict) else _listed(p)
        if any(w in names for w in who):
            return True, key.arn
    return False, key.arn


def _request_id() -> str:
    return secrets.token_hex(8).upper()


def _is_aws_managed_key(owner: str, region: str, key_id: str | None) -> bool:
    if key_id is None or key_id.endswith("alias/aws/s3"):
        return True
    from moto.kms.models import kms_backends

    backend = kms_backends[owner][region]
    try:
        return backend.keys[backend.get_key_id(key_id)].key_manager == "AWS"
    except Exception:
        return False


class AwsLikeTableExport(TableExport):
    def __init__(self, table, params: dict, region_name: str, table_account: str,
                 principal: str = "", backdate_hours: float = 0.0, session=None):
        threading.Thread.__init__(self, daemon=True)
        self.session = session  # moto's STS session of the caller (enforcing mode), or None
        self.principal = principal or f"arn:aws:iam::{table_account}:user/moto"
        self.partition = get_partition(region_name)
        self.table = table
        self.region_name = region_name
        self.account_id = table_account
        self.backdate = dt.timedelta(hours=backdate_hours)
        started = _now() - self.backdate
        export_id = f"{int(started.timestamp() * 1000):014d}-{secrets.token_hex(4)}"
        self.export_id = export_id
        self.arn = (
            f"arn:{self.partition}:dynamodb:{region_name}:{table_account}:"
            f"table/{table.name}/export/{export_id}"
        )
        self.params = params
        self.s3_bucket = params["S3Bucket"]
        self.s3_prefix = params.get("S3Prefix")
        self.s3_bucket_owner = params.get("S3BucketOwner")
        self.s3_sse_algorithm = params.get("S3SseAlgorithm")
        self.s3_sse_kms_key_id = params.get("S3SseKmsKeyId")
        self.client_token = params.get("ClientToken")
        self.export_format = params.get("ExportFormat", "DYNAMODB_JSON")
        self.export_type = params.get("ExportType", "FULL_EXPORT")
        self.incremental = params.get("IncrementalExportSpecification")
        self.omit: set[str] = set()
        self.export_time = _as_datetime(params.get("ExportTime")) or started
        self.start_time = started
        self.end_time: dt.datetime | None = None
        self.status = "IN_PROGRESS"
        self.failure_code: str | None = None
        self.failure_message: str | None = None
        self.item_count = 0
        self.processed_bytes = 0
        self.error_count = 0

    def _fail(self, code: str, message: str) -> None:
        self.status = "FAILED"
        self.failure_code = code
        self.failure_message = message
        self.end_time = _now() - self.backdate

    def _object_key(self, name: str) -> str:
        prefix = (self.s3_prefix or "").strip("/")
        base = f"{prefix}/AWSDynamoDB/{self.export_id}" if prefix else f"AWSDynamoDB/{self.export_id}"
        return f"{base}/{name}"

    def run(self) -> None:
        located = _bucket_location(self.s3_bucket)
        if located is None:
            if enforcing.enforce_all():
                _, code, message = enforcing.judge_export(self, None, None, self.session)
                self._fail(code or "S3NoSuchBucket", message or "The specified bucket does not exist")
                return
            self._fail("S3NoSuchBucket", "The specified bucket does not exist")
            return
        owner, backend, bucket = located
        tags = backend.tagger.get_tag_dict_for_resource(bucket.arn)
        self.omit = {f.strip() for f in tags.get("moto-export-omit-fields", "").split(",") if f.strip()}
        delay = float(tags.get("moto-export-delay-seconds", "0") or 0)
        if delay > 0:
            time.sleep(delay)
            # What the bucket enforces is read when the export writes, after the delay.
            tags = backend.tagger.get_tag_dict_for_resource(bucket.arn)
        if "moto-export-failure-code" in tags:
            self._fail(
                tags["moto-export-failure-code"],
                tags.get("moto-export-failure-message", "Access Denied"),
            )
            return
        if enforcing.is_enforced(tags):
            # The policies decide, judged by iam-simulate; none of the shortcuts below apply.
            outcome, code, message = enforcing.judge_export(self, owner, bucket, self.session)
            if outcome != "COMPLETED":
                self._fail(code or enforcing.REFUSED_CODE, message or "")
                return
            try:
                self._write(backend)
            except Exception as exc:  # mirror moto: any write error fails the export
                self._fail("UNKNOWN", str(exc))
            return
        expected_owner = self.s3_bucket_owner or self.account_id
        if expected_owner != owner:
            # S3 answers a wrong ExpectedBucketOwner with a bare 403.
            self._fail(
                "S3AccessDenied",
                "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; "
                f"Request ID: {_request_id()})",
            )
            return
        if owner != self.account_id and not _grants_writes(bucket, self.account_id):
            # S3 does evaluate this one: another account's writer needs the owner's grant.
            self._fail(
                "S3AccessDenied",
                "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; "
                f"Request ID: {_request_id()})",
            )
            return
        algorithm, default_key = enforcing.default_encryption(bucket)
        if (not self.s3_sse_algorithm and owner != self.account_id and algorithm == "aws:kms"
                and _is_aws_managed_key(owner, self.region_name, default_key)):
            # S3 applies the bucket default; aws/s3's policy admits only its own account.
            self._fail(
                "S3AccessDenied",
                "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; "
                f"Request ID: {_request_id()})",
            )
            return
        required = tags.get("moto-export-require-sse")
        if required and (self.s3_sse_algorithm or "").upper() != required.upper():
            resource = f"arn:{self.partition}:s3:::{self.s3_bucket}/{self._object_key('_started')}"
            self._fail(
                "S3AccessDenied",
                f"User: arn:{self.partition}:iam::{self.account_id}:root is not authorized to "
                f'perform: s3:PutObject on resource: "{resource}" with an explicit deny in a '
                "resource-based policy",
            )
            return
        if (self.s3_sse_algorithm or "").upper() == "KMS" and self.s3_sse_kms_key_id:
            allowed, key_arn = _key_admits(self.s3_sse_kms_key_id, self.principal, self.region_name)
            if not allowed:
                self._fail(
                    "S3AccessDenied",
                    f"User: arn:{self.partition}:iam::{self.account_id}:root is not authorized to "
                    f"perform: kms:GenerateDataKey on resource: {key_arn} because no "
                    "resource-based policy allows the kms:GenerateDataKey action",
                )
                return
        try:
            self._write(backend)
        except Exception as exc:  # mirror moto: any write error fails the export
            self._fail("UNKNOWN", str(exc))

    def _write(self, backend) -> None:
        lines = []
        for item in self.table.all_items():
            json_item = item.to_json(root_attr_name="Item")
            lines.append(dynamo_json_dump(json_item))
            self.processed_bytes += len(json_item)
            self.item_count += 1
        backend.put_object(self.s3_bucket, self._object_key("_started"), b"")
        data_key = self._object_key(f"data/{uuid.uuid4().hex}.json.gz")
        backend.put_object(self.s3_bucket, data_key, gzip.compress("\n".join(lines).encode()))
        summary = {
            "version": "2020-06-30",
            "exportArn": self.arn,
            "itemCount": self.item_count,
            "outputFormat": self.export_format,
        }
        backend.put_object(
            self.s3_bucket, self._object_key("manifest-summary.json"), json.dumps(summary).encode()
        )
        self.status = "COMPLETED"
        self.end_time = _now() - self.backdate

    def response(self) -> dict:
        out = {
            "ExportArn": self.arn,
            "ExportStatus": self.status,
            "TableArn": self.table.table_arn,
            "TableId": getattr(self.table, "table_id", None),
            "ExportTime": self.export_time,
            "StartTime": self.start_time,
            "EndTime": self.end_time,
            "ClientToken": self.client_token,
            "S3Bucket": self.s3_bucket,
            "S3BucketOwner": self.s3_bucket_owner,  # AWS omits it when the request gave none
            "S3Prefix": self.s3_prefix,
            "S3SseAlgorithm": self.s3_sse_algorithm,
            "S3SseKmsKeyId": self.s3_sse_kms_key_id,
            "FailureCode": self.failure_code,
            "FailureMessage": self.failure_message,
            "ExportFormat": self.export_format,
            "ExportType": self.export_type,
            "IncrementalExportSpecification": self.incremental,
        }
        if self.status == "FAILED":
            for field in self.omit:
                out.pop(field, None)
        if self.status == "COMPLETED":
            out["ItemCount"] = self.item_count
            out["BilledSizeBytes"] = self.processed_bytes
            out["ExportManifest"] = self._object_key("manifest-summary.json")
        return {k: v for k, v in out.items() if v is not None}


# Parameters that make two requests with one ClientToken "the same export".
_IDEMPOTENT_KEYS = (
    "TableArn", "S3Bucket", "S3BucketOwner", "S3Prefix", "S3SseAlgorithm", "S3SseKmsKeyId",
    "ExportFormat", "ExportType", "ExportTime", "IncrementalExportSpecification",
)


def _export_table_to_point_in_time(self: DynamoHandler) -> ActionResult:
    body = self.body
    backend = self.dynamodb_backend
    table_arn = body["TableArn"]
    table = next((t for t in backend.tables.values() if t.table_arn == table_arn), None)
    if table is None:
        raise TableNotFoundException(name=table_arn)
    pitr = table.continuous_backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
    if pitr != "ENABLED":
        raise PointInTimeRecoveryUnavailable(name=table_arn.split("/")[-1])
    sse = body.get("S3SseAlgorithm")
    if sse is not None and sse not in ("AES256", "KMS"):
        raise MockValidationException(f"Invalid S3SseAlgorithm: {sse}")
    token = body.get("ClientToken")
    exports = backend.table_exports
    if token:
        for existing in exports.values():
            if getattr(existing, "client_token", None) == token:
                same = all(
                    _normalise(existing.params.get(k)) == _normalise(body.get(k))
                    for k in _IDEMPOTENT_KEYS
                )
                if not same:
                    raise ExportConflictException(token)
                return ActionResult({"ExportDescription": existing.response()})
    # The parsed body keeps modeled members only: the extensions are read from the raw one.
    raw = json.loads(self.raw_body or b"{}")
    backdate = float(raw.get("MotoBackdateHours") or 0)
    bulk = raw.get("MotoBulkBuckets")
    if bulk is not None:
        return _bulk_exports(self, table, body, bulk, backdate)
    export = AwsLikeTableExport(
        table, dict(body), backend.region_name, backend.account_id,
        _caller_principal(self, backend.account_id), backdate, enforcing.caller_session(self),
    )
    exports[export.arn] = export
    export.start()
    return ActionResult({"ExportDescription": export.response()})


def _bulk_exports(self: DynamoHandler, table, body: dict, buckets: list,
                  backdate: float = 0.0) -> str:
    """Seeding only (`seed.py bulk`): one export to each bucket named, run to its end here and
    now, so that 10,000 exports take one request instead of 10,000."""
    backend = self.dynamodb_backend
    principal = _caller_principal(self, backend.account_id)
    session = enforcing.caller_session(self)
    made = []
    for bucket in buckets:
        export = AwsLikeTableExport(table, {**body, "S3Bucket": bucket}, backend.region_name,
                                    backend.account_id, principal, backdate, session)
        backend.table_exports[export.arn] = export
        export.run()
        made.append([export.arn, export.status])
    return json.dumps({"MotoBulkExports": made})


def _normalise(value):
    return _as_datetime(value).timestamp() if isinstance(value, (dt.datetime, float, int)) else value


def _describe_export(self: DynamoHandler) -> ActionResult:
    arn = self.body["ExportArn"]
    export = self.dynamodb_backend.table_exports.get(arn)
    if export is None:
        raise ExportNotFoundException(arn)
    return ActionResult({"ExportDescription": export.response()})


def _list_exports(self: DynamoHandler) -> ActionResult:
    body = self.body
    table_arn = body.get("TableArn")
    limit = int(body.get("MaxResults") or PAGE_MAX)
    if not 1 <= limit <= PAGE_MAX:
        raise MockValidationException("MaxResults must be between 1 and 25")
    exports = [
        e for e in self.dynamodb_backend.table_exports.values()
        if table_arn is None or e.table.table_arn == table_arn
    ]
    exports.sort(key=lambda e: e.arn, reverse=True)
    token = body.get("NextToken")
    if token:
        exports = [e for e in exports if e.arn < token]
    page = exports[:limit]
    result = {
        "ExportSummaries": [
            {"ExportArn": e.arn, "ExportStatus": e.status, "ExportType": e.export_type}
            for e in page
        ]
    }
    if len(exports) > limit:
        result["NextToken"] = page[-1].arn
    return ActionResult(result)


_stock_update_continuous_backups = DynamoHandler.update_continuous_backups
_stock_describe_continuous_backups = DynamoHandler.describe_continuous_backups


def _update_continuous_backups(self: DynamoHandler) -> ActionResult:
    result = _stock_update_continuous_backups(self)
    hours = json.loads(self.raw_body or b"{}").get("MotoEnabledHoursAgo")
    if hours is not None:
        table = self.dynamodb_backend.get_table(self.body["TableName"])
        desc = table.continuous_backups["PointInTimeRecoveryDescription"]
        desc["EarliestRestorableDateTime"] = time.time() - float(hours) * 3600
        table.moto_pitr_backdated = True
    return result


def _describe_continuous_backups(self: DynamoHandler) -> ActionResult:
    table = self.dynamodb_backend.tables.get(self.body.get("TableName"))
    if table is not None and getattr(table, "moto_pitr_backdated", False):
        desc = table.continuous_backups["PointInTimeRecoveryDescription"]
        desc["LatestRestorableDateTime"] = time.time() - 300
    return _stock_describe_continuous_backups(self)


_stock_bucket_get = S3Response._bucket_response_get
_stock_bucket_put = S3Response._bucket_response_put
_REQUEST_PAYMENT_XML = (
    '<?xml version="1.0" encoding="UTF-8"?><RequestPaymentConfiguration '
    'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Payer>{}</Payer></RequestPaymentConfiguration>'
)


def _bucket_response_get(self: S3Response, bucket_name: str, querystring: dict):
    """GetBucketRequestPayment, which stock moto answers with a listing (it reads no Payer)."""
    if "requestPayment" in querystring:
        bucket = self.backend.get_bucket(bucket_name)
        return 200, {}, _REQUEST_PAYMENT_XML.format(getattr(bucket, "payer", "BucketOwner"))
    return _stock_bucket_get(self, bucket_name, querystring)


def _bucket_response_put(self: S3Response, request, bucket_name: str, querystring: dict):
    """PutBucketRequestPayment, which stock moto ignores: the bucket keeps the Payer given."""
    if "requestPayment" in querystring:
        import re

        bucket = self.backend.get_bucket(bucket_name)
        payer = re.search(r"<Payer>\s*(\w+)\s*</Payer>", (self.body or b"").decode("utf-8"))
        if payer is None or payer.group(1) not in ("Requester", "BucketOwner"):
            return 400, {}, "MalformedXML"
        bucket.payer = payer.group(1)
        return 200, {}, ""
    return _stock_bucket_put(self, request, bucket_name, querystring)


_stock_generate_default_keys = KmsBackend._generate_default_keys


def _generate_default_keys(self: KmsBackend, alias_name: str):
    key_id = _stock_generate_default_keys(self, alias_name)
    if key_id is not None:
        self.keys[key_id].key_manager = "AWS"  # alias/aws/* keys are AWS managed
    return key_id


_stock_list_grants = KmsBackend.list_grants


def _list_grants(self: KmsBackend, key_id: str, grant_id: str):
    """Stock moto answers ListGrants for a key it does not hold here (a key ARN of another
    Region, for one) with HTTP 500; KMS answers NotFoundException, since a KMS key is used in its
    own Region only ("AWS KMS API reference: ListGrants", Errors; https://docs.aws.amazon.com/kms/latest/APIReference/API_ListGrants.html).
    A 500 would read as a transient fault."""
    try:
        return _stock_list_grants(self, key_id, grant_id)
    except KeyError:
        raise KmsNotFoundException(f"Key '{key_id}' does not exist") from None


def apply_patches() -> None:
    table_export_mod.TableExport = AwsLikeTableExport
    DynamoHandler.export_table_to_point_in_time = _export_table_to_point_in_time
    DynamoHandler.describe_export = _describe_export
    DynamoHandler.list_exports = _list_exports
    DynamoHandler.update_continuous_backups = _update_continuous_backups
    DynamoHandler.describe_continuous_backups = _describe_continuous_backups
    KmsBackend._generate_default_keys = _generate_default_keys
    KmsBackend.list_grants = _list_grants
    S3Response._bucket_response_get = _bucket_response_get
    S3Response._bucket_response_put = _bucket_response_put


def _exit_with_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    parser.add_argument("--port-file", help="also write the port here")
    parser.add_argument("--enforce-exports", action="store_true",
                        help="judge every export's requests with iam-simulate (else only buckets "
                             "tagged moto-export-enforce=on)")
    parser.add_argument("--enforce-log", metavar="FILE",
                        help="append one JSON line per enforced export here")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the emulator listens on loopback only")

    enforcing.configure(args.enforce_exports, args.enforce_log)
    apply_patches()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(args.host, args.port, app, threaded=True)
    if args.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    if args.port_file:
        with open(args.port_file, "w", encoding="utf-8") as fh:
            fh.write(str(server.port))
    print(f"MOTO_READY http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
