//! The ExportStarted trigger: records who started an export (CloudTrail), and checks that the
//! consumers can decrypt a cross-account KMS export (docs/configuration.md, "Triggers and what to send").

use super::app::role_name;
use super::report::{IncidentReport, RemediationResult, SCHEMA_VERSION};
use super::{diagnosis, evidence, App};
use crate::error::Error;
use crate::intake::ExportStarted;
use crate::model::{Incident, IncidentSource};
use crate::ports::StartRecord;

impl App {
    /// The loop guard: our own retries carry our ClientToken, or are made by our own role.
    pub(super) async fn is_own_call(&self, started: &ExportStarted) -> bool {
        if started.own_retry {
            return true;
        }
        let Some(caller) = started.caller.as_deref() else {
            return false;
        };
        // Organization mode: retries in a spoke account are made by the spoke role.
        if self.config.hub_account_id.is_some()
            && role_name(caller).is_some()
            && role_name(caller) == self.config.member_role_name.as_deref()
        {
            return true;
        }
        match self.identity.whoami().await {
            Ok((_, me)) => role_name(&me).is_some() && role_name(&me) == role_name(caller),
            Err(_) => false,
        }
    }

    pub(super) async fn export_started(
        &self,
        mut started: ExportStarted,
    ) -> Result<RemediationResult, Error> {
        started.own_retry = self.is_own_call(&started).await;
        let mut incident = Incident::new(IncidentSource::Cloudtrail);
        incident.export_arn = started.export_arn.clone();
        incident.table_arn = started.request.as_ref().map(|r| r.table_arn.clone());
        incident.caller = started.caller.clone();
        let mut notes = Vec::new();
        if started.own_retry {
            notes.push(
                "export started by this function's own retry: recorded only (loop guard)".into(),
            );
        }
        let findings = self.consumer_check(&started, &incident).await;
        // Organization mode: the in-flight poller describes it until it ends (our own retries
        // too: a retry that fails again is found without waiting for the safety net).
        if let (Some(ledger), Some(arn), Some(_)) = (
            &self.ledger,
            &started.export_arn,
            &self.config.hub_account_id,
        ) {
            let now = self.clock.now();
            ledger
                .track_in_flight(arn, now + super::org_sweep::backoff(0), 0, now)
                .await?;
            notes.push("export in flight: the organization sweep polls it until it ends".into());
        }
        match (&self.ledger, &started.export_arn) {
            (Some(ledger), Some(arn)) if !started.own_retry => {
                let record = StartRecord {
                    caller: started.caller,
                    request: started.request,
                };
                ledger.record_start(arn, &record, self.clock.now()).await?;
                notes.push("export start recorded: a later failure is attributed to this caller".into());
            }
            (None, _) => notes.push(
                "export start observed; attributing later failures needs the ledger (LEDGER_TABLE_NAME)".into(),
            ),
            _ => {}
        }
        let mut result = RemediationResult {
            schema_version: SCHEMA_VERSION,
            mode: self.config.mode,
            incident: IncidentReport::from_incident(&incident),
            findings,
            plan: Vec::new(),
            applied: Vec::new(),
            notes,
            sweep: None,
            outside_write_scope: Vec::new(),
            rollback: None,
            gave_up: false,
            outcome: None,
            outcome_detail: None,
        };
        if !result.findings.is_empty() {
            self.publish_report(&mut result).await;
        }
        Ok(result)
    }

    /// docs/configuration.md, "Triggers and what to send": an export into another account's bucket with a KMS key is checked at once for
    /// whether the destination can decrypt it (read-only; the finding carries the statement).
    pub(super) async fn consumer_check(
        &self,
        started: &ExportStarted,
        incident: &Incident,
    ) -> Vec<crate::model::Finding> {
        let Some(request) = &started.request else {
            return Vec::new();
        };
        let table_account = crate::arn::account_of(&request.table_arn);
        let cross = request
            .s3_bucket_owner
            .as_deref()
            .is_some_and(|o| Some(o) != table_account.as_deref());
        if started.own_retry
            || request.s3_sse_algorithm != Some(crate::model::SseAlgorithm::Kms)
            || !cross
            || incident.export_arn.is_none()
        {
            return Vec::new();
        }
        match evidence::gather(&self.readers(), incident).await {
            Ok(evidence) => diagnosis::diagnose(incident, &evidence)
                .into_iter()
                .filter(|f| f.cause == crate::model::Cause::ConsumerCannotDecrypt)
                .collect(),
            Err(e) => {
                tracing::warn!(error.message = %crate::error::Chain(&e), "consumer check skipped");
                Vec::new()
            }
        }
    }
}
