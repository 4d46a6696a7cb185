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
    /// Another attempt may pass: throttling, a 5xx answer, a timeout or a connection that
    /// failed, still failing after the SDK's own retries (set by the adapter from the SDK
    /// error, never from the message).
    pub transient: bool,
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
            transient: kind == AwsErrorKind::Throttled,
            source: None,
        }
    }

    /// Marks the failure transient (a 5xx answer, a timeout, a reset connection).
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A failure that another attempt may not meet: throttling, a 5xx answer, a timeout or a
    /// reset connection, still failing after the SDK's own retries. AccessDenied, NotFound and
    /// modeled rejections are permanent: asking again gets the same answer.
    pub fn is_transient(&self) -> bool {
        self.transient
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
    /// Reads the diagnosis needed failed transiently (after the SDK's retries): nothing final
    /// was recorded and the claim was given back, so a later delivery (Lambda's retry of this
    /// one, or the sweep) diagnoses it on complete evidence.
    #[error("evidence incomplete: {} read(s) failed transiently ({}); nothing was recorded, deliver again", .0.len(), .0.join(", "))]
    EvidenceIncomplete(Vec<String>),
    /// The ledger's claim on this incident is no longer ours (its lease ran out and another
    /// delivery took it over): this delivery stops without writing.
    #[error("lease lost: {0}")]
    LeaseLost(String),
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
            Self::EvidenceIncomplete(_) => "EvidenceIncomplete",
            Self::LeaseLost(_) => "LeaseLost",
            Self::Aws(e) => match e.kind {
                AwsErrorKind::AccessDenied => "AccessDenied",
                AwsErrorKind::Throttled => "Throttled",
                _ => "UpstreamError",
            },
        }
    }

    /// Whether delivering the same event again may succeed: a transient AWS failure, an
    /// incomplete diagnosis, a lease lost to another delivery. Everything else will fail the
    /// same way.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Aws(e) => e.is_transient(),
            Self::EvidenceIncomplete(_) | Self::LeaseLost(_) => true,
            _ => false,
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
        assert_eq!(
            Error::EvidenceIncomplete(vec!["s3:GetBucketPolicy".into()]).error_type(),
            "EvidenceIncomplete"
        );
        assert_eq!(Error::LeaseLost("x".into()).error_type(), "LeaseLost");
        assert!(denied
            .public_message()
            .contains("kms:GetKeyPolicy access denied"));
    }

    #[test]
    fn throttling_and_transport_failures_are_transient_denials_and_rejections_are_not() {
        let kinds = [
            (AwsErrorKind::Throttled, true),
            // An unparseable answer or a missing field is not a gap another read fills.
            (AwsErrorKind::Other, false),
            (AwsErrorKind::AccessDenied, false),
            (AwsErrorKind::NotFound, false),
            (AwsErrorKind::Rejected, false),
            (AwsErrorKind::ExportConflict, false),
        ];
        for (kind, transient) in kinds {
            assert_eq!(
                AwsError::new("s3:GetBucketPolicy", kind, "x").is_transient(),
                transient,
                "{kind:?}"
            );
        }
        assert!(
            AwsError::new("s3:GetBucketPolicy", AwsErrorKind::Other, "HTTP 503")
                .transient()
                .is_transient()
        );
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
