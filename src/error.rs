//! The crate's one error type. Variants say what the caller does about it; `error_type` is API.

use std::fmt;

/// A failed AWS call, in domain terms (adapters build it; the domain never sees `SdkError`).
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed ({kind:?}): {message}")]
pub struct AwsError {
    /// e.g. `dynamodb:ExportTableToPointInTime`
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    /// The service's error code and message; never a policy document or raw response.
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    AccessDenied,
    NotFound,
    Throttled,
    /// A modeled rejection of the request (validation, conflict, limit, wrong state).
    Rejected,
    /// DynamoDB's `LimitExceededException` on an export call: too many exports at once; the
    /// same call may pass later. A kind of rejection (`reason` says "rejected").
    LimitExceeded,
    /// DynamoDB's `ExportConflictException`: the ClientToken was used with other parameters.
    ExportConflict,
    Other,
}

impl AwsError {
    pub fn new(operation: &'static str, kind: AwsErrorKind, message: impl Into<String>) -> Self {
        Self {
            operation,
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// One line for a `Fact::Unknown` reason.
    pub fn reason(&self) -> String {
        let kind = match self.kind {
            AwsErrorKind::AccessDenied => "access denied",
            AwsErrorKind::NotFound => "not found",
            AwsErrorKind::Throttled => "throttled",
            AwsErrorKind::Rejected | AwsErrorKind::LimitExceeded | AwsErrorKind::ExportConflict => {
                "rejected"
            }
            AwsErrorKind::Other => "failed",
        };
        format!("{} {kind}: {}", self.operation, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event is malformed or a field is invalid: fix the input, do not retry.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// A well-formed event this function does not handle.
    #[error("unsupported event: {0}")]
    UnsupportedEvent(String),
    /// The export named does not exist.
    #[error("export not found: {0}")]
    ExportNotFound(String),
    /// No key-policy change with this id is in the ledger.
    #[error("key-policy change not found: {0}")]
    ChangeNotFound(String),
    /// A request this deployment cannot carry out (e.g. needs a feature that is not configured).
    #[error("not available: {0}")]
    NotAvailable(String),
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// An AWS call the function needs failed.
    #[error("AWS call failed")]
    Aws(#[from] AwsError),
}

impl Error {
    /// Stable PascalCase category for Lambda's `errorType` (callers match on it).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidEvent(_) => "InvalidEvent",
            Self::UnsupportedEvent(_) => "UnsupportedEvent",
            Self::ExportNotFound(_) => "ExportNotFound",
            Self::ChangeNotFound(_) => "ChangeNotFound",
            Self::NotAvailable(_) => "NotAvailable",
            Self::Config(_) => "ConfigError",
            Self::Aws(e) => match e.kind {
                AwsErrorKind::AccessDenied => "AccessDenied",
                AwsErrorKind::Throttled => "Throttled",
                _ => "UpstreamError",
            },
        }
    }

    /// A message safe to return to the caller: no policy documents, no raw SDK dumps.
    pub fn public_message(&self) -> String {
        match self {
            Self::Aws(e) => e.reason(),
            other => other.to_string(),
        }
    }
}

/// Walks `source()` so logs show the whole chain in one field.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_stable_categories() {
        let denied = Error::Aws(AwsError::new(
            "kms:GetKeyPolicy",
            AwsErrorKind::AccessDenied,
            "AccessDeniedException",
        ));
        assert_eq!(denied.error_type(), "AccessDenied");
        assert_eq!(Error::InvalidEvent("x".into()).error_type(), "InvalidEvent");
        assert_eq!(
            Error::UnsupportedEvent("x".into()).error_type(),
            "UnsupportedEvent"
        );
        assert!(denied
            .public_message()
            .contains("kms:GetKeyPolicy access denied"));
    }

    #[test]
    fn chain_prints_every_source() {
        let inner = std::io::Error::other("socket closed");
        let err = Error::Aws(
            AwsError::new("s3:HeadBucket", AwsErrorKind::Other, "dispatch failure")
                .with_source(inner),
        );
        let text = Chain(&err).to_string();
        assert!(text.contains("AWS call failed"), "{text}");
        assert!(text.contains("dispatch failure"), "{text}");
        assert!(text.contains("socket closed"), "{text}");
    }
}
