//! PATCH_KEY_POLICY and its rollback, the effectful part (docs/safety.md, "Key-policy patch"): in the key's
//! account, audited in the ledger before the write, read back after it, never overwriting a
//! change someone else made.

use super::Actor;
use crate::arn::{account_of, partition_of};
use crate::domain::key_patch::{holds_what_we_wrote, merge, principal_of, same_policy};
use crate::domain::report::{ActError, PatchOutcome, RollbackOutcome, RollbackStep};
use crate::error::{AwsError, AwsErrorKind, Error};
use crate::model::{KeyPatch, Mode, PatchPurpose};
use crate::ports::{AccountReaders, ChangeStatus, KeyPolicyChange, KeyPolicyStore, Ledger};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// KMS is eventually consistent: a read right after PutKeyPolicy may return the old policy.
const READ_BACK_DELAYS_MS: [u64; 6] = [0, 250, 500, 1_000, 2_000, 4_000];

/// The key store of the key's account: ours, or the member role's there.
enum Store<'a> {
    Home(&'a dyn KeyPolicyStore),
    Member(AccountReaders),
}

impl Store<'_> {
    fn get(&self) -> &dyn KeyPolicyStore {
        match self {
            Store::Home(s) => *s,
            Store::Member(r) => r.keys.as_ref(),
        }
    }
}

enum ReadBack {
    /// The policy now is the one we wrote.
    Ours,
    /// What we wrote, with statements someone else only added (typically another incident's
    /// patch of the same key, made after it read ours): our change is in place, nothing of the
    /// policy before is gone.
    OursAmongAdded,
    /// Still the policy from before the write after every poll (not yet visible).
    Stale,
    /// Neither: someone else changed it.
    Other,
    Unreadable(String),
}

/// PutKeyPolicy replaces the whole document and takes no condition ("Attaches a key policy to
/// the specified KMS key"; no version or precondition parameter; "The KMS API follows an
/// eventual consistency model": *PutKeyPolicy*, AWS KMS API Reference,
/// https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html), so two
/// incidents patching one key race; the read-back tells an added statement from a lost one.
/// The emulator (moto) applies each put at once and cannot show KMS's delayed visibility; the
/// fakes model both stale reads and a write landing right after ours.
///
/// The key policy changed under us in a way that is not just statements added. Nothing is
/// overwritten; the incident is not final: it stays PENDING, so the sweep handles it again and
/// diagnoses it on the policy as it is then (the merge keeps every statement but ours).
const CONFLICT_NOTE: &str = "the key policy changed concurrently (a statement of the policy read, or ours, is missing or different): not overwritten; the incident stays PENDING and is diagnosed again on the key's policy as it is then";

fn conflict() -> ActError {
    ActError {
        error_type: "ConcurrentKeyPolicyChange",
        message: CONFLICT_NOTE.to_string(),
        retryable: true,
    }
}

fn refused(error_type: &'static str, message: String) -> ActError {
    ActError {
        error_type,
        message,
        retryable: false,
    }
}

/// A failed AWS call: throttling and transport failures may pass on the next delivery.
fn aws_failed(e: &AwsError) -> ActError {
    let mut message = e.reason();
    // Display only: the hint reads the service's message, the decision does not.
    if e.message.contains("MalformedPolicyDocument") {
        message.push_str(
            " (KMS refuses a policy naming a principal that does not exist: check the grantee)",
        );
    }
    ActError {
        error_type: if e.kind == AwsErrorKind::AccessDenied {
            "AccessDenied"
        } else {
            "UpstreamError"
        },
        message,
        retryable: matches!(e.kind, AwsErrorKind::Throttled | AwsErrorKind::Other),
    }
}

