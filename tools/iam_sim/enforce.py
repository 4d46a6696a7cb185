"""The emulator's enforcing mode: an export fails because the policies moto holds deny it.

Imported by tools/moto_server.py (the launcher); docs/emulator-enforcing.md is the user's page
and lists every choice made here where AWS's documentation is silent ("CHOICE" below).

For an enforced export this module builds the requests DynamoDB makes for its caller (S3's
PutObject, PutObjectAcl and AbortMultipartUpload on the export's objects, then KMS's
GenerateDataKey and Decrypt through S3 when the objects are SSE-KMS), gathers every policy layer
moto holds (the caller role's inline and managed policies, its permissions boundary, the session
policy, the bucket policy, the key policy and grants, the SCPs on the caller account's path) and
asks @cloud-copilot/iam-simulate (tools/iam_sim/judge.cjs, one long-lived node process) to decide
each request. AWS pages relied on:

- Requesting a table export in DynamoDB,
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport_Requesting.html
  (the caller needs s3:AbortMultipartUpload, s3:PutObject and s3:PutObjectAcl on the objects; a
  KMS key "must be in the same Region as the destination S3 bucket"; the key's policy must let
  "the IAM User/Role that triggers the export job" use it; requester pays buckets "aren't
  supported").
- Policy evaluation logic and Cross-account policy evaluation logic,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html and
  .../reference_policies_evaluation-logic-cross-account.html (explicit deny wins; SCPs,
  boundaries and session policies limit; across accounts both sides must allow).
- AWS global condition context keys,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
  (aws:PrincipalArn is the role ARN for a role session; aws:CalledVia, aws:ViaAWSService,
  aws:SecureTransport, aws:ResourceAccount, aws:PrincipalOrgID).
- AWS KMS condition keys, https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html
  (kms:ViaService = <service>.<Region>.amazonaws.com, kms:CallerAccount,
  kms:EncryptionContext:<key>).
- Protecting data with SSE-KMS / Encryption context,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html (S3's encryption
  context is aws:s3:arn = the object ARN; x-amz-server-side-encryption: aws:kms without a key id
  uses the AWS managed key aws/s3; a key alias or bare key id resolves in the requester's
  account: "you must use a fully qualified KMS key ARN" across accounts).
- Multipart upload and permissions,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html (an SSE-KMS multipart
  upload needs kms:GenerateDataKey and kms:Decrypt).
- Verifying bucket ownership with bucket owner condition,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html (a wrong
  expected owner fails with 403 Access Denied).
- Access denied error messages,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html (the reason
  phrases of the enhanced message; only one policy type is named when several deny; an SCP
  denial may read "explicit deny" even when implicit).
- Troubleshoot access denied (403 Forbidden) errors in Amazon S3,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshoot-403-errors.html (the
  enhanced context is added only for requests within the same account or organization).
- Grants in AWS KMS, https://docs.aws.amazon.com/kms/latest/developerguide/grants.html (a grant
  lets its grantee principal use the key for the grant's operations, within its constraints).
- How SCPs work / management account,
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html (SCPs
  do not affect principals in the management account; every level of the path must allow).

What moto cannot show: none of this is AWS itself. The request context DynamoDB's writes carry
(forward access sessions, headers, ACL) is not documented; each choice is named in
docs/emulator-enforcing.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
JUDGE_SCRIPT = HERE / "judge.cjs"
ENFORCE_TAG = "moto-export-enforce"
REFUSED_CODE = "EmulatorRefused"
ACCESS_DENIED_CODE = "S3AccessDenied"
DYNAMODB = "dynamodb.amazonaws.com"
JUDGE_TIMEOUT_S = 30.0

_settings = {"all": False, "log": None}
_log_lock = threading.Lock()


def configure(enforce_all: bool, log_path: str | None) -> None:
    _settings["all"] = bool(enforce_all)
    _settings["log"] = log_path
    if enforce_all or log_path:
        # Start node and load iam-simulate now (about 0.2 s), not inside the first export.
        threading.Thread(target=JUDGE.warm, daemon=True).start()


def is_enforced(tags: dict) -> bool:
    return _settings["all"] or str(tags.get(ENFORCE_TAG, "")).strip().lower() == "on"


def enforce_all() -> bool:
    return bool(_settings["all"])


class Refused(Exception):
    """This world cannot be judged: the export fails EmulatorRefused, and the log says why."""


# ---------------------------------------------------------------------------------------------
# The judge: one long-lived node process running tools/iam_sim/judge.cjs (JSON lines).


class Judge:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._next = 0

    def _start(self) -> subprocess.Popen:
        node = shutil.which("node")
        if node is None:
            raise Refused("node is not installed: the enforcing mode needs Node.js 18 or later")
        if not (HERE / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
            raise Refused("iam-simulate is not installed: run `make tools` (npm ci --prefix tools/iam_sim)")
        return subprocess.Popen(
            [node, str(JUDGE_SCRIPT)], cwd=str(HERE), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )

    def judge(self, simulations: list[dict]) -> list[dict]:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            self._next += 1
            ident = self._next
            line = json.dumps({"id": ident, "simulations": simulations})
            proc = self._proc
            # A judge that hangs is killed, so that the export fails (refused) instead of
            # staying IN_PROGRESS for ever; the next export starts a new one.
            watchdog = threading.Timer(JUDGE_TIMEOUT_S, proc.kill)
            watchdog.start()
            try:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(line + "\n")
                proc.stdin.flush()
                answer = proc.stdout.readline()
            except (BrokenPipeError, OSError) as exc:
                self._proc = None
                raise Refused(f"the iam-simulate process failed: {exc}") from exc
            finally:
                watchdog.cancel()
            if not answer:
                self._proc = None
                raise Refused(f"the iam-simulate process gave no answer within {JUDGE_TIMEOUT_S} s")
            reply = json.loads(answer)
            if reply.get("id") != ident or len(reply.get("results", [])) != len(simulations):
                raise Refused(f"iam-simulate answered out of order: {answer[:200]}")
            return reply["results"]

    def warm(self) -> None:
        try:
            self.judge([])
        except Refused:
            pass  # said again, with its reason, by the first enforced export

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
            self._proc = None


JUDGE = Judge()


# ---------------------------------------------------------------------------------------------
# Reading the world out of moto.


def _doc(text) -> dict | None:
    if text is None or text == "":
        return None
    if isinstance(text, dict):
        return text
    if isinstance(text, bytes):
        text = text.decode()
    try:
        from urllib.parse import unquote

        return json.loads(text if text.lstrip().startswith("{") else unquote(text))
    except ValueError as exc:
        raise Refused(f"a policy is not JSON: {exc}") from exc


def _managed_document(policy) -> dict | None:
    for version in getattr(policy, "versions", []):
        if getattr(version, "is_default", False) or getattr(version, "version_id", None) == getattr(
                policy, "default_version_id", None):
            return _doc(version.document)
    return None


def _iam(account: str):
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"]


def _role_tags(role) -> dict[str, str]:
    tags = getattr(role, "tags", None) or {}
    out: dict[str, str] = {}
    if isinstance(tags, dict):
        for k, v in tags.items():
            out[k] = v.get("Value", "") if isinstance(v, dict) else str(v)
    elif isinstance(tags, list):
        for t in tags:
            if isinstance(t, dict) and "Key" in t:
                out[t["Key"]] = t.get("Value", "")
    return out


@dataclass
class Caller:
    session_arn: str
    role_arn: str
    account: str
    identity_policies: list[dict]
    boundary: dict | None
    session_policy: dict | None
    tags: dict[str, str]
    user_id: str


def read_caller(session) -> Caller:
    """The caller's role session, its role's policies, boundary and the session policy."""
    if session is None:
        raise Refused("the export's caller is not an assumed-role session (the enforcing mode "
                      "judges role sessions: call ExportTableToPointInTime with AssumeRole credentials)")
    role_arn = session.role_arn
    account = role_arn.split(":")[4]
    iam = _iam(account)
    try:
        role = iam.get_role_by_arn(role_arn)
    except Exception as exc:  # moto raises its own not-found error
        raise Refused(f"the caller's role {role_arn} does not exist in moto") from exc
    policies = []
    for name, text in sorted(getattr(role, "policies", {}).items()):
        doc = _doc(text)
        if doc is not None:
            policies.append({"name": f"inline:{name}", "policy": doc})
    for arn, managed in sorted(getattr(role, "managed_policies", {}).items()):
        doc = _managed_document(managed)
        if doc is not None:
            policies.append({"name": arn, "policy": doc})
    boundary = None
    if getattr(role, "permissions_boundary_arn", None):
        try:
            boundary = _managed_document(iam.get_policy(role.permissions_boundary_arn))
        except Exception as exc:
            raise Refused(f"the permissions boundary {role.permissions_boundary_arn} is not in moto") from exc
        if boundary is None:
            raise Refused(f"the permissions boundary {role.permissions_boundary_arn} has no document")
    return Caller(
        session_arn=session.arn, role_arn=role_arn, account=account,
        identity_policies=policies, boundary=boundary,
        session_policy=_doc(getattr(session, "policy", None)),
        tags=_role_tags(role), user_id=f"{role.id}:{session.session_name}",
    )


@dataclass
class OrgView:
    org_id: str | None = None
    management: str | None = None
    accounts: set[str] = field(default_factory=set)
    scp_levels: list[dict] = field(default_factory=list)  # root first, the account last
    path: str | None = None  # aws:PrincipalOrgPaths form: o-.../r-.../ou-.../

    def org_of(self, account: str) -> str | None:
        return self.org_id if account in self.accounts else None


def read_org(account: str) -> OrgView:
    """The organization `account` is in (if any) and the SCPs on its path, root first."""
    from moto.organizations.models import organizations_backends

    for owner in list(organizations_backends.keys()):
        for backend in list(organizations_backends[owner].values()):
            org = getattr(backend, "org", None)
            if org is None:
                continue
            members = {a.id for a in backend.accounts}
            if account not in members:
                continue
            view = OrgView(org_id=org.id, management=org.master_account_id, accounts=members)
            node = next(a for a in backend.accounts if a.id == account)
            path = [node]
            parent = getattr(node, "parent_id", None)
            while parent:
                ou = next((o for o in backend.ou if o.id == parent), None)
                if ou is None:
                    break
                path.append(ou)
                parent = getattr(ou, "parent_id", None)
            view.path = "/".join([org.id] + [level.id for level in reversed(path[1:])]) + "/"
            if account == org.master_account_id:
                return view  # SCPs do not affect the management account
            for level in reversed(path):
                scps = [p for p in getattr(level, "attached_policies", [])
                        if getattr(p, "type", "") == "SERVICE_CONTROL_POLICY"]
                view.scp_levels.append({
                    "orgIdentifier": level.id,
                    "policies": [{"name": p.id, "policy": _doc(p.content)} for p in scps],
                })
            return view
    return OrgView()


@dataclass
class KeyView:
    arn: str
    account: str
    region: str
    policy: dict
    grants: list
    aws_managed: bool
    state: str


def aws_managed_s3_key_policy(account: str, region: str) -> dict:
    """The key policy AWS gives the aws/s3 AWS managed key (it cannot be edited): anyone in the
    owning account may use it through S3. Shown on the key's page in the KMS console; see AWS
    managed keys, https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk.
    moto gives the key a plain root-delegation policy, so the launcher stands this one in."""
    return {
        "Version": "2012-10-17",
        "Id": "auto-s3-2",
        "Statement": [
            {
                "Sid": "Allow access through S3 for all principals in the account that are authorized to use S3",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                           "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account,
                                               "kms:ViaService": f"s3.{region}.amazonaws.com"}},
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
                "Resource": "*",
            },
        ],
    }


def _kms(account: str, region: str):
    from moto.kms.models import kms_backends

    return kms_backends[account][region]


def resolve_key(ref: str, requester: str, region: str) -> KeyView | str:
    """The key S3 would use for `ref`, or why there is none ("encryption" layer).

    A key ARN or alias ARN names its account and Region. A bare key id or alias name resolves in
    the requester's account (S3: "If you use a KMS key alias instead, then KMS resolves the key
    within the requester's account"), in the bucket's Region (S3 calls KMS in its own Region)."""
    if ref.startswith("arn:"):
        parts = ref.split(":")
        if len(parts) < 6:
            return f"{ref} is not a KMS key ARN"
        key_region, account = parts[3], parts[4]
    else:
        key_region, account = region, requester
    if key_region != region:
        # "the key must be in the same Region as the destination S3 bucket" (DynamoDB export doc)
        return f"the key {ref} is in {key_region}, the bucket in {region}"
    backend = _kms(account, key_region)
    alias = backend.get_alias_name(ref)
    if alias.startswith("alias/aws/") and not backend.alias_exists(alias):
        backend._generate_default_keys(alias)  # AWS creates an AWS managed key on first use
    try:
        key = backend.keys[backend.any_id_to_key_id(ref)]
    except Exception:
        return f"KMS finds no key {ref} in account {account}, Region {key_region}"
    aws_managed = getattr(key, "key_manager", "CUSTOMER") == "AWS"
    policy = aws_managed_s3_key_policy(account, key_region) if aws_managed else _doc(key.policy)
    return KeyView(arn=key.arn, account=account, region=key_region, policy=policy or {},
                   grants=list(getattr(key, "grants", {}).values()), aws_managed=aws_managed,
                   state=getattr(key, "key_state", "Enabled"))


def default_encryption(bucket) -> tuple[str | None, str | None]:
    """(SSEAlgorithm, KMSMasterKeyID) of the bucket's default encryption."""
    found: dict = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("SSEAlgorithm", "KMSMasterKeyID") and isinstance(v, str):
                    found.setdefault(k, v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(getattr(bucket, "encryption", None) or {})
    return found.get("SSEAlgorithm"), found.get("KMSMasterKeyID")


# ---------------------------------------------------------------------------------------------
# The requests, their context and their judgement.


def _now_context() -> dict:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return {"aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now.timestamp()))}


def principal_context(caller: Caller, org: OrgView, resource_account: str, region: str) -> dict:
    ctx = {
        "aws:PrincipalArn": caller.role_arn,
        "aws:PrincipalAccount": caller.account,
        "aws:PrincipalType": "AssumedRole",
        "aws:userid": caller.user_id,
        "aws:ResourceAccount": resource_account,
        "aws:SecureTransport": "true",
        # CHOICE: DynamoDB writes with a forward access session of the caller, so the calls carry
        # aws:CalledVia = [dynamodb] and aws:ViaAWSService = true, and no aws:SourceIp/SourceVpc.
        "aws:CalledVia": [DYNAMODB],
        "aws:CalledViaFirst": DYNAMODB,
        "aws:CalledViaLast": DYNAMODB,
        "aws:ViaAWSService": "true",
        "aws:RequestedRegion": region,
        **_now_context(),
    }
    if org.org_id:
        ctx["aws:PrincipalOrgID"] = org.org_id
        ctx["aws:PrincipalOrgPaths"] = [org.path]
    resource_org = org.org_of(resource_account) or read_org(resource_account).org_id
    if resource_org:
        ctx["aws:ResourceOrgID"] = resource_org
    for k, v in caller.tags.items():
        ctx[f"aws:PrincipalTag/{k}"] = v
    return ctx


@dataclass
class Request:
    action: str
    resource: str
    resource_account: str
    context: dict
    resource_policy: dict | None
    service: str  # "s3" or "kms"
    decision: str = "ImplicitDeny"
    layers: list[str] = field(default_factory=list)
    kind: str = "Implicit"  # of the first layer: Explicit or Implicit
    pre_denied: list[str] = field(default_factory=list)  # owner, requester_pays, encryption
    judged: bool = True


def simulation(req: Request, caller: Caller, org: OrgView) -> dict:
    sim = {
        "request": {
            "principal": caller.session_arn,
            "action": req.action,
            "resource": {"resource": req.resource, "accountId": req.resource_account},
            "contextVariables": req.context,
        },
        "identityPolicies": caller.identity_policies,
        "serviceControlPolicies": org.scp_levels,
        "resourceControlPolicies": [],
    }
    if req.resource_policy is not None:
        sim["resourcePolicy"] = req.resource_policy
    if caller.boundary is not None:
        sim["permissionBoundaryPolicies"] = [{"name": "boundary", "policy": caller.boundary}]
    if caller.session_policy is not None:
        sim["sessionPolicy"] = caller.session_policy
    return sim


_DECISION = {"Allowed": "Allow", "ExplicitlyDenied": "ExplicitDeny", "ImplicitlyDenied": "ImplicitDeny"}
_LAYER = {"identity": "identity", "pb": "boundary", "scp": "scp", "session": "session"}
# CHOICE: which policy type the enhanced message names when several deny (AWS names one, which
# one is undocumented): explicit denials first, in this order, then implicit ones.
_PRIORITY = ["scp", "boundary", "session", "identity", "bucket_policy", "key_policy", "grant"]


def _grant_covers(grant, caller: Caller, req: Request) -> bool | None:
    """True when a grant to the caller allows this operation in this context; False when a grant
    names the caller but does not cover it; None when no grant names the caller."""
    grantee = getattr(grant, "grantee_principal", "")
    if grantee not in (caller.role_arn, caller.session_arn):
        return None
    op = req.action.split(":", 1)[1]
    if op not in (getattr(grant, "operations", None) or []):
        return False
    constraints = getattr(grant, "constraints", None) or {}
    context = {"aws:s3:arn": req.context.get("kms:EncryptionContext:aws:s3:arn")}
    subset = constraints.get("EncryptionContextSubset")
    if subset and any(context.get(k) != v for k, v in subset.items()):
        return False
    equals = constraints.get("EncryptionContextEquals")
    if equals and equals != context:
        return False
    return True


def apply_result(req: Request, result: dict, same_account: bool, caller: Caller,
                 key: KeyView | None) -> None:
    if result.get("errors"):
        raise Refused(f"iam-simulate refused {req.action} on {req.resource}: "
                      f"{json.dumps(result['errors'])[:800]}")
    overall = result.get("overall")
    if overall not in _DECISION:
        raise Refused(f"iam-simulate gave no decision for {req.action}: {overall!r}")
    resource_layer = "bucket_policy" if req.service == "s3" else "key_policy"
    explicit, implicit = [], []
    layers = result.get("layers", {})
    if layers.get("session") == "ExplicitlyDenied":
        explicit.append("session")
    elif layers.get("session") == "ImplicitlyDenied":
        implicit.append("session")
    for denial in result.get("denials", []):
        name = _LAYER.get(denial.get("policyType"))
        if denial.get("policyType") == "resource":
            name = resource_layer
        if name is None:
            continue  # rcp / vpce: not modelled here
        (explicit if denial.get("denialType") == "Explicit" else implicit).append(name)
    if overall == "ImplicitlyDenied" and not same_account:
        # Across accounts both sides must allow; iam-simulate leaves a side that is silent (no
        # bucket policy at all: "NotApplicable") out of its denial reasons, so name it here.
        if layers.get("identity") != "Allowed":
            implicit.append("identity")
        if layers.get("resource") not in ("Allowed", "AllowedForAccount"):
            implicit.append(resource_layer)
    if overall == "ImplicitlyDenied" and req.service == "s3" and same_account and "identity" in implicit:
        # In one account either an identity policy or the bucket policy allows: a bucket policy
        # that is silent about the caller is not what denies (the identity policy is).
        implicit = [x for x in implicit if x != "bucket_policy"]
    decision = _DECISION[overall]
    if req.service == "kms" and decision == "ImplicitDeny" and key is not None and not explicit:
        covered = [_grant_covers(g, caller, req) for g in key.grants]
        if any(c is True for c in covered) and not any(x in implicit for x in ("scp", "boundary", "session")):
            decision = "Allow"  # CHOICE: a grant stands in for both the key policy and IAM
            implicit = []
        elif any(c is False for c in covered):
            implicit.append("grant")
    req.decision = decision
    if decision == "Allow":
        req.layers = []
        return
    ordered_explicit = sorted(dict.fromkeys(explicit), key=_PRIORITY.index)
    ordered_implicit = sorted(dict.fromkeys(implicit), key=_PRIORITY.index)
    req.layers = ordered_explicit + [x for x in ordered_implicit if x not in ordered_explicit]
    req.kind = "Explicit" if ordered_explicit else "Implicit"
    if not req.layers:
        # iam-simulate denied without naming a layer we model: say so rather than guess.
        raise Refused(f"iam-simulate denied {req.action} without a layer this launcher models: "
                      f"{json.dumps(result)[:800]}")


# ---------------------------------------------------------------------------------------------
# Messages.

_REASON_IMPLICIT = {
    "identity": "because no identity-based policy allows the {a} action",
    "bucket_policy": "because no resource-based policy allows the {a} action",
    "key_policy": "because no resource-based policy allows the {a} action",
    "grant": "because no resource-based policy allows the {a} action",
    "boundary": "because no permissions boundary allows the {a} action",
    "session": "because no session policy allows the {a} action",
    # "the error message can include the phrase due to an explicit deny in a Service Control
    # Policy, even if the denial is implicit" (Access denied error messages): CHOICE, always so.
    "scp": "with an explicit deny in a service control policy",
}
_REASON_EXPLICIT = {
    "identity": "with an explicit deny in an identity-based policy",
    "bucket_policy": "with an explicit deny in a resource-based policy",
    "key_policy": "with an explicit deny in a resource-based policy",
    "grant": "with an explicit deny in a resource-based policy",
    "boundary": "with an explicit deny in a permissions boundary",
    "session": "with an explicit deny in a session policy",
    "scp": "with an explicit deny in a service control policy",
}


def _ids(export_id: str) -> tuple[str, str]:
    digest = hashlib.sha256(export_id.encode()).digest()
    return digest[:8].hex().upper(), base64.b64encode(digest + digest[:12]).decode()


def s3_suffix(export_id: str, status: int = 403, code: str = "AccessDenied") -> str:
    rid, xid = _ids(export_id)
    return (f"(Service: Amazon S3; Status Code: {status}; Error Code: {code}; Request ID: {rid}; "
            f"S3 Extended Request ID: {xid}; Proxy: null)")


def bare_message(export_id: str) -> str:
    return f"Access Denied {s3_suffix(export_id)}"


def draw_shape(export_id: str, within_org: bool) -> str:
    """CHOICE: which shape DynamoDB relays is undocumented. S3 adds the enhanced context only
    within one account or organization, so outside it the message is bare; inside, the shape is
    drawn from the export id (reproducible): even first byte of its SHA-256 -> enhanced."""
    if not within_org:
        return "bare"
    return "enhanced" if hashlib.sha256(export_id.encode()).digest()[0] % 2 == 0 else "bare"


def enhanced_message(req: Request, caller: Caller, export_id: str) -> str:
    layer = req.layers[0]
    if req.service == "kms" and layer in ("key_policy", "grant", "encryption"):
        # CHOICE: for a KMS denial DynamoDB's text is undocumented; this is the wording S3
        # clients are seen to get for a key policy that leaves them out, inside S3's exception.
        return (f"User: {caller.session_arn} is not authorized to perform: {req.action} on this "
                "resource because the resource does not exist in this Region, no resource-based "
                "policies allow access, or a resource-based policy explicitly denies access "
                f"{s3_suffix(export_id)}")
    table = _REASON_EXPLICIT if req.kind == "Explicit" else _REASON_IMPLICIT
    reason = table[layer].format(a=req.action)
    if req.service == "kms":
        return (f"User: {caller.session_arn} is not authorized to perform: {req.action} on "
                f"resource: {req.resource} {reason} {s3_suffix(export_id)}")
    return (f"User: {caller.session_arn} is not authorized to perform: {req.action} on resource: "
            f"\"{req.resource}\" {reason}")


# ---------------------------------------------------------------------------------------------
# The whole export.


def _request_json(req: Request, caller: Caller | None) -> dict:
    return {
        "action": req.action,
        "resource": req.resource,
        "principal": caller.session_arn if caller else None,
        "context": req.context,
        "decision": req.decision,
        "denyingLayers": req.pre_denied + [x for x in req.layers if x not in req.pre_denied],
    }


def write_log(line: dict) -> None:
    path = _settings["log"]
    if not path:
        return
    text = json.dumps(line, sort_keys=False) + "\n"
    with _log_lock:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)


def judge_export(export, owner: str | None, bucket, session) -> tuple[str, str | None, str | None]:
    """Decides an enforced export: ("COMPLETED", None, None) or ("FAILED", code, message).
    Writes its log line. Never raises."""
    line = {
        "exportArn": export.arn, "tableArn": export.table.table_arn,
        "caller": getattr(session, "arn", None) if session else None,
        "callerRole": getattr(session, "role_arn", None) if session else None,
        "bucket": export.s3_bucket, "bucketAccount": owner, "keyArn": None,
        "outcome": "FAILED", "failureCode": None, "failureMessage": None, "messageShape": None,
        "requests": [], "refused": None, "bucketOwnerCanDecrypt": None,
    }
    started = dt.datetime.now(dt.timezone.utc)
    try:
        if bucket is None:
            line.update(failureCode="S3NoSuchBucket",
                        failureMessage="The specified bucket does not exist "
                                       + s3_suffix(export.export_id, 404, "NoSuchBucket"))
        else:
            _judge(export, owner, bucket, session, line)
    except Refused as exc:
        line.update(outcome="FAILED", failureCode=REFUSED_CODE, messageShape=None,
                    failureMessage=f"The emulator could not judge this export: {exc}", refused=str(exc))
    except Exception as exc:  # a launcher defect must surface as a refusal, never a pass
        line.update(outcome="FAILED", failureCode=REFUSED_CODE, messageShape=None,
                    failureMessage=f"The emulator could not judge this export: {type(exc).__name__}: {exc}",
                    refused=f"{type(exc).__name__}: {exc}")
    line["evaluationMs"] = round((dt.datetime.now(dt.timezone.utc) - started).total_seconds() * 1000, 2)
    write_log(line)
    return line["outcome"], line["failureCode"], line["failureMessage"]


def _judge(export, owner: str, bucket, session, line: dict) -> None:
    caller = read_caller(session)
    org = read_org(caller.account)
    bucket_region = getattr(bucket, "region_name", export.region_name)

    def object_arn(name: str) -> str:
        return f"arn:aws:s3:::{export.s3_bucket}/{export._object_key(name)}"

    started_arn = object_arn("_started")
    data_arn = object_arn(f"data/{hashlib.sha256(export.export_id.encode()).hexdigest()[:26]}.json.gz")
    same_account = owner == caller.account
    within_org = same_account or (org.org_id is not None and owner in org.accounts)

    # What S3 is asked to do with encryption. CHOICE: with no S3SseAlgorithm, DynamoDB sends no
    # SSE header and the bucket default applies; with one, it sends x-amz-server-side-encryption
    # (AES256 | aws:kms) and, when S3SseKmsKeyId is given, that id as sent.
    algorithm = (export.s3_sse_algorithm or "").upper()
    headers: dict = {}
    key_ref: str | None = None
    key_owner_default = owner  # aws/s3 when no key id is named: the bucket owner's AWS managed key
    if algorithm == "AES256":
        headers["s3:x-amz-server-side-encryption"] = "AES256"
    elif algorithm == "KMS":
        headers["s3:x-amz-server-side-encryption"] = "aws:kms"
        if export.s3_sse_kms_key_id:
            headers["s3:x-amz-server-side-encryption-aws-kms-key-id"] = export.s3_sse_kms_key_id
            key_ref = export.s3_sse_kms_key_id
        else:
            key_ref = f"arn:aws:kms:{bucket_region}:{key_owner_default}:alias/aws/s3"
    else:
        default_alg, default_key = default_encryption(bucket)
        if default_alg in ("aws:kms", "aws:kms:dsse"):
            key_ref = default_key or f"arn:aws:kms:{bucket_region}:{key_owner_default}:alias/aws/s3"

    requests: list[Request] = []
    base = principal_context(caller, org, owner, bucket_region)
    bucket_policy = _doc(getattr(bucket, "policy", None))
    for action, resource in (("s3:PutObject", started_arn), ("s3:PutObjectAcl", started_arn),
                             ("s3:AbortMultipartUpload", data_arn)):
        ctx = dict(base)
        if action == "s3:PutObject":
            ctx.update(headers)
        requests.append(Request(action, resource, owner, ctx, bucket_policy, "s3"))

    # Checks S3 makes before policy (CHOICE: the owner check and requester pays come first).
    if export.s3_bucket_owner and export.s3_bucket_owner != owner:
        for r in requests:
            r.pre_denied.append("owner")
    if getattr(bucket, "payer", "BucketOwner") == "Requester":
        for r in requests:
            r.pre_denied.append("requester_pays")

    key: KeyView | None = None
    key_problem: str | None = None
    if key_ref is not None:
        resolved = resolve_key(key_ref, caller.account, bucket_region)
        if isinstance(resolved, str):
            key_problem = resolved
        else:
            key = resolved
            line["keyArn"] = key.arn
            if key.state != "Enabled":
                key_problem = f"the key {key.arn} is {key.state}"
        kms_resource = key.arn if key else key_ref
        kms_account = key.account if key else (key_ref.split(":")[4] if key_ref.startswith("arn:")
                                              and len(key_ref.split(":")) > 5 else caller.account)
        kms_base = principal_context(caller, org, kms_account, bucket_region)
        kms_base.update({
            "kms:ViaService": f"s3.{bucket_region}.amazonaws.com",
            "kms:CallerAccount": caller.account,
            "kms:EncryptionContext:aws:s3:arn": started_arn,
            "kms:EncryptionContextKeys": ["aws:s3:arn"],
        })
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            r = Request(action, kms_resource, kms_account, dict(kms_base),
                        key.policy if key else None, "kms")
            if key_problem:
                r.pre_denied.append("encryption")
                r.judged = False
            requests.append(r)

    to_judge = [r for r in requests if r.judged]
    sims = [simulation(r, caller, org) for r in to_judge]
    consumer = reader = None
    if key is not None and not key_problem:
        consumer, reader = bucket_owner_reader(owner, key, bucket_region, started_arn)
        sims.append(simulation(reader, consumer, OrgView()))
    results = JUDGE.judge(sims)
    for r, result in zip(to_judge, results):
        apply_result(r, result, r.resource_account == caller.account, caller, key)
    if reader is not None and consumer is not None:
        try:
            apply_result(reader, results[-1], key.account == owner, consumer, key)
            line["bucketOwnerCanDecrypt"] = reader.decision == "Allow"
        except Refused:
            line["bucketOwnerCanDecrypt"] = None  # not judged; the export itself still is
    for r in requests:
        if r.pre_denied:
            r.decision = r.decision if r.decision != "Allow" else "ImplicitDeny"
            r.layers = r.pre_denied + [x for x in r.layers if x not in r.pre_denied]
        if not r.judged:
            r.decision = "ImplicitDeny"
    line["requests"] = [_request_json(r, caller) for r in requests]

    first = next((r for r in requests if r.decision != "Allow"), None)
    if first is None:
        line.update(outcome="COMPLETED", failureCode=None, failureMessage=None, messageShape=None)
        return
    pre = first.layers[0] in ("owner", "requester_pays")
    shape = "bare" if pre else draw_shape(export.export_id, within_org)
    if shape == "bare":
        message = bare_message(export.export_id)
    else:
        message = enhanced_message(first, caller, export.export_id)
    line.update(outcome="FAILED", failureCode=ACCESS_DENIED_CODE, failureMessage=message,
                messageShape=shape)


def bucket_owner_reader(owner: str, key: KeyView, region: str, object_arn: str) -> tuple[Caller, Request]:
    """Can the bucket owner's principals decrypt what the export wrote? A stand-in role of the
    owner's account whose identity policy allows kms:Decrypt, reading through S3: the answer
    turns on the key policy (and grants) alone. CHOICE: the owner's own SCPs and boundaries are
    left out; they are about a reader this launcher does not know."""
    role = f"arn:aws:iam::{owner}:role/bucket-owner-reader"
    consumer = Caller(
        session_arn=f"arn:aws:sts::{owner}:assumed-role/bucket-owner-reader/reader", role_arn=role,
        account=owner, identity_policies=[{"name": "reader", "policy": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}}],
        boundary=None, session_policy=None, tags={}, user_id="AROAREADER:reader",
    )
    ctx = principal_context(consumer, OrgView(), key.account, region)
    for k in ("aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast"):
        ctx.pop(k, None)  # a reader calls S3 itself
    ctx.update({"kms:ViaService": f"s3.{region}.amazonaws.com", "kms:CallerAccount": owner,
                "kms:EncryptionContext:aws:s3:arn": object_arn,
                "kms:EncryptionContextKeys": ["aws:s3:arn"]})
    return consumer, Request("kms:Decrypt", key.arn, key.account, ctx, key.policy, "kms")


def caller_session(handler):
    """The moto STS session behind the request's access key, or None."""
    import re

    from moto.sts.models import sts_backends

    match = re.search(r"Credential=([^/]+)/", handler.headers.get("Authorization", ""))
    if not match:
        return None
    for acct in list(sts_backends.keys()):
        for backend in list(sts_backends[acct].values()):
            role = backend.get_assumed_role_from_access_key(match.group(1))
            if role is not None:
                return role
    return None

