//! Capabilities the domain needs, in domain vocabulary. Adapters in `aws/`, fakes in `fakes.rs`.
//!
//! Contract shared by every implementation: `Ok(None)` means the service said the thing does not
//! exist (a modeled not-found); access denied, throttling and transport failures are `Err`.
//! Times are epoch seconds. Policies are returned as the JSON text the service stored.

use crate::domain::outcome::{Followed, Outcome};
use crate::error::AwsError;
use crate::model::{
    BucketEncryption, ExportDescription, ExportRequest, ExportSummary, KeyGrant, KeyInfo,
    PatchPurpose, PitrInfo, TableInfo,
};
pub use crate::model::{
    BucketPresence, Lineage, NamedPolicy, PrincipalPolicies, ScpLevel, ScpPath, StartRecord,
};
use async_trait::async_trait;
use std::collections::HashMap;

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
    /// The table's resource policy (GetResourcePolicy); `Ok(None)` when it has none.
    async fn table_policy(&self, table_arn: &str) -> PortResult<Option<String>>;
    /// One page of ListExports (newest first, at most 25), for one table or the whole account.
    async fn list_exports(
        &self,
        table_arn: Option<&str>,
        next_token: Option<String>,
    ) -> PortResult<ExportPage>;
    /// Every table name of the account and region.
    async fn table_names(&self) -> PortResult<Vec<String>>;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportPage {
    pub exports: Vec<ExportSummary>,
    pub next_token: Option<String>,
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
    /// Block Public Access `RestrictPublicBuckets` of the bucket; `Ok(None)` when the bucket
    /// has no public access block configuration.
    async fn restrict_public_buckets(&self, bucket: &str) -> PortResult<Option<bool>>;
}

/// KMS key facts, and the key policy (readable and writable only in the key's account).
#[async_trait]
pub trait KeyPolicyStore: Send + Sync {
    async fn describe_key(&self, key_id: &str) -> PortResult<Option<KeyInfo>>;
    async fn key_policy(&self, key_id: &str) -> PortResult<Option<String>>;
    /// The key's grants (ListGrants; cross-account with the key ARN). `Ok(None)`: no such key.
    async fn grants(&self, key_id: &str) -> PortResult<Option<Vec<KeyGrant>>>;
    /// Replaces the `default` key policy, with KMS's lockout safety check on (never bypassed).
    async fn put_key_policy(&self, key_arn: &str, policy: &str) -> PortResult<()>;
}

/// The organization: its member accounts, and the SCPs on an account's path, where the
/// credentials (ORG_ROLE_ARN's role, else the function's own) may read them.
#[async_trait]
pub trait AccountDirectory: Send + Sync {
    async fn account_ids(&self) -> PortResult<Vec<String>>;
    /// `Ok(None)` when the account is in no organization.
    async fn scp_path(&self, account_id: &str) -> PortResult<Option<ScpPath>>;
}

/// Readers that act inside another account (through the member role).
pub struct AccountReaders {
    pub buckets: Box<dyn BucketInspector>,
    pub keys: Box<dyn KeyPolicyStore>,
}

#[async_trait]
pub trait CrossAccount: Send + Sync {
    /// Assumes `arn:<partition>:iam::<account>:role/<role_name>` and returns readers there.
    async fn readers_in(&self, account_id: &str, role_name: &str) -> PortResult<AccountReaders>;
}

/// Where an incident stands in the ledger (docs/diagnosis.md, the ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentStatus {
    /// A delivery holds the incident until `lease_until`.
    Claimed,
    /// A retry export was started.
    Retried,
    /// Diagnosed; nothing to do automatically.
    NoAction,
    /// Loop protection stopped it (MAX_RETRIES, or a retry failed again with the same cause).
    GaveUp,
    /// An action failed in a way the next delivery can finish (throttling, timeouts).
    Pending,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "CLAIMED",
            Self::Retried => "RETRIED",
            Self::NoAction => "NO_ACTION",
            Self::GaveUp => "GAVE_UP",
            Self::Pending => "PENDING",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Claimed,
            Self::Retried,
            Self::NoAction,
            Self::GaveUp,
            Self::Pending,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One incident (a failed export) in the ledger. Times are epoch seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRecord {
    pub export_arn: String,
    pub status: IncidentStatus,
    pub lease_until: i64,
    pub causes: Vec<String>,
    pub attempt: u32,
    pub root_export_arn: String,
    /// Stored before the retry call so every delivery sends identical parameters.
    pub client_token: Option<String>,
    pub export_time: Option<f64>,
    pub retry_export_arn: Option<String>,
    pub note: Option<String>,
    /// The retry's full parameters, stored with its token before any action (a key-policy
    /// patch, the start): a delivery that takes over an interrupted one can finish it even
    /// when its own diagnosis changed because of our patch.
    pub retry_request: Option<crate::model::ExportRequest>,
    /// The stored retry depends on a key-policy patch of the same plan.
    pub after_patch: bool,
    /// The delivery that holds (or last held) the claim: the Lambda request id of its
    /// invocation. A write whose answer was lost and that the SDK sent again finds its own
    /// token, so it knows the first attempt landed.
    pub owner: Option<String>,
}

