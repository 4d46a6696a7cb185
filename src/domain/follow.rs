//! Following retries to their outcome, in every mode: a retry the function starts is recorded
//! (`Followed`) and tracked in the ledger's in-flight partition; the in-flight poller (see
//! `org_sweep`) describes it with back-off until DescribeExport says COMPLETED (RESOLVED) or
//! FAILED (a new incident of the same lineage, which retries or gives up), or no longer finds it
//! (GAVE_UP). Each outcome is recorded in the ledger before it is published and marked published
//! after the bus accepted it: at least once, and once per root export (the ledger's guard).
//!
//! AWS behaviour relied on: DescribeExport's `ExportStatus` is IN_PROGRESS, COMPLETED or FAILED,
//! and a COMPLETED export carries `ItemCount` and `EndTime`; an ARN it does not know is
//! `ExportNotFoundException` (DynamoDB API Reference, "DescribeExport",
//! https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DescribeExport.html).
//! The emulator's exports end within seconds; how long a real one runs (minutes to hours) is
//! what the poller's back-off is for, and the emulator cannot show it.

use super::outcome::{self, Attempt, Followed, Outcome, OutcomeKind, RetryState, Subject};
use super::plan::{Action, Plan};
use super::report::{
    Applied, AppliedStatus, ClosedIncident, IncidentReport, RemediationResult, SweepReport,
    SCHEMA_VERSION,
};
use super::App;
use crate::error::Error;
use crate::model::{ExportDescription, Incident, IncidentSource, Lineage, Mode};
use crate::ports::{IncidentRecord, IncidentStatus, Ledger};

/// What the remediation of one failed export knows about the incident it belongs to.
pub(super) struct IncidentSoFar {
    pub subject: Subject,
    pub attempt: u32,
    pub history: Vec<Attempt>,
    pub change_ids: Vec<String>,
    /// This export is a retry the function followed.
    pub followed: bool,
}

/// Where the retry stands after act, from the ledger record act settles (typed), or, without
/// a ledger, from the applied retry's status.
pub(super) fn retry_state(
    mode: Mode,
    with_ledger: bool,
    settle: Option<&IncidentRecord>,
    plan: &Plan,
    applied: &[Applied],
) -> RetryState {
    if mode < Mode::Apply {
        return RetryState::NotRun;
    }
    if with_ledger {
        return match settle.map(|r| r.status) {
            None => RetryState::AlreadyHandled,
            Some(IncidentStatus::Retried) => RetryState::Started,
            Some(IncidentStatus::Pending | IncidentStatus::Claimed) => RetryState::Pending,
            Some(IncidentStatus::GaveUp) if !plan.gave_up => RetryState::Refused,
            Some(IncidentStatus::GaveUp | IncidentStatus::NoAction) => RetryState::NotRun,
        };
    }
    match applied
        .iter()
        .find(|a| a.action == "RETRY_EXPORT")
        .map(|a| a.status)
    {
        Some(AppliedStatus::Done) => RetryState::Started,
        Some(AppliedStatus::Failed) => RetryState::Pending,
        _ => RetryState::NotRun,
    }
}

/// Key-policy changes this run made (their ids).
pub(super) fn change_ids(applied: &[Applied]) -> Vec<String> {
    applied
        .iter()
        .filter(|a| a.action == "PATCH_KEY_POLICY" && a.status == AppliedStatus::Done)
        .filter_map(|a| a.result.get("changeId").and_then(|v| v.as_str()))
        .map(str::to_string)
        .collect()
}

impl App {
    /// The incident this export belongs to: a followed retry's record, else a new incident
    /// rooted here.
    pub(super) async fn incident_so_far(
        &self,
        incident: &Incident,
        export: Option<&ExportDescription>,
        lineage: Option<&Lineage>,
    ) -> Result<IncidentSoFar, Error> {
        let here = incident.export_arn.clone().unwrap_or_default();
        let followed = match (&self.ledger, lineage) {
            (Some(ledger), Some(_)) => ledger.followed(&here).await?,
            _ => None,
        };
        Ok(match followed {
            Some(f) => IncidentSoFar {
                subject: f.subject,
                attempt: f.attempt,
                history: f.history,
                change_ids: f.change_ids,
                followed: true,
            },
            None => IncidentSoFar {
                subject: Subject {
                    root_export_arn: lineage.map_or(here, |l| l.root_export_arn.clone()),
                    table_arn: incident
                        .table_arn
                        .clone()
                        .or_else(|| export.map(|e| e.request.table_arn.clone())),
                    s3_bucket: export.map(|e| e.request.s3_bucket.clone()),
                    failed_at: export.and_then(|e| e.end_time).map(|t| t as i64),
                },
                attempt: lineage.map_or(0, |l| l.attempt),
                history: Vec::new(),
                change_ids: Vec::new(),
                followed: false,
            },
        })
    }

