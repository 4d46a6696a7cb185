//! The app room: the `App` (ports and settings, built once), the dispatch of a trigger, and
//! `remediate`, which runs the pipeline's stages (ARCHITECTURE.md) in order and nothing else.

use super::act::Actor;
use super::{access, diagnosis, evidence, follow, plan, report, sweep};
use crate::config::Config;
use crate::error::{AwsError, Error};
use crate::intake::{self, Trigger, REPORT_DETAIL_TYPE};
use crate::model::{ExportStatus, Finding, Incident, IncidentSource, Mode};
use crate::ports::{
    AccountDirectory, BucketInspector, Clock, CrossAccount, EventPublisher, ExportService,
    Identity, IdentityPolicies, KeyPolicyStore, Ledger, Lineage, OutboundEvent, Spokes,
};
use futures_util::future::{select, Either};
use plan::Plan;
use report::{Applied, IncidentReport, RemediationResult, SweepReport, SCHEMA_VERSION};
use serde_json::Value;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

/// Everything one invocation needs, built once at init.
pub struct App {
    pub config: Config,
    /// The function's region (table ARNs of the sweep are built in it).
    pub region: String,
    // The site's ports: the function's own account and Region, or (organization mode) the
    // incident's, through the spoke role there.
    pub exports: Box<dyn ExportService>,
    pub buckets: Box<dyn BucketInspector>,
    pub keys: Box<dyn KeyPolicyStore>,
    pub cross: Box<dyn CrossAccount>,
    pub identity: Box<dyn Identity>,
    /// The caller's identity policies and boundary (IAM, the site's account).
    pub iam: Box<dyn IdentityPolicies>,
    // The hub's ports, shared by every site.
    pub accounts: Arc<dyn AccountDirectory>,
    /// `None` when LEDGER_TABLE_NAME is not set: no exactly-once, a report-only sweep.
    pub ledger: Option<Arc<dyn Ledger>>,
    pub events: Arc<dyn EventPublisher>,
    /// Guesses a warm container makes from what it read before (never a fact).
    pub hints: Arc<evidence::Hints>,
    /// The time, and waits (paused in tests).
    pub clock: Arc<dyn Clock>,
    /// Organization mode (`ORG_MODE=on`): ports in the organization's other accounts and Regions.
    pub spokes: Option<Arc<dyn Spokes>>,
    /// How this site was reached: `Some` for a spoke (the report names it).
    pub spoke: Option<report::SpokeAccess>,
}

pub(super) use crate::arn::role_name;

/// Who may have started the export when no record says: a principal the failure message names,
/// and the table account's root (which recorded messages name for the export's S3 calls).
fn caller_candidates(incident: &Incident, evidence: &evidence::Evidence) -> Vec<String> {
    let message = evidence
        .export
        .as_ref()
        .and_then(|e| e.failure_message.as_deref())
        .or(incident.failure_message.as_deref());
    let named = message
        .and_then(access::parse_denial)
        .and_then(|d| d.principal);
    let partition = incident
        .table_arn
        .as_deref()
        .and_then(|t| crate::arn::Arn::parse("tableArn", t).ok())
        .map(|a| a.partition)
        .unwrap_or_else(|| "aws".into());
    let mut out: Vec<String> = named.into_iter().collect();
    if !evidence.table_account.is_empty() {
        let root = format!("arn:{partition}:iam::{}:root", evidence.table_account);
        if !out.contains(&root) {
            out.push(root);
        }
    }
    out
}

/// An owner token for a delivery that brought none (the CLI, tests): unique per process and call.
pub(crate) fn local_owner() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "local-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Most ListExports pages the report-only sweep reads (25 exports a page).
const SWEEP_MAX_PAGES: usize = 400;

/// What the plan and act stages left for the report.
struct Done {
    mode: Mode,
    findings: Vec<Finding>,
    plan: Plan,
    applied: Vec<Applied>,
    notes: Vec<String>,
}

/// The evidence stage's result, with what the first round read for the plan.
struct Gathered {
    evidence: evidence::Evidence,
    lineage: Option<Lineage>,
    me: Result<(String, String), AwsError>,
}

/// The result of one incident, with the notes only the whole run can tell.
fn report_of(incident: &Incident, evidence: &evidence::Evidence, done: Done) -> RemediationResult {
    let Done {
        mode,
        findings,
        plan,
        applied,
        mut notes,
    } = done;
    if incident.source == IncidentSource::Preflight {
        notes.push(if findings.is_empty() {
            "preflight: no cause found; the export should succeed as far as these facts show".into()
        } else {
            "preflight: the export would fail; use the corrected command".into()
        });
    }
    if let Some(e) = evidence
        .export
        .as_ref()
        .filter(|e| e.status != ExportStatus::Failed)
    {
        if findings.is_empty() && e.status == ExportStatus::Completed {
            notes.push("export completed: healthy, nothing to do".into());
        }
        let now_failing = diagnosis::would_fail_now(incident, evidence);
        if !now_failing.is_empty() {
            let codes: Vec<&str> = now_failing.iter().map(|c| c.code()).collect();
            notes.push(format!(
                "the export is {}, so it has no failure cause; the facts have changed since it ran, and a new export with its parameters would meet: {}",
                e.status.as_str(),
                codes.join(", ")
            ));
        }
    }
    let mut report = IncidentReport::from_incident(incident);
    if incident.caller.is_none() && incident.source != IncidentSource::Preflight {
        report.caller_candidates = caller_candidates(incident, evidence);
        notes.push(format!(
            "caller unknown: no CloudTrail record or ledger START names who started the export; considered {}",
            report.caller_candidates.join(", ")
        ));
    }
    RemediationResult {
        schema_version: SCHEMA_VERSION,
        mode,
        incident: report,
        findings,
        plan: plan.actions.iter().map(report::plan_entry).collect(),
        applied,
        notes,
        sweep: None,
        outside_write_scope: plan.outside_scope.clone(),
        rollback: None,
        gave_up: plan.gave_up,
        outcome: None,
        outcome_detail: None,
    }
}

