//! The incident: a failed (or started, or about to start) export as a trigger names it.

#[allow(unused_imports)]
use super::*;
use serde::{Deserialize, Serialize};

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
    /// the evidence be read beside DescribeExport, whose answer decides (ARCHITECTURE.md, performance budgets).
    pub announced: Option<ExportRequest>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub caller: Option<String>,
    /// A manual payload's mode; the effective mode is the lower of this and the deployed one.
    pub requested_mode: Option<Mode>,
    /// The account and Region the export ran in (organization mode works there).
    pub place: Option<Place>,
    /// The delivery handling it: the Lambda request id of the invocation (the sweep's own when
    /// it takes over an expired claim). The ledger's claim carries it.
    pub owner: Option<String>,
}

/// An account and a Region: where an incident happened, and where its reads and retry run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Place {
    pub account: String,
    pub region: String,
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
            place: None,
            owner: None,
        }
    }
}
