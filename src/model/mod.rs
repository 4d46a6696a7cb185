//! The model room: value types every stage shares (export, incident, facts, findings, ledger
//! records, the retry token). No SDK types and no I/O; it imports nothing from the rooms above.

mod facts;
mod ledger;
mod token;

pub use facts::*;
pub use ledger::*;
pub use token::*;

use serde::{Deserialize, Serialize};
use std::fmt;

/// How far the function may go (SPEC §7.4). Ordered: a payload may lower it, never raise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Diagnose,
    Plan,
    Apply,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "diagnose" => Some(Self::Diagnose),
            "plan" => Some(Self::Plan),
            "apply" => Some(Self::Apply),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseAlgorithm {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "KMS")]
    Kms,
}

impl SseAlgorithm {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "AES256" => Some(Self::Aes256),
            "KMS" => Some(Self::Kms),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256 => "AES256",
            Self::Kms => "KMS",
        }
    }
    /// The `x-amz-server-side-encryption` header value S3 sees for this flag.
    pub fn header_value(self) -> &'static str {
        match self {
            Self::Aes256 => "AES256",
            Self::Kms => "aws:kms",
        }
    }
}

/// Incremental export window, epoch seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncrementalSpec {
    pub export_from_time: Option<f64>,
    pub export_to_time: Option<f64>,
    pub export_view_type: Option<String>,
}

/// The parameters of one `ExportTableToPointInTime` call, as far as they are known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequest {
    pub table_arn: String,
    pub s3_bucket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_bucket_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_sse_algorithm: Option<SseAlgorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_sse_kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_type: Option<String>,
    /// Epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl ExportRequest {
    /// Fills what DescribeExport left out (a FAILED export's description can lack the prefix,
    /// type, owner …) from the request its start recorded, when both name the same table and
    /// bucket. Returns the API names of the fields filled; nothing DescribeExport said changes.
    pub fn fill_missing_from(&mut self, started: &ExportRequest) -> Vec<&'static str> {
        let mut filled = Vec::new();
        if self.table_arn != started.table_arn || self.s3_bucket != started.s3_bucket {
            return filled;
        }
        fn fill<T: Clone>(
            name: &'static str,
            mine: &mut Option<T>,
            theirs: &Option<T>,
            filled: &mut Vec<&'static str>,
        ) {
            if mine.is_none() && theirs.is_some() {
                *mine = theirs.clone();
                filled.push(name);
            }
        }
        fill(
            "S3BucketOwner",
            &mut self.s3_bucket_owner,
            &started.s3_bucket_owner,
            &mut filled,
        );
        fill(
            "S3Prefix",
            &mut self.s3_prefix,
            &started.s3_prefix,
            &mut filled,
        );
        fill(
            "S3SseAlgorithm",
            &mut self.s3_sse_algorithm,
            &started.s3_sse_algorithm,
            &mut filled,
        );
        fill(
            "S3SseKmsKeyId",
            &mut self.s3_sse_kms_key_id,
            &started.s3_sse_kms_key_id,
            &mut filled,
        );
        fill(
            "ExportFormat",
            &mut self.export_format,
            &started.export_format,
            &mut filled,
        );
        fill(
            "ExportType",
            &mut self.export_type,
            &started.export_type,
            &mut filled,
        );
        fill(
            "ExportTime",
            &mut self.export_time,
            &started.export_time,
            &mut filled,
        );
        fill(
            "IncrementalExportSpecification",
            &mut self.incremental,
            &started.incremental,
            &mut filled,
        );
        filled
    }

    /// The S3 prefix as export object keys start with it: `p/` (slashes trimmed) or empty.
    pub fn key_prefix(&self) -> String {
        self.s3_prefix
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}/"))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportStatus {
    InProgress,
    Completed,
    Failed,
}

impl ExportStatus {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::InProgress => "IN_PROGRESS",
            ExportStatus::Completed => "COMPLETED",
            ExportStatus::Failed => "FAILED",
        }
    }
}

/// One row of `ListExports`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    pub export_arn: String,
    pub status: ExportStatus,
}

