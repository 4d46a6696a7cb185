//! In-memory port implementations for domain tests. They follow the ports' contract:
//! `Ok(None)` for not-found, `Err(AwsError)` with the operation name for everything else.

use crate::config::Config;
use crate::domain::App;
use crate::error::{AwsError, AwsErrorKind};
use crate::model::{
    BucketEncryption, BucketFacts, Evidence, ExportDescription, ExportRequest, ExportStatus,
    ExportSummary, Fact, KeyInfo, PitrInfo, TableInfo,
};
use crate::ports::{
    AccountDirectory, AccountReaders, BucketInspector, BucketPresence, ChangeStatus, Claim,
    CrossAccount, EventPublisher, ExportPage, ExportService, Identity, IdentityPolicies, InFlight,
    IncidentRecord, IncidentStatus, KeyPolicyChange, KeyPolicyStore, Ledger, Lineage,
    OutboundEvent, PortResult, PrincipalPolicies, ScpPath, StartRecord, SweepMarks, SweepRecord,
    SweepState, SweepWrite,
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
    /// Block Public Access `RestrictPublicBuckets`; None: no configuration.
    pub restrict_public: Option<bool>,
}

impl FakeBucket {
    pub fn owned_by(owner: &str) -> Self {
        Self {
            owner: owner.into(),
            region: "us-east-1".into(),
            policy: None,
            encryption: None,
            requester_pays: false,
            restrict_public: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FakeKey {
    pub info: KeyInfo,
    pub policy: String,
    pub grants: Vec<crate::model::KeyGrant>,
}

/// One shared world: exports, tables, buckets and keys across accounts.
#[derive(Debug, Default)]
pub struct World {
    pub exports: Vec<ExportDescription>,
    pub tables: HashMap<String, (TableInfo, PitrInfo)>,
    /// Table ARN -> its resource policy.
    pub table_policies: HashMap<String, String>,
    pub buckets: HashMap<String, FakeBucket>,
    pub keys: HashMap<String, FakeKey>,
    pub org_accounts: Option<Vec<String>>,
    /// The SCP path of the table account; None: the organization's policies are not readable.
    pub scp_path: Option<ScpPath>,
    /// Accounts where the member role can be assumed.
    pub member_roles: Vec<String>,
    pub started: Vec<(ExportRequest, String)>,
    /// Fail the next StartExport with this kind.
    pub fail_start: Option<AwsErrorKind>,
    /// Operations that answer AccessDenied.
    pub denied: Vec<&'static str>,
    /// Operations whose next call fails transiently (throttled after the SDK's retries).
    pub throttled: Vec<&'static str>,
    pub list_calls: usize,
    /// Every key id DescribeKey was asked for, in order.
    pub key_reads: Vec<String>,
    /// AssumeRole never answers (a slow STS).
    pub stall_assume_role: bool,
    /// Every account an SCP path was asked for, in order.
    pub scp_walks: Vec<String>,
    /// DescribeExport answers only after an SCP walk has begun.
    pub describe_after_scp_walk: bool,
    pub ledger: HashMap<String, IncidentRecord>,
    /// The ledger's open listing: export ARN -> due at.
    pub open: HashMap<String, i64>,
    /// Ledger writes (by operation) whose next call lands, loses its answer and is sent again
    /// (the SDK's retry): the caller sees the second attempt's answer.
    pub replay_writes: Vec<&'static str>,
    /// Operations that never return, once each (the process is killed there): `before` the
    /// call has any effect, or `after` it landed.
    pub crash_before: Vec<&'static str>,
    pub crash_after: Vec<&'static str>,
    /// Calls (by operation) that land but answer a 500 after the SDK's retries (lost answers).
    pub lost_answers: Vec<&'static str>,
    /// Exports started are also listed and described (IN_PROGRESS, with their ClientToken).
    pub started_listed: bool,
    /// The ledger's last write of an incident (lease given back) never answers.
    pub stall_final_settle: bool,
    pub lineages: HashMap<String, Lineage>,
    pub starts: HashMap<String, StartRecord>,
    pub sweep_states: HashMap<String, SweepState>,
    pub marks: HashMap<String, String>,
    pub cursor: Option<String>,
    /// Organization mode: export ARN -> (next check, checks).
    pub in_flight: HashMap<String, (i64, u32)>,
    pub markers: HashMap<String, i64>,
    /// Retries followed (retry export ARN -> record), and outcomes by root export ARN.
    pub followed: HashMap<String, crate::domain::outcome::Followed>,
    pub outcomes: HashMap<String, crate::ports::RecordedOutcome>,
    pub ended_followed: std::collections::HashSet<String>,
    /// Calls of `Ledger::sweep_writes`.
    pub sweep_write_calls: usize,
    pub published: Vec<OutboundEvent>,
    /// Refuse the next N published events (PutEvents partial failure).
    pub refuse_events: usize,
    /// Role name -> its policies.
    pub roles: HashMap<String, PrincipalPolicies>,
    /// Key-policy history (key ARN, policy): the policy before the first PutKeyPolicy, then
    /// every policy put. Empty while nothing was written.
    pub key_puts: Vec<(String, String)>,
    /// After a PutKeyPolicy, this many GetKeyPolicy calls still answer the old policy (KMS is
    /// eventually consistent).
    pub stale_key_reads: usize,
    /// Someone else writes this policy right after our next PutKeyPolicy.
    pub concurrent_key_write: Option<String>,
    /// Fail the next PutKeyPolicy with this error.
    pub fail_key_put: Option<AwsError>,
    pub changes: HashMap<String, KeyPolicyChange>,
}

pub type Shared = Arc<RwLock<World>>;

/// Whether `op` is listed (and takes it off the list: each entry fires once).
fn fires(list: &mut Vec<&'static str>, op: &str) -> bool {
    match list.iter().position(|o| *o == op) {
        Some(i) => {
            list.remove(i);
            true
        }
        None => false,
    }
}

/// A process killed at `op`: the call never returns (the test drops the future).
async fn crash_point(world: &Shared, op: &'static str, after: bool) {
    let fired = {
        let mut w = world.write().unwrap();
        match after {
            false => fires(&mut w.crash_before, op),
            true => fires(&mut w.crash_after, op),
        }
    };
    if fired {
        std::future::pending::<()>().await;
    }
}

/// Whether the next call of `op` is answered after a resend.
fn replayed(world: &Shared, op: &'static str) -> bool {
    fires(&mut world.write().unwrap().replay_writes, op)
}

fn denied(world: &Shared, op: &'static str) -> PortResult<()> {
    if fires(&mut world.write().unwrap().throttled, op) {
        return Err(AwsError::new(
            op,
            AwsErrorKind::Throttled,
            "ThrottlingException: fake, after the SDK's retries",
        ));
    }
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
        start_time: None,
        end_time: None,
        item_count: None,
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

/// A bucket-policy statement that lets the table's account write exports (a cross-account setup).
pub fn grant_statement(bucket: &str) -> serde_json::Value {
    serde_json::json!({"Sid": "AllowExportsFromTableAccount", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{TABLE_ACCOUNT}:root")},
        "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"],
        "Resource": format!("arn:aws:s3:::{bucket}/*")})
}

pub fn grant_policy(bucket: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [grant_statement(bucket)]}).to_string()
}

/// The evidence fixture diagnosis and plan tests start from: a failed same-account export to
/// `bucket` whose facts all look fine (table active, PITR on, bucket ours and unrestricted).
pub fn evidence(bucket: &str, code: &str, message: &str) -> Evidence {
    let req = request(bucket);
    Evidence {
        table_account: TABLE_ACCOUNT.into(),
        export: Some(failed_export(req.clone(), code, message)),
        request: Some(req),
        table: Fact::known(
            "dynamodb:DescribeTable",
            TableInfo {
                arn: TABLE_ARN.into(),
                status: "ACTIVE".into(),
                sse_status: None,
                sse_key_arn: None,
            },
        ),
        pitr: Fact::known(
            "dynamodb:DescribeContinuousBackups",
            PitrInfo {
                enabled: true,
                earliest_restorable: None,
                latest_restorable: None,
            },
        ),
        bucket: Some(BucketFacts {
            name: bucket.into(),
            presence: Fact::known("s3:HeadBucket", BucketPresence::Exists),
            in_table_account: Fact::known("s3:ListBuckets", true),
            owner: Fact::known("s3:ListBuckets", TABLE_ACCOUNT.into()),
            region: Fact::known("s3:GetBucketLocation", "us-east-1".into()),
            policy: Fact::absent("s3:GetBucketPolicy"),
            encryption: Fact::absent("s3:GetBucketEncryption"),
            requester_pays: Fact::known("s3:GetBucketRequestPayment", false),
            restrict_public: Fact::absent("s3:GetPublicAccessBlock"),
        }),
        export_key: None,
        default_key: None,
        pinned_key: None,
        caller_policies: None,
        table_policy: Fact::absent("dynamodb:GetResourcePolicy"),
        scps: Fact::absent("organizations:ListPoliciesForTarget"),
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
    let ledger = config
        .ledger_table_name
        .as_ref()
        .map(|_| Arc::new(FakeLedger(world.clone())) as Arc<dyn Ledger>);
    App {
        config,
        region: "us-east-1".into(),
        identity: Box::new(FakeIdentity),
        iam: Box::new(FakeIam(world.clone())),
        ledger,
        events: Arc::new(FakeEvents(world.clone())),
        exports: Box::new(FakeExports(world.clone())),
        buckets: Box::new(FakeBuckets {
            world: world.clone(),
            account: TABLE_ACCOUNT.into(),
        }),
        keys: Box::new(FakeKeys {
            world: world.clone(),
            account: TABLE_ACCOUNT.into(),
        }),
        accounts: Arc::new(FakeOrg(world.clone())),
        cross: Box::new(FakeCross(world.clone())),
        hints: Default::default(),
        clock: Arc::new(crate::aws::SystemClock),
        spokes: None,
        spoke: None,
    }
}

/// Wall time shifted by a settable offset (leases run out without waiting); waits on tokio's
/// timer, paused in tests.
#[derive(Debug, Default)]
pub struct OffsetClock(pub std::sync::atomic::AtomicI64);

impl OffsetClock {
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl crate::ports::Clock for OffsetClock {
    fn now(&self) -> i64 {
        <crate::aws::SystemClock as crate::ports::Clock>::now(&crate::aws::SystemClock)
            + self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

pub struct FakeExports(pub Shared);

#[async_trait]
impl ExportService for FakeExports {
    async fn describe_export(&self, export_arn: &str) -> PortResult<Option<ExportDescription>> {
        denied(&self.0, "dynamodb:DescribeExport")?;
        if self.0.read().unwrap().describe_after_scp_walk {
            // Answer only once an SCP walk has begun (at most 2 s).
            for _ in 0..200 {
                if !self.0.read().unwrap().scp_walks.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            if self.0.read().unwrap().scp_walks.is_empty() {
                return Err(AwsError::new(
                    "dynamodb:DescribeExport",
                    AwsErrorKind::Other,
                    "no SCP walk began while DescribeExport was under way",
                ));
            }
        }
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
        const OP: &str = "dynamodb:ExportTableToPointInTime";
        crash_point(&self.0, OP, false).await;
        let answer = {
            let mut w = self.0.write().unwrap();
            if let Some(kind) = w.fail_start.take() {
                return Err(AwsError::new(OP, kind, "fake failure"));
            }
            // DynamoDB keeps a ClientToken 8 hours: the same token with the same parameters
            // answers the export it started; with other parameters, ExportConflictException.
            let arn_of = |i: usize| {
                format!(
                    "{}/export/01795600000000-0000000{}",
                    request.table_arn,
                    i + 1
                )
            };
            match w.started.iter().position(|(_, t)| t == client_token) {
                Some(i) if w.started[i].0 == *request => Ok(arn_of(i)),
                Some(_) => Err(AwsError::new(
                    OP,
                    AwsErrorKind::ExportConflict,
                    "ExportConflictException: fake",
                )),
                None => {
                    w.started.push((request.clone(), client_token.to_string()));
                    let arn = arn_of(w.started.len() - 1);
                    if w.started_listed {
                        w.exports.push(ExportDescription {
                            export_arn: arn.clone(),
                            status: ExportStatus::InProgress,
                            request: ExportRequest {
                                client_token: Some(client_token.to_string()),
                                ..request.clone()
                            },
                            failure_code: None,
                            failure_message: None,
                            start_time: None,
                            end_time: None,
                            item_count: None,
                        });
                    }
                    Ok(arn)
                }
            }
        };
        // The export started, and its answer is lost (a 500 in its place).
        if answer.is_ok() && fires(&mut self.0.write().unwrap().lost_answers, OP) {
            return Err(
                AwsError::new(OP, AwsErrorKind::Other, "HTTP 500 (answer lost)").transient(),
            );
        }
        crash_point(&self.0, OP, true).await;
        answer
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
    async fn table_policy(&self, table_arn: &str) -> PortResult<Option<String>> {
        denied(&self.0, "dynamodb:GetResourcePolicy")?;
        Ok(self
            .0
            .read()
            .unwrap()
            .table_policies
            .get(table_arn)
            .cloned())
    }
    async fn list_exports(
        &self,
        table_arn: Option<&str>,
        next_token: Option<String>,
    ) -> PortResult<ExportPage> {
        let mut w = self.0.write().unwrap();
        w.list_calls += 1;
        let mut all: Vec<&ExportDescription> = w
            .exports
            .iter()
            .filter(|e| table_arn.is_none_or(|t| e.request.table_arn == t))
            .collect();
        all.sort_by(|a, b| b.export_arn.cmp(&a.export_arn));
        let start: usize = next_token.and_then(|t| t.parse().ok()).unwrap_or(0);
        let end = (start + 25).min(all.len());
        let page = ExportPage {
            exports: all[start..end]
                .iter()
                .map(|e| ExportSummary {
                    export_arn: e.export_arn.clone(),
                    status: e.status,
                })
                .collect(),
            next_token: (end < all.len()).then(|| end.to_string()),
        };
        Ok(page)
    }
    async fn table_names(&self) -> PortResult<Vec<String>> {
        Ok(self.0.read().unwrap().tables.keys().cloned().collect())
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
    async fn restrict_public_buckets(&self, bucket: &str) -> PortResult<Option<bool>> {
        Ok(self
            .bucket("s3:GetPublicAccessBlock", bucket)?
            .restrict_public)
    }
}

pub struct FakeKeys {
    pub world: Shared,
    pub account: String,
}

#[async_trait]
impl KeyPolicyStore for FakeKeys {
    async fn describe_key(&self, key_id: &str) -> PortResult<Option<KeyInfo>> {
        denied(&self.world, "kms:DescribeKey")?;
        let mut w = self.world.write().unwrap();
        w.key_reads.push(key_id.to_string());
        Ok(w.keys.get(key_id).map(|k| k.info.clone()))
    }
    async fn key_policy(&self, key_id: &str) -> PortResult<Option<String>> {
        let mut w = self.world.write().unwrap();
        if w.stale_key_reads > 0 {
            w.stale_key_reads -= 1;
            if let Some((_, old)) = w.key_puts.iter().rev().nth(1).filter(|(k, _)| k == key_id) {
                return Ok(Some(old.clone()));
            }
        }
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
    async fn grants(&self, key_id: &str) -> PortResult<Option<Vec<crate::model::KeyGrant>>> {
        denied(&self.world, "kms:ListGrants")?;
        Ok(self
            .world
            .read()
            .unwrap()
            .keys
            .get(key_id)
            .map(|k| k.grants.clone()))
    }
    async fn put_key_policy(&self, key_arn: &str, policy: &str) -> PortResult<()> {
        const OP: &str = "kms:PutKeyPolicy";
        crash_point(&self.world, OP, false).await;
        self.put_policy(key_arn, policy)?;
        if fires(&mut self.world.write().unwrap().lost_answers, OP) {
            return Err(
                AwsError::new(OP, AwsErrorKind::Other, "HTTP 500 (answer lost)").transient(),
            );
        }
        crash_point(&self.world, OP, true).await;
        Ok(())
    }
}

impl FakeKeys {
    fn put_policy(&self, key_arn: &str, policy: &str) -> PortResult<()> {
        denied(&self.world, "kms:PutKeyPolicy")?;
        let mut w = self.world.write().unwrap();
        if let Some(e) = w.fail_key_put.take() {
            return Err(e);
        }
        let Some(key) = w.keys.get_mut(key_arn) else {
            return Err(AwsError::new(
                "kms:PutKeyPolicy",
                AwsErrorKind::NotFound,
                "NotFoundException",
            ));
        };
        if crate::arn::account_of(&key.info.arn).as_deref() != Some(&self.account) {
            return Err(AwsError::new(
                "kms:PutKeyPolicy",
                AwsErrorKind::AccessDenied,
                "AccessDeniedException",
            ));
        }
        // The history starts with the policy before the first put, for stale reads.
        let old = key.policy.clone();
        key.policy = policy.to_string();
        if let Some(other) = w.concurrent_key_write.take() {
            if let Some(k) = w.keys.get_mut(key_arn) {
                k.policy = other;
            }
        }
        if !w.key_puts.iter().any(|(k, _)| k == key_arn) {
            w.key_puts.push((key_arn.to_string(), old));
        }
        w.key_puts.push((key_arn.to_string(), policy.to_string()));
        Ok(())
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
    async fn scp_path(&self, account_id: &str) -> PortResult<Option<ScpPath>> {
        self.0.write().unwrap().scp_walks.push(account_id.into());
        self.0
            .read()
            .unwrap()
            .scp_path
            .clone()
            .map(Some)
            .ok_or_else(|| {
                AwsError::new(
                    "organizations:ListPoliciesForTarget",
                    AwsErrorKind::AccessDenied,
                    "AccessDeniedException: fake",
                )
            })
    }
}

pub struct FakeCross(pub Shared);

#[async_trait]
impl CrossAccount for FakeCross {
    async fn readers_in(&self, account_id: &str, _role_name: &str) -> PortResult<AccountReaders> {
        if self.0.read().unwrap().stall_assume_role {
            std::future::pending::<()>().await;
        }
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

/// Organization mode: every site's ports are the world's fakes, as seen from its account.
pub struct FakeSpokes {
    pub world: Shared,
    /// Accounts whose spoke role cannot be assumed.
    pub denied: Vec<String>,
    /// Every (account, Region) a site was asked for, in order.
    pub asked: std::sync::Mutex<Vec<(String, String)>>,
}

impl FakeSpokes {
    pub fn new(world: &Shared) -> Self {
        Self {
            world: world.clone(),
            denied: Vec::new(),
            asked: Default::default(),
        }
    }
}

#[async_trait]
impl crate::ports::Spokes for FakeSpokes {
    async fn site(&self, account: &str, region: &str) -> PortResult<crate::ports::SitePorts> {
        self.asked
            .lock()
            .unwrap()
            .push((account.to_string(), region.to_string()));
        if self.denied.iter().any(|a| a == account) {
            return Err(AwsError::new(
                "sts:AssumeRole",
                AwsErrorKind::AccessDenied,
                "AccessDenied: not authorized to perform sts:AssumeRole",
            ));
        }
        let w = &self.world;
        Ok(crate::ports::SitePorts {
            exports: Box::new(FakeExports(w.clone())),
            buckets: Box::new(FakeBuckets {
                world: w.clone(),
                account: account.into(),
            }),
            keys: Box::new(FakeKeys {
                world: w.clone(),
                account: account.into(),
            }),
            iam: Box::new(FakeIam(w.clone())),
            identity: Box::new(FakeAt(account.to_string())),
            cross: Box::new(FakeCross(w.clone())),
            role_arn: Some(self.role_arn(account)),
        })
    }
    fn role_arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:role/spoke")
    }
}

/// The spoke role's session in `account`.
pub struct FakeAt(pub String);

#[async_trait]
impl Identity for FakeAt {
    async fn whoami(&self) -> PortResult<(String, String)> {
        Ok((
            self.0.clone(),
            format!("arn:aws:sts::{}:assumed-role/spoke/hub", self.0),
        ))
    }
}

pub struct FakeIdentity;

#[async_trait]
impl Identity for FakeIdentity {
    async fn whoami(&self) -> PortResult<(String, String)> {
        Ok((
            TABLE_ACCOUNT.into(),
            format!("arn:aws:sts::{TABLE_ACCOUNT}:assumed-role/remediator/fn"),
        ))
    }
}

pub struct FakeEvents(pub Shared);

#[async_trait]
impl EventPublisher for FakeEvents {
    async fn publish(&self, events: &[OutboundEvent]) -> PortResult<Vec<bool>> {
        let mut w = self.0.write().unwrap();
        let mut out = Vec::new();
        for e in events {
            if w.refuse_events > 0 {
                w.refuse_events -= 1;
                out.push(false);
            } else {
                w.published.push(e.clone());
                out.push(true);
            }
        }
        Ok(out)
    }
}

/// Same semantics as the DynamoDB ledger: the claim is a compare-and-set under one lock.
pub struct FakeLedger(pub Shared);

#[async_trait]
impl Ledger for FakeLedger {
    async fn claim(
        &self,
        export_arn: &str,
        owner: &str,
        now: i64,
        lease_secs: i64,
    ) -> PortResult<Claim> {
        const OP: &str = "ledger:ClaimIncident";
        crash_point(&self.0, OP, false).await;
        let attempt = || {
            let mut w = self.0.write().unwrap();
            let existing = w.ledger.get(export_arn).cloned();
            let free = match &existing {
                None => true,
                Some(r) => {
                    r.status == IncidentStatus::Pending
                        || (r.status == IncidentStatus::Claimed
                            && (r.lease_until < now || r.owner.as_deref() == Some(owner)))
                }
            };
            match existing {
                Some(held) if !free => {
                    if !held.status.is_open() {
                        w.open.remove(export_arn);
                    }
                    Claim::Held(held)
                }
                previous => {
                    // An update: what the earlier holder stored stays.
                    let mut record = previous.clone().unwrap_or_else(|| {
                        IncidentRecord::claimed(export_arn, owner, now + lease_secs)
                    });
                    record.status = IncidentStatus::Claimed;
                    record.owner = Some(owner.to_string());
                    record.lease_until = now + lease_secs;
                    w.ledger.insert(export_arn.to_string(), record);
                    Claim::Won { previous }
                }
            }
        };
        let mut answer = attempt();
        if replayed(&self.0, OP) {
            answer = attempt();
        }
        crash_point(&self.0, OP, true).await;
        Ok(answer)
    }
    async fn settle(&self, record: &IncidentRecord, now: i64) -> PortResult<bool> {
        const OP: &str = "ledger:SettleIncident";
        if record.lease_until == 0 && self.0.read().unwrap().stall_final_settle {
            std::future::pending::<()>().await;
        }
        let op = if record.status.is_open() {
            OP
        } else {
            "ledger:SettleIncident(final)"
        };
        crash_point(&self.0, op, false).await;
        let attempt = || {
            let mut w = self.0.write().unwrap();
            let holder = w
                .ledger
                .get(&record.export_arn)
                .and_then(|r| r.owner.clone());
            if holder.is_none() || holder != record.owner {
                return false;
            }
            w.ledger.insert(record.export_arn.clone(), record.clone());
            match record.status {
                IncidentStatus::Claimed => {}
                IncidentStatus::Pending => {
                    w.open.insert(record.export_arn.clone(), now);
                }
                _ => {
                    w.open.remove(&record.export_arn);
                }
            }
            true
        };
        let mut answer = attempt();
        if replayed(&self.0, op) {
            answer = attempt();
        }
        crash_point(&self.0, op, true).await;
        Ok(answer)
    }
    async fn open_incidents_due(&self, now: i64, limit: usize) -> PortResult<Vec<String>> {
        let mut w = self.0.write().unwrap();
        let mut listed: Vec<String> = w
            .open
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(a, _)| a.clone())
            .collect();
        listed.sort();
        let mut due = Vec::new();
        for arn in listed {
            match w.ledger.get(&arn) {
                None => due.push(arn),
                Some(r) if r.status == IncidentStatus::Pending => due.push(arn),
                Some(r) if r.status == IncidentStatus::Claimed && r.lease_until < now => {
                    due.push(arn)
                }
                Some(r) if r.status == IncidentStatus::Claimed => {}
                Some(_) => {
                    w.open.remove(&arn);
                }
            }
        }
        due.truncate(limit);
        Ok(due)
    }
    async fn list_open(&self, export_arn: &str, due_at: i64, _now: i64) -> PortResult<()> {
        self.0
            .write()
            .unwrap()
            .open
            .insert(export_arn.to_string(), due_at);
        Ok(())
    }
    async fn unlist_open(&self, export_arn: &str) -> PortResult<()> {
        self.0.write().unwrap().open.remove(export_arn);
        Ok(())
    }
    async fn lineage(&self, export_arn: &str) -> PortResult<Option<Lineage>> {
        Ok(self.0.read().unwrap().lineages.get(export_arn).cloned())
    }
    async fn record_lineage(
        &self,
        retry_export_arn: &str,
        lineage: &Lineage,
        _now: i64,
    ) -> PortResult<()> {
        crash_point(&self.0, "ledger:RecordLineage", false).await;
        self.0
            .write()
            .unwrap()
            .lineages
            .insert(retry_export_arn.to_string(), lineage.clone());
        Ok(())
    }
    async fn record_start(
        &self,
        export_arn: &str,
        start: &StartRecord,
        _now: i64,
    ) -> PortResult<()> {
        self.0
            .write()
            .unwrap()
            .starts
            .insert(export_arn.to_string(), start.clone());
        Ok(())
    }
    async fn start_record(&self, export_arn: &str) -> PortResult<Option<StartRecord>> {
        Ok(self.0.read().unwrap().starts.get(export_arn).cloned())
    }
    async fn sweep_records(
        &self,
        export_arns: &[String],
    ) -> PortResult<HashMap<String, SweepRecord>> {
        let w = self.0.read().unwrap();
        Ok(export_arns
            .iter()
            .filter_map(|a| {
                let record = SweepRecord {
                    state: w.sweep_states.get(a).copied(),
                    start: w.starts.get(a).cloned(),
                    handled: w.ledger.contains_key(a),
                };
                (record != SweepRecord::default()).then(|| (a.clone(), record))
            })
            .collect())
    }
    async fn sweep_marks(&self, table_arns: &[String]) -> PortResult<SweepMarks> {
        let w = self.0.read().unwrap();
        Ok(SweepMarks {
            marks: table_arns
                .iter()
                .filter_map(|t| w.marks.get(t).map(|m| (t.clone(), m.clone())))
                .collect(),
            cursor: w.cursor.clone(),
            following: w.markers.get("following").copied().unwrap_or(0),
        })
    }
    async fn sweep_writes(&self, writes: &[SweepWrite], _now: i64) -> PortResult<()> {
        // Denied: a sweep that dies between its events and its ledger writes.
        denied(&self.0, "ledger:WriteSweep")?;
        let mut w = self.0.write().unwrap();
        w.sweep_write_calls += 1;
        for write in writes {
            match write {
                SweepWrite::State { export_arn, state } => {
                    w.sweep_states.insert(export_arn.clone(), *state);
                }
                SweepWrite::Mark {
                    table_arn,
                    export_arn,
                } => {
                    w.marks.insert(table_arn.clone(), export_arn.clone());
                }
                SweepWrite::Cursor(c) => w.cursor = c.clone(),
            }
        }
        Ok(())
    }
    async fn record_change(&self, change: &KeyPolicyChange, _now: i64) -> PortResult<()> {
        const OP: &str = "ledger:RecordKeyPolicyChange";
        crash_point(&self.0, OP, false).await;
        let attempt = || {
            let mut w = self.0.write().unwrap();
            match w.changes.get(&change.change_id) {
                // Our own record, sent again: not refused.
                Some(c)
                    if c.key_arn == change.key_arn
                        && c.after == change.after
                        && c.status == ChangeStatus::Pending =>
                {
                    Ok(())
                }
                Some(_) => Err(AwsError::new(
                    OP,
                    AwsErrorKind::Rejected,
                    "ConditionalCheckFailedException",
                )),
                None => {
                    w.changes.insert(change.change_id.clone(), change.clone());
                    Ok(())
                }
            }
        };
        let mut answer = attempt();
        if replayed(&self.0, OP) {
            answer = attempt();
        }
        crash_point(&self.0, OP, true).await;
        answer
    }
    async fn key_change(&self, change_id: &str) -> PortResult<Option<KeyPolicyChange>> {
        Ok(self.0.read().unwrap().changes.get(change_id).cloned())
    }
    async fn set_change_status(
        &self,
        change_id: &str,
        from: ChangeStatus,
        to: ChangeStatus,
        note: Option<&str>,
        _now: i64,
    ) -> PortResult<bool> {
        const OP: &str = "ledger:SetKeyPolicyChangeStatus";
        crash_point(&self.0, OP, false).await;
        let attempt = || {
            let mut w = self.0.write().unwrap();
            match w.changes.get_mut(change_id) {
                Some(c) if c.status == from => {
                    c.status = to;
                    if let Some(n) = note {
                        c.note = Some(n.to_string());
                    }
                    true
                }
                // Our own move, sent again.
                Some(c) => c.status == to && (note.is_none() || c.note.as_deref() == note),
                None => false,
            }
        };
        let mut answer = attempt();
        if replayed(&self.0, OP) {
            answer = attempt();
        }
        crash_point(&self.0, OP, true).await;
        Ok(answer)
    }
    async fn track_in_flight(
        &self,
        export_arn: &str,
        next_check_at: i64,
        checks: u32,
        _now: i64,
    ) -> PortResult<()> {
        let mut w = self.0.write().unwrap();
        w.in_flight
            .insert(export_arn.to_string(), (next_check_at, checks));
        Ok(())
    }
    async fn in_flight_due(&self, now: i64, limit: usize) -> PortResult<Vec<InFlight>> {
        let w = self.0.read().unwrap();
        let mut due: Vec<InFlight> = w
            .in_flight
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(arn, (_, checks))| InFlight {
                export_arn: arn.clone(),
                checks: *checks,
            })
            .collect();
        due.sort_by(|a, b| a.export_arn.cmp(&b.export_arn));
        due.truncate(limit);
        Ok(due)
    }
    async fn untrack_in_flight(&self, export_arn: &str) -> PortResult<()> {
        self.0.write().unwrap().in_flight.remove(export_arn);
        Ok(())
    }
    async fn marker(&self, name: &str) -> PortResult<Option<i64>> {
        Ok(self.0.read().unwrap().markers.get(name).copied())
    }
    async fn set_marker(&self, name: &str, value: i64, _now: i64) -> PortResult<()> {
        self.0
            .write()
            .unwrap()
            .markers
            .insert(name.to_string(), value);
        Ok(())
    }
    async fn record_followed(
        &self,
        followed: &crate::domain::outcome::Followed,
        _now: i64,
    ) -> PortResult<()> {
        self.0
            .write()
            .unwrap()
            .followed
            .insert(followed.retry_export_arn.clone(), followed.clone());
        Ok(())
    }
    async fn followed(
        &self,
        retry_export_arn: &str,
    ) -> PortResult<Option<crate::domain::outcome::Followed>> {
        Ok(self
            .0
            .read()
            .unwrap()
            .followed
            .get(retry_export_arn)
            .cloned())
    }
    async fn end_followed(&self, retry_export_arn: &str, _now: i64) -> PortResult<bool> {
        let mut w = self.0.write().unwrap();
        Ok(w.ended_followed.insert(retry_export_arn.to_string()))
    }
    async fn add_following(&self, delta: i64, _now: i64) -> PortResult<()> {
        *self
            .0
            .write()
            .unwrap()
            .markers
            .entry("following".into())
            .or_default() += delta;
        Ok(())
    }
    async fn record_outcome(
        &self,
        outcome: &crate::domain::outcome::Outcome,
        now: i64,
    ) -> PortResult<(crate::ports::RecordedOutcome, bool)> {
        let mut w = self.0.write().unwrap();
        let root = outcome.subject.root_export_arn.clone();
        if let Some(r) = w.outcomes.get(&root) {
            return Ok((r.clone(), false));
        }
        let r = crate::ports::RecordedOutcome {
            outcome: outcome.clone(),
            recorded_at: now,
            published: false,
        };
        w.outcomes.insert(root, r.clone());
        Ok((r, true))
    }
    async fn outcome(
        &self,
        root_export_arn: &str,
    ) -> PortResult<Option<crate::ports::RecordedOutcome>> {
        Ok(self
            .0
            .read()
            .unwrap()
            .outcomes
            .get(root_export_arn)
            .cloned())
    }
    async fn outcome_published(&self, root_export_arn: &str, _now: i64) -> PortResult<()> {
        if let Some(r) = self.0.write().unwrap().outcomes.get_mut(root_export_arn) {
            r.published = true;
        }
        Ok(())
    }
    async fn outcomes_since(
        &self,
        since: i64,
        limit: usize,
    ) -> PortResult<Vec<crate::ports::RecordedOutcome>> {
        let w = self.0.read().unwrap();
        let mut out: Vec<_> = w
            .outcomes
            .values()
            .filter(|r| r.recorded_at >= since)
            .cloned()
            .collect();
        out.sort_by_key(|r| r.recorded_at);
        out.truncate(limit);
        Ok(out)
    }
}

pub struct FakeIam(pub Shared);

#[async_trait]
impl IdentityPolicies for FakeIam {
    async fn role_policies(&self, role_name: &str) -> PortResult<Option<PrincipalPolicies>> {
        denied(&self.0, "iam:GetRole")?;
        Ok(self.0.read().unwrap().roles.get(role_name).cloned())
    }
}
