//! The Lambda edge: the only module that sees `lambda_runtime` types.

use crate::domain::App;
use crate::error::{Chain, Error};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time left before the runtime's deadline (epoch milliseconds). `None` when there is no usable
/// deadline: zero, or a value that is not an epoch time (cargo lambda's emulator sends the
/// timeout itself, e.g. 600000).
fn remaining(deadline_ms: u64) -> Option<Duration> {
    const YEAR_2001_MS: u64 = 1_000_000_000_000;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    (deadline_ms >= YEAR_2001_MS).then(|| Duration::from_millis(deadline_ms).saturating_sub(now))
}

/// Deserializes nothing itself (intake does), runs the pipeline, logs the result as one line.
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let left = remaining(event.context.deadline);
    tracing::debug!(deadline_ms = event.context.deadline, remaining_ms = ?left.map(|d| d.as_millis()), "invocation");
    let started = Instant::now();
    let deadline = left.map(|left| started + left);
    // The claim's lease must outlast this invocation, or another delivery could take the
    // incident over while this one still acts (docs/reliability.md).
    if let Some(left) = left.filter(|l| l.as_secs() >= u64::from(app.config.claim_lease_seconds)) {
        tracing::warn!(
            remaining_s = left.as_secs(),
            claim_lease_seconds = app.config.claim_lease_seconds,
            "CLAIM_LEASE_SECONDS is shorter than the function's timeout: raise it above the timeout"
        );
    }
    // The request id names this delivery in the ledger's claims: a claim the SDK sent again
    // after its answer was lost is recognised as this delivery's own.
    let owner = Some(event.context.request_id.as_str()).filter(|id| !id.is_empty());
    match app.handle_as(&event.payload, deadline, owner).await {
        Ok(result) => {
            let causes: Vec<&str> = result.findings.iter().map(|f| f.cause.code()).collect();
            let json = serde_json::to_value(&result).unwrap_or(Value::Null);
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            // EMF lines go to stdout as they are: Lambda's log pipeline reads them as metrics.
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            for doc in crate::metrics::documents(&result, now_ms, elapsed_ms) {
                println!("{doc}");
            }
            tracing::info!(
                export_arn = result.incident.export_arn.as_deref().unwrap_or(""),
                causes = ?causes,
                actions = result.applied.len(),
                result = %json,
                "remediation result"
            );
            Ok(json)
        }
        Err(e) => {
            tracing::error!(
                error.type = e.error_type(),
                error.message = %e.public_message(),
                error.cause_chain = %Chain(&e),
                "invocation failed"
            );
            Err(e)
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.public_message(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_read_as_epoch_milliseconds_and_odd_values_are_ignored() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = remaining(now + 30_000).unwrap();
        assert!(
            left <= Duration::from_secs(30) && left > Duration::from_secs(25),
            "{left:?}"
        );
        assert_eq!(remaining(now - 1_000), Some(Duration::ZERO));
        assert_eq!(remaining(0), None);
        assert_eq!(remaining(600_000), None);
    }
}
