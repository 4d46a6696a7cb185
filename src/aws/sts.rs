//! STS adapter: assume the member role in another account and read there.

use super::{classify, missing, task_ended, KmsKeys, S3Buckets};
use crate::ports::{AccountReaders, CrossAccount, Identity, PortResult};
use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_types::SdkConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct StsCrossAccount {
    sts: aws_sdk_sts::Client,
    base: SdkConfig,
    partition: String,
    force_path_style: bool,
    /// The function's identity does not change while the container lives: ask once.
    whoami: tokio::sync::OnceCell<(String, String)>,
    /// Member-role credentials by role ARN, reused by a warm container until `REUSE` is over.
    member_creds: Arc<Mutex<HashMap<String, (Instant, Credentials)>>>,
}

/// Member-role sessions last 900 s; a cached one is used for at most 600 s.
const SESSION_SECS: i32 = 900;
const REUSE: Duration = Duration::from_secs(600);

impl StsCrossAccount {
    /// `base` is the function's SdkConfig; assumed-role clients inherit its region, endpoint and timeouts.
    pub fn new(
        sts: aws_sdk_sts::Client,
        base: SdkConfig,
        partition: &str,
        force_path_style: bool,
    ) -> Self {
        Self {
            sts,
            base,
            partition: partition.to_string(),
            force_path_style,
            whoami: tokio::sync::OnceCell::new(),
            member_creds: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn member_credentials(&self, role_arn: &str) -> PortResult<Credentials> {
        const OP: &str = "sts:AssumeRole";
        let cached = self.member_creds.lock().ok().and_then(|c| {
            c.get(role_arn)
                .filter(|(at, _)| at.elapsed() < REUSE)
                .map(|(_, creds)| creds.clone())
        });
        if let Some(creds) = cached {
            return Ok(creds);
        }
        // A task of its own: when the asker stops waiting (a speculative owner lookup that the
        // bucket's own account made moot), the session is still cached for the next diagnosis.
        let (sts, cache, role_arn) = (
            self.sts.clone(),
            self.member_creds.clone(),
            role_arn.to_string(),
        );
        let task = tokio::spawn(async move {
            let (creds, _) = assume(
                &sts,
                &role_arn,
                "ddb-export-remediator",
                SESSION_SECS,
                "ddb-export-remediator-member-role",
            )
            .await?;
            if let Ok(mut cache) = cache.lock() {
                cache.insert(role_arn, (Instant::now(), creds.clone()));
            }
            Ok(creds)
        });
        task.await.unwrap_or_else(|e| Err(task_ended(OP, e)))
    }
}

/// AssumeRole: the session's credentials, and its assumed-role ARN when STS gave it.
pub(crate) async fn assume(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    session_name: &str,
    duration_secs: i32,
    provider: &'static str,
) -> PortResult<(Credentials, Option<String>)> {
    const OP: &str = "sts:AssumeRole";
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .duration_seconds(duration_secs)
        .send()
        .await
        .map_err(|e| classify(OP, e))?;
    let c = out
        .credentials()
        .ok_or_else(|| missing(OP, "Credentials"))?;
    let creds = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        provider,
    );
    Ok((creds, out.assumed_role_user().map(|u| u.arn().to_string())))
}

impl StsCrossAccount {
    /// The same sessions (one cache) with clients in `region`: the readers of an organization
    /// incident act in its Region. AssumeRole still goes to the function's Regional endpoint.
    pub(crate) fn in_region(&self, region: &str) -> Self {
        Self {
            sts: self.sts.clone(),
            base: self
                .base
                .to_builder()
                .region(aws_types::region::Region::new(region.to_string()))
                .build(),
            partition: self.partition.clone(),
            force_path_style: self.force_path_style,
            whoami: tokio::sync::OnceCell::new(),
            member_creds: self.member_creds.clone(),
        }
    }

    pub(crate) fn force_path_style(&self) -> bool {
        self.force_path_style
    }

    /// The function's SdkConfig with the credentials of `role_arn` (assumed, cached).
    pub(crate) async fn config_as(&self, role_arn: &str) -> PortResult<SdkConfig> {
        let creds = self.member_credentials(role_arn).await?;
        Ok(self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .build())
    }
}

/// The S3 client the function uses everywhere (path style for local emulators).
pub fn s3_client(config: &SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[async_trait]
impl CrossAccount for StsCrossAccount {
    #[tracing::instrument(skip(self))]
    async fn readers_in(&self, account_id: &str, role_name: &str) -> PortResult<AccountReaders> {
        let role_arn = format!("arn:{}:iam::{account_id}:role/{role_name}", self.partition);
        let config = self.config_as(&role_arn).await?;
        Ok(AccountReaders {
            buckets: Box::new(S3Buckets::new(s3_client(&config, self.force_path_style))),
            keys: Box::new(KmsKeys::new(aws_sdk_kms::Client::new(&config))),
        })
    }
}

/// One identity for the hub's own ports and for its sites in other Regions (asked once).
#[async_trait]
impl Identity for Arc<StsCrossAccount> {
    async fn whoami(&self) -> PortResult<(String, String)> {
        self.as_ref().whoami().await
    }
}

#[async_trait]
impl Identity for StsCrossAccount {
    #[tracing::instrument(skip(self))]
    async fn whoami(&self) -> PortResult<(String, String)> {
        const OP: &str = "sts:GetCallerIdentity";
        let identity = self.whoami.get_or_try_init(|| async {
            let out = self
                .sts
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            let account = out.account().ok_or_else(|| missing(OP, "Account"))?;
            let arn = out.arn().ok_or_else(|| missing(OP, "Arn"))?;
            PortResult::Ok((account.to_string(), arn.to_string()))
        });
        identity.await.cloned()
    }
}
