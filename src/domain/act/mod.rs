//! The act room: carries out the plan's actions (docs/safety.md) and returns typed outcomes. A retry
//! here; the key-policy change and its rollback in `key_change`. Exactly once through the
//! ledger in apply mode.

mod key_change;

use super::plan::{self, Action, Plan, Retry};
use super::report::{self, ActError, Applied, AppliedStatus, PatchOutcome, RetryOutcome};
use crate::config::Config;
use crate::error::{AwsErrorKind, Error};
use crate::model::Mode;
use crate::ports::{
    Claim, Clock, CrossAccount, ExportService, Identity, IncidentRecord, IncidentStatus,
    KeyPolicyStore, Ledger, Lineage,
};
use serde_json::json;

/// What act works through: the ports it writes with, the settings and the clock, borrowed
/// from the `App` (act does not depend on the orchestrator).
pub struct Actor<'a> {
    pub config: &'a Config,
    pub region: &'a str,
    pub exports: &'a dyn ExportService,
    pub keys: &'a dyn KeyPolicyStore,
    pub cross: &'a dyn CrossAccount,
    pub identity: &'a dyn Identity,
    pub clock: &'a dyn Clock,
}

/// What `act_once` did, and the incident's last ledger record, not yet written: the report says
/// what was done and does not wait for that write, so the caller writes it beside the report.
pub(in crate::domain) struct Acted {
    pub applied: Vec<Applied>,
    pub settle: Option<IncidentRecord>,
}

