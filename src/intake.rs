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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailedDetail {
    export_arn: Option<String>,
    table_arn: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    // What the sweep adds from DescribeExport (optional for other publishers).
    s3_bucket: Option<String>,
    s3_bucket_owner: Option<String>,
    s3_sse_algorithm: Option<String>,
    s3_sse_kms_key_id: Option<String>,
}

fn parse_failed_event(detail: &Value) -> Result<Trigger, Error> {
    let d: FailedDetail =
        serde_json::from_value(detail.clone()).map_err(|e| invalid(format!("detail: {e}")))?;
    let export_arn = d
        .export_arn
        .ok_or_else(|| invalid("detail.exportArn is required"))?;
    let arn = Arn::export("detail.exportArn", &export_arn).map_err(arn_err)?;
    if let Some(t) = &d.table_arn {
        Arn::table("detail.tableArn", t).map_err(arn_err)?;
    }
    let mut incident = Incident::new(IncidentSource::Event);
    incident.table_arn = d.table_arn.or_else(|| arn.table_arn_of_export());
    if let (Some(bucket), Some(table_arn)) = (d.s3_bucket, &incident.table_arn) {
        incident.announced = Some(ExportRequest {
            table_arn: table_arn.clone(),
            s3_bucket: check_bucket("detail.s3Bucket", bucket)?,
            s3_bucket_owner: check_owner("detail.s3BucketOwner", d.s3_bucket_owner)?,
            s3_sse_algorithm: check_sse("detail.s3SseAlgorithm", d.s3_sse_algorithm)?,
            s3_sse_kms_key_id: d.s3_sse_kms_key_id,
            ..Default::default()
        });
    }
    incident.export_arn = Some(export_arn);
    incident.failure_code = d.failure_code;
    incident.failure_message = d.failure_message;
    Ok(Trigger::Incident(incident))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManualPayload {
    export_arn: String,
    mode: Option<String>,
}

fn parse_manual(event: &Value) -> Result<Trigger, Error> {
    let p: ManualPayload =
        serde_json::from_value(event.clone()).map_err(|e| invalid(format!("payload: {e}")))?;
    let arn = Arn::export("exportArn", &p.export_arn).map_err(arn_err)?;
    let mut incident = Incident::new(IncidentSource::Manual);
    incident.requested_mode = parse_mode(p.mode.as_deref())?;
    incident.table_arn = arn.table_arn_of_export();
    incident.export_arn = Some(p.export_arn);
    Ok(Trigger::Incident(incident))
}

fn parse_mode(mode: Option<&str>) -> Result<Option<Mode>, Error> {
    match mode {
        None => Ok(None),
        Some(m) => Mode::parse(m).map(Some).ok_or_else(|| {
            invalid(format!(
                "mode {:?}: expected diagnose, plan or apply",
                truncate(m)
            ))
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreflightEnvelope {
    preflight: PreflightBody,
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PreflightBody {
    table_arn: String,
    s3_bucket: String,
    s3_bucket_owner: Option<String>,
    s3_prefix: Option<String>,
    s3_sse_algorithm: Option<String>,
    s3_sse_kms_key_id: Option<String>,
    export_format: Option<String>,
    export_type: Option<String>,
}

fn parse_preflight(event: &Value) -> Result<Trigger, Error> {
    let p: PreflightEnvelope =
        serde_json::from_value(event.clone()).map_err(|e| invalid(format!("preflight: {e}")))?;
    let b = p.preflight;
    Arn::table("preflight.tableArn", &b.table_arn).map_err(arn_err)?;
    let request = ExportRequest {
        table_arn: b.table_arn.clone(),
        s3_bucket: check_bucket("preflight.s3Bucket", b.s3_bucket)?,
        s3_bucket_owner: check_owner("preflight.s3BucketOwner", b.s3_bucket_owner)?,
        s3_prefix: b.s3_prefix,
        s3_sse_algorithm: check_sse("preflight.s3SseAlgorithm", b.s3_sse_algorithm)?,
        s3_sse_kms_key_id: b.s3_sse_kms_key_id,
        export_format: b.export_format,
        export_type: b.export_type,
        ..ExportRequest::default()
    };
    let mut incident = Incident::new(IncidentSource::Preflight);
    incident.requested_mode = parse_mode(p.mode.as_deref())?;
    incident.table_arn = Some(b.table_arn);
    incident.request = Some(request);
    Ok(Trigger::Preflight(incident))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackEnvelope {
    rollback: RollbackBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RollbackBody {
    change_id: String,
}

fn parse_rollback(event: &Value) -> Result<Trigger, Error> {
    let p: RollbackEnvelope =
        serde_json::from_value(event.clone()).map_err(|e| invalid(format!("rollback: {e}")))?;
    let id = p.rollback.change_id;
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(invalid(
            "rollback.changeId: expected 1-128 letters, digits, '-' or '_'",
        ));
    }
    Ok(Trigger::Rollback { change_id: id })
}

fn parse_cloudtrail(source: &str, detail: &Value) -> Result<Trigger, Error> {
    let d = detail
        .as_object()
        .ok_or_else(|| invalid("detail must be an object"))?;
    let event_name = str_field(d, &["eventName"]).unwrap_or_default();
    if source != "aws.dynamodb" || event_name != EXPORT_EVENT_NAME {
        return Err(Error::UnsupportedEvent(format!(
            "CloudTrail event {:?} from {:?}",
            truncate(&event_name),
            truncate(source)
        )));
    }
    let caller = caller_of(d.get("userIdentity"));
    let params = d.get("requestParameters").and_then(Value::as_object);
    let request = params.map(request_from_cloudtrail).transpose()?;
    let own_retry = request
        .as_ref()
        .and_then(|r| r.client_token.as_deref())
        .is_some_and(|t| t.starts_with(CLIENT_TOKEN_PREFIX));
    let error_code = str_field(d, &["errorCode"]);

    let Some(error_code) = error_code else {
        let export_arn = d
            .get("responseElements")
            .and_then(Value::as_object)
            .and_then(|r| {
                r.get("exportDescription")
                    .or_else(|| r.get("ExportDescription"))
            })
            .and_then(Value::as_object)
            .and_then(|e| str_field(e, &["exportArn", "ExportArn"]));
        return Ok(Trigger::ExportStarted(ExportStarted {
            export_arn,
            caller,
            request,
            own_retry,
        }));
    };
    let mut incident = Incident::new(IncidentSource::Cloudtrail);
    incident.table_arn = request.as_ref().map(|r| r.table_arn.clone());
    incident.request = request;
    incident.failure_code = Some(error_code);
    incident.failure_message = str_field(d, &["errorMessage"]);
    incident.caller = caller;
    Ok(Trigger::Incident(incident))
}

/// The principal that made the call: the role behind an assumed-role session, else the ARN.
fn caller_of(identity: Option<&Value>) -> Option<String> {
    let id = identity?.as_object()?;
    let issuer = id
        .get("sessionContext")
        .and_then(|s| s.get("sessionIssuer"))
        .and_then(Value::as_object)
        .and_then(|i| str_field(i, &["arn"]));
    issuer.or_else(|| str_field(id, &["arn"]))
}

/// CloudTrail's casing for this API is unconfirmed: accept lowerCamelCase and PascalCase.
fn request_from_cloudtrail(p: &Map<String, Value>) -> Result<ExportRequest, Error> {
    let get = |camel: &str| {
        let mut pascal = camel.to_string();
        if let Some(first) = pascal.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        str_field(p, &[camel, pascal.as_str()])
    };
    let table_arn =
        get("tableArn").ok_or_else(|| invalid("requestParameters.tableArn is missing"))?;
    Arn::table("requestParameters.tableArn", &table_arn).map_err(arn_err)?;
    let bucket = get("s3Bucket").ok_or_else(|| invalid("requestParameters.s3Bucket is missing"))?;
    let incremental = p
        .get("incrementalExportSpecification")
        .or_else(|| p.get("IncrementalExportSpecification"))
        .and_then(Value::as_object)
        .map(|s| IncrementalSpec {
            export_from_time: num_field(s, &["exportFromTime", "ExportFromTime"]),
            export_to_time: num_field(s, &["exportToTime", "ExportToTime"]),
            export_view_type: str_field(s, &["exportViewType", "ExportViewType"]),
        });
    Ok(ExportRequest {
        table_arn,
        s3_bucket: check_bucket("requestParameters.s3Bucket", bucket)?,
        s3_bucket_owner: check_owner("requestParameters.s3BucketOwner", get("s3BucketOwner"))?,
        s3_prefix: get("s3Prefix"),
        s3_sse_algorithm: check_sse("requestParameters.s3SseAlgorithm", get("s3SseAlgorithm"))?,
        s3_sse_kms_key_id: get("s3SseKmsKeyId"),
        export_format: get("exportFormat"),
        export_type: get("exportType"),
        export_time: num_field(p, &["exportTime", "ExportTime"]),
        incremental,
        client_token: get("clientToken"),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(file: &str) -> Value {
        let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Every sample in events/ parses to the trigger its name promises (or the error it documents).
    #[test]
    fn every_event_file_parses() {
        let dir = format!("{}/events", env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let result = parse(&event(&name));
            let ok = match name.split('-').next().unwrap() {
                "cloudtrail" if name.contains("started") => {
                    matches!(result, Ok(Trigger::ExportStarted(_)))
                }
                "cloudtrail" => {
                    matches!(result, Ok(Trigger::Incident(ref i)) if i.source == IncidentSource::Cloudtrail)
                }
                "eventbridge" => {
                    matches!(result, Ok(Trigger::Incident(ref i)) if i.source == IncidentSource::Event)
                }
                "schedule" => matches!(result, Ok(Trigger::Sweep)),
                "manual" => {
                    matches!(result, Ok(Trigger::Incident(ref i)) if i.source == IncidentSource::Manual)
                }
                "preflight" => matches!(result, Ok(Trigger::Preflight(_))),
                "rollback" => matches!(result, Ok(Trigger::Rollback { .. })),
                "invalid" => matches!(result, Err(Error::InvalidEvent(_))),
                "unsupported" => matches!(result, Err(Error::UnsupportedEvent(_))),
                other => panic!("{name}: unknown prefix {other}"),
            };
            assert!(ok, "{name} parsed to {result:?}");
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} event files");
    }

    #[test]
    fn cloudtrail_error_carries_request_caller_and_code() {
        let Trigger::Incident(i) = parse(&event("cloudtrail-access-denied.json")).unwrap() else {
            panic!("not an incident");
        };
        assert_eq!(i.failure_code.as_deref(), Some("AccessDeniedException"));
        assert_eq!(
            i.caller.as_deref(),
            Some("arn:aws:iam::111122223333:role/DataPlatformExporter")
        );
        let r = i.request.unwrap();
        assert_eq!(r.s3_bucket, "amzn-s3-demo-bucket");
        assert_eq!(r.s3_sse_algorithm, Some(SseAlgorithm::Aes256));
        assert_eq!(r.export_time, Some(1_795_500_000.0));
    }

    #[test]
    fn pascal_case_request_parameters_are_accepted() {
        let ev = json!({
            "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.dynamodb",
            "detail": {"eventName": EXPORT_EVENT_NAME, "errorCode": "ValidationException",
                "requestParameters": {"TableArn": "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
                    "S3Bucket": "amzn-s3-demo-bucket", "S3SseAlgorithm": "KMS", "S3BucketOwner": "444455556666"}}
        });
        let Trigger::Incident(i) = parse(&ev).unwrap() else {
            panic!()
        };
        let r = i.request.unwrap();
        assert_eq!(r.s3_sse_algorithm, Some(SseAlgorithm::Kms));
        assert_eq!(r.s3_bucket_owner.as_deref(), Some("444455556666"));
    }

    #[test]
    fn null_request_parameters_still_make_an_incident() {
        let ev = json!({
            "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.dynamodb",
            "detail": {"eventName": EXPORT_EVENT_NAME, "errorCode": "AccessDenied",
                       "requestParameters": null, "userIdentity": {"arn": "arn:aws:iam::111122223333:user/bob"}}
        });
        let Trigger::Incident(i) = parse(&ev).unwrap() else {
            panic!()
        };
        assert!(i.request.is_none());
        assert_eq!(
            i.caller.as_deref(),
            Some("arn:aws:iam::111122223333:user/bob")
        );
    }

    #[test]
    fn own_retry_is_recognised_by_client_token() {
        let Trigger::ExportStarted(s) =
            parse(&event("cloudtrail-export-started-own-retry.json")).unwrap()
        else {
            panic!()
        };
        assert!(s.own_retry);
        let Trigger::ExportStarted(s) = parse(&event("cloudtrail-export-started.json")).unwrap()
        else {
            panic!()
        };
        assert!(!s.own_retry);
        assert!(s.export_arn.unwrap().contains("/export/"));
    }

    #[test]
    fn a_failed_event_that_names_the_destination_announces_it() {
        let mut e = event("eventbridge-export-failed-s3-access-denied.json");
        let Trigger::Incident(i) = parse(&e).unwrap() else {
            panic!()
        };
        let a = i.announced.unwrap();
        assert_eq!(a.s3_bucket, "amzn-s3-demo-bucket");
        assert_eq!(a.table_arn, i.table_arn.unwrap());
        assert_eq!(a.s3_sse_algorithm, Some(SseAlgorithm::Aes256));

        e["detail"]["s3BucketOwner"] = json!("12345");
        let err = parse(&e).unwrap_err().to_string();
        assert!(err.contains("detail.s3BucketOwner"), "{err}");
        e["detail"]["s3BucketOwner"] = Value::Null;
        e["detail"]["s3Bucket"] = json!("Not_A_Bucket");
        let err = parse(&e).unwrap_err().to_string();
        assert!(err.contains("detail.s3Bucket"), "{err}");

        let Trigger::Incident(i) =
            parse(&event("eventbridge-export-failed-no-such-bucket.json")).unwrap()
        else {
            panic!()
        };
        assert!(i.announced.is_none());
    }

    #[test]
    fn bad_input_gets_typed_errors_naming_the_field() {
        let cases = [
            (json!([1, 2]), "InvalidEvent", "JSON object"),
            (
                json!({"hello": 1}),
                "InvalidEvent",
                "expected an EventBridge",
            ),
            (json!({"exportArn": "nope"}), "InvalidEvent", "exportArn"),
            (
                json!({"exportArn": "arn:aws:dynamodb:us-east-1:111122223333:table/t10/export/1", "mode": "yolo"}),
                "InvalidEvent",
                "mode",
            ),
            (
                json!({"exportArn": "arn:aws:dynamodb:us-east-1:111122223333:table/t10/export/1", "extra": 1}),
                "InvalidEvent",
                "unknown field",
            ),
            (
                json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
                "UnsupportedEvent",
                "EC2",
            ),
            (
                json!({"detail-type": FAILED_DETAIL_TYPE, "source": "x", "detail": {}}),
                "InvalidEvent",
                "exportArn is required",
            ),
            (
                json!({"detail-type": FAILED_DETAIL_TYPE, "source": "x", "detail": {"exportArn": 5}}),
                "InvalidEvent",
                "detail",
            ),
            (
                json!({"detail-type": 7, "source": "x", "detail": {}}),
                "InvalidEvent",
                "envelope",
            ),
            (
                json!({"preflight": {"tableArn": "arn:aws:dynamodb:us-east-1:111122223333:table/orders", "s3Bucket": "Bad_Bucket"}}),
                "InvalidEvent",
                "s3Bucket",
            ),
            (
                json!({"preflight": {"tableArn": "arn:aws:dynamodb:us-east-1:111122223333:table/orders", "s3Bucket": "ok-bucket", "s3SseAlgorithm": "aws:kms"}}),
                "InvalidEvent",
                "AES256 or KMS",
            ),
            (
                json!({"rollback": {"changeId": "../etc"}}),
                "InvalidEvent",
                "changeId",
            ),
        ];
        for (ev, ty, needle) in cases {
            let err = parse(&ev).unwrap_err();
            assert_eq!(err.error_type(), ty, "{ev}: {err}");
            assert!(err.to_string().contains(needle), "{ev}: {err}");
        }
    }
}
