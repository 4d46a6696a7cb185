//! CloudTrail `ExportTableToPointInTime` events (docs/configuration.md, "Triggers and what to send"): a refused call → an incident, a
//! start → the record that attributes a later failure.

use super::*;

pub(super) fn parse_cloudtrail(source: &str, detail: &Value) -> Result<Trigger, Error> {
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
pub(super) fn caller_of(identity: Option<&Value>) -> Option<String> {
    let id = identity?.as_object()?;
    let issuer = id
        .get("sessionContext")
        .and_then(|s| s.get("sessionIssuer"))
        .and_then(Value::as_object)
        .and_then(|i| str_field(i, &["arn"]));
    issuer.or_else(|| str_field(id, &["arn"]))
}

/// CloudTrail's casing for this API is unconfirmed: accept lowerCamelCase and PascalCase.
pub(super) fn request_from_cloudtrail(p: &Map<String, Value>) -> Result<ExportRequest, Error> {
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
