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
