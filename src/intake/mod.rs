//! The intake room: every trigger shape (docs/configuration.md, "Triggers and what to send") → a `Trigger`. Pure; never panics on any
//! JSON. Event fields are claims: DescribeExport and the ledger confirm what they can.

use crate::arn::{is_account_id, is_region, Arn};
use crate::error::Error;
use crate::model::{
    ExportRequest, Incident, IncidentSource, IncrementalSpec, Mode, Place, SseAlgorithm,
};
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
    let (trigger, claimed) = parse_claims(event)?;
    match trigger {
        Trigger::Incident(i) => Ok(Trigger::Incident(placed(i, claimed)?)),
        Trigger::Preflight(i) => Ok(Trigger::Preflight(placed(i, claimed)?)),
        other => Ok(other),
    }
}

/// Where an event says it happened, field by field: from its `detail`, and from its envelope.
#[derive(Debug, Default)]
struct Claims {
    detail: (Option<String>, Option<String>),
    envelope: (Option<String>, Option<String>),
}

/// The incident's account and Region: the event's `detail` first (CloudTrail's
/// `recipientAccountId`/`awsRegion`, the custom event's `accountId`/`region`), then the export or
/// table ARN, then the envelope. A `detail` that contradicts the ARN is refused: one of them
/// names the wrong export. The envelope is last and never refuses: EventBridge keeps the sender's
/// `account` on a forwarded event, but its `region` there is not documented.
fn placed(mut incident: Incident, claims: Claims) -> Result<Incident, Error> {
    let arn = incident
        .export_arn
        .as_deref()
        .or(incident.table_arn.as_deref())
        .and_then(|a| Arn::parse("arn", a).ok());
    let (arn_account, arn_region) = match &arn {
        Some(a) => (Some(a.account.clone()), Some(a.region.clone())),
        None => (None, None),
    };
    let (d_account, d_region) = claims.detail;
    for (what, said, arn_says) in [
        ("account", &d_account, &arn_account),
        ("region", &d_region, &arn_region),
    ] {
        if let (Some(said), Some(arn_says)) = (said, arn_says) {
            if said != arn_says {
                return Err(invalid(format!(
                    "detail names {what} {:?} but the export is in {:?}",
                    truncate(said),
                    truncate(arn_says)
                )));
            }
        }
    }
    let (e_account, e_region) = claims.envelope;
    let account = d_account.or(arn_account).or(e_account);
    let region = d_region.or(arn_region).or(e_region);
    if let Some(a) = account.as_deref().filter(|a| !is_account_id(a)) {
        return Err(invalid(format!(
            "account {:?} is not a 12-digit account id",
            truncate(a)
        )));
    }
    if let Some(r) = region.as_deref().filter(|r| !is_region(r)) {
        return Err(invalid(format!(
            "region {:?} is not a Region name",
            truncate(r)
        )));
    }
    incident.place = account
        .zip(region)
        .map(|(account, region)| Place { account, region });
    Ok(incident)
}

fn parse_claims(event: &Value) -> Result<(Trigger, Claims), Error> {
    let obj = event
        .as_object()
        .ok_or_else(|| invalid("the event must be a JSON object"))?;
    if obj.contains_key("detail-type") {
        return parse_eventbridge(event);
    }
    let none = Claims::default;
    if obj.contains_key("preflight") {
        return parse_preflight(event).map(|t| (t, none()));
    }
    if obj.contains_key("rollback") {
        return parse_rollback(event).map(|t| (t, none()));
    }
    if obj.contains_key("exportArn") {
        return parse_manual(event).map(|t| (t, none()));
    }
    Err(invalid(
        "expected an EventBridge event, or a payload with exportArn, preflight or rollback",
    ))
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidEvent(msg.into())
}

fn parse_eventbridge(event: &Value) -> Result<(Trigger, Claims), Error> {
    let envelope: EventBridgeEvent<Value> = serde_json::from_value(event.clone())
        .map_err(|e| invalid(format!("EventBridge envelope: {e}")))?;
    let detail = envelope.detail.as_object();
    let said = |names: &[&str]| detail.and_then(|d| str_field(d, names));
    let claims = Claims {
        detail: (
            said(&["recipientAccountId", "accountId"]),
            said(&["awsRegion", "region"]),
        ),
        envelope: (envelope.account.clone(), envelope.region.clone()),
    };
    let trigger = match envelope.detail_type.as_str() {
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
    }?;
    Ok((trigger, claims))
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
