//! The pipeline of SPEC §3.5: intake → evidence → diagnosis → plan → act → report.
//! No SDK or Lambda types here: the domain talks to AWS only through `ports`.

pub mod command;
pub mod diagnosis;
pub mod evidence;
pub mod plan;
pub mod report;
pub mod sse_rules;

use crate::config::Config;
use crate::error::Error;
use crate::intake::{self, ExportStarted, Trigger};
use crate::model::{ExportStatus, Incident, IncidentSource, Mode};
use crate::ports::{AccountDirectory, BucketInspector, CrossAccount, ExportService, KeyInspector};
use plan::{Action, Plan};
use report::{
    Applied, AppliedStatus, IncidentReport, RemediationResult, SweepReport, SCHEMA_VERSION,
};
use serde_json::{json, Value};

/// Everything one invocation needs, built once at init.
pub struct App {
    pub config: Config,
    pub exports: Box<dyn ExportService>,
    pub buckets: Box<dyn BucketInspector>,
    pub keys: Box<dyn KeyInspector>,
    pub accounts: Box<dyn AccountDirectory>,
    pub cross: Box<dyn CrossAccount>,
}

/// Most ListExports pages one sweep reads (25 exports a page).
const SWEEP_MAX_PAGES: usize = 400;

impl App {
    /// Handles one event of any trigger shape.
    pub async fn handle(&self, event: &Value) -> Result<RemediationResult, Error> {
        match intake::parse(event)? {
            Trigger::Incident(incident) | Trigger::Preflight(incident) => self.remediate(incident).await,
            Trigger::ExportStarted(started) => Ok(self.export_started(started)),
            Trigger::Sweep => self.sweep().await,
            Trigger::Rollback { change_id } => Err(Error::NotAvailable(format!(
                "no key-policy change {change_id} can exist: this deployment makes no key-policy changes yet"
            ))),
        }
    }

    fn effective_mode(&self, requested: Option<Mode>) -> Mode {
        requested.map_or(self.config.mode, |m| m.min(self.config.mode))
    }

    pub async fn remediate(&self, mut incident: Incident) -> Result<RemediationResult, Error> {
        let mode = self.effective_mode(incident.requested_mode);
        let evidence = evidence::gather(self, &incident).await?;
        if let Some(e) = &evidence.export {
            incident.failure_code = incident.failure_code.or_else(|| e.failure_code.clone());
            incident.failure_message = incident
                .failure_message
                .or_else(|| e.failure_message.clone());
            incident.table_arn = incident
                .table_arn
                .or_else(|| Some(e.request.table_arn.clone()));
        }
        let findings = diagnosis::diagnose(&incident, &evidence);
        let plan = if mode >= Mode::Plan {
            plan::plan(&incident, &evidence, &findings, &self.config)
        } else {
            Plan::default()
        };
        let applied = self.act(mode, &plan.actions).await;
        let mut notes = plan.notes;
        if incident.source == IncidentSource::Preflight {
            notes.push(if findings.is_empty() {
                "preflight: no cause found; the export should succeed as far as these facts show"
                    .into()
            } else {
                "preflight: the export would fail; use the corrected command".into()
            });
        }
        if findings.is_empty()
            && evidence
                .export
                .as_ref()
                .is_some_and(|e| e.status == ExportStatus::Completed)
        {
            notes.push("export completed: healthy, nothing to do".into());
        }
        Ok(RemediationResult {
            schema_version: SCHEMA_VERSION,
            mode,
            incident: IncidentReport::from_incident(&incident),
            findings,
            plan: plan.actions.iter().map(report::plan_entry).collect(),
            applied,
            notes,
            sweep: None,
        })
    }

    /// Carries out the plan in apply mode; in plan mode every action is reported SKIPPED.
    async fn act(&self, mode: Mode, actions: &[Action]) -> Vec<Applied> {
        let mut applied = Vec::new();
        for action in actions {
            let name = report::action_name(action);
            if mode != Mode::Apply {
                applied.push(Applied {
                    action: name,
                    status: AppliedStatus::Skipped,
                    result: json!({"reason": format!("mode is {mode:?}")}),
                });
                continue;
            }
            match action {
                Action::RetryExport(retry) => {
                    let outcome = self
                        .exports
                        .start_export(&retry.request, &retry.client_token)
                        .await;
                    applied.push(match outcome {
                        Ok(export_arn) => {
                            tracing::info!(export_arn = %export_arn, attempt = retry.attempt, "retry export started");
                            Applied {
                                action: name,
                                status: AppliedStatus::Done,
                                result: json!({"exportArn": export_arn, "clientToken": retry.client_token}),
                            }
                        }
                        Err(e) => {
                            let err = Error::from(e);
                            tracing::warn!(error.message = %crate::error::Chain(&err), "retry export failed");
                            Applied {
                                action: name,
                                status: AppliedStatus::Failed,
                                result: json!({"errorType": err.error_type(), "message": err.public_message()}),
                            }
                        }
                    });
                }
            }
        }
        applied
    }

