//! Capabilities the domain needs, in domain vocabulary. Adapters in `aws/`, fakes in `fakes.rs`.
//!
//! Contract shared by every implementation: `Ok(None)` means the service said the thing does not
//! exist (a modeled not-found); access denied, throttling and transport failures are `Err`.
//! Times are epoch seconds. Policies are returned as the JSON text the service stored.

use crate::error::AwsError;
use crate::model::{
    BucketEncryption, ExportDescription, ExportRequest, ExportSummary, KeyInfo, PitrInfo, TableInfo,
};
use async_trait::async_trait;

pub type PortResult<T> = Result<T, AwsError>;

/// DynamoDB: exports and the table they come from (the table's account).
#[async_trait]
pub trait ExportService: Send + Sync {
    async fn describe_export(&self, export_arn: &str) -> PortResult<Option<ExportDescription>>;
    /// Starts an export with exactly these parameters; returns the export ARN.
    async fn start_export(&self, request: &ExportRequest, client_token: &str)
        -> PortResult<String>;
    async fn describe_table(&self, table: &str) -> PortResult<Option<TableInfo>>;
    async fn continuous_backups(&self, table: &str) -> PortResult<Option<PitrInfo>>;
    /// One page of ListExports for the account and region (newest first, at most 25).
    async fn list_exports(&self, next_token: Option<String>) -> PortResult<ExportPage>;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportPage {
    pub exports: Vec<ExportSummary>,
    pub next_token: Option<String>,
}

/// HeadBucket's answer: S3 says 403 for a bucket that exists but is not ours to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketPresence {
    Exists,
    ExistsNoAccess,
    Missing,
}

/// S3 bucket facts, as seen from one account's credentials.
#[async_trait]
pub trait BucketInspector: Send + Sync {
    async fn head_bucket(&self, bucket: &str) -> PortResult<BucketPresence>;
    /// Names of the buckets the credentials' account owns.
    async fn owned_bucket_names(&self) -> PortResult<Vec<String>>;
    /// The bucket's region (`us-east-1` for S3's empty LocationConstraint).
    async fn bucket_region(&self, bucket: &str) -> PortResult<String>;
    async fn bucket_policy(&self, bucket: &str) -> PortResult<Option<String>>;
    async fn default_encryption(&self, bucket: &str) -> PortResult<Option<BucketEncryption>>;
    async fn requester_pays(&self, bucket: &str) -> PortResult<bool>;
}

/// KMS key facts (the key policy is readable only in the key's account).
#[async_trait]
pub trait KeyInspector: Send + Sync {
    async fn describe_key(&self, key_id: &str) -> PortResult<Option<KeyInfo>>;
    async fn key_policy(&self, key_id: &str) -> PortResult<Option<String>>;
}

/// The organization's member accounts, where the credentials may list them.
#[async_trait]
pub trait AccountDirectory: Send + Sync {
    async fn account_ids(&self) -> PortResult<Vec<String>>;
}

/// Readers that act inside another account (through the member role).
pub struct AccountReaders {
    pub buckets: Box<dyn BucketInspector>,
    pub keys: Box<dyn KeyInspector>,
}

#[async_trait]
pub trait CrossAccount: Send + Sync {
    /// Assumes `arn:<partition>:iam::<account>:role/<role_name>` and returns readers there.
    async fn readers_in(&self, account_id: &str, role_name: &str) -> PortResult<AccountReaders>;
}
