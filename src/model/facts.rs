//! The facts the pure stages decide on (docs/diagnosis.md, "Evidence and policy evaluation"): what the evidence stage read, each fact
//! Known, Absent or Unknown. Gathered by `domain::evidence`; read by diagnosis and plan.

use super::{EvidenceItem, ExportDescription, ExportRequest};

/// A fact gathered from AWS: known, known to be absent, or unknown with the reason.
#[derive(Debug, Clone, PartialEq)]
pub enum FactValue<T> {
    Known(T),
    Absent,
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fact<T> {
    pub value: FactValue<T>,
    /// The API call the fact came from, e.g. `s3:GetBucketPolicy`.
    pub source: &'static str,
    /// Unknown because a read failed transiently (throttling, 5xx, timeout, reset) after the
    /// SDK's retries: another delivery may read it. Unknowns from AccessDenied or NotFound are
    /// answers, not gaps.
    pub transient: bool,
}

impl<T> Fact<T> {
    pub fn known(source: &'static str, value: T) -> Self {
        Self {
            value: FactValue::Known(value),
            source,
            transient: false,
        }
    }
    pub fn absent(source: &'static str) -> Self {
        Self {
            value: FactValue::Absent,
            source,
            transient: false,
        }
    }
    pub fn unknown(source: &'static str, reason: impl Into<String>) -> Self {
        Self {
            value: FactValue::Unknown(reason.into()),
            source,
            transient: false,
        }
    }
    /// Unknown because of `error`; `transient` says whether a later read may know it.
    pub fn failed(source: &'static str, error: &crate::error::AwsError) -> Self {
        Self::unknown(source, error.reason()).transient_if(error.is_transient())
    }
    /// Marks an Unknown as a transient gap when `transient`.
    pub fn transient_if(mut self, transient: bool) -> Self {
        self.transient = transient && self.is_unknown();
        self
    }
    pub fn get(&self) -> Option<&T> {
        match &self.value {
            FactValue::Known(v) => Some(v),
            _ => None,
        }
    }
    pub fn is_absent(&self) -> bool {
        matches!(self.value, FactValue::Absent)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self.value, FactValue::Unknown(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub arn: String,
    pub status: String,
    pub sse_status: Option<String>,
    pub sse_key_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PitrInfo {
    pub enabled: bool,
    /// Epoch seconds.
    pub earliest_restorable: Option<f64>,
    pub latest_restorable: Option<f64>,
}

/// A bucket's default encryption rule.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketEncryption {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    pub kms_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    pub arn: String,
    pub state: String,
    /// `AWS` or `CUSTOMER`.
    pub manager: String,
    pub usage: String,
    pub spec: String,
}

/// One KMS grant on a key (ListGrants): grants allow use of a key beside its key policy.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyGrant {
    pub grant_id: String,
    /// Usually the role or user ARN; for a grant to an AWS service, the service principal.
    pub grantee: String,
    /// `GenerateDataKey`, `Decrypt`, …
    pub operations: Vec<String>,
    /// The grant carries encryption-context constraints (it applies only to matching requests).
    pub constrained: bool,
}

impl KeyInfo {
    pub fn region(&self) -> Option<String> {
        crate::arn::Arn::parse("keyArn", &self.arn)
            .ok()
            .map(|a| a.region)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The account the table (and this function) lives in.
    pub table_account: String,
    pub export: Option<ExportDescription>,
    /// The export's parameters, from DescribeExport, CloudTrail or the preflight payload.
    pub request: Option<ExportRequest>,
    pub table: Fact<TableInfo>,
    pub pitr: Fact<PitrInfo>,
    pub bucket: Option<BucketFacts>,
    /// The key the export asked for (`S3SseKmsKeyId`).
    pub export_key: Option<KeyFacts>,
    /// The bucket's default-encryption key, when it is another key.
    pub default_key: Option<KeyFacts>,
    /// The key the bucket policy pins (a deny unless that key), when it is another key: a
    /// retry switches to it, so its policy is read before the retry.
    pub pinned_key: Option<KeyFacts>,
    /// The exporter's role and its identity policies and boundary, when the role is known and
    /// in this account.
    pub caller_policies: Option<(String, Fact<PrincipalPolicies>)>,
    /// The table's resource policy.
    pub table_policy: Fact<String>,
    /// The SCPs on the table account's path (Absent: the account is in no organization).
    pub scps: Fact<ScpPath>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BucketFacts {
    pub name: String,
    pub presence: Fact<BucketPresence>,
    /// Whether the table account's ListBuckets lists the bucket.
    pub in_table_account: Fact<bool>,
    /// Known only from ListBuckets in the owner's account (docs/diagnosis.md, "Evidence and policy evaluation").
    pub owner: Fact<String>,
    pub region: Fact<String>,
    pub policy: Fact<String>,
    pub encryption: Fact<BucketEncryption>,
    pub requester_pays: Fact<bool>,
    /// Block Public Access `RestrictPublicBuckets` (Absent: no configuration on the bucket).
    pub restrict_public: Fact<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyFacts {
    /// As given (ARN, alias or id).
    pub key_id: String,
    pub info: Fact<KeyInfo>,
    pub policy: Fact<String>,
    /// Grants allow use beside the key policy (read in the same round).
    pub grants: Fact<Vec<KeyGrant>>,
}

/// The region S3 works in for the export, and so calls KMS from (`kms:ViaService` =
/// `s3.<region>.amazonaws.com`): the bucket's, known from GetBucketLocation; else the export
/// key's (a usable key is in the bucket's region); else the table's.
pub fn s3_region(evidence: &Evidence, table_region: &str) -> String {
    let bucket = evidence
        .bucket
        .as_ref()
        .and_then(|b| b.region.get())
        .filter(|r| !r.is_empty());
    let key = evidence
        .export_key
        .as_ref()
        .and_then(|k| k.info.get())
        .and_then(|i| i.region());
    bucket
        .cloned()
        .or(key)
        .unwrap_or_else(|| table_region.to_string())
}

/// HeadBucket's answer: S3 says 403 for a bucket that exists but is not ours to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketPresence {
    Exists,
    ExistsNoAccess,
    Missing,
}

/// One level of an account's path in the organization: the account itself, an OU, or the root,
/// with the service control policies attached there.
#[derive(Debug, Clone, PartialEq)]
pub struct ScpLevel {
    /// The target id (account id, `ou-…`, `r-…`).
    pub target: String,
    pub policies: Vec<NamedPolicy>,
}

/// The SCPs that restrict an account's principals (docs/diagnosis.md, "Evidence and policy evaluation").
#[derive(Debug, Clone, PartialEq)]
pub struct ScpPath {
    /// The management account: SCPs never restrict its principals (`levels` is then empty).
    pub management_account: bool,
    /// From the account up to the root.
    pub levels: Vec<ScpLevel>,
}

/// One stored policy document (identity, boundary) with its name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPolicy {
    pub name: String,
    pub document: String,
}

/// A principal's identity policies (inline and attached) and permissions boundary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrincipalPolicies {
    pub identity: Vec<NamedPolicy>,
    pub boundary: Option<NamedPolicy>,
}

impl Evidence {
    /// The sources of the facts left Unknown by a transient failure. Empty: the evidence is
    /// complete (every fact is Known, Absent, or Unknown for a reason asking again won't change),
    /// so a diagnosis from it may be recorded as final.
    pub fn incomplete_reads(&self) -> Vec<String> {
        fn add<T>(out: &mut Vec<String>, f: &Fact<T>) {
            if f.transient && !out.iter().any(|s| s == f.source) {
                out.push(f.source.to_string());
            }
        }
        let mut out = Vec::new();
        add(&mut out, &self.table);
        add(&mut out, &self.pitr);
        add(&mut out, &self.table_policy);
        add(&mut out, &self.scps);
        if let Some(b) = &self.bucket {
            add(&mut out, &b.presence);
            add(&mut out, &b.in_table_account);
            add(&mut out, &b.owner);
            add(&mut out, &b.region);
            add(&mut out, &b.policy);
            add(&mut out, &b.encryption);
            add(&mut out, &b.requester_pays);
            add(&mut out, &b.restrict_public);
        }
        for k in [&self.export_key, &self.default_key].into_iter().flatten() {
            add(&mut out, &k.info);
            add(&mut out, &k.policy);
            add(&mut out, &k.grants);
        }
        if let Some((_, p)) = &self.caller_policies {
            add(&mut out, p);
        }
        out
    }

