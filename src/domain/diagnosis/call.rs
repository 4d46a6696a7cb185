//! Causes read off the export call's own error and the table's facts (README, "What it diagnoses today"): the export
//! time, the export limit, a reused ClientToken, invalid parameters, and the table's own key.

use super::common::{ev, finding, Failure};
use crate::model::Evidence;
use crate::model::{
    Cause, Confidence, ExportRequest, ExportStatus, Finding, Incident, IncidentSource,
};

/// The shortest and longest window of an incremental export (README, "What it diagnoses today").
const INCREMENTAL_MIN_SECS: f64 = 15.0 * 60.0;
const INCREMENTAL_MAX_SECS: f64 = 24.0 * 3600.0;
/// S3Prefix is at most 1,024 characters (API reference).
const PREFIX_MAX: usize = 1024;

pub(super) fn call_findings(
    incident: &Incident,
    fail: &Failure,
    evidence: &Evidence,
) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(invalid_export_time(incident, fail, evidence));
    out.extend(export_limit(fail));
    out.extend(token_conflict(fail, evidence.request.as_ref()));
    out.extend(invalid_parameters(
        incident,
        fail,
        evidence.request.as_ref(),
    ));
    out.extend(table_key_inaccessible(evidence));
    out
}

/// ISO-8601 UTC for an epoch time in seconds (the CLI takes either).
fn iso(t: f64) -> String {
    let secs = t.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What is wrong with the request's times against the restorable window, if anything.
fn time_problems(request: &ExportRequest, window: Option<(f64, f64)>) -> Vec<String> {
    let mut out = Vec::new();
    let outside = |t: f64| window.is_some_and(|(lo, hi)| t < lo || t > hi);
    // An incremental export is its window; ExportTime belongs to full exports.
    let full = request.incremental.is_none();
    if let Some(t) = request.export_time.filter(|t| full && outside(*t)) {
        out.push(format!(
            "ExportTime {} is outside the restorable window",
            iso(t)
        ));
    }
    if let Some(inc) = &request.incremental {
        for (name, t) in [
            ("ExportFromTime", inc.export_from_time),
            ("ExportToTime", inc.export_to_time),
        ] {
            if let Some(t) = t.filter(|t| outside(*t)) {
                out.push(format!(
                    "{name} {} is outside the restorable window",
                    iso(t)
                ));
            }
        }
        if let (Some(from), Some(to)) = (inc.export_from_time, inc.export_to_time) {
            let span = to - from;
            if !(INCREMENTAL_MIN_SECS..=INCREMENTAL_MAX_SECS).contains(&span) {
                out.push(format!(
                    "the incremental window is {:.0} minutes; it must be 15 minutes to 24 hours",
                    span / 60.0
                ));
            }
        }
    }
    out
}

fn invalid_export_time(
    incident: &Incident,
    fail: &Failure,
    evidence: &Evidence,
) -> Option<Finding> {
    let said = fail.code == Some("InvalidExportTimeException");
    let window = evidence
        .pitr
        .get()
        .and_then(|p| p.earliest_restorable.zip(p.latest_restorable));
    let problems = evidence
        .request
        .as_ref()
        .map(|r| time_problems(r, window))
        .unwrap_or_default();
    // An export that started was past this check: only the call's error or a preflight counts,
    // and a failed incremental export whose window has since left the PITR window (its retry
    // cannot export that window; a full export's retry moves to the latest restorable time).
    let retry_window_gone = evidence.export.as_ref().is_some_and(|e| {
        e.status == ExportStatus::Failed
            && e.request.incremental.is_some()
            && !time_problems(&e.request, window).is_empty()
    });
    if !said
        && (problems.is_empty()
            || (incident.source != IncidentSource::Preflight && !retry_window_gone))
    {
        return None;
    }
    let mut items = Vec::new();
    if said {
        items.push(ev(
            format!(
                "the export call failed with InvalidExportTimeException{}",
                fail.message.map(|m| format!(": {m}")).unwrap_or_default()
            ),
            fail.source,
        ));
    }
    for p in &problems {
        items.push(ev(p.clone(), evidence.pitr.source));
    }
    let text = match window {
        Some((lo, _)) if retry_window_gone => {
            items.push(ev(
                format!("earliest restorable time now: {}", iso(lo)),
                evidence.pitr.source,
            ));
            format!(
                "The incremental window of the failed export has left the point-in-time recovery window, so a retry cannot export it as it was. The earliest valid ExportFromTime is {}: export from there, or accept the gap.",
                iso(lo)
            )
        }
        Some((lo, hi)) => {
            items.push(ev(
                format!("restorable window: {} to {}", iso(lo), iso(hi)),
                evidence.pitr.source,
            ));
            format!(
                "Export with --export-time between {} and {} (or leave it out for the latest restorable time); an incremental window must lie inside that range and span 15 minutes to 24 hours.",
                iso(lo),
                iso(hi)
            )
        }
        None => "Choose an export time inside the table's point-in-time recovery window (aws dynamodb describe-continuous-backups shows it); an incremental window must span 15 minutes to 24 hours.".into(),
    };
    Some(finding(
        Cause::InvalidExportTime,
        Confidence::Confirmed,
        "The export time is outside the table's point-in-time recovery window, or the incremental window is invalid.".into(),
        items,
        text,
    ))
}

fn export_limit(fail: &Failure) -> Option<Finding> {
    if fail.code != Some("LimitExceededException") {
        return None;
    }
    Some(finding(
        Cause::ExportLimitExceeded,
        Confidence::Confirmed,
        "Too many exports are in flight in this account and region (at most 300 tasks or 100 TB).".into(),
        vec![ev(
            "the export call failed with LimitExceededException",
            fail.source,
        )],
        "Start the export again once running exports finish (aws dynamodb list-exports shows them); back off between attempts.".into(),
    ))
}

fn token_conflict(fail: &Failure, request: Option<&ExportRequest>) -> Option<Finding> {
    if fail.code != Some("ExportConflictException") {
        return None;
    }
    let token = request.and_then(|r| r.client_token.as_deref());
    let ours = token.and_then(crate::model::parse_token).is_some();
    let mut items = vec![ev(
        "the export call failed with ExportConflictException",
        fail.source,
    )];
    if let Some(t) = token {
        items.push(ev(format!("ClientToken: {t}"), fail.source));
    }
    let (summary, text) = if ours {
        (
            "This function reused one of its ClientTokens with other parameters: a defect of ddb-export-remediator.".to_string(),
            "Report this as a defect of ddb-export-remediator with this result; the ledger's INCIDENT item holds the parameters it sent first. Nothing was retried.".to_string(),
        )
    } else {
        (
            "The ClientToken was used within the last 8 hours for an export with other parameters.".to_string(),
            "Send a new --client-token (or none), or the exact parameters of the first call to get its export back.".to_string(),
        )
    };
    Some(finding(
        Cause::ClientTokenConflict,
        Confidence::Confirmed,
        summary,
        items,
        text,
    ))
}

/// Request parameter names as the API spells them; messages use either casing.
const PARAMETERS: [&str; 11] = [
    "TableArn",
    "S3BucketOwner",
    "S3Bucket",
    "S3Prefix",
    "S3SseAlgorithm",
    "S3SseKmsKeyId",
    "ExportFormat",
    "ExportTime",
    "ExportType",
    "IncrementalExportSpecification",
    "ClientToken",
];

/// The parameters a ValidationException message names.
fn named_parameters(message: &str) -> Vec<&'static str> {
    let lower = message.to_ascii_lowercase();
    let mut out: Vec<&'static str> = Vec::new();
    for p in PARAMETERS {
        let name = p.to_ascii_lowercase();
        let hit = lower.match_indices(&name).any(|(i, _)| {
            // "s3bucket" inside "s3bucketowner" is not S3Bucket.
            !lower[i + name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
        });
        if hit {
            out.push(p);
        }
    }
    out
}

/// What the API reference's constraints say is wrong with the request, before a call.
fn structural_problems(request: &ExportRequest) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(o) = &request.s3_bucket_owner {
        if o.len() != 12 || !o.bytes().all(|b| b.is_ascii_digit()) {
            out.push(format!("S3BucketOwner {o:?} is not a 12-digit account id"));
        }
    }
    if let Some(p) = &request.s3_prefix {
        if p.chars().count() > PREFIX_MAX {
            out.push(format!(
                "S3Prefix is {} characters; at most {PREFIX_MAX}",
                p.chars().count()
            ));
        }
    }
    out
}