    /// A retry was started: record what the outcome will need and track it in flight.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn follow_retry(
        &self,
        ledger: &dyn Ledger,
        so_far: &IncidentSoFar,
        failed_export_arn: &str,
        retry_export_arn: &str,
        plan: &Plan,
        causes: Vec<String>,
        new_change_ids: Vec<String>,
    ) -> Result<(), Error> {
        let retry = plan.actions.iter().find_map(|a| match a {
            Action::RetryExport(r) => Some(r),
            _ => None,
        });
        let followed = Followed::next(
            so_far.subject.clone(),
            so_far.history.clone(),
            failed_export_arn,
            retry_export_arn,
            retry.map_or(so_far.attempt + 1, |r| r.attempt),
            causes,
            retry
                .map(|r| r.changes.iter().filter_map(|c| correction(c)).collect())
                .unwrap_or_default(),
            new_change_ids,
            &so_far.change_ids,
        );
        let now = self.clock.now();
        // The count first (too high costs a Query, too low would leave a retry unfollowed),
        // then the record: a tracked retry always has one when the poller meets it.
        ledger.add_following(1, now).await?;
        ledger.record_followed(&followed, now).await?;
        ledger
            .track_in_flight(retry_export_arn, now + super::org_sweep::backoff(0), 0, now)
            .await?;
        Ok(())
    }

    /// Records the outcome and says whether this run publishes it: when it recorded it, or met
    /// it recorded but not yet published (a run that crashed in between).
    pub(super) async fn claim_outcome(
        &self,
        ledger: &dyn Ledger,
        outcome: &Outcome,
    ) -> Result<Option<Outcome>, Error> {
        let (recorded, _ours) = ledger.record_outcome(outcome, self.clock.now()).await?;
        Ok((!recorded.published).then_some(recorded.outcome))
    }

    /// An outcome recorded but never published (the run crashed before PutEvents): a later
    /// delivery of the same failure publishes it.
    pub(super) async fn unpublished_outcome(
        &self,
        ledger: &dyn Ledger,
        root_export_arn: &str,
    ) -> Result<Option<Outcome>, Error> {
        Ok(ledger
            .outcome(root_export_arn)
            .await?
            .filter(|r| !r.published)
            .map(|r| r.outcome))
    }

    /// Publishes an outcome on its own (the poller's): a `DynamoDB Export Remediation` event
    /// whose `outcome` field is set. Marks it published once the bus accepted it.
    pub(super) async fn publish_outcome(
        &self,
        ledger: &dyn Ledger,
        outcome: Outcome,
    ) -> Result<bool, Error> {
        let mut incident = Incident::new(IncidentSource::Sweep);
        incident.export_arn = Some(outcome.subject.root_export_arn.clone());
        incident.table_arn = outcome.subject.table_arn.clone();
        let mut result = RemediationResult {
            schema_version: SCHEMA_VERSION,
            mode: self.config.mode,
            incident: IncidentReport::from_incident(&incident),
            findings: Vec::new(),
            plan: Vec::new(),
            applied: Vec::new(),
            notes: Vec::new(),
            outside_write_scope: Vec::new(),
            sweep: None,
            rollback: None,
            gave_up: outcome.kind() == OutcomeKind::GaveUp,
            outcome: Some(outcome.kind()),
            outcome_detail: Some(outcome),
        };
        let accepted = self.publish_result(&mut result).await;
        if accepted {
            ledger
                .outcome_published(&result_root(&result), self.clock.now())
                .await?;
        }
        Ok(accepted)
    }

    /// A tracked export ended (COMPLETED, described) or vanished (`None`): if it is a retry the
    /// function follows, its incident closes. `Ok(false)`: keep it tracked (the outcome event was
    /// not accepted; the next run publishes it).
    pub(super) async fn close_followed(
        &self,
        ledger: &dyn Ledger,
        export_arn: &str,
        completed: Option<&ExportDescription>,
        report: &mut SweepReport,
    ) -> Result<bool, Error> {
        let Some(followed) = ledger.followed(export_arn).await? else {
            return Ok(true);
        };
        let outcome = match completed {
            Some(d) => outcome::on_completed(&followed, d.item_count, d.end_time.map(|t| t as i64)),
            None => outcome::on_disappeared(&followed),
        };
        let claimed = self.claim_outcome(ledger, &outcome).await?;
        self.end_follow(ledger, export_arn).await?;
        let Some(outcome) = claimed else {
            return Ok(true);
        };
        let closed = ClosedIncident::of(&outcome);
        let (kind, root) = (closed.outcome, closed.root_export_arn.clone());
        let accepted = self.publish_outcome(ledger, outcome).await?;
        if accepted {
            report.outcomes.push(closed);
        } else {
            report.errors.push(format!(
                "{root}: PutEvents did not accept the {} outcome",
                kind.as_str()
            ));
        }
        Ok(accepted)
    }
}

