//! Manual payloads (docs/configuration.md, "Triggers and what to send"): one export, a preflight, or a rollback.

use super::*;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManualPayload {
    export_arn: String,
    mode: Option<String>,
}

pub(super) fn parse_manual(event: &Value) -> Result<Trigger, Error> {
    let p: ManualPayload =
        serde_json::from_value(event.clone()).map_err(|e| invalid(format!("payload: {e}")))?;
    let arn = Arn::export("exportArn", &p.export_arn).map_err(arn_err)?;
    let mut incident = Incident::new(IncidentSource::Manual);
    incident.requested_mode = parse_mode(p.mode.as_deref())?;
    incident.table_arn = arn.table_arn_of_export();
    incident.export_arn = Some(p.export_arn);
    Ok(Trigger::Incident(incident))
}

pub(super) fn parse_mode(mode: Option<&str>) -> Result<Option<Mode>, Error> {
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

pub(super) fn parse_preflight(event: &Value) -> Result<Trigger, Error> {
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

pub(super) fn parse_rollback(event: &Value) -> Result<Trigger, Error> {
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