fn invalid_parameters(
    incident: &Incident,
    fail: &Failure,
    request: Option<&ExportRequest>,
) -> Option<Finding> {
    let said = fail.code == Some("ValidationException");
    let problems = if incident.source == IncidentSource::Preflight {
        request.map(structural_problems).unwrap_or_default()
    } else {
        Vec::new()
    };
    if !said && problems.is_empty() {
        return None;
    }
    let mut items = Vec::new();
    let mut named: Vec<&str> = Vec::new();
    if said {
        let message = fail.message.unwrap_or("");
        named = named_parameters(message);
        items.push(ev(
            format!("the export call failed with ValidationException: {message}"),
            fail.source,
        ));
    }
    for p in &problems {
        items.push(ev(p.clone(), "preflight"));
        if let Some(name) = PARAMETERS.iter().find(|n| p.starts_with(*n)) {
            if !named.contains(name) {
                named.push(name);
            }
        }
    }
    let which = if named.is_empty() {
        "a parameter the message does not name".to_string()
    } else {
        named.join(", ")
    };
    Some(finding(
        Cause::InvalidParameters,
        Confidence::Confirmed,
        format!("DynamoDB rejected the export's parameters: {which}."),
        items,
        format!("Correct {which} and export again; the API reference for ExportTableToPointInTime gives each parameter's format."),
    ))
}

