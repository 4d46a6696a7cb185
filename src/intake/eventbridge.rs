//! The `DynamoDB Export Failed` custom event (docs/configuration.md, "Triggers and what to send"): its detail → an incident.

use super::*;

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

pub(super) fn parse_failed_event(detail: &Value) -> Result<Trigger, Error> {
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