impl IncidentStatus {
    /// CLAIMED and PENDING incidents are open: someone must still settle them.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Claimed | Self::Pending)
    }
}

impl IncidentRecord {
    /// A fresh claim on `export_arn` by `owner`, held until `lease_until`.
    pub fn claimed(export_arn: &str, owner: &str, lease_until: i64) -> Self {
        Self {
            owner: Some(owner.to_string()),
            export_arn: export_arn.to_string(),
            status: IncidentStatus::Claimed,
            lease_until,
            causes: Vec::new(),
            attempt: 0,
            root_export_arn: export_arn.to_string(),
            client_token: None,
            export_time: None,
            retry_export_arn: None,
            note: None,
            retry_request: None,
            after_patch: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This delivery holds the incident. `previous` is the record the claim replaced (an
    /// expired or pending earlier claim, or this delivery's own claim when the SDK sent an
    /// applied claim again); its retry token and export time are kept in the record.
    Won { previous: Option<IncidentRecord> },
    /// Another delivery holds it or has settled it.
    Held(IncidentRecord),
}

/// What the sweep knows about an export it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepState {
    InProgress,
    Published,
    /// FAILED longer ago than the look-back (docs/diagnosis.md, "Detection and exactly-once"): counted once, never published.
    TooOld,
}

/// What the ledger holds about one export a sweep listed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepRecord {
    pub state: Option<SweepState>,
    /// Who started it and with what parameters (its CloudTrail start event), if recorded.
    pub start: Option<StartRecord>,
    /// Its incident is in the ledger (claimed, given back or settled): a delivery reached it,
    /// and from there the open listing and the sweep's takeover carry it. Publishing its
    /// failure again would only be reported "already handled".
    pub handled: bool,
}

/// Where the sweep stands, read at its start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepMarks {
    /// Table ARN -> its high-water mark: an export ARN such that it and every older export of
    /// the table were terminal (and, if FAILED, published or too old) when seen.
    pub marks: HashMap<String, String>,
    /// The table where an unfinished sweep stopped, if one did.
    pub cursor: Option<String>,
    /// Followed retries not yet ended (`Ledger::add_following`), read in the same batch.
    pub following: i64,
}

/// One of the sweep's ledger writes. None needs a condition: PUBLISHED and a mark past a failure
/// are written only after its event was accepted, so a write lost before it lands only means
/// the failure is published again (at least once), and the remediation's conditional claim
/// turns that into one action.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepWrite {
    State {
        export_arn: String,
        state: SweepState,
    },
    Mark {
        table_arn: String,
        export_arn: String,
    },
    /// `Some`: the table where this sweep stopped; `None`: clears it.
    Cursor(Option<String>),
}

/// Where a key-policy change stands (docs/safety.md, "Key-policy patch").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    /// Recorded before the write (INTENDED): the write may or may not have happened.
    Pending,
    Applied,
    /// PutKeyPolicy refused; nothing changed.
    Failed,
    /// Someone else changed the policy around our write; we did not overwrite it.
    Conflict,
    /// A rollback holds the change.
    RollingBack,
    RolledBack,
}

impl ChangeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Applied => "APPLIED",
            Self::Failed => "FAILED",
            Self::Conflict => "CONFLICT",
            Self::RollingBack => "ROLLING_BACK",
            Self::RolledBack => "ROLLED_BACK",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Applied,
            Self::Failed,
            Self::Conflict,
            Self::RollingBack,
            Self::RolledBack,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// The audit record of one key-policy change: enough to explain it and to undo it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPolicyChange {
    pub change_id: String,
    pub key_arn: String,
    pub purpose: PatchPurpose,
    pub sid: String,
    pub grantees: Vec<String>,
    /// The policy text as read before the change, and as written.
    pub before: String,
    pub after: String,
    pub status: ChangeStatus,
    /// The export whose diagnosis asked for it, and the causes it fixes.
    pub export_arn: Option<String>,
    pub causes: Vec<String>,
    /// Who made the change (the function's principal).
    pub actor: String,
    pub created_at: i64,
    pub note: Option<String>,
}

