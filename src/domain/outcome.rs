//! The outcome room: how an incident ends, decided from typed facts (pure; no I/O).
//!
//! An incident is the root export that failed and the retries the function started for it. It
//! ends once, with one of:
//! - `RESOLVED`: a retry COMPLETED, as DescribeExport says;
//! - `GAVE_UP`: the retries failed (loop protection stopped them), a retry was refused, or a
//!   retry export disappeared;
//! - `NEEDS_PERSON`: no retry was planned (or the mode only diagnoses or plans).
//!
//! A retry that was started leaves the incident open: the in-flight poller follows it until
//! DescribeExport says COMPLETED or FAILED (see `follow`).

use crate::model::{Finding, Mode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The top-level `outcome` field of a `DynamoDB Export Remediation` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutcomeKind {
    Resolved,
    GaveUp,
    NeedsPerson,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolved => "RESOLVED",
            Self::GaveUp => "GAVE_UP",
            Self::NeedsPerson => "NEEDS_PERSON",
        }
    }

    /// The EMF metric counting incidents that ended so.
    pub fn metric(self) -> &'static str {
        match self {
            Self::Resolved => "IncidentsResolved",
            Self::GaveUp => "IncidentsGaveUp",
            Self::NeedsPerson => "IncidentsNeedPerson",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Resolved, Self::GaveUp, Self::NeedsPerson]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// What the incident is about, for every outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// The export that failed first (the incident's key in the ledger).
    pub root_export_arn: String,
    pub table_arn: Option<String>,
    pub s3_bucket: Option<String>,
    /// Epoch seconds: when the root export failed (its end time), when known.
    pub failed_at: Option<i64>,
}

impl Subject {
    /// The table's name, from its ARN.
    pub fn table_name(&self) -> Option<&str> {
        self.table_arn
            .as_deref()
            .and_then(|t| t.rsplit_once(":table/"))
            .map(|(_, n)| n)
    }
}

