//! Adapters: SDK clients behind the ports. SDK types stop here.

pub mod clock;
pub mod dynamodb;
pub mod eventbridge;
pub mod http;
pub mod iam;
pub mod kms;
pub mod ledger;
pub mod organizations;
pub mod s3;
pub mod spokes;
pub mod sts;

pub use clock::SystemClock;
pub use dynamodb::DynamoExports;
pub use eventbridge::EventBus;
pub use iam::IamPolicies;
pub use kms::KmsKeys;
pub use ledger::DynamoLedger;
pub use organizations::Organizations;
pub use s3::S3Buckets;
pub use spokes::StsSpokes;
pub use sts::StsCrossAccount;

use crate::error::{AwsError, AwsErrorKind};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Maps any SDK error to a domain `AwsError`, by error code first, then HTTP status.
pub(crate) fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_string);
    let message = err.message().map(str::to_string);
    let status = match &err {
        SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
        _ => None,
    };
    let kind = match (code.as_deref(), status) {
        // A 5xx answer is the service's failure, whatever its code says (ServiceUnavailable
        // would read as a rejection): another attempt may pass.
        (Some(c), Some(500..=599)) if kind_of_code(c) != AwsErrorKind::Throttled => {
            AwsErrorKind::Other
        }
        (Some(c), _) => kind_of_code(c),
        (None, Some(403)) => AwsErrorKind::AccessDenied,
        (None, Some(404)) => AwsErrorKind::NotFound,
        (None, Some(429)) => AwsErrorKind::Throttled,
        _ => AwsErrorKind::Other,
    };
    let text = match (&code, &message, status) {
        (Some(c), Some(m), _) => format!("{c}: {}", clip(m)),
        (Some(c), None, _) => c.clone(),
        (None, _, Some(s)) => format!("HTTP {s}"),
        (None, _, None) => match &err {
            SdkError::TimeoutError(_) => "timed out".to_string(),
            SdkError::DispatchFailure(_) => "could not reach the service".to_string(),
            _ => "no error code".to_string(),
        },
    };
    // Transient: what the SDK's retry strategy itself retries (throttling, 5xx, timeouts,
    // connection failures), still failing after its attempts. A 200 whose body does not parse
    // (an emulator's unimplemented call) is not: reading it again gives the same.
    let transient = kind == AwsErrorKind::Throttled
        || match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ResponseError(r) => r.raw().status().is_server_error(),
            SdkError::ServiceError(se) => se.raw().status().is_server_error(),
            _ => false,
        };
    let mut out = AwsError::new(operation, kind, text);
    out.transient = transient;
    out.source = Some(err.into_service_error_or_self());
    out
}

/// `into_service_error` where there is one; the transport error otherwise.
trait IntoServiceErrorOrSelf {
    fn into_service_error_or_self(self) -> Box<dyn std::error::Error + Send + Sync>;
}

impl<E, R> IntoServiceErrorOrSelf for SdkError<E, R>
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn into_service_error_or_self(self) -> Box<dyn std::error::Error + Send + Sync> {
        match self {
            SdkError::ServiceError(se) => Box::new(se.into_err()),
            other => Box::new(other),
        }
    }
}

fn kind_of_code(code: &str) -> AwsErrorKind {
    const THROTTLING: [&str; 8] = [
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "SlowDown",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "ProvisionedThroughputExceededException",
    ];
    if code.starts_with("AccessDenied")
        || code == "Forbidden"
        || code == "UnauthorizedOperation"
        || code == "AuthorizationError"
    {
        AwsErrorKind::AccessDenied
    } else if THROTTLING.contains(&code) {
        AwsErrorKind::Throttled
    } else if code.starts_with("NoSuch") || code.contains("NotFound") {
        AwsErrorKind::NotFound
    } else if code.contains("Validation")
        || code.contains("Conflict")
        || code.contains("LimitExceeded")
        || code.contains("Invalid")
        || code.contains("Unavailable")
    {
        AwsErrorKind::Rejected
    } else {
        AwsErrorKind::Other
    }
}

fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

/// Missing fields in a response are an upstream defect, never a panic.
pub(crate) fn missing(operation: &'static str, what: &str) -> AwsError {
    AwsError::new(
        operation,
        AwsErrorKind::Other,
        format!("response has no {what}"),
    )
}

/// A call run in a task of its own whose task panicked or was cancelled.
pub(crate) fn task_ended(operation: &'static str, e: tokio::task::JoinError) -> AwsError {
    AwsError::new(
        operation,
        AwsErrorKind::Other,
        format!("its task ended: {e}"),
    )
}

/// Wires the real adapters from one SdkConfig (clients share its connection pool).
pub fn build_app(config: crate::Config, sdk: &aws_types::SdkConfig) -> crate::App {
    use std::sync::Arc;
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let partition = crate::arn::partition_of(&region);
    let path_style = config.s3_force_path_style;
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    // One STS client (the Regional endpoint of the function's Region) and one session cache.
    let cross = StsCrossAccount::new(
        aws_sdk_sts::Client::new(sdk),
        sdk.clone(),
        partition,
        path_style,
    );
    let identity = Arc::new(cross.in_region(&region));
    let spokes = match (&config.hub_account_id, &config.member_role_name) {
        (Some(hub), Some(role)) => Some(Arc::new(StsSpokes::new(
            aws_sdk_sts::Client::new(sdk),
            sdk.clone(),
            hub.clone(),
            role.clone(),
            cross.in_region(&region),
            identity.clone(),
        )) as Arc<dyn crate::ports::Spokes>),
        _ => None,
    };
    crate::App {
        exports: Box::new(DynamoExports::new(dynamodb.clone())),
        buckets: Box::new(S3Buckets::new(sts::s3_client(sdk, path_style))),
        keys: Box::new(KmsKeys::new(aws_sdk_kms::Client::new(sdk))),
        accounts: Arc::new({
            let org = Organizations::new(aws_sdk_organizations::Client::new(sdk));
            match &config.org_role_arn {
                Some(role) => org.with_policy_role(cross.in_region(&region), role.clone()),
                None => org,
            }
        }),
        identity: Box::new(identity),
        cross: Box::new(cross),
        iam: Box::new(IamPolicies::new(aws_sdk_iam::Client::new(sdk))),
        ledger: config.ledger_table_name.as_ref().map(|t| {
            Arc::new(DynamoLedger::new(dynamodb, t.clone())) as Arc<dyn crate::ports::Ledger>
        }),
        events: Arc::new(EventBus::new(
            aws_sdk_eventbridge::Client::new(sdk),
            config.event_bus_name.clone(),
        )),
        hints: Default::default(),
        clock: Arc::new(SystemClock),
        spokes,
        spoke: None,
        region,
        config,
    }
}