/// The ledger: conditional writes make duplicate deliveries act once.
///
/// Every conditional write recognises itself: when a write landed but its answer was lost and
/// the SDK sent it again, the second attempt meets its own effect (the owner token, the same
/// change id or status) and reports success, never "someone else".
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Claims the incident of `export_arn` for `owner` until `now + lease_secs`: when no one
    /// holds it, when it is PENDING, when the holder's lease has run out, or when `owner`
    /// already holds it. Else `Held` with the holder's or the settled record (whose open
    /// listing is then removed). The caller lists the incident as open (`list_open`) before
    /// the claim can land, so the sweep finds it if its owner never settles.
    async fn claim(
        &self,
        export_arn: &str,
        owner: &str,
        now: i64,
        lease_secs: i64,
    ) -> PortResult<Claim>;
    /// Writes the incident's state while `record.owner` still holds it; `Ok(false)` when
    /// another delivery has taken it over (nothing written). A final status takes the incident
    /// off the open list; PENDING keeps it there, due now.
    async fn settle(&self, record: &IncidentRecord, now: i64) -> PortResult<bool>;
    /// Open incidents whose lease ran out (or that are PENDING, or were listed but never
    /// claimed), at most `limit`, read without a table scan. Listings of settled incidents
    /// met on the way are removed.
    async fn open_incidents_due(&self, now: i64, limit: usize) -> PortResult<Vec<String>>;
    /// Lists an incident as open, due for the sweep at `due_at` (a repeatable put): a delivery
    /// whose reads failed before it could claim leaves it for the sweep.
    async fn list_open(&self, export_arn: &str, due_at: i64, now: i64) -> PortResult<()>;
    /// Takes an incident off the open list (the sweep, for one it can never handle).
    async fn unlist_open(&self, export_arn: &str) -> PortResult<()>;
    async fn lineage(&self, export_arn: &str) -> PortResult<Option<Lineage>>;
    async fn record_lineage(
        &self,
        retry_export_arn: &str,
        lineage: &Lineage,
        now: i64,
    ) -> PortResult<()>;
    async fn record_start(&self, export_arn: &str, start: &StartRecord, now: i64)
        -> PortResult<()>;
    async fn start_record(&self, export_arn: &str) -> PortResult<Option<StartRecord>>;
    /// Batched: what the ledger holds about each of these exports (its sweep state and its START
    /// record), for the exports it knows.
    async fn sweep_records(
        &self,
        export_arns: &[String],
    ) -> PortResult<HashMap<String, SweepRecord>>;
    /// Batched: the high-water marks of these tables and the cursor, in one read.
    async fn sweep_marks(&self, table_arns: &[String]) -> PortResult<SweepMarks>;
    /// Batched, unconditional writes (last one wins per record). All are written or it is an
    /// error: none is dropped without one.
    async fn sweep_writes(&self, writes: &[SweepWrite], now: i64) -> PortResult<()>;
    /// Writes a new change record (refused if another change has the id; a resend of this
    /// very record is not refused). Change records never expire.
    async fn record_change(&self, change: &KeyPolicyChange, now: i64) -> PortResult<()>;
    async fn key_change(&self, change_id: &str) -> PortResult<Option<KeyPolicyChange>>;
    /// Moves a change from `from` to `to`; `Ok(false)` when it was not in `from` (and is not
    /// already in `to` with this note: a resent move that landed is `Ok(true)`).
    async fn set_change_status(
        &self,
        change_id: &str,
        from: ChangeStatus,
        to: ChangeStatus,
        note: Option<&str>,
        now: i64,
    ) -> PortResult<bool>;
    // Organization mode: exports seen starting, described until they end (the in-flight
    // poller), and the safety-net sweep's progress.
    /// Tracks (or re-schedules) an export to describe at `next_check_at`.
    async fn track_in_flight(
        &self,
        export_arn: &str,
        next_check_at: i64,
        checks: u32,
        now: i64,
    ) -> PortResult<()>;
    /// Tracked exports whose check is due, at most `limit`.
    async fn in_flight_due(&self, now: i64, limit: usize) -> PortResult<Vec<InFlight>>;
    async fn untrack_in_flight(&self, export_arn: &str) -> PortResult<()>;
    /// A named number (the safety net's last swept slot).
    async fn marker(&self, name: &str) -> PortResult<Option<i64>>;
    async fn set_marker(&self, name: &str, value: i64, now: i64) -> PortResult<()>;
    // Outcomes (every mode): the retries the function follows until they end, and each
    // incident's one outcome, recorded before it is published.
    /// Records a retry to follow; kept without expiry while the incident is open.
    async fn record_followed(&self, followed: &Followed, now: i64) -> PortResult<()>;
    async fn followed(&self, retry_export_arn: &str) -> PortResult<Option<Followed>>;
    /// Marks a followed retry ended (its outcome decided, or its failure a new incident);
    /// `Ok(true)` for the one call that ended it.
    async fn end_followed(&self, retry_export_arn: &str, now: i64) -> PortResult<bool>;
    /// Adds `delta` to the count of followed retries not yet ended (read by `sweep_marks`):
    /// the single-account sweep polls the in-flight partition only while it is above zero.
    async fn add_following(&self, delta: i64, now: i64) -> PortResult<()>;
    /// Records the incident's outcome unless one is recorded for its root export already;
    /// returns the recorded one (this or the earlier) and whether it was this call's.
    async fn record_outcome(
        &self,
        outcome: &Outcome,
        now: i64,
    ) -> PortResult<(RecordedOutcome, bool)>;
    async fn outcome(&self, root_export_arn: &str) -> PortResult<Option<RecordedOutcome>>;
    /// Marks the outcome published (the bus accepted its event).
    async fn outcome_published(&self, root_export_arn: &str, now: i64) -> PortResult<()>;
    /// Outcomes recorded at or after `since`, oldest first, at most `limit`.
    async fn outcomes_since(&self, since: i64, limit: usize) -> PortResult<Vec<RecordedOutcome>>;
}