/// One retry the function started, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: u32,
    pub export_arn: Option<String>,
    /// The causes of this retry's failure (empty for the one that completed).
    pub causes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GaveUpReason {
    /// `MAX_RETRIES` retries failed.
    MaxRetries,
    /// A retry failed again with the cause it was meant to fix.
    SameCauseAgain,
    /// DescribeExport no longer finds a retry the function started.
    RetryDisappeared,
    /// ExportTableToPointInTime refused the retry (not throttling: a retry would be refused too).
    RetryRefused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NeedsPersonReason {
    /// The mode is `diagnose` or `plan`: the plan is what `apply` would have run.
    ReadOnlyMode,
    /// No retry fixes the causes (a caller's own permission, an unknown fact, …).
    NoAutomaticFix,
    /// The retry needs a bucket or key outside `ExportBuckets` / `KeyArns`.
    OutsideWriteScope,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    /// The retry export that COMPLETED.
    pub export_arn: String,
    pub item_count: Option<i64>,
    pub completed_at: Option<i64>,
    /// From the root export's failure to the retry's completion.
    pub seconds_to_resolution: Option<i64>,
    /// The corrected parameters the retry used (e.g. `S3SseAlgorithm=KMS`).
    pub corrections: Vec<String>,
    /// Key-policy changes made on the way (their ids roll them back).
    pub change_ids: Vec<String>,
    /// The causes the retry fixed.
    pub causes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaveUp {
    pub reason: GaveUpReason,
    /// Each retry, with the causes of its failure.
    pub attempts: Vec<Attempt>,
    /// What a person does next.
    pub next_step: String,
    /// The corrected command, when the diagnosis has one.
    pub command: Option<String>,
    pub change_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NeedsPerson {
    pub reason: NeedsPersonReason,
    pub causes: Vec<String>,
    pub remedy: Option<String>,
    pub command: Option<String>,
    /// In `diagnose` and `plan` modes: the actions `apply` would have run.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub would_apply: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Resolved(Resolved),
    GaveUp(GaveUp),
    NeedsPerson(NeedsPerson),
}

/// How one incident ended: recorded in the ledger and published once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub subject: Subject,
    pub verdict: Verdict,
}

impl Outcome {
    pub fn kind(&self) -> OutcomeKind {
        match self.verdict {
            Verdict::Resolved(_) => OutcomeKind::Resolved,
            Verdict::GaveUp(_) => OutcomeKind::GaveUp,
            Verdict::NeedsPerson(_) => OutcomeKind::NeedsPerson,
        }
    }

    /// The cause the metrics count the incident under: the first cause of the root failure
    /// (`UNKNOWN` when none was found).
    pub fn cause(&self) -> &str {
        let first = match &self.verdict {
            Verdict::Resolved(r) => r.causes.first(),
            Verdict::GaveUp(g) => g.attempts.iter().find_map(|a| a.causes.first()),
            Verdict::NeedsPerson(n) => n.causes.first(),
        };
        first.map_or("UNKNOWN", String::as_str)
    }

    /// Seconds from the failure to the completed retry (RESOLVED only).
    pub fn seconds_to_resolution(&self) -> Option<i64> {
        match &self.verdict {
            Verdict::Resolved(r) => r.seconds_to_resolution,
            _ => None,
        }
    }
}

/// What the remediation of one failed export knows when it ends.
pub struct Remediated<'a> {
    pub mode: Mode,
    pub subject: Subject,
    pub findings: &'a [Finding],
    /// The plan's actions as reported (what `apply` runs).
    pub plan: &'a [Value],
    /// Loop protection stopped the retry.
    pub gave_up: bool,
    /// The retry was outside the function's write scope.
    pub outside_scope: bool,
    /// What happened to the retry, in apply mode.
    pub retry: RetryState,
    /// This export is itself retry number `attempt` (0: the root), after the failures in
    /// `history` (the root's and each earlier retry's, from the ledger).
    pub attempt: u32,
    pub history: Vec<Attempt>,
    pub change_ids: Vec<String>,
}

/// Where the retry stands after act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryState {
    /// None planned, or the mode did not run it.
    NotRun,
    /// Started: the incident stays open and the poller follows the retry.
    Started,
    /// Refused in a way another delivery can finish (throttling): still open.
    Pending,
    /// Refused for good.
    Refused,
    /// Another delivery handled this export: its outcome, if any, is that delivery's.
    AlreadyHandled,
}

/// The outcome the remediation of one failed export decides, or `None` while the incident is
/// open (a retry is running or pending) or when there is no incident (a healthy export).
pub fn on_remediation(r: Remediated<'_>) -> Option<Outcome> {
    let causes: Vec<String> = r
        .findings
        .iter()
        .map(|f| f.cause.code().to_string())
        .collect();
    let first = r.findings.first();
    let remedy = first.map(|f| f.remedy.text.clone());
    let command = r.findings.iter().find_map(|f| f.remedy.command.clone());
    match r.retry {
        RetryState::Started | RetryState::Pending | RetryState::AlreadyHandled => return None,
        RetryState::NotRun | RetryState::Refused => {}
    }
    let attempts = || {
        let mut out = r.history.clone();
        out.push(Attempt {
            attempt: r.attempt,
            export_arn: Some(r.subject.root_export_arn.clone()).filter(|_| r.attempt == 0),
            causes: causes.clone(),
        });
        out
    };
    let next_step = || {
        remedy.clone().unwrap_or_else(|| {
            "read the findings of each attempt, fix the destination and re-export".into()
        })
    };
    let verdict = if r.retry == RetryState::Refused {
        Verdict::GaveUp(GaveUp {
            reason: GaveUpReason::RetryRefused,
            attempts: attempts(),
            next_step: next_step(),
            command,
            change_ids: r.change_ids,
        })
    } else if r.mode < Mode::Apply {
        if r.findings.is_empty() {
            return None;
        }
        Verdict::NeedsPerson(NeedsPerson {
            reason: NeedsPersonReason::ReadOnlyMode,
            causes,
            remedy,
            command,
            would_apply: r.plan.to_vec(),
        })
    } else if r.gave_up {
        let same = !causes.is_empty() && r.history.last().is_some_and(|a| a.causes == causes);
        Verdict::GaveUp(GaveUp {
            reason: if same {
                GaveUpReason::SameCauseAgain
            } else {
                GaveUpReason::MaxRetries
            },
            attempts: attempts(),
            next_step: next_step(),
            command,
            change_ids: r.change_ids,
        })
    } else if r.findings.is_empty() {
        // Nothing failed as far as the facts show (a healthy export): no incident.
        return None;
    } else {
        Verdict::NeedsPerson(NeedsPerson {
            reason: if r.outside_scope {
                NeedsPersonReason::OutsideWriteScope
            } else {
                NeedsPersonReason::NoAutomaticFix
            },
            causes,
            remedy,
            command,
            would_apply: Vec::new(),
        })
    };
    Some(Outcome {
        subject: r.subject,
        verdict,
    })
}

