//! The intake room: every trigger shape of SPEC §3 → a `Trigger`. Pure; never panics on any
//! JSON. Event fields are claims: DescribeExport and the ledger confirm what they can.

use crate::arn::{is_account_id, Arn};
use crate::error::Error;
use crate::model::{ExportRequest, Incident, IncidentSource, IncrementalSpec, Mode, SseAlgorithm};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::{Map, Value};

pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
pub const FAILED_DETAIL_TYPE: &str = "DynamoDB Export Failed";
pub const REPORT_DETAIL_TYPE: &str = "DynamoDB Export Remediation";
pub const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";
pub const EXPORT_EVENT_NAME: &str = "ExportTableToPointInTime";
/// Every ClientToken this function issues starts with this, so intake can tell its own calls.
pub use crate::model::CLIENT_TOKEN_PREFIX;

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A failure (or an export to check): diagnose and remediate.
    Incident(Incident),
    /// CloudTrail saw an export start successfully.
    ExportStarted(ExportStarted),
    /// The schedule fired.
    Sweep,
    /// Check an export that has not run yet.
    Preflight(Incident),
    Rollback {
        change_id: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportStarted {
    pub export_arn: Option<String>,
    pub caller: Option<String>,
    pub request: Option<ExportRequest>,
    /// The call carried one of our ClientTokens: our own retry (loop guard).
    pub own_retry: bool,
}

pub fn parse(event: &Value) -> Result<Trigger, Error> {
    let obj = event
        .as_object()
        .ok_or_else(|| invalid("the event must be a JSON object"))?;
    if obj.contains_key("detail-type") {
        return parse_eventbridge(event);
    }
    if obj.contains_key("preflight") {
        return parse_preflight(event);
    }
    if obj.contains_key("rollback") {
        return parse_rollback(event);
    }
    if obj.contains_key("exportArn") {
        return parse_manual(event);
    }
    Err(invalid(
        "expected an EventBridge event, or a payload with exportArn, preflight or rollback",
    ))
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidEvent(msg.into())
}

fn parse_eventbridge(event: &Value) -> Result<Trigger, Error> {
    let envelope: EventBridgeEvent<Value> = serde_json::from_value(event.clone())
        .map_err(|e| invalid(format!("EventBridge envelope: {e}")))?;
    match envelope.detail_type.as_str() {
        CLOUDTRAIL_DETAIL_TYPE => parse_cloudtrail(&envelope.source, &envelope.detail),
        FAILED_DETAIL_TYPE => parse_failed_event(&envelope.detail),
        SCHEDULED_DETAIL_TYPE if envelope.source == "aws.events" => Ok(Trigger::Sweep),
        REPORT_DETAIL_TYPE => Err(Error::UnsupportedEvent(
            "DynamoDB Export Remediation is this function's own report".into(),
        )),
        other => Err(Error::UnsupportedEvent(format!(
            "detail-type {:?} from source {:?}",
            truncate(other),
            truncate(&envelope.source)
        ))),
    }
}

fn str_field(obj: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| obj.get(*n).and_then(Value::as_str))
        .map(str::to_string)
}

/// Timestamps may be numbers or numeric strings; anything else is treated as not given.
fn num_field(obj: &Map<String, Value>, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| match obj.get(*n)? {
        Value::Number(x) => x.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    })
}

fn check_bucket(field: &str, bucket: String) -> Result<String, Error> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(bucket)
    } else {
        Err(invalid(format!(
            "{field}: {:?} is not a valid bucket name",
            truncate(&bucket)
        )))
    }
}

fn check_owner(field: &str, owner: Option<String>) -> Result<Option<String>, Error> {
    match owner {
        Some(o) if !is_account_id(&o) => Err(invalid(format!(
            "{field}: {:?} is not a 12-digit account id",
            truncate(&o)
        ))),
        other => Ok(other),
    }
}

fn check_sse(field: &str, sse: Option<String>) -> Result<Option<SseAlgorithm>, Error> {
    match sse {
        None => Ok(None),
        Some(s) => SseAlgorithm::parse(&s).map(Some).ok_or_else(|| {
            invalid(format!(
                "{field}: {:?}: expected AES256 or KMS",
                truncate(&s)
            ))
        }),
    }
}

fn arn_err(e: crate::arn::ArnError) -> Error {
    invalid(e.to_string())
}

fn truncate(text: &str) -> String {
    text.chars().take(100).collect()
}

mod cloudtrail;
mod eventbridge;
mod manual;
use cloudtrail::parse_cloudtrail;
use eventbridge::parse_failed_event;
use manual::{parse_manual, parse_preflight, parse_rollback};
#[cfg(test)]
mod tests;