/// An incident's outcome as the ledger holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedOutcome {
    pub outcome: Outcome,
    pub recorded_at: i64,
    /// The bus accepted its event; until then every run that meets it publishes it again.
    pub published: bool,
}

/// An export the in-flight poller describes until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub export_arn: String,
    /// How often it was described IN_PROGRESS already (the back-off grows with it).
    pub checks: u32,
}

/// An event to put on the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEvent {
    pub source: String,
    pub detail_type: String,
    pub detail: serde_json::Value,
    pub resources: Vec<String>,
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Puts the events (batched by the adapter); one bool per event: was it accepted.
    async fn publish(&self, events: &[OutboundEvent]) -> PortResult<Vec<bool>>;
}

/// The function's own identity (for the account id and the loop guard).
#[async_trait]
pub trait Identity: Send + Sync {
    /// `(account id, caller ARN)` of the function's credentials.
    async fn whoami(&self) -> PortResult<(String, String)>;
}

/// IAM reads in the function's account. Documents are returned decoded (IAM URL-encodes them).
#[async_trait]
pub trait IdentityPolicies: Send + Sync {
    /// `Ok(None)` when the role does not exist.
    async fn role_policies(&self, role_name: &str) -> PortResult<Option<PrincipalPolicies>>;
}

/// Time, as a port: the domain reads the time and waits only through it, so that tests can
/// pause it (`#[tokio::test(start_paused = true)]`) instead of waiting.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Epoch seconds.
    fn now(&self) -> i64;
    async fn sleep(&self, duration: std::time::Duration);
}

/// The ports that read and act in one account and Region: the incident's, in organization mode.
pub struct SitePorts {
    pub exports: Box<dyn ExportService>,
    pub buckets: Box<dyn BucketInspector>,
    pub keys: Box<dyn KeyPolicyStore>,
    pub iam: Box<dyn IdentityPolicies>,
    pub identity: Box<dyn Identity>,
    /// Readers in third accounts (bucket owner, key account), with clients in this Region.
    pub cross: Box<dyn CrossAccount>,
    /// The spoke role the ports act as; `None` in the hub's own account.
    pub role_arn: Option<String>,
}

/// Organization mode: ports in any account and Region of the organization.
#[async_trait]
pub trait Spokes: Send + Sync {
    /// Ports in `region` of `account`, through the spoke role there (sessions are cached).
    /// `Err`: the role could not be assumed; the error names `sts:AssumeRole`.
    async fn site(&self, account: &str, region: &str) -> PortResult<SitePorts>;
    /// The spoke role's ARN in `account` (named in reports, also when it cannot be assumed).
    fn role_arn(&self, account: &str) -> String;
}
