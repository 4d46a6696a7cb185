//! The CLI's SDK configuration, and its region, credential and endpoint problems in words a
//! user can act on: what is missing and where the SDK looked. Only this binary uses it.
//!
//! The chains named here are aws-config's: region from `AWS_REGION`, `AWS_DEFAULT_REGION`, the
//! profile, then EC2 instance metadata; credentials from environment variables, the shared
//! config and credentials files, web identity, ECS/container, then EC2 IMDSv2 (docs.rs,
//! aws-config `DefaultCredentialsChain` and `DefaultRegionChain`). AWS_EC2_METADATA_DISABLED
//! turns IMDS off ("IMDS credential provider", AWS SDKs and Tools Reference Guide);
//! AWS_ENDPOINT_URL_<SERVICE> overrides AWS_ENDPOINT_URL ("Service-specific endpoints", same).

use aws_credential_types::provider::{
    error::CredentialsError, future, ProvideCredentials, SharedCredentialsProvider,
};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::endpoint::error::ResolveEndpointError;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_types::region::Region;
use aws_types::SdkConfig;
use clap::Args;
use ddb_export_remediator::error::AwsError;
use ddb_export_remediator::Error;
use std::sync::Mutex;

/// Where the SDK finds its region, profile and endpoint (each overrides its variable).
#[derive(Args)]
#[command(next_help_heading = "AWS")]
pub(crate) struct AwsArgs {
    /// The region (overrides AWS_REGION and the profile's region)
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// The named profile in ~/.aws/config and ~/.aws/credentials (overrides AWS_PROFILE)
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Send every call to this endpoint, e.g. a local emulator (overrides AWS_ENDPOINT_URL)
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
}

/// Why a command could not run, and its exit status.
pub(crate) struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    fn setup(message: String) -> Self {
        Self {
            message,
            exit_code: 1,
        }
    }
}

/// The SDK configuration, with the region and credentials checked before any call. With no
/// region configured, `arn_region` (the region of the ARN the command names) is used, and said.
pub(crate) async fn load(args: &AwsArgs, arn_region: Option<&str>) -> Result<SdkConfig, Failure> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &args.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(p) = &args.profile {
        loader = loader.profile_name(p);
    }
    if let Some(u) = &args.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    let mut sdk = loader.load().await;
    if let (None, Some(region)) = (sdk.region(), arn_region) {
        eprintln!("ddb-export-doctor: no region configured; using {region}, the ARN's");
        sdk = sdk
            .into_builder()
            .region(Region::new(region.to_string()))
            .build();
    }
    let mut problems = Vec::new();
    if sdk.region().is_none() {
        problems.push(no_region(args));
    }
    let primed = match sdk.credentials_provider() {
        None => {
            problems.push("no AWS credentials: the SDK has no credentials provider".into());
            None
        }
        Some(chain) => match chain.provide_credentials().await {
            Ok(creds) => Some(SharedCredentialsProvider::new(Primed {
                first: Mutex::new(Some(creds)),
                chain,
            })),
            Err(e) => {
                problems.push(no_credentials(args, &e));
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(Failure::setup(problems.join("\n")));
    }
    Ok(match primed {
        // The clients' first call uses the credentials just resolved instead of running the
        // chain again (an assume-role or SSO profile would call STS twice).
        Some(p) => sdk.into_builder().credentials_provider(p).build(),
        None => sdk,
    })
}

/// The credentials resolved at start, then the chain (when the clients' cache refreshes).
#[derive(Debug)]
struct Primed {
    first: Mutex<Option<Credentials>>,
    chain: SharedCredentialsProvider,
}

impl ProvideCredentials for Primed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        match self.first.lock().ok().and_then(|mut f| f.take()) {
            Some(creds) => future::ProvideCredentials::ready(Ok(creds)),
            None => self.chain.provide_credentials(),
        }
    }
}

/// An error and its sources, each by its Display (the SDK's Debug output is for developers).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        next = cause.source();
    }
    text
}

fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

fn state(name: &str) -> String {
    format!("{name} {}", if set(name) { "set" } else { "not set" })
}

fn profile_name(args: &AwsArgs) -> String {
    args.profile
        .clone()
        .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()))
        .unwrap_or_else(|| "default".into())
}

/// The shared files the SDK reads, and whether each exists.
fn shared_files() -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "~".into());
    let file = |var: &str, default: &str| {
        let path = std::env::var(var).unwrap_or_else(|_| format!("{home}/.aws/{default}"));
        let exists = std::path::Path::new(&path).exists();
        format!("{path} ({})", if exists { "exists" } else { "absent" })
    };
    format!(
        "{}, {}",
        file("AWS_CONFIG_FILE", "config"),
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
    )
}

fn no_region(args: &AwsArgs) -> String {
    format!(
        "no AWS region configured. The SDK looked at: --region (not given); AWS_REGION and \
         AWS_DEFAULT_REGION (not set); the `region` of profile {:?} in {}; EC2 instance \
         metadata{}. Pass --region (e.g. --region us-east-1) or set AWS_REGION.",
        profile_name(args),
        shared_files(),
        if imds_disabled() {
            " (disabled by AWS_EC2_METADATA_DISABLED)"
        } else {
            " (no region from it)"
        }
    )
}