/// What `DescribeExport` says about one export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportDescription {
    pub export_arn: String,
    pub status: ExportStatus,
    pub request: ExportRequest,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// Epoch seconds; a FAILED export's description may lack either.
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
}

/// When an export started, in epoch milliseconds, read from its id: AWS's export ids are
/// `<14-digit zero-padded epoch ms>-<8 hex>` (e.g. `01771261885495-c7ead50c`). None for an id of
/// another shape, whose age only DescribeExport can tell.
pub fn export_started_ms(export_arn: &str) -> Option<i64> {
    let id = export_arn.rsplit_once("/export/")?.1;
    let (stamp, suffix) = id.split_once('-')?;
    let ok = stamp.len() == 14
        && stamp.bytes().all(|b| b.is_ascii_digit())
        && suffix.len() == 8
        && suffix.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| stamp.parse().ok()).flatten()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentSource {
    Sweep,
    Cloudtrail,
    Event,
    Manual,
    Preflight,
}

/// One thing to look at: a failed (or to-be-checked) export, from whichever trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub source: IncidentSource,
    pub export_arn: Option<String>,
    pub table_arn: Option<String>,
    /// Parameters known from the trigger itself (CloudTrail, preflight).
    pub request: Option<ExportRequest>,
    /// The export's parameters as a `DynamoDB Export Failed` event states them: they only let
    /// the evidence be read beside DescribeExport, whose answer decides (SPEC §11).
    pub announced: Option<ExportRequest>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub caller: Option<String>,
    /// A manual payload's mode; the effective mode is the lower of this and the deployed one.
    pub requested_mode: Option<Mode>,
}

impl Incident {
    pub fn new(source: IncidentSource) -> Self {
        Self {
            source,
            export_arn: None,
            table_arn: None,
            request: None,
            announced: None,
            failure_code: None,
            failure_message: None,
            caller: None,
            requested_mode: None,
        }
    }
}

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
}

