//! The Lambda edge: the only module that sees `lambda_runtime` types.

use crate::domain::App;
use crate::error::{Chain, Error};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time left before the runtime's deadline (epoch milliseconds); none for a zero deadline.
fn remaining(deadline_ms: u64) -> Option<Duration> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    (deadline_ms > 0).then(|| Duration::from_millis(deadline_ms).saturating_sub(now))
}

/// Deserializes nothing itself (intake does), runs the pipeline, logs the result as one line.
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let deadline = remaining(event.context.deadline).map(|left| Instant::now() + left);
    match app.handle(&event.payload, deadline).await {
        Ok(result) => {
            let causes: Vec<&str> = result.findings.iter().map(|f| f.cause.code()).collect();
            let json = serde_json::to_value(&result).unwrap_or(Value::Null);
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