impl Actor<'_> {
    /// Apply mode with a ledger: claim the incident so that concurrent and repeated deliveries
    /// act once, store the retry's token and time before the call, record lineage after it.
    /// `owner` is this delivery's token; `incomplete` lists the reads that failed transiently:
    /// then nothing final is recorded, the claim is given back and the delivery fails, so it
    /// is delivered again (Lambda retries a failed asynchronous invocation twice; the sweep
    /// finds the incident too).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::domain) async fn act_once(
        &self,
        ledger: &dyn Ledger,
        export_arn: &str,
        owner: &str,
        plan: &Plan,
        findings: &[crate::model::Finding],
        incomplete: &[String],
        notes: &mut Vec<String>,
    ) -> Result<Acted, Error> {
        let lease = i64::from(self.config.claim_lease_seconds);
        let previous = match ledger
            .claim(export_arn, owner, self.clock.now(), lease)
            .await?
        {
            Claim::Held(record) => {
                let in_progress = record.status == IncidentStatus::Claimed;
                notes.push(format!(
                    "already handled (ledger: {}{}{})",
                    record.status.as_str(),
                    record
                        .retry_export_arn
                        .as_deref()
                        .map(|a| format!(", retry {a}"))
                        .unwrap_or_default(),
                    if in_progress {
                        format!(
                            ", another delivery holds it until {}; the sweep takes it over if that one never settles",
                            record.lease_until
                        )
                    } else {
                        String::new()
                    }
                ));
                let applied = plan
                    .actions
                    .iter()
                    .map(|a| Applied {
                        action: report::action_name(a),
                        status: AppliedStatus::Skipped,
                        result: json!({"reason": "already handled", "ledgerStatus": record.status.as_str(),
                                       "retryExportArn": record.retry_export_arn}),
                    })
                    .collect();
                return Ok(Acted {
                    applied,
                    settle: None,
                });
            }
            Claim::Won { previous } => previous,
        };
        if !incomplete.is_empty() {
            // Give the claim back, keeping what an earlier holder stored (its retry token and
            // export time): PENDING is claimable at once, and listed as due for the sweep.
            let back = IncidentRecord {
                status: IncidentStatus::Pending,
                owner: Some(owner.to_string()),
                lease_until: 0,
                note: Some(format!(
                    "evidence incomplete ({}): given back, to be diagnosed again",
                    incomplete.join(", ")
                )),
                ..previous.unwrap_or_else(|| IncidentRecord::claimed(export_arn, owner, 0))
            };
            if !ledger.settle(&back, self.clock.now()).await? {
                return Err(lease_lost(export_arn));
            }
            return Err(Error::EvidenceIncomplete(incomplete.to_vec()));
        }
        let mut record = IncidentRecord {
            causes: plan::cause_codes(findings),
            root_export_arn: plan
                .root_export_arn
                .clone()
                .unwrap_or_else(|| export_arn.to_string()),
            note: plan.notes.first().cloned(),
            ..IncidentRecord::claimed(export_arn, owner, self.clock.now() + lease)
        };
        let planned = plan.actions.iter().find_map(|a| match a {
            Action::RetryExport(r) => Some(r.clone()),
            _ => None,
        });
        let patch_planned = plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::PatchKeyPolicy(_)));
        // An interrupted delivery (its lease ran out) planned a retry after a key-policy patch
        // and may have made the patch: this diagnosis no longer sees the denial our patch
        // removed, so it plans nothing. Its stored retry is finished instead (same token, same
        // parameters: DynamoDB answers a resend with the export it started).
        let resumed = match (&planned, &previous) {
            (None, Some(p))
                if p.after_patch
                    && p.status.is_open()
                    && p.retry_export_arn.is_none()
                    && !plan.gave_up =>
            {
                match (&p.retry_request, &p.client_token) {
                    (Some(request), Some(token)) => Some(Retry {
                        request: request.clone(),
                        client_token: token.clone(),
                        attempt: p.attempt,
                        changes: Vec::new(),
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        if let (Some(_), Some(p)) = (&resumed, &previous) {
            // The interrupted delivery's lineage: its root export, not this diagnosis's.
            record.root_export_arn = p.root_export_arn.clone();
            notes.push(
                "resuming the retry an interrupted delivery planned after its key-policy patch"
                    .into(),
            );
        }
        let after_patch = match &resumed {
            Some(_) => true,
            None => patch_planned,
        };
        let mut retry = planned.or(resumed);
        // The retry is stored before any action, so a delivery that takes over sends exactly
        // the same start; a retry after a lost delivery sends exactly what the first one stored.
        if let Some(retry) = retry.as_mut() {
            if let Some(p) = previous
                .as_ref()
                .filter(|p| p.client_token.as_deref() == Some(retry.client_token.as_str()))
            {
                retry.request.export_time = p.export_time;
            }
            record.attempt = retry.attempt;
            record.client_token = Some(retry.client_token.clone());
            record.export_time = retry.request.export_time;
            record.retry_request = Some(retry.request.clone());
            record.after_patch = after_patch;
            if !ledger.settle(&record, self.clock.now()).await? {
                return Err(lease_lost(export_arn));
            }
        }
        let mut patches = Vec::new();
        let mut patch_failed = None;
        for action in &plan.actions {
            if let Action::PatchKeyPolicy(p) = action {
                let outcome = self
                    .patch_key_policy(ledger, p, Some(export_arn), &record.causes)
                    .await;
                if let PatchOutcome::Failed { error, .. } = &outcome {
                    patch_failed = Some(error.retryable);
                }
                patches.push(outcome);
            }
        }
        let mut applied: Vec<Applied> = patches.iter().map(PatchOutcome::applied).collect();
        let Some(retry) = retry.filter(|_| patch_failed.is_none()) else {
            record.status = match (patch_failed, plan.gave_up) {
                (Some(true), _) => IncidentStatus::Pending,
                (_, true) => IncidentStatus::GaveUp,
                _ => IncidentStatus::NoAction,
            };
            if patch_failed.is_some() && (planned_retry(plan) || record.retry_request.is_some()) {
                applied.push(Applied {
                    action: "RETRY_EXPORT",
                    status: AppliedStatus::Skipped,
                    result: json!({"reason": "the key-policy patch it depends on failed"}),
                });
            }
            let patched: Vec<&str> = patches.iter().filter_map(PatchOutcome::change_id).collect();
            if !patched.is_empty() {
                record.note = Some(format!("key policy changed: {}", patched.join(", ")));
            }
            record.lease_until = 0;
            return Ok(Acted {
                applied,
                settle: Some(record),
            });
        };

        let retried = self.retry_export(&retry, notes).await;
        let retried_applied = retried.applied();
        match &retried {
            RetryOutcome::Started {
                export_arn: new_arn,
                ..
            } => {
                let lineage = Lineage {
                    root_export_arn: record.root_export_arn.clone(),
                    attempt: retry.attempt,
                    causes: record.causes.clone(),
                    after_patch: record.after_patch
                        && (patches.is_empty()
                            || patches
                                .iter()
                                .any(|p| matches!(p, PatchOutcome::Patched { .. }))),
                };
                ledger
                    .record_lineage(new_arn, &lineage, self.clock.now())
                    .await?;
                record.status = IncidentStatus::Retried;
                record.retry_export_arn = Some(new_arn.to_string());
            }
            RetryOutcome::Failed(error) => {
                record.status = if error.retryable {
                    IncidentStatus::Pending
                } else {
                    IncidentStatus::GaveUp
                };
                record.note = Some(retried_applied.result.to_string());
            }
        }
        applied.push(retried_applied);
        record.lease_until = 0;
        Ok(Acted {
            applied,
            settle: Some(record),
        })
    }

    /// Without a ledger (or outside apply mode): a retry runs in apply mode; a key-policy
    /// patch never does, since every change needs its audit record. Others are SKIPPED.
    pub(super) async fn act(
        &self,
        mode: Mode,
        actions: &[Action],
        notes: &mut Vec<String>,
    ) -> Vec<Applied> {
        let mut applied = Vec::new();
        let mut blocked = false;
        for action in actions {
            let name = report::action_name(action);
            let skip = |reason: String| Applied {
                action: name,
                status: AppliedStatus::Skipped,
                result: json!({ "reason": reason }),
            };
            if mode != Mode::Apply {
                applied.push(skip(format!("mode is {mode:?}")));
                continue;
            }
            match action {
                Action::PatchKeyPolicy(_) => {
                    blocked = true;
                    applied.push(skip(
                        "no ledger: a key policy is changed only with an audit record (set LEDGER_TABLE_NAME)".into(),
                    ));
                }
                Action::RetryExport(_) if blocked => applied.push(skip(
                    "the key-policy patch it depends on was not made".into(),
                )),
                Action::RetryExport(retry) => {
                    applied.push(self.retry_export(retry, notes).await.applied())
                }
            }
        }
        applied
    }

    async fn retry_export(&self, retry: &Retry, notes: &mut Vec<String>) -> RetryOutcome {
        let started = match self
            .exports
            .start_export(&retry.request, &retry.client_token)
            .await
        {
            // The token is ours (root export and attempt), so an export holding it is the one
            // an earlier delivery started, with parameters from another diagnosis. The
            // ExportTableToPointInTime API reference: "If you submit a request with the same
            // client token but a change in other parameters within the 8-hour idempotency
            // window, DynamoDB returns an ExportConflictException"
            // (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ExportTableToPointInTime.html).
            Err(e) if e.kind == AwsErrorKind::ExportConflict => {
                match self.started_with(retry).await {
                    Some(arn) => {
                        notes.push(format!(
                            "already started: {arn} holds this retry's ClientToken (an earlier delivery started it)"
                        ));
                        Ok(arn)
                    }
                    None => Err(e),
                }
            }
            other => other,
        };
        match started {
            Ok(export_arn) => {
                tracing::info!(export_arn = %export_arn, attempt = retry.attempt, "retry export started");
                RetryOutcome::Started {
                    export_arn,
                    client_token: retry.client_token.clone(),
                }
            }
            Err(e) => {
                // Throttling, limits and transport failures pass; the next delivery tries again.
                let retryable = matches!(
                    e.kind,
                    AwsErrorKind::Throttled | AwsErrorKind::Other | AwsErrorKind::LimitExceeded
                );
                if e.kind == AwsErrorKind::ExportConflict {
                    notes.push("our ClientToken was used with other parameters, and no export of the table holds it (CLIENT_TOKEN_CONFLICT)".into());
                }
                let err = Error::from(e);
                tracing::warn!(error.message = %crate::error::Chain(&err), "retry export failed");
                RetryOutcome::Failed(ActError {
                    error_type: err.error_type(),
                    message: err.public_message(),
                    retryable,
                })
            }
        }
    }

    /// The table's export started with this retry's ClientToken, if ListExports still lists it
    /// (newest first; the token lives 8 hours, so a few pages are enough).
    async fn started_with(&self, retry: &Retry) -> Option<String> {
        const PAGES: usize = 4;
        let table = retry.request.table_arn.as_str();
        let mut token = None;
        for _ in 0..PAGES {
            let page = self.exports.list_exports(Some(table), token).await.ok()?;
            for summary in &page.exports {
                if let Ok(Some(d)) = self.exports.describe_export(&summary.export_arn).await {
                    if d.request.client_token.as_deref() == Some(retry.client_token.as_str()) {
                        return Some(d.export_arn);
                    }
                }
            }
            token = page.next_token;
            token.as_ref()?;
        }
        None
    }
}

fn planned_retry(plan: &Plan) -> bool {
    plan.actions
        .iter()
        .any(|a| matches!(a, Action::RetryExport(_)))
}

fn lease_lost(export_arn: &str) -> Error {
    Error::LeaseLost(format!(
        "{export_arn}: the claim's lease ran out and another delivery took the incident over; this one wrote nothing more"
    ))
}

#[cfg(test)]
mod reliability_tests;