    /// The facts read for a key, named as the request or a policy gives it (id, alias or ARN):
    /// the export's key first, then the bucket default's.
    pub fn key(&self, key_id: &str) -> Option<&KeyFacts> {
        [&self.export_key, &self.default_key, &self.pinned_key]
            .into_iter()
            .flatten()
            .find(|k| k.key_id == key_id || k.info.get().is_some_and(|i| i.arn == key_id))
    }

    /// Every fact gathered, as report evidence (UNCLASSIFIED shows them all).
    pub fn items(&self) -> Vec<EvidenceItem> {
        let mut out = Vec::new();
        if let Some(e) = &self.export {
            out.push(item(
                format!(
                    "export {} is {:?}; failure {:?}",
                    e.export_arn,
                    e.status,
                    e.failure_code.as_deref().unwrap_or("none")
                ),
                "dynamodb:DescribeExport",
            ));
        }
        push(&mut out, "table", &self.table, |t| {
            format!("{} ({})", t.arn, t.status)
        });
        push(&mut out, "point-in-time recovery", &self.pitr, |p| {
            if p.enabled { "enabled" } else { "disabled" }.to_string()
        });
        push(&mut out, "table resource policy", &self.table_policy, |p| {
            format!("present, {} bytes", p.len())
        });
        push(&mut out, "service control policies", &self.scps, |p| {
            if p.management_account {
                "the management account: SCPs do not apply".to_string()
            } else {
                let n: usize = p.levels.iter().map(|l| l.policies.len()).sum();
                format!("{n} on {} levels", p.levels.len())
            }
        });
        if let Some(b) = &self.bucket {
            push(&mut out, "bucket presence", &b.presence, |p| {
                format!("{p:?}")
            });
            push(
                &mut out,
                "bucket listed by the table account",
                &b.in_table_account,
                |v| v.to_string(),
            );
            push(&mut out, "bucket owner", &b.owner, Clone::clone);
            push(&mut out, "bucket region", &b.region, Clone::clone);
            push(&mut out, "bucket policy", &b.policy, |p| {
                format!("present, {} bytes", p.len())
            });
            push(&mut out, "bucket default encryption", &b.encryption, |e| {
                format!("{} {}", e.algorithm, e.kms_key_id.as_deref().unwrap_or(""))
                    .trim_end()
                    .to_string()
            });
            push(&mut out, "bucket requester pays", &b.requester_pays, |v| {
                v.to_string()
            });
            push(
                &mut out,
                "bucket RestrictPublicBuckets",
                &b.restrict_public,
                |v| v.to_string(),
            );
        }
        for k in [&self.export_key, &self.default_key].into_iter().flatten() {
            push(&mut out, &format!("key {}", k.key_id), &k.info, |i| {
                format!("{} {} {} {}", i.state, i.manager, i.usage, i.spec)
            });
        }
        out
    }
}

fn item(fact: String, source: &str) -> EvidenceItem {
    EvidenceItem {
        fact,
        source: source.to_string(),
    }
}

fn push<T>(out: &mut Vec<EvidenceItem>, what: &str, f: &Fact<T>, show: impl Fn(&T) -> String) {
    let text = match &f.value {
        FactValue::Known(v) => format!("{what}: {}", show(v)),
        FactValue::Absent => format!("{what}: none"),
        FactValue::Unknown(reason) => format!("{what}: unknown ({reason})"),
    };
    out.push(item(text, f.source));
}
