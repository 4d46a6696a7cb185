//! Ledger records the pure stages read (the lineage of a retry, who started an export).

use super::ExportRequest;

/// The lineage of a retry export this function started.
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    pub root_export_arn: String,
    pub attempt: u32,
    /// The causes the retry was meant to fix.
    pub causes: Vec<String>,
    /// The retry followed a key-policy patch (KMS may apply it only minutes later).
    pub after_patch: bool,
}

/// Who started an export, from the CloudTrail success event.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRecord {
    pub caller: Option<String>,
    pub request: Option<ExportRequest>,
}