fn table_key_inaccessible(evidence: &Evidence) -> Option<Finding> {
    let table = evidence.table.get()?;
    if table.status != "INACCESSIBLE_ENCRYPTION_CREDENTIALS" {
        return None;
    }
    let key = table.sse_key_arn.as_deref().unwrap_or("its KMS key");
    Some(finding(
        Cause::TableKeyInaccessible,
        // How an inaccessible table key affects an export is unconfirmed (README, "What it diagnoses today").
        Confidence::Likely,
        format!("The table's own encryption key ({key}) is disabled or inaccessible, so DynamoDB cannot read the table."),
        vec![ev(
            "table status is INACCESSIBLE_ENCRYPTION_CREDENTIALS",
            evidence.table.source,
        )],
        format!("Re-enable {key} or restore DynamoDB's access to it (key policy, grants); after seven days of no access DynamoDB archives the table."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::diagnosis::diagnose;
    use crate::domain::diagnosis::tests::{evidence as healthy, has};
    use crate::fakes::TABLE_ARN;
    use crate::model::{Fact, IncrementalSpec, PitrInfo, TableInfo};

    const LO: f64 = 1_795_000_000.0;
    const HI: f64 = 1_795_500_000.0;

    /// A call that failed before an export started (CloudTrail), with healthy table facts.
    fn sync_failure(code: Option<&str>, message: &str) -> (Incident, Evidence) {
        let mut incident = Incident::new(IncidentSource::Cloudtrail);
        incident.failure_code = code.map(str::to_string);
        incident.failure_message = Some(message.into());
        incident.table_arn = Some(TABLE_ARN.into());
        // The diagnosis tests' healthy facts, without an export or a bucket, and with a window.
        let mut evidence = healthy("", "");
        evidence.export = None;
        evidence.bucket = None;
        evidence.pitr = Fact::known(
            "dynamodb:DescribeContinuousBackups",
            PitrInfo {
                enabled: true,
                earliest_restorable: Some(LO),
                latest_restorable: Some(HI),
            },
        );
        (incident, evidence)
    }

    fn causes(i: &Incident, e: &Evidence) -> Vec<(Cause, Confidence)> {
        diagnose(i, e)
            .iter()
            .map(|f| (f.cause, f.confidence))
            .collect()
    }

    #[test]
    fn iso_renders_utc_dates() {
        assert_eq!(iso(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_795_500_000.0), "2026-11-24T06:00:00Z");
        assert_eq!(iso(951_782_400.0), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn invalid_export_time_from_the_call_names_the_window() {
        let (i, e) = sync_failure(
            Some("InvalidExportTimeException"),
            "Export time is out of range",
        );
        let f = diagnose(&i, &e);
        assert_eq!(
            causes(&i, &e),
            vec![(Cause::InvalidExportTime, Confidence::Confirmed)]
        );
        assert!(
            f[0].remedy.text.contains("2026-11-24T06:00:00Z"),
            "{}",
            f[0].remedy.text
        );
    }

    #[test]
    fn preflight_with_a_time_before_the_window_is_invalid_and_inside_is_not() {
        let (mut i, mut e) = sync_failure(None, "");
        i.source = IncidentSource::Preflight;
        i.failure_message = None;
        e.request.as_mut().unwrap().export_time = Some(LO - 3600.0);
        assert_eq!(
            causes(&i, &e),
            vec![(Cause::InvalidExportTime, Confidence::Confirmed)]
        );
        e.request.as_mut().unwrap().export_time = Some(LO + 3600.0);
        assert!(causes(&i, &e).is_empty());
    }

    #[test]
    fn an_incremental_window_longer_than_a_day_is_invalid_and_an_hour_is_not() {
        let (mut i, mut e) = sync_failure(None, "");
        i.source = IncidentSource::Preflight;
        i.failure_message = None;
        let spec = |to: f64| IncrementalSpec {
            export_from_time: Some(LO + 60.0),
            export_to_time: Some(LO + 60.0 + to),
            export_view_type: None,
        };
        e.request.as_mut().unwrap().incremental = Some(spec(2.0 * 86_400.0));
        let f = diagnose(&i, &e);
        assert_eq!(f[0].cause, Cause::InvalidExportTime);
        assert!(f[0]
            .evidence
            .iter()
            .any(|x| x.fact.contains("15 minutes to 24 hours")));
        e.request.as_mut().unwrap().incremental = Some(spec(3600.0));
        assert!(causes(&i, &e).is_empty());
    }

    #[test]
    fn a_started_export_is_never_blamed_on_its_time() {
        let (mut i, mut e) = sync_failure(None, "");
        i.source = IncidentSource::Event;
        e.request.as_mut().unwrap().export_time = Some(LO - 3600.0);
        assert!(!has(&diagnose(&i, &e), Cause::InvalidExportTime));
    }

    #[test]
    fn limit_exceeded_is_its_own_cause_and_other_codes_are_not() {
        let (i, e) = sync_failure(Some("LimitExceededException"), "Too many exports");
        assert_eq!(
            causes(&i, &e),
            vec![(Cause::ExportLimitExceeded, Confidence::Confirmed)]
        );
        let (i, e) = sync_failure(Some("ThrottlingException"), "Rate exceeded");
        assert!(!has(&diagnose(&i, &e), Cause::ExportLimitExceeded));
    }

    #[test]
    fn a_conflict_on_our_own_token_is_reported_as_our_defect() {
        let (i, mut e) = sync_failure(Some("ExportConflictException"), "ClientToken reused");
        e.request.as_mut().unwrap().client_token = Some(crate::model::client_token(
            &crate::model::root_hash(crate::fakes::EXPORT_ARN),
            1,
        ));
        let f = diagnose(&i, &e);
        assert_eq!(f[0].cause, Cause::ClientTokenConflict);
        assert!(f[0].summary.contains("defect"), "{}", f[0].summary);
        e.request.as_mut().unwrap().client_token = Some("pipeline-run-42".into());
        let f = diagnose(&i, &e);
        assert_eq!(f[0].cause, Cause::ClientTokenConflict);
        assert!(!f[0].summary.contains("defect"));
        let (i, e) = sync_failure(Some("ValidationException"), "bad");
        assert!(!has(&diagnose(&i, &e), Cause::ClientTokenConflict));
    }

    #[test]
    fn a_validation_error_names_the_parameter_it_is_about() {
        let (i, e) = sync_failure(
            Some("ValidationException"),
            "1 validation error detected: Value 'x' at 's3BucketOwner' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9]{12}",
        );
        let f = diagnose(&i, &e);
        assert_eq!(f[0].cause, Cause::InvalidParameters);
        assert_eq!(
            f[0].summary,
            "DynamoDB rejected the export's parameters: S3BucketOwner."
        );
        let (i, e) = sync_failure(Some("AccessDeniedException"), "User: x is not authorized");
        assert!(!has(&diagnose(&i, &e), Cause::InvalidParameters));
    }

    #[test]
    fn preflight_catches_a_malformed_owner_before_the_call() {
        let (mut i, mut e) = sync_failure(None, "");
        i.source = IncidentSource::Preflight;
        i.failure_message = None;
        e.request.as_mut().unwrap().s3_bucket_owner = Some("4444-5555-6666".into());
        let f = diagnose(&i, &e);
        assert_eq!(f[0].cause, Cause::InvalidParameters);
        assert!(f[0].summary.ends_with("S3BucketOwner."), "{}", f[0].summary);
        e.request.as_mut().unwrap().s3_bucket_owner = Some("444455556666".into());
        assert!(causes(&i, &e).is_empty());
    }

    #[test]
    fn an_inaccessible_table_key_is_likely_and_an_active_table_is_not() {
        let (i, mut e) = sync_failure(None, "Access Denied");
        e.table = Fact::known(
            "dynamodb:DescribeTable",
            TableInfo {
                arn: TABLE_ARN.into(),
                status: "INACCESSIBLE_ENCRYPTION_CREDENTIALS".into(),
                sse_status: Some("ENABLED".into()),
                sse_key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/t1".into()),
            },
        );
        assert!(causes(&i, &e).contains(&(Cause::TableKeyInaccessible, Confidence::Likely)));
        let (i, e) = sync_failure(None, "Access Denied");
        assert!(!has(&diagnose(&i, &e), Cause::TableKeyInaccessible));
    }
}