    fn export_started(&self, started: ExportStarted) -> RemediationResult {
        let mut incident = Incident::new(IncidentSource::Cloudtrail);
        incident.export_arn = started.export_arn;
        incident.table_arn = started.request.as_ref().map(|r| r.table_arn.clone());
        incident.caller = started.caller;
        let note = if started.own_retry {
            "export started by this function's own retry: recorded only (loop guard)"
        } else {
            "export start observed; attributing later failures to this caller needs the ledger (LEDGER_TABLE_NAME), not configured in this build"
        };
        RemediationResult {
            schema_version: SCHEMA_VERSION,
            mode: self.config.mode,
            incident: IncidentReport::from_incident(&incident),
            findings: Vec::new(),
            plan: Vec::new(),
            applied: Vec::new(),
            notes: vec![note.into()],
            sweep: None,
        }
    }

    /// Lists the account's exports and reports the FAILED ones. Report-only: without the
    /// ledger it cannot tell new failures from handled ones, so it publishes nothing.
    async fn sweep(&self) -> Result<RemediationResult, Error> {
        let mut report = SweepReport::default();
        let mut token = None;
        let mut notes = Vec::new();
        loop {
            let page = self.exports.list_exports(token).await?;
            report.list_calls += 1;
            report.exports_listed += page.exports.len();
            report.failed_exports.extend(
                page.exports
                    .into_iter()
                    .filter(|e| e.status == ExportStatus::Failed)
                    .map(|e| e.export_arn),
            );
            token = page.next_token;
            if token.is_none() {
                break;
            }
            if report.list_calls >= SWEEP_MAX_PAGES {
                notes.push(format!(
                    "stopped after {SWEEP_MAX_PAGES} pages; the next sweep starts over"
                ));
                break;
            }
        }
        notes.push(
            "report-only sweep: publishing DynamoDB Export Failed events needs the ledger".into(),
        );
        Ok(RemediationResult {
            schema_version: SCHEMA_VERSION,
            mode: self.config.mode,
            incident: IncidentReport::from_incident(&Incident::new(IncidentSource::Sweep)),
            findings: Vec::new(),
            plan: Vec::new(),
            applied: Vec::new(),
            notes,
            sweep: Some(report),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsErrorKind;
    use crate::fakes::*;
    use crate::model::Cause;

    fn manual(mode: &str) -> Value {
        json!({"exportArn": EXPORT_ARN, "mode": mode})
    }

    /// GIVEN a cross-account bucket in an organization account with the member role,
    /// and an export without --s3-bucket-owner that failed with a bare Access Denied.
    fn cross_account_world() -> Shared {
        let world = world_with_table();
        {
            let mut w = world.write().unwrap();
            w.buckets.insert(
                "amzn-s3-demo-bucket".into(),
                FakeBucket::owned_by(DATA_ACCOUNT),
            );
            w.org_accounts = Some(vec![TABLE_ACCOUNT.into(), DATA_ACCOUNT.into()]);
            w.member_roles = vec![DATA_ACCOUNT.into()];
            w.exports.push(failed_export(
                request("amzn-s3-demo-bucket"),
                "S3AccessDenied",
                "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; Request ID: X)",
            ));
        }
        world
    }

    fn config(mode: Mode) -> Config {
        Config {
            mode,
            member_role_name: Some("DdbExportRemediatorMember".into()),
            ..Config::default()
        }
    }

    #[tokio::test]
    async fn apply_retries_a_cross_account_export_with_the_owner_found_through_the_member_role() {
        let world = cross_account_world();
        let result = app(&world, config(Mode::Apply))
            .handle(&manual("apply"))
            .await
            .unwrap();
        assert_eq!(result.findings[0].cause, Cause::BucketOwnerMissing);
        assert_eq!(result.applied.len(), 1);
        assert_eq!(result.applied[0].status, AppliedStatus::Done);
        let started = world.read().unwrap().started.clone();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].0.s3_bucket_owner.as_deref(), Some(DATA_ACCOUNT));
        assert_eq!(started[0].0.s3_prefix.as_deref(), Some("exports"));
        assert_eq!(
            result.incident.failure_code.as_deref(),
            Some("S3AccessDenied")
        );
    }

    #[tokio::test]
    async fn without_a_member_role_the_owner_is_unknown_and_nothing_is_retried() {
        let world = cross_account_world();
        let cfg = Config {
            member_role_name: None,
            ..Config::default()
        };
        let result = app(&world, cfg).handle(&manual("apply")).await.unwrap();
        assert_eq!(result.findings[0].cause, Cause::BucketOwnerMissing);
        assert_eq!(
            result.findings[0].confidence,
            crate::model::Confidence::Likely
        );
        assert!(result.applied.is_empty());
        assert!(world.read().unwrap().started.is_empty());
        assert!(result.notes[0].contains("BUCKET_OWNER_MISSING"));
    }

    #[tokio::test]
    async fn plan_mode_shows_the_retry_and_changes_nothing() {
        let world = cross_account_world();
        let result = app(&world, config(Mode::Plan))
            .handle(&manual("apply"))
            .await
            .unwrap();
        assert_eq!(
            result.mode,
            Mode::Plan,
            "a payload cannot raise the deployed mode"
        );
        assert_eq!(result.plan.len(), 1);
        assert_eq!(result.plan[0]["params"]["S3BucketOwner"], DATA_ACCOUNT);
        assert_eq!(result.applied[0].status, AppliedStatus::Skipped);
        assert!(world.read().unwrap().started.is_empty());
    }

    #[tokio::test]
    async fn diagnose_mode_from_the_payload_plans_nothing() {
        let world = cross_account_world();
        let result = app(&world, config(Mode::Apply))
            .handle(&manual("diagnose"))
            .await
            .unwrap();
        assert_eq!(result.mode, Mode::Diagnose);
        assert!(!result.findings.is_empty());
        assert!(result.plan.is_empty() && result.applied.is_empty());
        assert!(world.read().unwrap().started.is_empty());
    }

    #[tokio::test]
    async fn a_failed_retry_is_reported_with_its_error_type() {
        let world = cross_account_world();
        world.write().unwrap().fail_start = Some(AwsErrorKind::AccessDenied);
        let result = app(&world, config(Mode::Apply))
            .handle(&manual("apply"))
            .await
            .unwrap();
        assert_eq!(result.applied[0].status, AppliedStatus::Failed);
        assert_eq!(result.applied[0].result["errorType"], "AccessDenied");
    }

    #[tokio::test]
    async fn unknown_export_is_a_typed_error() {
        let world = world_with_table();
        let err = app(&world, config(Mode::Apply))
            .handle(&manual("apply"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "ExportNotFound");
    }

    #[tokio::test]
    async fn denied_reads_become_unknown_facts_not_failures() {
        let world = cross_account_world();
        world.write().unwrap().denied = vec!["s3:ListBuckets", "s3:GetBucketPolicy"];
        let result = app(&world, config(Mode::Apply))
            .handle(&manual("diagnose"))
            .await
            .unwrap();
        // Own ListBuckets denied: cross-account-ness unknown; only the bare message points at the owner.
        assert_eq!(result.findings[0].cause, Cause::BucketOwnerMissing);
        assert_eq!(
            result.findings[0].confidence,
            crate::model::Confidence::Possible
        );
    }

    #[tokio::test]
    async fn preflight_reports_the_corrected_command_without_acting() {
        let world = cross_account_world();
        let event = json!({"preflight": {"tableArn": TABLE_ARN, "s3Bucket": "amzn-s3-demo-bucket", "s3SseAlgorithm": "AES256"}});
        let result = app(&world, config(Mode::Apply))
            .handle(&event)
            .await
            .unwrap();
        assert_eq!(result.incident.source, IncidentSource::Preflight);
        assert_eq!(result.findings[0].cause, Cause::BucketOwnerMissing);
        assert!(result.findings[0]
            .remedy
            .command
            .as_deref()
            .unwrap()
            .contains("--s3-bucket-owner 444455556666"));
        assert!(result.applied.is_empty());
        assert!(world.read().unwrap().started.is_empty());
    }

    #[tokio::test]
    async fn sweep_lists_every_page_and_reports_failed_exports_only() {
        let world = world_with_table();
        {
            let mut w = world.write().unwrap();
            for i in 0..60 {
                let mut e = failed_export(request("amzn-s3-demo-bucket"), "S3AccessDenied", "x");
                e.export_arn = format!("{TABLE_ARN}/export/{i:014}-00000000");
                if i % 20 != 0 {
                    e.status = ExportStatus::Completed;
                }
                w.exports.push(e);
            }
        }
        let result = app(&world, config(Mode::Apply))
            .handle(&json!({
                "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}
            }))
            .await
            .unwrap();
        let sweep = result.sweep.unwrap();
        assert_eq!(
            (
                sweep.exports_listed,
                sweep.list_calls,
                sweep.failed_exports.len()
            ),
            (60, 3, 3)
        );
        assert!(sweep.published.is_empty());
    }

    #[tokio::test]
    async fn own_retry_start_is_only_recorded() {
        let world = world_with_table();
        let event: Value = serde_json::from_str(include_str!(
            "../../events/cloudtrail-export-started-own-retry.json"
        ))
        .unwrap();
        let result = app(&world, config(Mode::Apply))
            .handle(&event)
            .await
            .unwrap();
        assert!(result.notes[0].contains("loop guard"));
        assert!(result.findings.is_empty() && result.applied.is_empty());
    }

    #[tokio::test]
    async fn rollback_is_refused_with_a_typed_error() {
        let world = world_with_table();
        let err = app(&world, config(Mode::Apply))
            .handle(&json!({"rollback": {"changeId": "kp-1"}}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NotAvailable");
    }
}
