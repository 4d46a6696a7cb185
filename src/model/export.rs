//! The export: the mode the function may act in, the request's parameters (ExportTableToPointInTime)
//! and DescribeExport's answer.

#[allow(unused_imports)]
use super::*;
use serde::{Deserialize, Serialize};

/// How far the function may go (docs/configuration.md, `MODE`). Ordered: a payload may lower it, never raise it.
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
    /// Items exported (DescribeExport's `ItemCount`), once COMPLETED.
    pub item_count: Option<i64>,
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