fn imds_disabled() -> bool {
    std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

fn no_credentials(args: &AwsArgs, e: &CredentialsError) -> String {
    let what = match e {
        CredentialsError::CredentialsNotLoaded(_) => "no AWS credentials found",
        CredentialsError::ProviderTimedOut(_) => "loading AWS credentials timed out",
        CredentialsError::InvalidConfiguration(_) => "the AWS credentials configuration is invalid",
        CredentialsError::ProviderError(_) => "an AWS credentials provider failed",
        _ => "AWS credentials could not be loaded",
    };
    format!(
        "{what}. The SDK's default chain tried, in order:\n\
         \x20 1. environment variables: {}, {}\n\
         \x20 2. profile {:?} (--profile, AWS_PROFILE) in {}\n\
         \x20 3. web identity: {}, {}\n\
         \x20 4. ECS/container credentials: {}, {}\n\
         \x20 5. EC2 instance metadata (IMDSv2){}\n\
         The SDK said: {}\n\
         Set credentials (aws configure, aws sso login, or AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY) and run again.",
        state("AWS_ACCESS_KEY_ID"),
        state("AWS_SECRET_ACCESS_KEY"),
        profile_name(args),
        shared_files(),
        state("AWS_WEB_IDENTITY_TOKEN_FILE"),
        state("AWS_ROLE_ARN"),
        state("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        state("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        if imds_disabled() {
            ": disabled by AWS_EC2_METADATA_DISABLED"
        } else {
            ": tried, see the SDK's answer below"
        },
        chain(e)
    )
}

/// The endpoint a call to `service` went to: a service-specific variable, the configured
/// endpoint URL, or the SDK's regional default.
fn endpoint_of(service: &str, sdk: &SdkConfig) -> String {
    let id = match service {
        "events" => "EVENTBRIDGE".to_string(),
        other => other.to_ascii_uppercase(),
    };
    if let Some(url) = std::env::var(format!("AWS_ENDPOINT_URL_{id}"))
        .ok()
        .filter(|u| !u.is_empty())
    {
        return format!("{url} (AWS_ENDPOINT_URL_{id})");
    }
    if let Some(url) = sdk.endpoint_url() {
        return format!("{url} (--endpoint-url or AWS_ENDPOINT_URL)");
    }
    let region = sdk.region().map_or("?", Region::as_ref);
    match service {
        "iam" => "https://iam.amazonaws.com (the SDK's default)".into(),
        _ => format!("https://{service}.{region}.amazonaws.com (the SDK's default for {service} in {region})"),
    }
}

/// A region, credential or endpoint problem behind an error, found in the SDK error kinds of
/// its sources: a credentials provider error, an endpoint that could not be resolved, or a
/// connector (transport) error of the dispatch.
pub(crate) fn setup_problem(
    e: &(dyn std::error::Error + 'static),
    sdk: &SdkConfig,
) -> Option<String> {
    let mut call: Option<&AwsError> = None;
    let mut link = Some(e);
    while let Some(err) = link {
        if let Some(a) = err.downcast_ref::<AwsError>() {
            call = Some(a);
        }
        let operation = call.map_or("the first call", |a| a.operation);
        let service = operation.split(':').next().unwrap_or("dynamodb");
        if let Some(c) = err.downcast_ref::<CredentialsError>() {
            return Some(format!(
                "{operation}: AWS credentials could not be loaded: {}",
                chain(c)
            ));
        }
        if let Some(r) = err.downcast_ref::<ResolveEndpointError>() {
            return Some(format!(
                "{operation}: the SDK could not resolve an endpoint for {service} (region {:?}, \
                 endpoint URL {:?}): {}",
                sdk.region().map(Region::as_ref),
                sdk.endpoint_url(),
                chain(r)
            ));
        }
        if let Some(c) = err.downcast_ref::<ConnectorError>() {
            if c.is_io() || c.is_timeout() {
                return Some(format!(
                    "{operation}: could not reach the endpoint {}: {}",
                    endpoint_of(service, sdk),
                    chain(c)
                ));
            }
        }
        link = err.source();
    }
    None
}

/// The command's failure for the user: invalid input (2), a region, credential or endpoint
/// problem (1), or AWS's own answer (1).
pub(crate) fn explain_failure(e: &Error, sdk: &SdkConfig) -> Failure {
    if e.error_type() == "InvalidEvent" {
        return Failure {
            message: e.public_message(),
            exit_code: 2,
        };
    }
    let message = setup_problem(e, sdk)
        .unwrap_or_else(|| format!("{}: {}", e.error_type(), e.public_message()));
    Failure::setup(message)
}

/// A setup problem met by a call whose failure the pipeline absorbed (as an unknown fact):
/// the result would rest on facts it could not read, so the command fails instead.
pub(crate) fn absorbed(problem: String) -> Failure {
    Failure::setup(format!(
        "{problem}\n(no result printed: it would rest on facts that could not be read)"
    ))
}