/// What the ledger keeps about a retry it follows (written when the retry starts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Followed {
    pub subject: Subject,
    pub retry_export_arn: String,
    pub attempt: u32,
    /// The causes the retry is meant to fix.
    pub causes: Vec<String>,
    pub corrections: Vec<String>,
    pub change_ids: Vec<String>,
    /// The failures before this retry: the root's, then each earlier retry's.
    #[serde(default)]
    pub history: Vec<Attempt>,
}

impl Followed {
    /// The record of a retry started after the failure of `failed` (attempt `attempt - 1`),
    /// carrying the history on.
    #[allow(clippy::too_many_arguments)]
    pub fn next(
        subject: Subject,
        earlier: Vec<Attempt>,
        failed_export_arn: &str,
        retry_export_arn: &str,
        attempt: u32,
        causes: Vec<String>,
        corrections: Vec<String>,
        mut change_ids: Vec<String>,
        earlier_change_ids: &[String],
    ) -> Self {
        let mut history = earlier;
        history.push(Attempt {
            attempt: attempt.saturating_sub(1),
            export_arn: Some(failed_export_arn.to_string()),
            causes: causes.clone(),
        });
        let mut ids = earlier_change_ids.to_vec();
        ids.append(&mut change_ids);
        Self {
            subject,
            retry_export_arn: retry_export_arn.to_string(),
            attempt,
            causes,
            corrections,
            change_ids: ids,
            history,
        }
    }
}

/// The outcome of a followed retry that COMPLETED.
pub fn on_completed(f: &Followed, item_count: Option<i64>, completed_at: Option<i64>) -> Outcome {
    let seconds = match (f.subject.failed_at, completed_at) {
        (Some(failed), Some(done)) => Some((done - failed).max(0)),
        _ => None,
    };
    Outcome {
        subject: f.subject.clone(),
        verdict: Verdict::Resolved(Resolved {
            export_arn: f.retry_export_arn.clone(),
            item_count,
            completed_at,
            seconds_to_resolution: seconds,
            corrections: f.corrections.clone(),
            change_ids: f.change_ids.clone(),
            causes: f.causes.clone(),
        }),
    }
}

/// The outcome of a followed retry that DescribeExport no longer finds.
pub fn on_disappeared(f: &Followed) -> Outcome {
    Outcome {
        subject: f.subject.clone(),
        verdict: Verdict::GaveUp(GaveUp {
            reason: GaveUpReason::RetryDisappeared,
            attempts: {
                let mut a = f.history.clone();
                a.push(Attempt {
                    attempt: f.attempt,
                    export_arn: Some(f.retry_export_arn.clone()),
                    causes: Vec::new(),
                });
                a
            },
            next_step: format!(
                "DescribeExport no longer finds the retry {}: check the table's exports (aws dynamodb list-exports) and re-export if the data is not in the bucket",
                f.retry_export_arn
            ),
            command: None,
            change_ids: f.change_ids.clone(),
        }),
    }
}

pub mod text;

#[cfg(test)]
mod tests;
