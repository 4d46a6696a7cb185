//! In-memory port implementations for domain tests. They follow the ports' contract:
//! `Ok(None)` for not-found, `Err(AwsError)` with the operation name for everything else.

use crate::config::Config;
use crate::domain::App;
use crate::error::{AwsError, AwsErrorKind};
use crate::model::{
    BucketEncryption, ExportDescription, ExportRequest, ExportStatus, ExportSummary, KeyInfo,
    PitrInfo, TableInfo,
};
use crate::ports::{
    AccountDirectory, AccountReaders, BucketInspector, BucketPresence, CrossAccount, ExportPage,
    ExportService, KeyInspector, PortResult,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub const TABLE_ACCOUNT: &str = "111122223333";
pub const DATA_ACCOUNT: &str = "444455556666";
pub const TABLE_ARN: &str = "arn:aws:dynamodb:us-east-1:111122223333:table/orders";
pub const EXPORT_ARN: &str =
    "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508400000-9f8e7d6c";
pub const KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

#[derive(Debug, Clone)]
pub struct FakeBucket {
    pub owner: String,
    pub region: String,
    pub policy: Option<String>,
    pub encryption: Option<BucketEncryption>,
    pub requester_pays: bool,
}

impl FakeBucket {
    pub fn owned_by(owner: &str) -> Self {
        Self {
            owner: owner.into(),
            region: "us-east-1".into(),
            policy: None,
            encryption: None,
            requester_pays: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FakeKey {
    pub info: KeyInfo,
    pub policy: String,
}

/// One shared world: exports, tables, buckets and keys across accounts.
#[derive(Debug, Default)]
pub struct World {
    pub exports: Vec<ExportDescription>,
    pub tables: HashMap<String, (TableInfo, PitrInfo)>,
    pub buckets: HashMap<String, FakeBucket>,
    pub keys: HashMap<String, FakeKey>,
    pub org_accounts: Option<Vec<String>>,
    /// Accounts where the member role can be assumed.
    pub member_roles: Vec<String>,
    pub started: Vec<(ExportRequest, String)>,
    /// Fail the next StartExport with this kind.
    pub fail_start: Option<AwsErrorKind>,
    /// Operations that answer AccessDenied.
    pub denied: Vec<&'static str>,
}

pub type Shared = Arc<RwLock<World>>;

fn denied(world: &Shared, op: &'static str) -> PortResult<()> {
    if world.read().unwrap().denied.contains(&op) {
        Err(AwsError::new(
            op,
            AwsErrorKind::AccessDenied,
            "AccessDenied: fake",
        ))
    } else {
        Ok(())
    }
}

pub fn failed_export(request: ExportRequest, code: &str, message: &str) -> ExportDescription {
    ExportDescription {
        export_arn: EXPORT_ARN.into(),
        status: ExportStatus::Failed,
        request,
        failure_code: Some(code.into()),
        failure_message: Some(message.into()),
    }
}

pub fn request(bucket: &str) -> ExportRequest {
    ExportRequest {
        table_arn: TABLE_ARN.into(),
        s3_bucket: bucket.into(),
        s3_prefix: Some("exports".into()),
        s3_sse_algorithm: Some(crate::model::SseAlgorithm::Aes256),
        export_format: Some("DYNAMODB_JSON".into()),
        export_time: Some(1_795_500_000.0),
        ..Default::default()
    }
}

/// A request with every optional flag set: cross-account owner, SSE-KMS with a full key ARN.
pub fn full_request() -> ExportRequest {
    ExportRequest {
        table_arn: TABLE_ARN.into(),
        s3_bucket: "amzn-s3-demo-bucket".into(),
        s3_bucket_owner: Some(DATA_ACCOUNT.into()),
        s3_prefix: Some("exports/orders".into()),
        s3_sse_algorithm: Some(crate::model::SseAlgorithm::Kms),
        s3_sse_kms_key_id: Some("arn:aws:kms:us-east-1:111122223333:key/k1".into()),
        export_format: Some("DYNAMODB_JSON".into()),
        export_time: Some(1_795_500_000.0),
        ..Default::default()
    }
}

pub fn world_with_table() -> Shared {
    let mut w = World::default();
    w.tables.insert(
        "orders".into(),
        (
            TableInfo {
                arn: TABLE_ARN.into(),
                status: "ACTIVE".into(),
                sse_status: None,
                sse_key_arn: None,
            },
            PitrInfo {
                enabled: true,
                earliest_restorable: Some(1_795_000_000.0),
                latest_restorable: Some(1_795_600_000.0),
            },
        ),
    );
    Arc::new(RwLock::new(w))
}

pub fn app(world: &Shared, config: Config) -> App {
    App {
        config,
        exports: Box::new(FakeExports(world.clone())),
        buckets: Box::new(FakeBuckets {
            world: world.clone(),
            account: TABLE_ACCOUNT.into(),
        }),
        keys: Box::new(FakeKeys {
            world: world.clone(),
            account: TABLE_ACCOUNT.into(),
        }),
        accounts: Box::new(FakeOrg(world.clone())),
        cross: Box::new(FakeCross(world.clone())),
    }
}

pub struct FakeExports(pub Shared);

#[async_trait]
impl ExportService for FakeExports {
    async fn describe_export(&self, export_arn: &str) -> PortResult<Option<ExportDescription>> {
        denied(&self.0, "dynamodb:DescribeExport")?;
        let w = self.0.read().unwrap();
        Ok(w.exports
            .iter()
            .find(|e| e.export_arn == export_arn)
            .cloned())
    }
    async fn start_export(
        &self,
        request: &ExportRequest,
        client_token: &str,
    ) -> PortResult<String> {
        let mut w = self.0.write().unwrap();
        if let Some(kind) = w.fail_start.take() {
            return Err(AwsError::new(
                "dynamodb:ExportTableToPointInTime",
                kind,
                "fake failure",
            ));
        }
        w.started.push((request.clone(), client_token.to_string()));
        Ok(format!(
            "{}/export/01795600000000-0000000{}",
            request.table_arn,
            w.started.len()
        ))
    }
    async fn describe_table(&self, table: &str) -> PortResult<Option<TableInfo>> {
        Ok(self
            .0
            .read()
            .unwrap()
            .tables
            .get(table)
            .map(|t| t.0.clone()))
    }
    async fn continuous_backups(&self, table: &str) -> PortResult<Option<PitrInfo>> {
        Ok(self
            .0
            .read()
            .unwrap()
            .tables
            .get(table)
            .map(|t| t.1.clone()))
    }
    async fn list_exports(&self, next_token: Option<String>) -> PortResult<ExportPage> {
        let w = self.0.read().unwrap();
        let start: usize = next_token.and_then(|t| t.parse().ok()).unwrap_or(0);
        let end = (start + 25).min(w.exports.len());
        Ok(ExportPage {
            exports: w.exports[start..end]
                .iter()
                .map(|e| ExportSummary {
                    export_arn: e.export_arn.clone(),
                    status: e.status,
                })
                .collect(),
            next_token: (end < w.exports.len()).then(|| end.to_string()),
        })
    }
}

pub struct FakeBuckets {
    pub world: Shared,
    pub account: String,
}

impl FakeBuckets {
    fn bucket(&self, op: &'static str, name: &str) -> PortResult<FakeBucket> {
        denied(&self.world, op)?;
        let w = self.world.read().unwrap();
        let b = w
            .buckets
            .get(name)
            .ok_or_else(|| AwsError::new(op, AwsErrorKind::NotFound, "NoSuchBucket"))?;
        if b.owner != self.account && op != "s3:GetBucketLocation" {
            return Err(AwsError::new(
                op,
                AwsErrorKind::AccessDenied,
                "AccessDenied",
            ));
        }
        Ok(b.clone())
    }
}

#[async_trait]
impl BucketInspector for FakeBuckets {
    async fn head_bucket(&self, bucket: &str) -> PortResult<BucketPresence> {
        let w = self.world.read().unwrap();
        Ok(match w.buckets.get(bucket) {
            None => BucketPresence::Missing,
            Some(b) if b.owner == self.account => BucketPresence::Exists,
            Some(_) => BucketPresence::ExistsNoAccess,
        })
    }
    async fn owned_bucket_names(&self) -> PortResult<Vec<String>> {
        denied(&self.world, "s3:ListBuckets")?;
        let w = self.world.read().unwrap();
        Ok(w.buckets
            .iter()
            .filter(|(_, b)| b.owner == self.account)
            .map(|(n, _)| n.clone())
            .collect())
    }
    async fn bucket_region(&self, bucket: &str) -> PortResult<String> {
        Ok(self.bucket("s3:GetBucketLocation", bucket)?.region)
    }
    async fn bucket_policy(&self, bucket: &str) -> PortResult<Option<String>> {
        Ok(self.bucket("s3:GetBucketPolicy", bucket)?.policy)
    }
    async fn default_encryption(&self, bucket: &str) -> PortResult<Option<BucketEncryption>> {
        Ok(self.bucket("s3:GetBucketEncryption", bucket)?.encryption)
    }
    async fn requester_pays(&self, bucket: &str) -> PortResult<bool> {
        Ok(self
            .bucket("s3:GetBucketRequestPayment", bucket)?
            .requester_pays)
    }
}

pub struct FakeKeys {
    pub world: Shared,
    pub account: String,
}

#[async_trait]
impl KeyInspector for FakeKeys {
    async fn describe_key(&self, key_id: &str) -> PortResult<Option<KeyInfo>> {
        denied(&self.world, "kms:DescribeKey")?;
        let w = self.world.read().unwrap();
        Ok(w.keys.get(key_id).map(|k| k.info.clone()))
    }
    async fn key_policy(&self, key_id: &str) -> PortResult<Option<String>> {
        let w = self.world.read().unwrap();
        match w.keys.get(key_id) {
            Some(k) if crate::arn::account_of(&k.info.arn).as_deref() != Some(&self.account) => {
                Err(AwsError::new(
                    "kms:GetKeyPolicy",
                    AwsErrorKind::AccessDenied,
                    "AccessDeniedException",
                ))
            }
            other => Ok(other.map(|k| k.policy.clone())),
        }
    }
}

pub struct FakeOrg(pub Shared);

#[async_trait]
impl AccountDirectory for FakeOrg {
    async fn account_ids(&self) -> PortResult<Vec<String>> {
        self.0.read().unwrap().org_accounts.clone().ok_or_else(|| {
            AwsError::new(
                "organizations:ListAccounts",
                AwsErrorKind::AccessDenied,
                "AccessDeniedException",
            )
        })
    }
}

pub struct FakeCross(pub Shared);

#[async_trait]
impl CrossAccount for FakeCross {
    async fn readers_in(&self, account_id: &str, _role_name: &str) -> PortResult<AccountReaders> {
        if !self
            .0
            .read()
            .unwrap()
            .member_roles
            .iter()
            .any(|a| a == account_id)
        {
            return Err(AwsError::new(
                "sts:AssumeRole",
                AwsErrorKind::AccessDenied,
                "AccessDenied",
            ));
        }
        Ok(AccountReaders {
            buckets: Box::new(FakeBuckets {
                world: self.0.clone(),
                account: account_id.into(),
            }),
            keys: Box::new(FakeKeys {
                world: self.0.clone(),
                account: account_id.into(),
            }),
        })
    }
}