impl<T> Fact<T> {
    pub fn known(source: &'static str, value: T) -> Self {
        Self {
            value: FactValue::Known(value),
            source,
        }
    }
    pub fn absent(source: &'static str) -> Self {
        Self {
            value: FactValue::Absent,
            source,
        }
    }
    pub fn unknown(source: &'static str, reason: impl Into<String>) -> Self {
        Self {
            value: FactValue::Unknown(reason.into()),
            source,
        }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Confidence {
    Possible,
    Likely,
    Confirmed,
}

/// Stable cause codes (SPEC §5): tests, metrics and users match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Cause {
    BucketNotFound,
    BucketOwnerMissing,
    BucketOwnerMismatch,
    SseMismatchRequiresKms,
    SseMismatchRequiresAes256,
    PitrDisabled,
    TableNotFound,
    RequesterPaysBucket,
    KmsKeyUnusable,
    BucketPolicyDenies,
    BucketPolicyMissingGrant,
    KmsKeyPolicyDeniesExporter,
    NetworkPerimeterDenies,
    VpcEndpointPolicyDenies,
    ScpDeniesS3OrKms,
    ScpDeniesExport,
    PermissionsBoundaryDenies,
    CallerMissingExportPermission,
    CallerMissingS3Permission,
    KmsCallerMissingPermission,
    ConsumerCannotDecrypt,
    TablePolicyDenies,
    InvalidExportTime,
    ExportLimitExceeded,
    ClientTokenConflict,
    InvalidParameters,
    SseKmsKeyMismatch,
    AwsManagedKeyCrossAccount,
    SseAlgorithmUnsupported,
    BucketPublicAccessRestricted,
    TableKeyInaccessible,
    Unclassified,
}

impl Cause {
    pub fn code(self) -> &'static str {
        match self {
            Self::BucketNotFound => "BUCKET_NOT_FOUND",
            Self::BucketOwnerMissing => "BUCKET_OWNER_MISSING",
            Self::BucketOwnerMismatch => "BUCKET_OWNER_MISMATCH",
            Self::SseMismatchRequiresKms => "SSE_MISMATCH_REQUIRES_KMS",
            Self::SseMismatchRequiresAes256 => "SSE_MISMATCH_REQUIRES_AES256",
            Self::PitrDisabled => "PITR_DISABLED",
            Self::TableNotFound => "TABLE_NOT_FOUND",
            Self::RequesterPaysBucket => "REQUESTER_PAYS_BUCKET",
            Self::KmsKeyUnusable => "KMS_KEY_UNUSABLE",
            Self::BucketPolicyDenies => "BUCKET_POLICY_DENIES",
            Self::BucketPolicyMissingGrant => "BUCKET_POLICY_MISSING_GRANT",
            Self::KmsKeyPolicyDeniesExporter => "KMS_KEY_POLICY_DENIES_EXPORTER",
            Self::NetworkPerimeterDenies => "NETWORK_PERIMETER_DENIES",
            Self::VpcEndpointPolicyDenies => "VPC_ENDPOINT_POLICY_DENIES",
            Self::ScpDeniesS3OrKms => "SCP_DENIES_S3_OR_KMS",
            Self::ScpDeniesExport => "SCP_DENIES_EXPORT",
            Self::PermissionsBoundaryDenies => "PERMISSIONS_BOUNDARY_DENIES",
            Self::CallerMissingExportPermission => "CALLER_MISSING_EXPORT_PERMISSION",
            Self::CallerMissingS3Permission => "CALLER_MISSING_S3_PERMISSION",
            Self::KmsCallerMissingPermission => "KMS_CALLER_MISSING_PERMISSION",
            Self::ConsumerCannotDecrypt => "CONSUMER_CANNOT_DECRYPT",
            Self::TablePolicyDenies => "TABLE_POLICY_DENIES",
            Self::InvalidExportTime => "INVALID_EXPORT_TIME",
            Self::ExportLimitExceeded => "EXPORT_LIMIT_EXCEEDED",
            Self::ClientTokenConflict => "CLIENT_TOKEN_CONFLICT",
            Self::InvalidParameters => "INVALID_PARAMETERS",
            Self::SseKmsKeyMismatch => "SSE_KMS_KEY_MISMATCH",
            Self::AwsManagedKeyCrossAccount => "AWS_MANAGED_KEY_CROSS_ACCOUNT",
            Self::SseAlgorithmUnsupported => "SSE_ALGORITHM_UNSUPPORTED",
            Self::BucketPublicAccessRestricted => "BUCKET_PUBLIC_ACCESS_RESTRICTED",
            Self::TableKeyInaccessible => "TABLE_KEY_INACCESSIBLE",
            Self::Unclassified => "UNCLASSIFIED",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceItem {
    pub fact: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remedy {
    pub text: String,
    /// The corrected CLI command, in full, where flags change.
    pub command: Option<String>,
    /// A policy statement to add, where one applies.
    pub statement: Option<serde_json::Value>,
}

/// Parameter changes that fix a finding when the export is retried.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Correction {
    pub s3_bucket_owner: Option<String>,
    pub s3_sse_algorithm: Option<SseAlgorithm>,
    pub s3_sse_kms_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub cause: Cause,
    pub confidence: Confidence,
    pub summary: String,
    pub evidence: Vec<EvidenceItem>,
    pub remedy: Remedy,
    /// `Some` when a retry with these parameters fixes this finding; `None` when it cannot.
    #[serde(skip)]
    pub correction: Option<Correction>,
    /// `Some` when a key-policy statement fixes this finding (applied only when opted in).
    #[serde(skip)]
    pub patch: Option<KeyPatch>,
}

/// Why a key-policy statement is added (SPEC §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PatchPurpose {
    /// The exporter's use of the key (`kms:GenerateDataKey` + `kms:Decrypt`).
    Exporter,
    /// The destination account's consumers (`kms:Decrypt` + `kms:DescribeKey`).
    ConsumerDecrypt,
}

impl PatchPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exporter => "EXPORTER",
            Self::ConsumerDecrypt => "CONSUMER_DECRYPT",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Exporter, Self::ConsumerDecrypt]
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

/// One key-policy statement to add or replace, keyed by its `Sid`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPatch {
    pub key_arn: String,
    pub purpose: PatchPurpose,
    pub sid: String,
    /// The principals the statement names (every one an allowed grantee).
    pub grantees: Vec<String>,
    pub statement: serde_json::Value,
}
