//! Findings: the cause, its confidence, the evidence behind it and the remedy (README, "What it diagnoses today"; docs/configuration.md, the result).

#[allow(unused_imports)]
use super::*;
use serde::{Deserialize, Serialize};

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Confidence {
    Possible,
    Likely,
    Confirmed,
}

/// Stable cause codes (README, "What it diagnoses today"): tests, metrics and users match on them.
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

/// Why a key-policy statement is added (docs/safety.md, "Key-policy patch").
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