/// The change's id, from what it is: the key, the incident that asks for it, and the policy
/// before and after. A delivery that takes over an interrupted one (killed after writing the
/// audit record, before or after PutKeyPolicy) computes the same id, so it resumes that record
/// instead of adding a second one for the same change.
fn change_id(key_arn: &str, export_arn: Option<&str>, before: &str, after: &str) -> String {
    let export = export_arn.unwrap_or_default();
    let digest = Sha256::digest(format!("{key_arn}\n{export}\n{before}\n{after}").as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("kpc-{hex}")
}

impl Actor<'_> {
    /// The function's account and principal (cached by the adapter).
    async fn me(&self) -> Result<(String, String), AwsError> {
        self.identity.whoami().await
    }

    async fn key_store(&self, key_arn: &str) -> Result<Store<'_>, String> {
        let key_account =
            account_of(key_arn).ok_or_else(|| format!("{key_arn} is not a key ARN"))?;
        let (home, _) = self.me().await.map_err(|e| e.reason())?;
        if key_account == home {
            return Ok(Store::Home(self.keys));
        }
        let role = self.config.member_role_name.as_deref().ok_or_else(|| {
            format!(
                "the key is in account {key_account} and MEMBER_ROLE_NAME is not set: a key policy is changed only from the key's account"
            )
        })?;
        self.cross
            .readers_in(&key_account, role)
            .await
            .map(Store::Member)
            .map_err(|e| {
                format!(
                    "cannot act in the key's account {key_account}: {}",
                    e.reason()
                )
            })
    }

    /// Polls until the policy reads as `wrote`; `previous` is what it was before the write.
    /// With `added_sid` (a patch adding that statement), a policy holding what we wrote plus
    /// statements others added also counts; a rollback passes None and wants its exact policy.
    async fn read_back(
        &self,
        store: &dyn KeyPolicyStore,
        key_arn: &str,
        wrote: &str,
        previous: &str,
        added_sid: Option<&str>,
    ) -> ReadBack {
        let mut last = ReadBack::Stale;
        for delay in READ_BACK_DELAYS_MS {
            self.clock.sleep(Duration::from_millis(delay)).await;
            last = match store.key_policy(key_arn).await {
                Ok(Some(now)) if same_policy(&now, wrote) => return ReadBack::Ours,
                Ok(Some(now))
                    if added_sid.is_some_and(|sid| holds_what_we_wrote(&now, wrote, sid)) =>
                {
                    return ReadBack::OursAmongAdded
                }
                Ok(Some(now)) if same_policy(&now, previous) => ReadBack::Stale,
                Ok(Some(_)) => return ReadBack::Other,
                Ok(None) => ReadBack::Unreadable("the key is gone".into()),
                Err(e) => ReadBack::Unreadable(e.reason()),
            };
        }
        last
    }

    /// The principals this deployment may name for the patch's purpose.
    fn allowed_grantees(&self, patch: &KeyPatch) -> Vec<String> {
        match patch.purpose {
            // The exporter came from the ledger, CloudTrail or a role/user ARN in the message.
            PatchPurpose::Exporter => patch.grantees.clone(),
            PatchPurpose::ConsumerDecrypt => {
                let partition = crate::arn::Arn::parse("keyArn", &patch.key_arn)
                    .map(|a| a.partition)
                    .unwrap_or_else(|_| partition_of(self.region).to_string());
                self.config
                    .decrypt_principals
                    .iter()
                    .map(|p| principal_of(p, &partition))
                    .collect()
            }
        }
    }

    /// Adds the patch's statement (docs/safety.md, "Key-policy patch"). The audit record is written before the key
    /// policy, so no change exists without one.
    pub(in crate::domain) async fn patch_key_policy(
        &self,
        ledger: &dyn Ledger,
        patch: &KeyPatch,
        export_arn: Option<&str>,
        causes: &[String],
    ) -> PatchOutcome {
        let fail = |change_id: Option<&str>, error: ActError| PatchOutcome::Failed {
            key_arn: patch.key_arn.clone(),
            sid: patch.sid.clone(),
            change_id: change_id.map(str::to_string),
            error,
        };
        let store = match self.key_store(&patch.key_arn).await {
            Ok(s) => s,
            Err(why) => return fail(None, refused("NotAvailable", why)),
        };
        let before = match store.get().key_policy(&patch.key_arn).await {
            Ok(Some(p)) => p,
            Ok(None) => return fail(None, refused("NotFound", "the key does not exist".into())),
            Err(e) => return fail(None, aws_failed(&e)),
        };
        let merged = match merge(&before, patch, &self.allowed_grantees(patch)) {
            Ok(m) => m,
            Err(e) => return fail(None, refused("KeyPolicyPatchRefused", e.to_string())),
        };
        if !merged.changed {
            return PatchOutcome::AlreadyPresent {
                key_arn: patch.key_arn.clone(),
                sid: patch.sid.clone(),
            };
        }
        let actor = self.me().await.map(|(_, arn)| arn).unwrap_or_default();
        let at = self.clock.now();
        let mut change = KeyPolicyChange {
            change_id: change_id(&patch.key_arn, export_arn, &before, &merged.after),
            key_arn: patch.key_arn.clone(),
            purpose: patch.purpose,
            sid: patch.sid.clone(),
            grantees: patch.grantees.clone(),
            before: before.clone(),
            after: merged.after.clone(),
            status: ChangeStatus::Pending,
            export_arn: export_arn.map(str::to_string),
            causes: causes.to_vec(),
            actor,
            created_at: at,
            note: None,
        };
        if let Err(e) = ledger.record_change(&change, at).await {
            return fail(None, aws_failed(&e));
        }
        let id = change.change_id.clone();
        // The write, and what a failed answer means: a refusal changed nothing; a transient
        // failure (5xx, timeout, reset) may hide a write that landed, so the policy is read
        // back, never changed a second, different way.
        let mut answer_lost = false;
        if let Err(e) = store
            .get()
            .put_key_policy(&patch.key_arn, &merged.after)
            .await
        {
            if !e.is_transient() {
                let note = format!("PutKeyPolicy failed: {}", e.reason());
                self.set_status(
                    ledger,
                    &id,
                    ChangeStatus::Pending,
                    ChangeStatus::Failed,
                    &note,
                )
                .await;
                return fail(Some(&id), aws_failed(&e));
            }
            answer_lost = true;
            match self
                .read_back(
                    store.get(),
                    &patch.key_arn,
                    &merged.after,
                    &before,
                    Some(&patch.sid),
                )
                .await
            {
                // It landed: go on as after a clean answer.
                ReadBack::Ours | ReadBack::OursAmongAdded => {}
                // Still the policy from before: the same write (same audit record), once more.
                ReadBack::Stale => {
                    if let Err(again) = store
                        .get()
                        .put_key_policy(&patch.key_arn, &merged.after)
                        .await
                    {
                        // Unresolved: the record stays PENDING (the write may have landed),
                        // and the incident is left for a later delivery, which reads the policy.
                        let note = format!(
                            "PutKeyPolicy answered twice with a failure ({}); whether it landed is unknown until the policy is read",
                            again.reason()
                        );
                        self.set_status(
                            ledger,
                            &id,
                            ChangeStatus::Pending,
                            ChangeStatus::Pending,
                            &note,
                        )
                        .await;
                        return fail(Some(&id), aws_failed(&again));
                    }
                }
                ReadBack::Other => {
                    self.set_status(
                        ledger,
                        &id,
                        ChangeStatus::Pending,
                        ChangeStatus::Conflict,
                        CONFLICT_NOTE,
                    )
                    .await;
                    return fail(Some(&id), conflict());
                }
                ReadBack::Unreadable(why) => {
                    let note = format!(
                        "PutKeyPolicy's answer was lost ({}) and the policy could not be read back ({why}): whether it landed is unknown",
                        e.reason()
                    );
                    self.set_status(
                        ledger,
                        &id,
                        ChangeStatus::Pending,
                        ChangeStatus::Pending,
                        &note,
                    )
                    .await;
                    return fail(Some(&id), aws_failed(&e));
                }
            }
        }
        tracing::info!(key_arn = %patch.key_arn, change_id = %id, sid = %patch.sid, answer_lost, "key policy patched");
        let (status, confirmed, note) = match self
            .read_back(
                store.get(),
                &patch.key_arn,
                &merged.after,
                &before,
                Some(&patch.sid),
            )
            .await
        {
            ReadBack::Ours => (ChangeStatus::Applied, true, None),
            ReadBack::OursAmongAdded => (
                ChangeStatus::Applied,
                true,
                Some("applied and read back, with statements another writer added since (our statement and every statement of the policy before are in place)".to_string()),
            ),
            ReadBack::Stale => (
                ChangeStatus::Applied,
                false,
                Some("written; the read-back still showed the previous policy (KMS applies changes eventually)".to_string()),
            ),
            ReadBack::Unreadable(why) => (
                ChangeStatus::Applied,
                false,
                Some(format!("written; could not read it back: {why}")),
            ),
            ReadBack::Other => (ChangeStatus::Conflict, false, Some(CONFLICT_NOTE.to_string())),
        };
        change.status = status;
        self.set_status(
            ledger,
            &id,
            ChangeStatus::Pending,
            status,
            note.as_deref().unwrap_or("applied and read back"),
        )
        .await;
        if status == ChangeStatus::Conflict {
            return fail(Some(&id), conflict());
        }
        PatchOutcome::Patched {
            key_arn: patch.key_arn.clone(),
            sid: patch.sid.clone(),
            change_id: id,
            purpose: patch.purpose,
            grantees: patch.grantees.clone(),
            confirmed,
            note,
        }
    }

    async fn set_status(
        &self,
        ledger: &dyn Ledger,
        id: &str,
        from: ChangeStatus,
        to: ChangeStatus,
        note: &str,
    ) -> bool {
        match ledger
            .set_change_status(id, from, to, Some(note), self.clock.now())
            .await
        {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!(change_id = %id, error.message = %e.reason(), "could not update the change record");
                false
            }
        }
    }

    pub(in crate::domain) async fn rollback_change(
        &self,
        ledger: &dyn Ledger,
        change: &KeyPolicyChange,
    ) -> Result<(RollbackOutcome, String, Option<RollbackStep>), Error> {
        use RollbackOutcome::*;
        match change.status {
            ChangeStatus::RolledBack => {
                return Ok((NothingToDo, "rolled back before".into(), None));
            }
            ChangeStatus::Failed => {
                return Ok((NothingToDo, "the change was never applied".into(), None));
            }
            ChangeStatus::RollingBack => {
                return Ok((
                    Failed,
                    "another rollback of this change is under way".into(),
                    None,
                ));
            }
            _ => {}
        }
        let store = self
            .key_store(&change.key_arn)
            .await
            .map_err(Error::NotAvailable)?;
        let current = store
            .get()
            .key_policy(&change.key_arn)
            .await?
            .ok_or_else(|| Error::NotAvailable(format!("the key {} is gone", change.key_arn)))?;
        if same_policy(&current, &change.before) {
            return Ok((
                NothingToDo,
                "the key policy already is the policy from before the change".into(),
                None,
            ));
        }
        if !same_policy(&current, &change.after) {
            return Ok((
                RefusedDrift,
                format!(
                    "the key policy changed after this function wrote it ({} bytes now, {} written): nothing changed; the before-policy is in the ledger record CHANGE#{}",
                    current.len(),
                    change.after.len(),
                    change.change_id
                ),
                None,
            ));
        }
        if self.config.mode != Mode::Apply {
            return Ok((
                WouldRestore,
                format!(
                    "mode is {:?}: apply would restore the before-policy",
                    self.config.mode
                ),
                None,
            ));
        }
        if !self
            .set_status(
                ledger,
                &change.change_id,
                change.status,
                ChangeStatus::RollingBack,
                "rollback started",
            )
            .await
        {
            return Ok((
                Failed,
                "the change record moved under us; try again".into(),
                None,
            ));
        }
        if let Err(e) = store
            .get()
            .put_key_policy(&change.key_arn, &change.before)
            .await
        {
            let note = format!("rollback failed: {}", e.reason());
            self.set_status(
                ledger,
                &change.change_id,
                ChangeStatus::RollingBack,
                change.status,
                &note,
            )
            .await;
            let step = RollbackStep::Failed {
                key_arn: change.key_arn.clone(),
                change_id: change.change_id.clone(),
                error: aws_failed(&e),
            };
            return Ok((Failed, note, Some(step)));
        }
        let confirmed = matches!(
            self.read_back(
                store.get(),
                &change.key_arn,
                &change.before,
                &change.after,
                None
            )
            .await,
            ReadBack::Ours
        );
        self.set_status(
            ledger,
            &change.change_id,
            ChangeStatus::RollingBack,
            ChangeStatus::RolledBack,
            "rolled back",
        )
        .await;
        tracing::info!(key_arn = %change.key_arn, change_id = %change.change_id, "key policy rolled back");
        Ok((
            Restored,
            "the key policy is the one from before the change".into(),
            Some(RollbackStep::Restored {
                key_arn: change.key_arn.clone(),
                change_id: change.change_id.clone(),
                confirmed,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::domain::report::{AppliedStatus, RemediationResult};
    use crate::fakes::*;
    use crate::model::{Cause, ExportStatus, SseAlgorithm};
    use crate::ports::StartRecord;
    use serde_json::{json, Value};

    const EXPORTER: &str = "arn:aws:iam::111122223333:role/DataPipeline";
    const BUCKET: &str = "exports-bucket";

    fn key_policy(remediator_allowed: bool) -> String {
        let mut statements = vec![json!({"Sid": "KeyAdmins", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"},
            "Action": "kms:*", "Resource": "*"})];
        if remediator_allowed {
            statements.push(json!({"Sid": "Remediator", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:role/remediator"},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}));
        }
        serde_json::to_string_pretty(&json!({"Version": "2012-10-17", "Statement": statements}))
            .unwrap()
    }

    fn key(arn: &str, policy: String) -> FakeKey {
        FakeKey {
            info: crate::model::KeyInfo {
                arn: arn.into(),
                state: "Enabled".into(),
                manager: "CUSTOMER".into(),
                usage: "ENCRYPT_DECRYPT".into(),
                spec: "SYMMETRIC_DEFAULT".into(),
            },
            policy,
            grants: Vec::new(),
        }
    }

    /// GIVEN an SSE-KMS export started by DataPipeline (the ledger saw it start) that failed
    /// because the key policy names neither it nor the account.
    fn world(key_arn: &str, remediator_allowed: bool) -> Shared {
        let world = world_with_table();
        {
            let mut w = world.write().unwrap();
            w.buckets
                .insert(BUCKET.into(), FakeBucket::owned_by(TABLE_ACCOUNT));
            w.keys
                .insert(key_arn.into(), key(key_arn, key_policy(remediator_allowed)));
            let mut req = request(BUCKET);
            req.s3_sse_algorithm = Some(SseAlgorithm::Kms);
            req.s3_sse_kms_key_id = Some(key_arn.into());
            w.exports.push(failed_export(
                req,
                "S3AccessDenied",
                &format!("User: arn:aws:iam::111122223333:root is not authorized to perform: kms:GenerateDataKey on resource: {key_arn} because no resource-based policy allows the kms:GenerateDataKey action"),
            ));
            w.starts.insert(
                EXPORT_ARN.into(),
                StartRecord {
                    caller: Some(EXPORTER.into()),
                    request: None,
                },
            );
        }
        world
    }

    fn config(patch: bool, mode: Mode) -> Config {
        Config {
            mode,
            key_policy_patch: patch,
            ledger_table_name: Some("ledger".into()),
            member_role_name: Some("DdbExportRemediatorMember".into()),
            ..Config::default()
        }
    }

    fn policy_of(world: &Shared, key_arn: &str) -> String {
        world.read().unwrap().keys[key_arn].policy.clone()
    }

    async fn deliver(world: &Shared, cfg: Config) -> RemediationResult {
        app(world, cfg)
            .handle(&json!({"exportArn": EXPORT_ARN}), None)
            .await
            .unwrap()
    }

    async fn rollback(world: &Shared, cfg: Config, id: &str) -> RemediationResult {
        app(world, cfg)
            .handle(&json!({"rollback": {"changeId": id}}), None)
            .await
            .unwrap()
    }

    fn change_id_of(result: &RemediationResult) -> String {
        result.applied[0].result["changeId"]
            .as_str()
            .unwrap_or_else(|| panic!("{:?}", result.applied))
            .to_string()
    }

    #[tokio::test(start_paused = true)]
    async fn patch_on_adds_the_exporter_statement_records_the_change_and_retries() {
        let world = world(KEY_ARN, true);
        let before = policy_of(&world, KEY_ARN);
        let result = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(result.findings[0].cause, Cause::KmsKeyPolicyDeniesExporter);
        let actions: Vec<_> = result
            .applied
            .iter()
            .map(|a| (a.action, a.status))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("PATCH_KEY_POLICY", AppliedStatus::Done),
                ("RETRY_EXPORT", AppliedStatus::Done)
            ]
        );
        assert_eq!(result.applied[0].result["confirmed"], true);
        let after = policy_of(&world, KEY_ARN);
        let doc: Value = serde_json::from_str(&after).unwrap();
        let ours = &doc["Statement"][2];
        assert_eq!(ours["Principal"]["AWS"], EXPORTER);
        assert!(ours["Sid"]
            .as_str()
            .unwrap()
            .starts_with("DdbExportRemediatorExporter-"));
        let id = change_id_of(&result);
        let change = world.read().unwrap().changes[&id].clone();
        assert_eq!(
            (change.before.as_str(), change.after.as_str()),
            (before.as_str(), after.as_str())
        );
        assert_eq!(change.status, ChangeStatus::Applied);
        assert_eq!(change.export_arn.as_deref(), Some(EXPORT_ARN));
        assert_eq!(change.causes, vec!["KMS_KEY_POLICY_DENIES_EXPORTER"]);
        assert!(change.actor.contains("remediator"));
        assert_eq!(world.read().unwrap().started.len(), 1);
        // The plan shows the patch with its statement.
        assert_eq!(result.plan[0]["action"], "PATCH_KEY_POLICY");
        assert_eq!(result.plan[0]["statement"], *ours);
    }

    #[tokio::test(start_paused = true)]
    async fn a_put_whose_answer_was_lost_is_read_back_and_counted_once() {
        let world = world(KEY_ARN, true);
        world.write().unwrap().lost_answers.push("kms:PutKeyPolicy");
        let result = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(result.applied[0].status, AppliedStatus::Done);
        assert_eq!(result.applied[1].status, AppliedStatus::Done);
        let w = world.read().unwrap();
        // One write (the read-back showed ours), one audit record, APPLIED; one retry.
        assert_eq!(w.key_puts.len(), 2, "the before-policy and one put");
        assert_eq!(w.changes.len(), 1);
        assert!(w
            .changes
            .values()
            .all(|c| c.status == ChangeStatus::Applied));
        assert_eq!(w.started.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_put_that_failed_transiently_before_landing_is_sent_once_more_unchanged() {
        let world = world(KEY_ARN, true);
        world.write().unwrap().fail_key_put = Some(
            AwsError::new("kms:PutKeyPolicy", AwsErrorKind::Other, "connection reset").transient(),
        );
        let result = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(result.applied[0].status, AppliedStatus::Done);
        let w = world.read().unwrap();
        assert_eq!(w.changes.len(), 1);
        let change = w.changes.values().next().unwrap();
        assert_eq!(change.status, ChangeStatus::Applied);
        assert_eq!(w.keys[KEY_ARN].policy, change.after);
        assert_eq!(w.started.len(), 1);
    }

    /// SIGKILL right after the patch landed (before its record is settled and before the
    /// retry): after the lease the sweep finishes it with one retry and no second change.
    #[tokio::test(start_paused = true)]
    async fn a_delivery_killed_after_the_patch_ends_in_one_audited_change_and_one_retry() {
        let world = world(KEY_ARN, true);
        world.write().unwrap().crash_after.push("kms:PutKeyPolicy");
        let clock = std::sync::Arc::new(OffsetClock::default());
        let mut app = app(&world, config(true, Mode::Apply));
        app.clock = clock.clone();
        let killed = tokio::time::timeout(
            Duration::from_secs(600),
            app.handle_as(&json!({"exportArn": EXPORT_ARN}), None, Some("req-1")),
        )
        .await;
        assert!(killed.is_err());
        {
            let w = world.read().unwrap();
            assert_eq!(w.changes.len(), 1, "audited before the write");
            assert!(w.started.is_empty());
        }
        clock.advance(i64::from(Config::default().claim_lease_seconds) + 1);
        let sweep = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        let swept = app.handle_as(&sweep, None, Some("sweep-1")).await.unwrap();
        assert_eq!(swept.sweep.unwrap().taken_over, [EXPORT_ARN]);
        let w = world.read().unwrap();
        assert_eq!(w.changes.len(), 1, "no second change");
        assert_eq!(w.key_puts.len(), 2, "the before-policy and one put");
        assert_eq!(w.started.len(), 1, "exactly one retry");
    }

    /// Fixed-seed fault schedules around a key-policy patch: lost and failed PutKeyPolicy
    /// answers, resent ledger writes and kills at every step; three deliveries, Lambda's
    /// retries, then sweeps after the lease. Each ends with one audited change (APPLIED or, when
    /// the process died between the write and the record's settle, still PENDING, never
    /// missing), the policy written once, and one retry.
    #[tokio::test(start_paused = true)]
    async fn random_fault_schedules_around_a_patch_make_one_audited_change_and_one_retry() {
        const SEED: u64 = 24;
        const SCHEDULES: usize = 200;
        let mut state = SEED;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as usize) % n
        };
        let crashes: [(&str, bool); 6] = [
            ("ledger:RecordKeyPolicyChange", false),
            ("ledger:RecordKeyPolicyChange", true),
            ("kms:PutKeyPolicy", false),
            ("kms:PutKeyPolicy", true),
            ("ledger:SetKeyPolicyChangeStatus", false),
            ("dynamodb:ExportTableToPointInTime", true),
        ];
        let lease = i64::from(Config::default().claim_lease_seconds);
        let sweep = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        for schedule in 0..SCHEDULES {
            let world = world(KEY_ARN, true);
            {
                let mut w = world.write().unwrap();
                for op in [
                    "ledger:RecordKeyPolicyChange",
                    "ledger:SetKeyPolicyChangeStatus",
                    "ledger:ClaimIncident",
                ] {
                    if next(3) == 0 {
                        w.replay_writes.push(op);
                    }
                }
                match next(4) {
                    0 => w.lost_answers.push("kms:PutKeyPolicy"),
                    1 => {
                        w.fail_key_put = Some(
                            AwsError::new("kms:PutKeyPolicy", AwsErrorKind::Other, "reset")
                                .transient(),
                        )
                    }
                    _ => {}
                }
                if next(2) == 0 {
                    let (op, after) = crashes[next(crashes.len())];
                    match after {
                        true => w.crash_after.push(op),
                        false => w.crash_before.push(op),
                    }
                }
            }
            let clock = std::sync::Arc::new(OffsetClock::default());
            let mut app = app(&world, config(true, Mode::Apply));
            app.clock = clock.clone();
            for delivery in 0..3 {
                for _attempt in 0..3 {
                    let owner = format!("req-{delivery}");
                    let event = json!({"exportArn": EXPORT_ARN});
                    let run = app.handle_as(&event, None, Some(&owner));
                    match tokio::time::timeout(Duration::from_secs(600), run).await {
                        Err(_) | Ok(Ok(_)) => break,
                        Ok(Err(e)) => assert!(e.is_transient(), "schedule {schedule}: {e:?}"),
                    }
                }
            }
            for sweeps in 1..=3 {
                if world.read().unwrap().started.len() == 1 {
                    break;
                }
                clock.advance(lease + 1);
                app.handle_as(&sweep, None, Some(&format!("sweep-{sweeps}")))
                    .await
                    .unwrap();
            }
            let w = world.read().unwrap();
            assert_eq!(w.started.len(), 1, "schedule {schedule}: {:?}", w.ledger);
            assert_eq!(w.changes.len(), 1, "schedule {schedule}: {:?}", w.changes);
            // The before-policy, then our policy once (a resend of the same put is the same).
            let puts: Vec<&String> = w.key_puts.iter().skip(1).map(|(_, p)| p).collect();
            let change = w.changes.values().next().unwrap();
            assert!(
                puts.iter().all(|p| **p == change.after),
                "schedule {schedule}"
            );
            assert_eq!(w.keys[KEY_ARN].policy, change.after, "schedule {schedule}");
            assert!(
                matches!(change.status, ChangeStatus::Applied | ChangeStatus::Pending),
                "schedule {schedule}: {:?}",
                change.status
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn patch_off_recommends_only_and_leaves_the_policy_byte_identical() {
        let world = world(KEY_ARN, true);
        let before = policy_of(&world, KEY_ARN);
        let result = deliver(&world, config(false, Mode::Apply)).await;
        assert!(result.findings[0].remedy.statement.is_some());
        assert!(result.plan.is_empty() && result.applied.is_empty());
        assert!(
            result
                .notes
                .iter()
                .any(|n| n.contains("KEY_POLICY_PATCH=off")),
            "{:?}",
            result.notes
        );
        assert_eq!(policy_of(&world, KEY_ARN), before);
        assert!(world.read().unwrap().key_puts.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn diagnose_and_plan_modes_change_nothing() {
        for mode in [Mode::Diagnose, Mode::Plan] {
            let world = world(KEY_ARN, true);
            let before = policy_of(&world, KEY_ARN);
            let result = deliver(&world, config(true, mode)).await;
            assert!(result
                .applied
                .iter()
                .all(|a| a.status == AppliedStatus::Skipped));
            assert_eq!(mode == Mode::Plan, !result.plan.is_empty());
            assert_eq!(policy_of(&world, KEY_ARN), before);
            assert!(world.read().unwrap().changes.is_empty());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_delivery_changes_nothing() {
        let world = world(KEY_ARN, true);
        deliver(&world, config(true, Mode::Apply)).await;
        let (puts, policy) = (
            world.read().unwrap().key_puts.len(),
            policy_of(&world, KEY_ARN),
        );
        let again = deliver(&world, config(true, Mode::Apply)).await;
        assert!(again
            .applied
            .iter()
            .all(|a| a.status == AppliedStatus::Skipped));
        assert_eq!(world.read().unwrap().key_puts.len(), puts);
        assert_eq!(policy_of(&world, KEY_ARN), policy);
        assert_eq!(world.read().unwrap().started.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn rollback_restores_exactly_then_finds_nothing_to_do() {
        let world = world(KEY_ARN, true);
        let before = policy_of(&world, KEY_ARN);
        let id = change_id_of(&deliver(&world, config(true, Mode::Apply)).await);
        let plan_only = rollback(&world, config(true, Mode::Plan), &id).await;
        assert_eq!(
            plan_only.rollback.unwrap().outcome,
            RollbackOutcome::WouldRestore
        );
        assert_ne!(policy_of(&world, KEY_ARN), before);

        let done = rollback(&world, config(true, Mode::Apply), &id).await;
        assert_eq!(
            done.rollback.as_ref().unwrap().outcome,
            RollbackOutcome::Restored
        );
        assert_eq!(done.applied[0].action, "ROLLBACK_KEY_POLICY");
        assert_eq!(policy_of(&world, KEY_ARN), before, "byte for byte");
        assert_eq!(
            world.read().unwrap().changes[&id].status,
            ChangeStatus::RolledBack
        );
        let again = rollback(&world, config(true, Mode::Apply), &id).await;
        assert_eq!(
            again.rollback.unwrap().outcome,
            RollbackOutcome::NothingToDo
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rollback_after_drift_is_refused_and_changes_nothing() {
        let world = world(KEY_ARN, true);
        let id = change_id_of(&deliver(&world, config(true, Mode::Apply)).await);
        let drifted = policy_of(&world, KEY_ARN).replace("KeyAdmin\"", "KeyAdmins\"");
        world.write().unwrap().keys.get_mut(KEY_ARN).unwrap().policy = drifted.clone();
        let puts = world.read().unwrap().key_puts.len();
        let result = rollback(&world, config(true, Mode::Apply), &id).await;
        let report = result.rollback.unwrap();
        assert_eq!(report.outcome, RollbackOutcome::RefusedDrift);
        assert!(report.detail.contains("changed after"), "{}", report.detail);
        assert_eq!(policy_of(&world, KEY_ARN), drifted);
        assert_eq!(world.read().unwrap().key_puts.len(), puts);
        assert_eq!(
            world.read().unwrap().changes[&id].status,
            ChangeStatus::Applied
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_change_id_is_a_typed_error() {
        let world = world(KEY_ARN, true);
        let err = app(&world, config(true, Mode::Apply))
            .handle(&json!({"rollback": {"changeId": "kpc-nope"}}), None)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "ChangeNotFound");
    }

    const OTHER_EXPORTER: &str = "arn:aws:iam::111122223333:role/OtherPipeline";

    /// The policy our patch writes on a fresh world (the merge is deterministic).
    async fn our_after_policy() -> String {
        let scratch = world(KEY_ARN, true);
        deliver(&scratch, config(true, Mode::Apply)).await;
        policy_of(&scratch, KEY_ARN)
    }

    /// Another incident's patch of the same key (another exporter), merged onto `policy`.
    fn with_other_incident(policy: &str) -> String {
        let other =
            crate::domain::key_patch::exporter_patch(KEY_ARN, OTHER_EXPORTER, "us-east-1").unwrap();
        merge(policy, &other, &[OTHER_EXPORTER.to_string()])
            .unwrap()
            .after
    }

    fn incident_status(world: &Shared) -> crate::ports::IncidentStatus {
        world.read().unwrap().ledger[EXPORT_ARN].status
    }

    fn change_statuses(world: &Shared) -> Vec<ChangeStatus> {
        let mut all: Vec<ChangeStatus> = world
            .read()
            .unwrap()
            .changes
            .values()
            .map(|c| c.status)
            .collect();
        all.sort_by_key(|s| s.as_str());
        all
    }

    #[tokio::test(start_paused = true)]
    async fn two_patches_of_one_key_at_once_both_count_and_neither_is_overwritten() {
        let world = world(KEY_ARN, true);
        // Right after our put, the other incident (which read our policy) adds its statement:
        // the read-back sees ours and theirs.
        let both = with_other_incident(&our_after_policy().await);
        world.write().unwrap().concurrent_key_write = Some(both.clone());
        let result = deliver(&world, config(true, Mode::Apply)).await;
        let statuses: Vec<_> = result.applied.iter().map(|a| a.status).collect();
        assert_eq!(
            statuses,
            [AppliedStatus::Done, AppliedStatus::Done],
            "{:?}",
            result.applied
        );
        assert_eq!(result.applied[0].result["confirmed"], true);
        assert_eq!(policy_of(&world, KEY_ARN), both, "nothing overwritten");
        assert_eq!(change_statuses(&world), [ChangeStatus::Applied]);
        assert_eq!(
            incident_status(&world),
            crate::ports::IncidentStatus::Retried
        );
        let w = world.read().unwrap();
        assert_eq!(
            w.key_puts.len(),
            2,
            "the policy before, and one put of ours"
        );
        assert_eq!(w.started.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_patch_lost_to_another_incident_s_write_stays_pending_and_is_made_again() {
        let world = world(KEY_ARN, true);
        // The other incident read the policy before ours landed and wrote after it: its write
        // replaced ours (KMS has no conditional put). The read-back sees theirs only.
        let theirs = with_other_incident(&key_policy(true));
        world.write().unwrap().concurrent_key_write = Some(theirs.clone());
        let first = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(first.applied[0].status, AppliedStatus::Failed);
        assert_eq!(
            first.applied[0].result["errorType"],
            "ConcurrentKeyPolicyChange"
        );
        assert_eq!(first.applied[1].status, AppliedStatus::Skipped);
        assert_eq!(policy_of(&world, KEY_ARN), theirs, "not overwritten");
        // Not final: open, listed for the sweep.
        assert_eq!(
            incident_status(&world),
            crate::ports::IncidentStatus::Pending
        );
        assert!(world.read().unwrap().open.contains_key(EXPORT_ARN));
        assert!(world.read().unwrap().started.is_empty());

        // Handled again (the sweep's takeover, or a later delivery): diagnosed on the policy as
        // it is now, so ours is added beside theirs, and the retry starts.
        let second = deliver(&world, config(true, Mode::Apply)).await;
        let statuses: Vec<_> = second.applied.iter().map(|a| a.status).collect();
        assert_eq!(
            statuses,
            [AppliedStatus::Done, AppliedStatus::Done],
            "{:?}",
            second.applied
        );
        let now = policy_of(&world, KEY_ARN);
        assert!(now.contains(OTHER_EXPORTER), "theirs kept");
        assert!(now.contains(EXPORTER), "ours added");
        assert_eq!(
            change_statuses(&world),
            [ChangeStatus::Applied, ChangeStatus::Conflict]
        );
        assert_eq!(
            incident_status(&world),
            crate::ports::IncidentStatus::Retried
        );
        assert_eq!(world.read().unwrap().started.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_foreign_change_is_not_overwritten_and_the_incident_stays_open() {
        let world = world(KEY_ARN, true);
        // Someone edits a statement of the policy we read, right after our put.
        let theirs = key_policy(true).replace("KeyAdmin\"", "SecurityTeam\"");
        world.write().unwrap().concurrent_key_write = Some(theirs.clone());
        let result = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(result.applied[0].status, AppliedStatus::Failed);
        assert_eq!(
            result.applied[0].result["errorType"],
            "ConcurrentKeyPolicyChange"
        );
        assert_eq!(result.applied[1].status, AppliedStatus::Skipped);
        assert_eq!(policy_of(&world, KEY_ARN), theirs);
        {
            let w = world.read().unwrap();
            assert_eq!(w.key_puts.len(), 2, "one put of ours, no second write");
            assert!(w.started.is_empty());
        }
        assert_eq!(change_statuses(&world), [ChangeStatus::Conflict]);
        assert_eq!(
            incident_status(&world),
            crate::ports::IncidentStatus::Pending,
            "not NO_ACTION: the sweep handles it again"
        );
        // Handled again on the policy as it is now: their edit stays, ours is added.
        let again = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(again.applied[0].status, AppliedStatus::Done);
        let now = policy_of(&world, KEY_ARN);
        assert!(now.contains("SecurityTeam") && now.contains(EXPORTER));
        assert_eq!(world.read().unwrap().started.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_reads_after_the_write_are_waited_out() {
        let world = world(KEY_ARN, true);
        world.write().unwrap().stale_key_reads = 3;
        let result = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(result.applied[0].status, AppliedStatus::Done);
        // The first GetKeyPolicy (the read before the merge) also consumes a stale read.
        assert_eq!(result.applied[0].result["confirmed"], true);
    }

    #[tokio::test(start_paused = true)]
    async fn the_function_never_retries_when_its_own_role_is_not_allowed_on_the_key() {
        let world = world(KEY_ARN, false);
        let result = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(result.applied.len(), 1);
        assert_eq!(result.applied[0].status, AppliedStatus::Done);
        assert!(
            result
                .notes
                .iter()
                .any(|n| n.contains("never grants itself access")
                    && n.contains("aws dynamodb export-table-to-point-in-time")),
            "{:?}",
            result.notes
        );
        let w = world.read().unwrap();
        assert!(w.started.is_empty());
        let doc: Value = serde_json::from_str(&w.keys[KEY_ARN].policy).unwrap();
        assert!(
            !doc.to_string().contains("role/remediator"),
            "no grant to itself"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_in_another_account_is_patched_through_the_member_role_only() {
        let other = "arn:aws:kms:us-east-1:444455556666:key/k2";
        let world = world(other, true);
        let mut no_role = config(true, Mode::Apply);
        no_role.member_role_name = None;
        // Without the role the key policy cannot even be read: nothing to patch.
        let result = deliver(&world, no_role).await;
        assert!(result.applied.is_empty());
        assert!(world.read().unwrap().key_puts.is_empty());

        let world = self::world(other, true);
        world.write().unwrap().member_roles = vec![DATA_ACCOUNT.into()];
        let result = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(
            result.applied[0].status,
            AppliedStatus::Done,
            "{:?}",
            result.applied
        );
        assert!(policy_of(&world, other).contains("role/DataPipeline"));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_ledger_no_key_policy_is_changed() {
        let world = world(KEY_ARN, true);
        let mut cfg = config(true, Mode::Apply);
        cfg.ledger_table_name = None;
        // The caller comes from the message only here, which names the account: no grantee.
        world.write().unwrap().starts.clear();
        let mut incident = json!({"exportArn": EXPORT_ARN});
        let result = app(&world, cfg.clone())
            .handle(&incident, None)
            .await
            .unwrap();
        assert!(result.applied.is_empty());
        // With a known exporter (a CloudTrail error event carries it) the patch is planned
        // but skipped for want of an audit record.
        incident = json!({"version": "0", "id": "1", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.dynamodb", "account": TABLE_ACCOUNT, "time": "2026-11-24T00:00:00Z",
            "region": "us-east-1", "resources": [], "detail": {"eventName": "ExportTableToPointInTime",
            "eventSource": "dynamodb.amazonaws.com", "errorCode": "AccessDeniedException",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/DataPipeline/s",
                "sessionContext": {"sessionIssuer": {"arn": EXPORTER}}},
            "requestParameters": {"tableArn": TABLE_ARN, "s3Bucket": BUCKET, "s3SseAlgorithm": "KMS", "s3SseKmsKeyId": KEY_ARN}}});
        let result = app(&world, cfg).handle(&incident, None).await.unwrap();
        assert!(result
            .applied
            .iter()
            .all(|a| a.status == AppliedStatus::Skipped));
        assert!(world.read().unwrap().key_puts.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_put_is_reported_and_recorded_and_nothing_is_retried() {
        let world = world(KEY_ARN, true);
        world.write().unwrap().fail_key_put = Some(AwsError::new(
            "kms:PutKeyPolicy",
            AwsErrorKind::Rejected,
            "MalformedPolicyDocumentException: invalid principals",
        ));
        let result = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(result.applied[0].status, AppliedStatus::Failed);
        assert!(result.applied[0].result["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"));
        let w = world.read().unwrap();
        assert!(w.started.is_empty());
        assert_eq!(
            w.changes.values().next().unwrap().status,
            ChangeStatus::Failed
        );
    }

    /// The retry started right after the patch fails the same way (KMS had not applied it yet).
    fn retry_fails_again(world: &Shared, retry_arn: &str) {
        let mut w = world.write().unwrap();
        let mut e = w.exports[0].clone();
        e.export_arn = retry_arn.to_string();
        e.request = w.started.last().unwrap().0.clone();
        w.exports.push(e);
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_after_a_patch_is_retried_once_more_and_never_again() {
        let world = world(KEY_ARN, true);
        let first = deliver(&world, config(true, Mode::Apply)).await;
        let r1 = first.applied[1].result["exportArn"]
            .as_str()
            .unwrap()
            .to_string();
        retry_fails_again(&world, &r1);
        let app = app(&world, config(true, Mode::Apply));
        let second = app.handle(&json!({"exportArn": r1}), None).await.unwrap();
        assert_eq!(second.findings[0].cause, Cause::KmsKeyPolicyDeniesExporter);
        let retried = second.applied.iter().find(|a| a.action == "RETRY_EXPORT");
        assert_eq!(
            retried.map(|a| a.status),
            Some(AppliedStatus::Done),
            "{:?} {:?}",
            second.applied,
            second.notes
        );
        assert_eq!(second.plan[0]["attempt"], 2);

        let r2 = retried.unwrap().result["exportArn"]
            .as_str()
            .unwrap()
            .to_string();
        retry_fails_again(&world, &r2);
        let third = app.handle(&json!({"exportArn": r2}), None).await.unwrap();
        assert!(third.applied.is_empty(), "{:?}", third.applied);
        assert!(
            third.notes.iter().any(|n| n.contains("no retry")),
            "{:?}",
            third.notes
        );
        assert_eq!(world.read().unwrap().started.len(), 2);
    }

    /// GIVEN a completed SSE-KMS export into another account's bucket, the key in the table
    /// account delegating to that account only.
    fn consumer_world() -> Shared {
        let world = world_with_table();
        {
            let mut w = world.write().unwrap();
            w.buckets.insert(
                BUCKET.into(),
                FakeBucket {
                    policy: Some(grant_policy(BUCKET)),
                    ..FakeBucket::owned_by(DATA_ACCOUNT)
                },
            );
            w.org_accounts = Some(vec![TABLE_ACCOUNT.into(), DATA_ACCOUNT.into()]);
            w.member_roles = vec![DATA_ACCOUNT.into()];
            let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Root", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]});
            w.keys
                .insert(KEY_ARN.into(), key(KEY_ARN, policy.to_string()));
            let mut req = request(BUCKET);
            req.s3_bucket_owner = Some(DATA_ACCOUNT.into());
            req.s3_sse_algorithm = Some(SseAlgorithm::Kms);
            req.s3_sse_kms_key_id = Some(KEY_ARN.into());
            let mut done = failed_export(req, "x", "x");
            done.status = ExportStatus::Completed;
            done.failure_code = None;
            done.failure_message = None;
            w.exports.push(done);
        }
        world
    }

    #[tokio::test(start_paused = true)]
    async fn consumers_get_a_decrypt_statement_for_the_allow_listed_principals_only() {
        let consumer = "arn:aws:iam::444455556666:role/Analytics";
        let world = consumer_world();
        let mut cfg = config(true, Mode::Apply);
        cfg.decrypt_principals = vec![consumer.into(), "999988887777".into()];
        let result = deliver(&world, cfg).await;
        assert_eq!(result.findings.len(), 1, "{:?}", result.findings);
        assert_eq!(result.findings[0].cause, Cause::ConsumerCannotDecrypt);
        assert_eq!(
            result.applied[0].status,
            AppliedStatus::Done,
            "{:?}",
            result.applied
        );
        let doc: Value = serde_json::from_str(&policy_of(&world, KEY_ARN)).unwrap();
        let ours = &doc["Statement"][1];
        assert_eq!(
            ours["Principal"]["AWS"], consumer,
            "not the other allow-listed account"
        );
        assert_eq!(ours["Action"], json!(["kms:Decrypt", "kms:DescribeKey"]));
        assert!(
            world.read().unwrap().started.is_empty(),
            "a completed export is not retried"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cross_account_kms_export_is_checked_for_its_consumers_when_it_starts() {
        let world = consumer_world();
        world.write().unwrap().exports[0].status = ExportStatus::InProgress;
        let mut start: Value = serde_json::from_str(include_str!(
            "../../../events/cloudtrail-export-started.json"
        ))
        .unwrap();
        start["detail"]["requestParameters"]["s3Bucket"] = json!(BUCKET);
        start["detail"]["responseElements"]["exportDescription"]["exportArn"] = json!(EXPORT_ARN);
        let result = app(&world, config(true, Mode::Apply))
            .handle(&start, None)
            .await
            .unwrap();
        assert_eq!(result.findings.len(), 1, "{:?}", result.findings);
        assert_eq!(result.findings[0].cause, Cause::ConsumerCannotDecrypt);
        assert!(result.applied.is_empty(), "the start check only reports");
        assert!(world.read().unwrap().key_puts.is_empty());
        assert_eq!(
            world.read().unwrap().published.len(),
            1,
            "a report with the finding"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_allow_listed_consumer_the_decrypt_statement_is_a_recommendation() {
        let world = consumer_world();
        let result = deliver(&world, config(true, Mode::Apply)).await;
        assert_eq!(result.findings[0].cause, Cause::ConsumerCannotDecrypt);
        assert_eq!(
            result.findings[0].remedy.statement.as_ref().unwrap()["Principal"]["AWS"],
            "arn:aws:iam::444455556666:root"
        );
        assert!(result.applied.is_empty());
        assert!(
            result
                .notes
                .iter()
                .any(|n| n.contains("DECRYPT_PRINCIPALS")),
            "{:?}",
            result.notes
        );
        assert!(world.read().unwrap().key_puts.is_empty());
    }
}