/// A parameter change, short (`S3BucketOwner: (none) -> 111122223333` becomes
/// `S3BucketOwner 111122223333`); a change in other words (the export time) is not one.
fn correction(change: &str) -> Option<String> {
    let (name, rest) = change.split_once(": ")?;
    let (_, new) = rest.split_once(" -> ")?;
    (!name.contains(' ')).then(|| format!("{name} {new}"))
}

fn result_root(r: &RemediationResult) -> String {
    r.outcome_detail
        .as_ref()
        .map(|o| o.subject.root_export_arn.clone())
        .unwrap_or_default()
}

impl App {
    /// The remediation's part of the outcome: follows a started retry, or decides the outcome
    /// and records it (with a ledger) before it is published.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn close_remediated(
        &self,
        incident: &Incident,
        evidence: &super::evidence::Evidence,
        lineage: Option<&Lineage>,
        findings: &[crate::model::Finding],
        plan: &Plan,
        would_apply: &[serde_json::Value],
        mode: Mode,
        retry: RetryState,
        applied: &[Applied],
        settle: Option<&IncidentRecord>,
    ) -> Result<Option<Outcome>, Error> {
        if incident.source == IncidentSource::Preflight {
            return Ok(None);
        }
        let so_far = self
            .incident_so_far(incident, evidence.export.as_ref(), lineage)
            .await?;
        let causes: Vec<String> = findings
            .iter()
            .map(|f| f.cause.code().to_string())
            .collect();
        let ledger = self.ledger.as_deref();
        // A followed retry that failed: following it ends here (a new retry is followed anew).
        if let (true, Some(ledger), Some(here)) =
            (so_far.followed, ledger, incident.export_arn.as_deref())
        {
            self.end_follow(ledger, here).await?;
        }
        match (retry, ledger) {
            (RetryState::Started, Some(ledger)) => {
                let started = settle.and_then(|r| r.retry_export_arn.as_deref());
                if let (Some(retry_arn), Some(failed)) = (started, incident.export_arn.as_deref()) {
                    self.follow_retry(
                        ledger,
                        &so_far,
                        failed,
                        retry_arn,
                        plan,
                        causes,
                        change_ids(applied),
                    )
                    .await?;
                }
                return Ok(None);
            }
            (RetryState::AlreadyHandled, Some(ledger)) => {
                return self
                    .unpublished_outcome(ledger, &so_far.subject.root_export_arn)
                    .await;
            }
            _ => {}
        }
        let mut ids = so_far.change_ids.clone();
        ids.extend(change_ids(applied));
        let decided = outcome::on_remediation(outcome::Remediated {
            mode,
            subject: so_far.subject,
            findings,
            plan: would_apply,
            gave_up: plan.gave_up,
            outside_scope: !plan.outside_scope.is_empty(),
            retry,
            attempt: so_far.attempt,
            history: so_far.history,
            change_ids: ids,
        });
        match (decided, ledger) {
            (Some(o), Some(ledger)) => self.claim_outcome(ledger, &o).await,
            (decided, _) => Ok(decided),
        }
    }

    /// Ends following a retry once; the one call that ends it lowers the count.
    async fn end_follow(&self, ledger: &dyn Ledger, retry_export_arn: &str) -> Result<(), Error> {
        let now = self.clock.now();
        if ledger.end_followed(retry_export_arn, now).await? {
            ledger.add_following(-1, now).await?;
        }
        Ok(())
    }

    /// After the publish: an accepted outcome is marked published in the ledger.
    pub(super) async fn outcome_sent(
        &self,
        result: &RemediationResult,
        accepted: bool,
    ) -> Result<(), Error> {
        if let (true, Some(ledger), Some(o)) =
            (accepted, self.ledger.as_deref(), &result.outcome_detail)
        {
            ledger
                .outcome_published(&o.subject.root_export_arn, self.clock.now())
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