impl App {
    /// The act stage's view of the ports.
    pub(super) fn actor(&self) -> Actor<'_> {
        Actor {
            config: &self.config,
            region: &self.region,
            exports: self.exports.as_ref(),
            keys: self.keys.as_ref(),
            cross: self.cross.as_ref(),
            identity: self.identity.as_ref(),
            clock: self.clock.as_ref(),
        }
    }

    /// The evidence stage's view of the ports.
    pub fn readers(&self) -> evidence::Readers<'_> {
        evidence::Readers {
            config: &self.config,
            exports: self.exports.as_ref(),
            buckets: self.buckets.as_ref(),
            keys: self.keys.as_ref(),
            accounts: self.accounts.as_ref(),
            cross: self.cross.as_ref(),
            iam: self.iam.as_ref(),
            hints: &self.hints,
        }
    }

    /// Handles one event of any trigger shape; `deadline` bounds long work (the sweep).
    pub async fn handle(
        &self,
        event: &Value,
        deadline: Option<Instant>,
    ) -> Result<RemediationResult, Error> {
        self.handle_as(event, deadline, None).await
    }

    /// `handle`, for the delivery `owner` (the Lambda request id): the ledger's claims carry it,
    /// so a claim the SDK sent again after its answer was lost is recognised as this delivery's.
    pub async fn handle_as(
        &self,
        event: &Value,
        deadline: Option<Instant>,
        owner: Option<&str>,
    ) -> Result<RemediationResult, Error> {
        let owner = owner.map_or_else(local_owner, str::to_string);
        // Each trigger's future is boxed: together they outgrow a 2 MiB thread stack in debug
        // builds (tokio's workers and the test threads have no more), and a box costs one
        // allocation per invocation.
        match intake::parse(event)? {
            Trigger::Incident(mut incident) | Trigger::Preflight(mut incident) => {
                incident.owner = Some(owner);
                Box::pin(self.remediate_where(incident)).await
            }
            Trigger::ExportStarted(started) => Box::pin(self.export_started(started)).await,
            Trigger::Sweep => Box::pin(self.sweep(deadline, &owner)).await,
            Trigger::Rollback { change_id } => Box::pin(self.rollback(&change_id)).await,
        }
    }

    /// One deployment covers one account and region: an export elsewhere is refused by name.
    pub(super) fn in_my_region(&self, incident: &Incident) -> Result<(), Error> {
        let arn = incident.export_arn.as_ref().or(incident.table_arn.as_ref());
        let Some(arn) = arn.and_then(|a| crate::arn::Arn::parse("exportArn", a).ok()) else {
            return Ok(());
        };
        if self.region.is_empty() || arn.region == self.region {
            return Ok(());
        }
        Err(Error::UnsupportedEvent(format!(
            "the export is in {} ({}); this deployment covers {} ({}): deploy the function in that region",
            arn.region,
            arn.partition,
            self.region,
            crate::arn::partition_of(&self.region)
        )))
    }

    fn effective_mode(&self, requested: Option<Mode>) -> Mode {
        let mode = requested.map_or(self.config.mode, |m| m.min(self.config.mode));
        if self.unreachable() {
            // Nothing is changed in an account whose facts could not be read.
            mode.min(Mode::Plan)
        } else {
            mode
        }
    }

    /// The six stages of the pipeline (ARCHITECTURE.md) for one incident (intake has made it).
    pub async fn remediate(&self, mut incident: Incident) -> Result<RemediationResult, Error> {
        let mode = self.effective_mode(incident.requested_mode);
        let mut notes = Vec::new();
        // Apply mode lists the incident as open in the ledger beside the evidence's first
        // round (no added wait), before any claim can land: a delivery that dies anywhere
        // after it leaves the incident to the sweep once the lease has run out.
        let listing = match (mode, &self.ledger, &incident.export_arn) {
            (Mode::Apply, Some(ledger), Some(arn)) => {
                let due = self.clock.now() + i64::from(self.config.claim_lease_seconds);
                Some((ledger.clone(), arn.clone(), due))
            }
            _ => None,
        };
        let listed = async {
            match &listing {
                Some((ledger, arn, due)) => ledger.list_open(arn, *due, self.clock.now()).await,
                None => Ok(()),
            }
        };
        // Evidence: the first round (export, ledger, identity) and the reads it leads to.
        let (gathered, listed) = tokio::join!(self.gather(&mut incident, &mut notes), listed);
        let gathered = match listed.map_err(Error::from).and(gathered) {
            Ok(g) => g,
            Err(e) => {
                // A read failed transiently before the incident could be claimed: it is
                // listed for the sweep (due now), besides Lambda's own retries of this error.
                if let (Mode::Apply, Some(ledger), Some(arn), true) =
                    (mode, &self.ledger, &incident.export_arn, e.is_transient())
                {
                    let now = self.clock.now();
                    if let Err(l) = ledger.list_open(arn, now, now).await {
                        tracing::warn!(error.message = %l.reason(), "could not list the incident for the sweep");
                    }
                }
                return Err(e);
            }
        };
        let evidence = &gathered.evidence;
        // Diagnosis.
        let findings = diagnosis::diagnose(&incident, evidence);
        // Plan.
        let own = gathered.me.as_ref().ok().map(|(_, arn)| arn.as_str());
        let lineage = gathered.lineage.as_ref();
        // Diagnose mode plans too, for the outcome only: what apply would have run.
        let planned = plan::plan(&incident, evidence, &findings, &self.config, lineage, own);
        let would_apply: Vec<Value> = planned.actions.iter().map(report::plan_entry).collect();
        let plan = if mode >= Mode::Plan {
            planned
        } else {
            Plan::default()
        };
        notes.extend(plan.notes.iter().cloned());
        // Reads that failed transiently leave the diagnosis provisional: it is never recorded
        // as final (apply mode gives its claim back and fails, so the incident is delivered
        // again); other modes say so in the result.
        let incomplete = evidence.incomplete_reads();
        if !incomplete.is_empty() {
            tracing::warn!(reads = ?incomplete, "evidence incomplete: reads failed after the SDK's retries");
        }
        // Act: exactly once through the ledger in apply mode, else what the mode allows.
        let with_ledger =
            mode == Mode::Apply && self.ledger.is_some() && incident.export_arn.is_some();
        let (applied, settle) = match (mode, &self.ledger, &incident.export_arn) {
            (Mode::Apply, Some(ledger), Some(arn)) => {
                let owner = incident.owner.clone().unwrap_or_else(local_owner);
                let acted = self
                    .actor()
                    .act_once(
                        ledger.as_ref(),
                        arn,
                        &owner,
                        &plan,
                        &findings,
                        &incomplete,
                        &mut notes,
                    )
                    .await?;
                (acted.applied, acted.settle.map(|r| (ledger, r)))
            }
            _ => {
                if !incomplete.is_empty() {
                    notes.push(format!(
                        "evidence incomplete: {} failed transiently (throttling, 5xx, timeout or reset) after the SDK's retries; this diagnosis may change when they are read again",
                        incomplete.join(", ")
                    ));
                }
                (
                    self.actor().act(mode, &plan.actions, &mut notes).await,
                    None,
                )
            }
        };
        // The outcome: decided here unless a retry runs (the poller closes the incident then).
        let retry = follow::retry_state(
            mode,
            with_ledger,
            settle.as_ref().map(|(_, r)| r),
            &plan,
            &applied,
        );
        let closing = self
            .close_remediated(
                &incident,
                evidence,
                gathered.lineage.as_ref(),
                &findings,
                &plan,
                &would_apply,
                mode,
                retry,
                &applied,
                settle.as_ref().map(|(_, r)| r),
            )
            .await?;
        // Report, beside the ledger's last write (it reports what was done, not that write).
        let done = Done {
            mode,
            findings,
            plan,
            applied,
            notes,
        };
        let mut result = report_of(&incident, evidence, done);
        result.incident.spoke = self.spoke.clone();
        if let Some(s) = self.spoke.as_ref().filter(|s| !s.assumed) {
            result.notes.push(format!(
                "the spoke role {} could not be assumed, so every fact of account {} is Unknown and nothing was changed: {}",
                s.role_arn,
                incident.place.as_ref().map_or("?", |p| p.account.as_str()),
                s.error.as_deref().unwrap_or("no reason given")
            ));
        }
        if let Some(o) = closing {
            result.outcome = Some(o.kind());
            result.outcome_detail = Some(o);
        }
        let accepted = match settle {
            Some((ledger, record)) => {
                // Should the write fail, the report is out anyway and the delivery fails: the
                // next one finds the lease, or after it the stored token, and reports again.
                let (settled, accepted) = tokio::join!(
                    ledger.settle(&record, self.clock.now()),
                    self.publish_result(&mut result)
                );
                if !settled? {
                    return Err(Error::LeaseLost(format!(
                        "{}: another delivery took the incident over before this one settled it",
                        record.export_arn
                    )));
                }
                accepted
            }
            None => self.publish_result(&mut result).await,
        };
        self.outcome_sent(&result, accepted).await?;
        Ok(result)
    }

    /// The evidence stage's rounds; fills the incident from what DescribeExport and the
    /// ledger's START record say.
    async fn gather(
        &self,
        incident: &mut Incident,
        notes: &mut Vec<String>,
    ) -> Result<Gathered, Error> {
        let readers = self.readers();
        // The first round: the export, the ledger's records of it (who started it, whether it
        // is one of our retries) and the function's own identity, together.
        let ledger_reads = async {
            match (&self.ledger, &incident.export_arn) {
                (Some(ledger), Some(arn)) => {
                    let (start, lineage) =
                        tokio::join!(ledger.start_record(arn), ledger.lineage(arn));
                    Ok::<_, Error>((start?, lineage?))
                }
                _ => Ok((None, None)),
            }
        };
        // An event that names the destination lets the evidence be read in this round too,
        // from what it says; DescribeExport's answer then confirms it or the reads are redone.
        let announced = evidence::announced(incident);
        let early = async {
            match announced {
                Some(a) => Some(evidence::gather_from(&readers, incident, Some(a)).await),
                None => {
                    // The organization's accounts (owner candidates) are listed now: the
                    // adapter keeps them, so the owner lookup does not wait for them later.
                    if self.config.member_role_name.is_some() {
                        let _ = self.accounts.account_ids().await;
                    }
                    None
                }
            }
        };
        // Without an announced destination the SCP walk (several rounds in a member account)
        // still starts now: its account is the export ARN's. It goes on beside the evidence.
        let scp_account = incident
            .export_arn
            .as_deref()
            .filter(|_| incident.announced.is_none())
            .and_then(crate::arn::account_of);
        let ((reads, export, me, early), scps) = {
            let first_round = pin!(async {
                tokio::join!(
                    ledger_reads,
                    evidence::describe(&readers, incident),
                    self.identity.whoami(),
                    early
                )
            });
            match &scp_account {
                Some(account) => match select(first_round, self.accounts.scp_path(account)).await {
                    Either::Left((first, walk)) => {
                        (first, Some(evidence::EarlyScps::Running(walk)))
                    }
                    Either::Right((path, first)) => {
                        (first.await, Some(evidence::EarlyScps::Done(path)))
                    }
                },
                None => (first_round.await, None),
            }
        };
        let export = match export {
            // A site whose role was not assumed: DescribeExport's refusal is one more Unknown.
            Err(_) if self.unreachable() => Ok(None),
            other => other,
        };
        let ((start, lineage), mut export) = (reads?, export?);
        // docs/safety.md, "Safety": a retry keeps every parameter it does not correct, including those only the
        // start recorded.
        if let (Some(e), Some(r)) = (
            export.as_mut(),
            start.as_ref().and_then(|s| s.request.as_ref()),
        ) {
            let filled = e.request.fill_missing_from(r);
            if !filled.is_empty() {
                notes.push(format!(
                    "{} from the ledger's START record: DescribeExport left them out",
                    filled.join(", ")
                ));
            }
        }
        if incident.caller.is_none() {
            incident.caller = start.and_then(|s| s.caller);
        }
        let early_scps = scp_account.clone().zip(scps);
        let evidence = match early {
            Some(Ok(early)) => evidence::confirm(&readers, incident, early, export).await?,
            _ => evidence::gather_with(&readers, incident, export, early_scps).await?,
        };
        if let Some(e) = &evidence.export {
            if incident.failure_code.is_none() {
                incident.failure_code = e.failure_code.clone();
            }
            if incident.failure_message.is_none() {
                incident.failure_message = e.failure_message.clone();
            }
            if incident.table_arn.is_none() {
                incident.table_arn = Some(e.request.table_arn.clone());
            }
        }
        Ok(Gathered {
            evidence,
            lineage,
            me,
        })
    }

    /// Rollback (docs/safety.md, "Key-policy patch"): restores the before-policy only while the key's policy is exactly what this
    /// function wrote.
    async fn rollback(&self, change_id: &str) -> Result<RemediationResult, Error> {
        let ledger = self.ledger.as_deref().ok_or_else(|| {
            Error::NotAvailable(
                "rollback finds changes by their audit record: set LEDGER_TABLE_NAME".into(),
            )
        })?;
        let change = ledger
            .key_change(change_id)
            .await?
            .ok_or_else(|| Error::ChangeNotFound(change_id.to_string()))?;
        // Organization mode: the key's own account and Region, through the spoke role there.
        let place = crate::arn::Arn::parse("keyArn", &change.key_arn)
            .ok()
            .map(|a| crate::model::Place {
                account: a.account,
                region: a.region,
            });
        let site = match place {
            Some(p) if self.config.hub_account_id.is_some() => self.site_for(&p).await?,
            _ => super::site::Site::Here(self),
        };
        let (outcome, detail, applied) = site.actor().rollback_change(ledger, &change).await?;
        let mut incident = Incident::new(IncidentSource::Manual);
        incident.export_arn = change.export_arn.clone();
        let mut result = RemediationResult {
            schema_version: SCHEMA_VERSION,
            mode: self.config.mode,
            incident: IncidentReport::from_incident(&incident),
            findings: Vec::new(),
            plan: Vec::new(),
            applied: applied.iter().map(report::RollbackStep::applied).collect(),
            notes: Vec::new(),
            sweep: None,
            outside_write_scope: Vec::new(),
            gave_up: false,
            outcome: None,
            outcome_detail: None,
            rollback: Some(report::RollbackReport {
                change_id: change.change_id.clone(),
                key_arn: change.key_arn.clone(),
                outcome,
                detail,
            }),
        };
        self.publish_report(&mut result).await;
        Ok(result)
    }

    /// Puts the result on the bus as `DynamoDB Export Remediation`; a failure is noted, not fatal.
    pub(super) async fn publish_report(&self, result: &mut RemediationResult) {
        self.publish_result(result).await;
    }

    /// `publish_report`, saying whether the bus accepted the event.
    pub(super) async fn publish_result(&self, result: &mut RemediationResult) -> bool {
        if !self.config.publish_reports {
            return false;
        }
        let detail = match serde_json::to_value(&*result) {
            Ok(v) => v,
            Err(_) => return false,
        };
        let event = OutboundEvent {
            source: sweep::EVENT_SOURCE.into(),
            detail_type: REPORT_DETAIL_TYPE.into(),
            detail,
            resources: result.incident.export_arn.iter().cloned().collect(),
        };
        match self.events.publish(&[event]).await {
            Ok(accepted) if accepted.first() == Some(&true) => true,
            Ok(_) => {
                result
                    .notes
                    .push("report event not accepted by the bus".into());
                false
            }
            Err(e) => {
                result
                    .notes
                    .push(format!("report event not published: {}", e.reason()));
                false
            }
        }
    }

    async fn sweep(
        &self,
        deadline: Option<Instant>,
        owner: &str,
    ) -> Result<RemediationResult, Error> {
        let org = self.config.hub_account_id.is_some() && self.spokes.is_some();
        let (mut report, notes) = match &self.ledger {
            Some(ledger) if org => (
                super::org_sweep::org_sweep(self, ledger.as_ref(), deadline, self.clock.now())
                    .await?,
                Vec::new(),
            ),
            Some(ledger) => (
                sweep::sweep(self, ledger.as_ref(), deadline, self.clock.now()).await?,
                Vec::new(),
            ),
            None => self.report_only_sweep().await?,
        };
        if let Some(ledger) = &self.ledger {
            // The open incidents after the sweep's own work: a failure here is reported and
            // the next sweep tries again; what was swept stays done.
            if let Err(e) =
                sweep::take_over_expired(self, ledger.as_ref(), deadline, owner, &mut report).await
            {
                report.errors.push(format!(
                    "open incidents not taken over: {}",
                    e.public_message()
                ));
            }
        }
        Ok(RemediationResult {
            schema_version: SCHEMA_VERSION,
            mode: self.config.mode,
            incident: IncidentReport::from_incident(&Incident::new(IncidentSource::Sweep)),
            findings: Vec::new(),
            plan: Vec::new(),
            applied: Vec::new(),
            notes,
            sweep: Some(report),
            outside_write_scope: Vec::new(),
            rollback: None,
            gave_up: false,
            outcome: None,
            outcome_detail: None,
        })
    }

    /// Without a ledger the sweep cannot tell new failures from handled ones, so it lists the
    /// account's exports, reports the FAILED ones and publishes nothing.
    async fn report_only_sweep(&self) -> Result<(SweepReport, Vec<String>), Error> {
        let mut report = SweepReport::default();
        let mut token = None;
        let mut notes = Vec::new();
        let lookback = i64::from(self.config.sweep_lookback_hours) * 3600;
        let now = self.clock.now();
        loop {
            let page = self.exports.list_exports(None, token).await?;
            report.list_calls += 1;
            report.exports_listed += page.exports.len();
            for e in page
                .exports
                .into_iter()
                .filter(|e| e.status == ExportStatus::Failed)
            {
                // Without DescribeExport here, only the id can date it: an undated or
                // borderline one is listed.
                if sweep::age_from_id(&e.export_arn, now, lookback) == Some(sweep::Age::Old) {
                    report.older_than_lookback += 1;
                } else {
                    report.failed_exports.push(e.export_arn);
                }
            }
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
            "report-only sweep: set LEDGER_TABLE_NAME to publish each new failure once".into(),
        );
        Ok((report, notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::report::AppliedStatus;
    use serde_json::json;

    fn now() -> i64 {
        crate::aws::SystemClock.now()
    }
    use crate::error::AwsErrorKind;
    use crate::fakes::*;
    use crate::model::Cause;
    use crate::ports::{IncidentStatus, Lineage, StartRecord};

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
                FakeBucket {
                    policy: Some(grant_policy("amzn-s3-demo-bucket")),
                    ..FakeBucket::owned_by(DATA_ACCOUNT)
                },
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
            .handle(&manual("apply"), None)
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

    /// The sweep's event for the cross-account failure, naming `bucket` as its destination.
    fn failed_event(bucket: &str) -> Value {
        json!({"detail-type": "DynamoDB Export Failed", "source": "ddb-export-remediator",
               "detail": {"exportArn": EXPORT_ARN, "tableArn": TABLE_ARN,
                          "failureCode": "S3AccessDenied", "failureMessage": "Access Denied",
                          "s3Bucket": bucket, "s3SseAlgorithm": "AES256"}})
    }

    #[tokio::test]
    async fn an_event_naming_the_destination_is_confirmed_by_describe_export_or_read_again() {
        let world = cross_account_world();
        let app = app(&world, config(Mode::Diagnose));
        let manual = app.handle(&manual("diagnose"), None).await.unwrap();
        let announced = app
            .handle(&failed_event("amzn-s3-demo-bucket"), None)
            .await
            .unwrap();
        assert_eq!(announced.findings[0].cause, Cause::BucketOwnerMissing);
        assert_eq!(
            serde_json::to_value(&announced.findings).unwrap(),
            serde_json::to_value(&manual.findings).unwrap()
        );
        // An event that names another bucket than DescribeExport does: the evidence is read
        // again for the export's real bucket (kept, it would say BUCKET_NOT_FOUND).
        let wrong = app
            .handle(&failed_event("not-the-bucket"), None)
            .await
            .unwrap();
        assert_eq!(wrong.findings[0].cause, Cause::BucketOwnerMissing);
        assert!(wrong
            .findings
            .iter()
            .all(|f| f.cause != Cause::BucketNotFound));
    }

    #[tokio::test(start_paused = true)]
    async fn the_scp_walk_started_before_describe_export_is_the_one_used() {
        let world = cross_account_world();
        {
            let mut w = world.write().unwrap();
            w.scp_path = Some(crate::ports::ScpPath {
                management_account: true,
                levels: Vec::new(),
            });
            // The walk must begin beside DescribeExport, not after its answer.
            w.describe_after_scp_walk = true;
        }
        let app = app(&world, config(Mode::Diagnose));
        for event in [manual("diagnose"), failed_event("amzn-s3-demo-bucket")] {
            app.handle(&event, None).await.unwrap();
            let walks = std::mem::take(&mut world.write().unwrap().scp_walks);
            assert_eq!(walks, [TABLE_ACCOUNT], "{event}");
        }
    }

    #[tokio::test]
    async fn an_export_nobody_recorded_starting_reports_the_callers_it_considered() {
        let world = cross_account_world();
        let result = app(&world, config(Mode::Diagnose))
            .handle(&manual("diagnose"), None)
            .await
            .unwrap();
        assert!(result.incident.caller.is_none());
        assert_eq!(
            result.incident.caller_candidates,
            vec![format!("arn:aws:iam::{}:root", crate::fakes::TABLE_ACCOUNT)]
        );
        assert!(result.notes.iter().any(|n| n.starts_with("caller unknown")));
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(
            json["incident"]["callerCandidates"][0],
            format!("arn:aws:iam::{}:root", crate::fakes::TABLE_ACCOUNT)
        );
    }

    #[tokio::test]
    async fn without_a_member_role_the_owner_is_unknown_and_nothing_is_retried() {
        let world = cross_account_world();
        let cfg = Config {
            member_role_name: None,
            ..Config::default()
        };
        let result = app(&world, cfg)
            .handle(&manual("apply"), None)
            .await
            .unwrap();
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
            .handle(&manual("apply"), None)
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
            .handle(&manual("diagnose"), None)
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
            .handle(&manual("apply"), None)
            .await
            .unwrap();
        assert_eq!(result.applied[0].status, AppliedStatus::Failed);
        assert_eq!(result.applied[0].result["errorType"], "AccessDenied");
    }

    #[tokio::test]
    async fn unknown_export_is_a_typed_error() {
        let world = world_with_table();
        let err = app(&world, config(Mode::Apply))
            .handle(&manual("apply"), None)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "ExportNotFound");
    }

    #[tokio::test]
    async fn denied_reads_become_unknown_facts_not_failures() {
        let world = cross_account_world();
        world.write().unwrap().denied = vec!["s3:ListBuckets", "s3:GetBucketPolicy"];
        let result = app(&world, config(Mode::Apply))
            .handle(&manual("diagnose"), None)
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
            .handle(&event, None)
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
                e.export_arn = recent_export(i);
                if i % 20 != 0 {
                    e.status = ExportStatus::Completed;
                }
                w.exports.push(e);
            }
        }
        let result = app(&world, config(Mode::Apply))
            .handle(
                &json!({
                    "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}
                }),
                None,
            )
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
            .handle(&event, None)
            .await
            .unwrap();
        assert!(result.notes[0].contains("loop guard"));
        assert!(result.findings.is_empty() && result.applied.is_empty());
    }

    /// events/fixtures/bad-input.json: each bad event gets exactly its typed error.
    #[tokio::test]
    async fn every_bad_input_gets_its_typed_error() {
        let corpus: Value =
            serde_json::from_str(include_str!("../../events/fixtures/bad-input.json")).unwrap();
        let cases = corpus["cases"].as_array().unwrap();
        assert!(cases.len() >= 20);
        let world = world_with_table();
        let app = app(&world, ledger_config());
        for case in cases {
            let mut event = case["event"].clone();
            if event["rollback"]["changeId"] == "LONG" {
                event["rollback"]["changeId"] = json!("a".repeat(4096));
            }
            let err = match app.handle(&event, None).await {
                Err(e) => e,
                Ok(r) => panic!("{}: accepted: {:?}", case["name"], r.notes),
            };
            assert_eq!(
                err.error_type(),
                case["errorType"],
                "{}: {err}",
                case["name"]
            );
            let message = case["message"].as_str().unwrap();
            assert!(
                err.to_string().contains(message),
                "{}: {err} lacks {message:?}",
                case["name"]
            );
            assert!(err.to_string().len() < 600, "{}: {err}", case["name"]);
        }
        assert!(world.read().unwrap().started.is_empty());
        assert!(world.read().unwrap().ledger.is_empty());
    }

    #[tokio::test]
    async fn rollback_without_a_ledger_is_refused_with_a_typed_error() {
        let world = world_with_table();
        let err = app(&world, config(Mode::Apply))
            .handle(&json!({"rollback": {"changeId": "kp-1"}}), None)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NotAvailable");
    }

    fn ledger_config() -> Config {
        Config {
            ledger_table_name: Some("ledger".into()),
            ..config(Mode::Apply)
        }
    }

    fn started(world: &Shared) -> usize {
        world.read().unwrap().started.len()
    }

    #[tokio::test]
    async fn concurrent_deliveries_of_one_failure_start_exactly_one_retry() {
        let world = cross_account_world();
        let app = app(&world, ledger_config());
        let event = manual("apply");
        let (a, b) = tokio::join!(app.handle(&event, None), app.handle(&event, None));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(started(&world), 1);
        let statuses: Vec<AppliedStatus> = [&a, &b].iter().map(|r| r.applied[0].status).collect();
        assert!(
            statuses.contains(&AppliedStatus::Done) && statuses.contains(&AppliedStatus::Skipped),
            "{statuses:?}"
        );
        let record = world.read().unwrap().ledger[EXPORT_ARN].clone();
        assert_eq!(record.status, IncidentStatus::Retried);
        assert_eq!(record.causes, vec!["BUCKET_OWNER_MISSING"]);
        assert!(record.client_token.unwrap().starts_with("ddbxr-"));
        assert_eq!(
            record.export_time,
            Some(1_795_500_000.0),
            "stored before the call"
        );
    }

    #[tokio::test]
    async fn a_late_redelivery_is_skipped_with_the_first_outcome() {
        let world = cross_account_world();
        let app = app(&world, ledger_config());
        let first = app.handle(&manual("apply"), None).await.unwrap();
        let retry_arn = first.applied[0].result["exportArn"].clone();
        let again = app.handle(&manual("apply"), None).await.unwrap();
        assert_eq!(started(&world), 1);
        assert_eq!(again.applied[0].status, AppliedStatus::Skipped);
        assert_eq!(again.applied[0].result["retryExportArn"], retry_arn);
        assert_eq!(
            again.findings[0].cause,
            Cause::BucketOwnerMissing,
            "still diagnosed, read-only"
        );
    }

    /// GIVEN our retry X of the export failed again with the same cause.
    fn failed_retry(world: &Shared, retry_arn: &str) {
        let mut w = world.write().unwrap();
        let mut e = failed_export(
            request("amzn-s3-demo-bucket"),
            "S3AccessDenied",
            "Access Denied",
        );
        e.export_arn = retry_arn.to_string();
        w.exports.push(e);
    }

    #[tokio::test]
    async fn a_retry_that_fails_again_with_the_same_cause_gives_up() {
        let world = cross_account_world();
        let app = app(&world, ledger_config());
        let first = app.handle(&manual("apply"), None).await.unwrap();
        let retry_arn = first.applied[0].result["exportArn"]
            .as_str()
            .unwrap()
            .to_string();
        failed_retry(&world, &retry_arn);
        let second = app
            .handle(&json!({"exportArn": retry_arn, "mode": "apply"}), None)
            .await
            .unwrap();
        assert!(second.applied.is_empty());
        assert!(second.notes[0].contains("same cause"), "{:?}", second.notes);
        assert!(second.gave_up && !first.gave_up);
        assert_eq!(started(&world), 1);
        assert_eq!(
            world.read().unwrap().ledger[&retry_arn].status,
            IncidentStatus::GaveUp
        );
    }

    #[tokio::test]
    async fn retries_stop_at_max_retries_across_the_lineage() {
        let world = cross_account_world();
        let retry_arn = format!("{TABLE_ARN}/export/01795600000000-0000000f");
        failed_retry(&world, &retry_arn);
        world.write().unwrap().lineages.insert(
            retry_arn.clone(),
            Lineage {
                root_export_arn: EXPORT_ARN.into(),
                attempt: 2,
                causes: vec!["SSE_MISMATCH_REQUIRES_KMS".into()],
                after_patch: false,
            },
        );
        let result = app(&world, ledger_config())
            .handle(&json!({"exportArn": retry_arn, "mode": "apply"}), None)
            .await
            .unwrap();
        assert!(
            result.notes[0].contains("MAX_RETRIES=2"),
            "{:?}",
            result.notes
        );
        assert!(result.gave_up);
        assert_eq!(started(&world), 0);
        let w = world.read().unwrap();
        assert_eq!(w.ledger[&retry_arn].status, IncidentStatus::GaveUp);
        assert_eq!(w.ledger[&retry_arn].root_export_arn, EXPORT_ARN);
    }

    #[tokio::test]
    async fn a_throttled_retry_stays_pending_and_the_next_delivery_sends_the_same_call() {
        let world = cross_account_world();
        world.write().unwrap().fail_start = Some(AwsErrorKind::Throttled);
        let app = app(&world, ledger_config());
        let first = app.handle(&manual("apply"), None).await.unwrap();
        assert_eq!(first.applied[0].status, AppliedStatus::Failed);
        let pending = world.read().unwrap().ledger[EXPORT_ARN].clone();
        assert_eq!(pending.status, IncidentStatus::Pending);
        let second = app.handle(&manual("apply"), None).await.unwrap();
        assert_eq!(second.applied[0].status, AppliedStatus::Done);
        let w = world.read().unwrap();
        assert_eq!(w.started.len(), 1);
        assert_eq!(Some(w.started[0].1.clone()), pending.client_token);
        assert_eq!(w.started[0].0.export_time, pending.export_time);
    }

    #[tokio::test]
    async fn a_watched_start_attributes_the_later_failure_to_its_caller() {
        let world = cross_account_world();
        let app = app(&world, ledger_config());
        let mut start: Value =
            serde_json::from_str(include_str!("../../events/cloudtrail-export-started.json"))
                .unwrap();
        start["detail"]["responseElements"]["exportDescription"]["exportArn"] = json!(EXPORT_ARN);
        let recorded = app.handle(&start, None).await.unwrap();
        assert!(
            recorded.notes[0].contains("recorded"),
            "{:?}",
            recorded.notes
        );
        let result = app.handle(&manual("diagnose"), None).await.unwrap();
        assert_eq!(
            result.incident.caller.as_deref(),
            Some("arn:aws:iam::111122223333:role/DataPlatformExporter")
        );
    }

    #[tokio::test]
    async fn a_retry_keeps_the_prefix_and_format_only_the_start_record_knows() {
        // GIVEN DescribeExport omits S3Prefix and ExportFormat (as for recorded FAILED exports)
        let world = cross_account_world();
        let deep = "lake/raw/orders/2026/12/02/full";
        {
            let mut w = world.write().unwrap();
            let e = &mut w.exports[0].request;
            e.s3_prefix = None;
            e.export_format = None;
            let mut started = request("amzn-s3-demo-bucket");
            started.s3_prefix = Some(deep.into());
            started.export_format = Some("ION".into());
            w.starts.insert(
                EXPORT_ARN.into(),
                StartRecord {
                    caller: Some("arn:aws:iam::111122223333:role/DataPlatformExporter".into()),
                    request: Some(started),
                },
            );
        }
        // WHEN the failure is remediated
        let result = app(&world, ledger_config())
            .handle(&manual("apply"), None)
            .await
            .unwrap();
        // THEN the retry writes under the same prefix, in the same format
        let w = world.read().unwrap();
        assert_eq!(w.started.len(), 1, "{:?}", result.notes);
        assert_eq!(w.started[0].0.s3_prefix.as_deref(), Some(deep));
        assert_eq!(w.started[0].0.export_format.as_deref(), Some("ION"));
        assert!(
            result
                .notes
                .iter()
                .any(|n| n.starts_with("S3Prefix, ExportFormat from the ledger's START record")),
            "{:?}",
            result.notes
        );
    }

    #[tokio::test]
    async fn a_completed_export_gets_no_failure_cause_in_a_world_that_has_changed_since() {
        // GIVEN an export that COMPLETED, whose bucket has since moved to another account
        // (today an export without --s3-bucket-owner would fail), and an event that claims it failed
        let world = cross_account_world();
        {
            let mut w = world.write().unwrap();
            let e = &mut w.exports[0];
            e.status = ExportStatus::Completed;
            e.failure_code = None;
            e.failure_message = None;
        }
        let claim = json!({"source": "ddb-export-remediator", "detail-type": "DynamoDB Export Failed",
            "detail": {"exportArn": EXPORT_ARN, "failureCode": "S3AccessDenied", "failureMessage": "Access Denied"}});
        for event in [manual("apply"), claim] {
            let result = app(&world, ledger_config())
                .handle(&event, None)
                .await
                .unwrap();
            // THEN no finding, no retry, and a note of what would fail now
            assert!(result.findings.is_empty(), "{:?}", result.findings);
            assert!(result.applied.is_empty());
            assert!(
                result
                    .notes
                    .iter()
                    .any(|n| n.contains("COMPLETED") && n.contains("BUCKET_OWNER_MISSING")),
                "{:?}",
                result.notes
            );
        }
        assert!(world.read().unwrap().started.is_empty());
    }

    #[tokio::test]
    async fn every_incident_result_is_published_as_a_report() {
        let world = cross_account_world();
        app(&world, config(Mode::Plan))
            .handle(&manual("apply"), None)
            .await
            .unwrap();
        let w = world.read().unwrap();
        assert_eq!(w.published.len(), 1);
        assert_eq!(w.published[0].detail_type, "DynamoDB Export Remediation");
        assert_eq!(
            w.published[0].detail["findings"][0]["cause"],
            "BUCKET_OWNER_MISSING"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_report_goes_out_beside_the_ledgers_last_write_not_after_it() {
        // GIVEN an apply-mode retry whose last ledger write never answers
        let world = cross_account_world();
        world.write().unwrap().stall_final_settle = true;
        let app = app(&world, ledger_config());
        // WHEN the incident is remediated
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            app.handle(&manual("apply"), None),
        )
        .await;
        // THEN the invocation waits for the write, but the report of the retry is already out
        assert!(waited.is_err());
        let w = world.read().unwrap();
        assert_eq!(w.started.len(), 1);
        assert_eq!(w.published.len(), 1);
        assert_eq!(w.published[0].detail["applied"][0]["status"], "DONE");
    }

    fn sweep_event() -> Value {
        json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
    }

    /// An export id stamped `ms` after an hour ago (inside the default look-back).
    fn recent_export(ms: i64) -> String {
        format!(
            "{TABLE_ARN}/export/{:014}-00000000",
            (now() - 3600) * 1000 + ms
        )
    }

    /// 60 exports of `orders`, every 20th FAILED, plus one IN_PROGRESS newest.
    fn world_with_history() -> Shared {
        let world = world_with_table();
        let mut w = world.write().unwrap();
        for i in 0..60 {
            let mut e = failed_export(request("amzn-s3-demo-bucket"), "S3AccessDenied", "x");
            e.export_arn = recent_export(1_000 + i);
            if i % 20 != 0 {
                e.status = ExportStatus::Completed;
            }
            w.exports.push(e);
        }
        drop(w);
        world
    }

    fn sweep_of(r: &RemediationResult) -> SweepReport {
        r.sweep.clone().unwrap()
    }

    #[tokio::test]
    async fn sweep_publishes_each_new_failure_once_and_a_steady_sweep_lists_one_page() {
        let world = world_with_history();
        let app = app(&world, ledger_config());
        let first = sweep_of(&app.handle(&sweep_event(), None).await.unwrap());
        assert_eq!(first.published.len(), 3);
        assert_eq!(
            first.describe_calls, 0,
            "dated by their ids: each is described once, by its remediation"
        );
        assert_eq!(first.list_calls, 3);
        let events = world.read().unwrap().published.clone();
        assert!(events
            .iter()
            .all(|e| e.detail_type == "DynamoDB Export Failed"));
        assert_eq!(events[0].detail["tableArn"], TABLE_ARN);

        let second = sweep_of(&app.handle(&sweep_event(), None).await.unwrap());
        assert!(second.published.is_empty());
        assert_eq!(
            (
                second.list_calls,
                second.describe_calls,
                second.ledger_reads
            ),
            (1, 0, 0)
        );
    }

    /// `n` FAILED exports of `orders` that started `hours_ago`, 1 s apart.
    fn add_failures(world: &Shared, hours_ago: i64, n: i64, end_hours_ago: Option<i64>) {
        let mut w = world.write().unwrap();
        let start = now() - hours_ago * 3600;
        for i in 0..n {
            let mut e = failed_export(request("amzn-s3-demo-bucket"), "S3AccessDenied", "x");
            e.export_arn = format!(
                "{TABLE_ARN}/export/{:014}-{:08x}",
                (start + i) * 1000,
                hours_ago * 100 + i
            );
            e.start_time = Some((start + i) as f64);
            e.end_time = end_hours_ago.map(|h| (now() - h * 3600) as f64);
            w.exports.push(e);
        }
    }

    #[tokio::test]
    async fn a_first_sweep_over_90_days_of_history_publishes_only_the_look_back() {
        // GIVEN a new deployment in an account with old failures (10 from 60 days ago, 5 that
        // started 30 h ago and ended 26 h ago) and 2 recent ones
        let world = world_with_table();
        add_failures(&world, 60 * 24, 10, None);
        add_failures(&world, 30, 5, Some(26));
        add_failures(&world, 2, 2, None);
        let app = app(&world, ledger_config());
        // WHEN it sweeps
        let first = sweep_of(&app.handle(&sweep_event(), None).await.unwrap());
        // THEN only the recent two are published; they and the 60-day-old ones cost no
        // DescribeExport (their ids date them), the 30-hour-old ones one each (their end time
        // decides)
        assert_eq!(first.published.len(), 2, "{first:?}");
        assert_eq!(first.older_than_lookback, 15);
        assert_eq!(first.describe_calls, 5);
        assert_eq!(world.read().unwrap().published.len(), 2);
        // AND a later sweep publishes nothing and describes nothing again
        let second = sweep_of(&app.handle(&sweep_event(), None).await.unwrap());
        assert!(second.published.is_empty());
        assert_eq!((second.describe_calls, second.older_than_lookback), (0, 0));
    }

    #[tokio::test]
    async fn the_look_back_is_configurable_and_a_long_one_publishes_older_failures() {
        let world = world_with_table();
        add_failures(&world, 30, 3, Some(29));
        let mut config = ledger_config();
        config.sweep_lookback_hours = 48;
        let swept = sweep_of(
            &app(&world, config)
                .handle(&sweep_event(), None)
                .await
                .unwrap(),
        );
        assert_eq!((swept.published.len(), swept.older_than_lookback), (3, 0));
    }

    #[tokio::test]
    async fn a_report_only_sweep_lists_only_failures_inside_the_look_back() {
        let world = world_with_table();
        add_failures(&world, 60 * 24, 4, None);
        add_failures(&world, 1, 1, None);
        let swept = sweep_of(
            &app(&world, config(Mode::Apply))
                .handle(&sweep_event(), None)
                .await
                .unwrap(),
        );
        assert_eq!(swept.failed_exports.len(), 1);
        assert_eq!(swept.older_than_lookback, 4);
    }

    #[test]
    fn age_is_read_from_the_export_id_where_it_has_a_stamp() {
        use super::sweep::{age_from_id, Age};
        let now = 1_800_000_000;
        let day = 24 * 3600;
        let arn = |secs: i64| format!("{TABLE_ARN}/export/{:014}-c7ead50c", secs * 1000);
        assert_eq!(age_from_id(&arn(now - 3 * day), now, day), Some(Age::Old));
        assert_eq!(age_from_id(&arn(now - 60), now, day), Some(Age::Recent));
        // Started before the window but maybe failed inside it: DescribeExport decides.
        assert_eq!(age_from_id(&arn(now - day - 60), now, day), None);
        // Not AWS's id shape (moto's stock ARN): no age from the id.
        assert_eq!(
            age_from_id(&format!("{TABLE_ARN}/export/abc"), now, day),
            None
        );
    }

    #[tokio::test]
    async fn an_export_seen_in_progress_is_published_when_it_later_fails() {
        let world = world_with_history();
        let late = recent_export(5_000);
        {
            let mut e = failed_export(request("amzn-s3-demo-bucket"), "S3AccessDenied", "x");
            e.export_arn = late.clone();
            e.status = ExportStatus::InProgress;
            world.write().unwrap().exports.push(e);
        }
        let app = app(&world, ledger_config());
        let first = sweep_of(&app.handle(&sweep_event(), None).await.unwrap());
        assert!(!first.published.contains(&late));
        assert_eq!(
            world.read().unwrap().sweep_states[&late],
            crate::ports::SweepState::InProgress
        );
        world
            .write()
            .unwrap()
            .exports
            .iter_mut()
            .find(|e| e.export_arn == late)
            .unwrap()
            .status = ExportStatus::Failed;
        let second = sweep_of(&app.handle(&sweep_event(), None).await.unwrap());
        assert_eq!(second.published, vec![late]);
    }

    #[tokio::test]
    async fn an_event_the_bus_refused_is_published_by_the_next_sweep() {
        let world = world_with_history();
        world.write().unwrap().refuse_events = 1;
        let app = app(&world, ledger_config());
        let first = sweep_of(&app.handle(&sweep_event(), None).await.unwrap());
        assert_eq!((first.published.len(), first.errors.len()), (2, 1));
        let second = sweep_of(&app.handle(&sweep_event(), None).await.unwrap());
        assert_eq!(second.published.len(), 1);
        let mut all = first.published.clone();
        all.extend(second.published);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 3, "every failure published exactly once");
    }

    #[tokio::test]
    async fn a_sweep_out_of_time_leaves_a_cursor_and_the_next_one_resumes() {
        let world = world_with_history();
        let app = app(&world, ledger_config());
        let out_of_time = Some(Instant::now());
        let first = sweep_of(&app.handle(&sweep_event(), out_of_time).await.unwrap());
        assert_eq!(first.tables, 0);
        assert_eq!(first.stopped_at.as_deref(), Some(TABLE_ARN));
        let second = sweep_of(&app.handle(&sweep_event(), None).await.unwrap());
        assert_eq!(second.resumed_from.as_deref(), Some(TABLE_ARN));
        assert_eq!((second.tables, second.published.len()), (1, 3));
        assert!(world.read().unwrap().cursor.is_none());
    }

    #[tokio::test]
    async fn a_start_by_our_own_role_is_only_recorded_whatever_its_token() {
        let world = world_with_table();
        let mut event: Value =
            serde_json::from_str(include_str!("../../events/cloudtrail-export-started.json"))
                .unwrap();
        // FakeIdentity is the role `remediator`.
        event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
            json!("arn:aws:iam::111122223333:role/remediator");
        let result = app(&world, ledger_config())
            .handle(&event, None)
            .await
            .unwrap();
        assert!(result.notes[0].contains("loop guard"), "{:?}", result.notes);
        assert!(world.read().unwrap().starts.is_empty());
    }

    #[test]
    fn role_names_are_read_from_role_and_session_arns() {
        assert_eq!(
            role_name("arn:aws:iam::111122223333:role/path/Exporter"),
            Some("Exporter")
        );
        assert_eq!(
            role_name("arn:aws:sts::111122223333:assumed-role/Exporter/s1"),
            Some("Exporter")
        );
        assert_eq!(role_name("arn:aws:iam::111122223333:user/bob"), None);
        assert_eq!(role_name("nonsense"), None);
    }
}
