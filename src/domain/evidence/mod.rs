//! The evidence room (docs/diagnosis.md, "Evidence and policy evaluation"): gathers the facts concurrently through the read ports; a fact
//! that cannot be read is Unknown. Hands diagnosis and plan a `model::Evidence`.

mod bucket;
mod hints;
mod key;

use bucket::*;
pub use hints::Hints;
use key::*;

use crate::arn::{account_of, Arn};
use crate::config::Config;
use crate::error::{AwsErrorKind, Error};
pub use crate::model::{s3_region, BucketFacts, Evidence, KeyFacts};
use crate::model::{BucketEncryption, ExportDescription, ExportRequest, Fact, Incident};
use crate::ports::{
    AccountDirectory, AccountReaders, BucketInspector, BucketPresence, CrossAccount, ExportService,
    IdentityPolicies, KeyPolicyStore, PortResult, PrincipalPolicies, ScpPath,
};
use futures_util::future::{join_all, select, Either};
use std::collections::HashMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Mutex;
use std::time::Duration;
// Monotonic time that tests can pause (tokio's test-util); the real clock otherwise.
use tokio::time::Instant;

/// What the evidence stage reads through: the read ports, the settings and the hints cache
/// (borrowed from the `App`, so this stage does not depend on the orchestrator).
pub struct Readers<'a> {
    pub config: &'a Config,
    pub exports: &'a dyn ExportService,
    pub buckets: &'a dyn BucketInspector,
    pub keys: &'a dyn KeyPolicyStore,
    pub accounts: &'a dyn AccountDirectory,
    pub cross: &'a dyn CrossAccount,
    pub iam: &'a dyn IdentityPolicies,
    pub hints: &'a Hints,
}

fn fact<T>(source: &'static str, r: PortResult<Option<T>>) -> Fact<T> {
    match r {
        Ok(Some(v)) => Fact::known(source, v),
        Ok(None) => Fact::absent(source),
        Err(e) => Fact::failed(source, &e),
    }
}

fn fact_value<T>(source: &'static str, r: PortResult<T>) -> Fact<T> {
    fact(source, r.map(Some))
}

pub async fn gather(app: &Readers<'_>, incident: &Incident) -> Result<Evidence, Error> {
    let export = describe(app, incident).await?;
    gather_from(app, incident, export).await
}

/// The incident's export (DescribeExport), or None when the incident has no export ARN.
pub async fn describe(
    app: &Readers<'_>,
    incident: &Incident,
) -> Result<Option<ExportDescription>, Error> {
    match &incident.export_arn {
        Some(arn) => match app.exports.describe_export(arn).await {
            Ok(Some(desc)) => Ok(Some(desc)),
            Ok(None) => Err(Error::ExportNotFound(arn.clone())),
            Err(e) if e.kind == AwsErrorKind::NotFound => Err(Error::ExportNotFound(arn.clone())),
            Err(e) => Err(e.into()),
        },
        None => Ok(None),
    }
}

/// The SCP walk of an account, started before the export was described (the account is in the
/// export's ARN): still under way, or done.
pub enum EarlyScps<'a> {
    Running(Pin<Box<dyn Future<Output = PortResult<Option<ScpPath>>> + Send + 'a>>),
    Done(PortResult<Option<ScpPath>>),
}

/// Every other fact, gathered concurrently once the export is known: table, bucket (owner
/// lookup included), the export's key and the exporter's policies together; the bucket's
/// default-encryption key after the bucket.
pub async fn gather_from(
    app: &Readers<'_>,
    incident: &Incident,
    export: Option<ExportDescription>,
) -> Result<Evidence, Error> {
    gather_with(app, incident, export, None).await
}

/// `gather_from`, with the SCP walk of `(account, walk)` taken over when that account turns
/// out to be the table's.
pub async fn gather_with(
    app: &Readers<'_>,
    incident: &Incident,
    export: Option<ExportDescription>,
    early_scps: Option<(String, EarlyScps<'_>)>,
) -> Result<Evidence, Error> {
    let request = export
        .as_ref()
        .map(|e| e.request.clone())
        .or_else(|| incident.request.clone());
    let table_arn = request
        .as_ref()
        .map(|r| r.table_arn.clone())
        .or_else(|| incident.table_arn.clone());
    let table_arn = table_arn.and_then(|t| Arn::table("tableArn", &t).ok());
    let table_account = table_arn
        .as_ref()
        .map(|a| a.account.clone())
        .unwrap_or_default();

    let table_facts = async {
        match &table_arn {
            Some(arn) => {
                let name = arn.table_name().unwrap_or_default();
                let full = arn.to_string();
                tokio::join!(
                    async {
                        fact(
                            "dynamodb:DescribeTable",
                            app.exports.describe_table(name).await,
                        )
                    },
                    async {
                        fact(
                            "dynamodb:DescribeContinuousBackups",
                            app.exports.continuous_backups(name).await,
                        )
                    },
                    async {
                        fact(
                            "dynamodb:GetResourcePolicy",
                            app.exports.table_policy(&full).await,
                        )
                    }
                )
            }
            None => (
                Fact::unknown("dynamodb:DescribeTable", "no table ARN in the incident"),
                Fact::unknown(
                    "dynamodb:DescribeContinuousBackups",
                    "no table ARN in the incident",
                ),
                Fact::unknown("dynamodb:GetResourcePolicy", "no table ARN in the incident"),
            ),
        }
    };
    let bucket_facts = async {
        match &request {
            Some(r) => Some(bucket_facts(app, r, &table_account).await),
            None => None,
        }
    };
    let role = exporter_role(incident, export.as_ref(), &table_account);
    let caller_facts = role_facts(app, &role);
    // The key the export named is known already: read it beside the bucket.
    let export_key_id = request.as_ref().and_then(|r| r.s3_sse_kms_key_id.clone());
    let export_key_facts = async {
        match &export_key_id {
            Some(k) => Some(key_facts(app, k, &table_account, &table_account, None).await),
            None => None,
        }
    };
    // SCPs restrict the exporter's account: the table's.
    let scp_facts = async {
        if table_account.is_empty() {
            return Fact::unknown("organizations:ListPoliciesForTarget", "no table account");
        }
        let path = match early_scps {
            Some((account, walk)) if account == table_account => match walk {
                EarlyScps::Running(walk) => walk.await,
                EarlyScps::Done(path) => path,
            },
            _ => app.accounts.scp_path(&table_account).await,
        };
        fact("organizations:ListPoliciesForTarget", path)
    };
    // A warm container knows which key the bucket's default encryption named last time: that
    // key is read beside the bucket instead of after it.
    let hint = request
        .as_ref()
        .and_then(|r| app.hints.default_key(&r.s3_bucket))
        .filter(|(k, _)| Some(k) != export_key_id.as_ref());
    let hinted_facts = async {
        match &hint {
            Some((k, home)) => Some(key_facts(app, k, home, &table_account, None).await),
            None => None,
        }
    };
    let ((table, pitr, table_policy), bucket, caller_policies, export_key, scps, hinted) = tokio::join!(
        table_facts,
        bucket_facts,
        caller_facts,
        export_key_facts,
        scp_facts,
        hinted_facts
    );
    let (bucket, owner_readers) = match bucket {
        Some((facts, readers)) => (Some(facts), readers),
        None => (None, None),
    };

    // The bucket default's key, when it is another key.
    let default_key_id = bucket
        .as_ref()
        .and_then(|b| b.encryption.get())
        .filter(|e| e.algorithm == "aws:kms")
        .and_then(|e| e.kms_key_id.clone())
        .filter(|k| Some(k) != export_key_id.as_ref());
    let bucket_account = bucket.as_ref().and_then(|b| b.owner.get().cloned());
    // A bare id or alias in a bucket default is resolved in the bucket's account.
    let home = bucket_account.as_deref().unwrap_or(&table_account);
    // The key a bucket policy pins ("deny unless this key"), when it is another key: an SSE
    // correction retries with it, and the retry's own-access check reads its policy.
    let pinned_key_id = request
        .as_ref()
        .zip(bucket.as_ref())
        .and_then(|(r, b)| pinned_key_of(r, b.policy.get()?))
        .filter(|k| Some(k) != export_key_id.as_ref() && Some(k) != default_key_id.as_ref());
    let default_read = async {
        match (&default_key_id, hinted) {
            (Some(k), Some(facts))
                if hint.as_ref().is_some_and(|(hk, hh)| hk == k && hh == home) =>
            {
                Some(facts)
            }
            (Some(k), _) => {
                Some(key_facts(app, k, home, &table_account, owner_readers.as_ref()).await)
            }
            (None, _) => None,
        }
    };
    let pinned_read = async {
        match &pinned_key_id {
            Some(k) => Some(key_facts(app, k, home, &table_account, owner_readers.as_ref()).await),
            None => None,
        }
    };
    let (default_key, pinned_key) = tokio::join!(default_read, pinned_read);
    if let Some(r) = &request {
        app.hints
            .remember(&r.s3_bucket, default_key_id.as_deref().map(|k| (k, home)));
    }

    Ok(Evidence {
        table_account,
        export,
        request,
        table,
        pitr,
        bucket,
        export_key,
        default_key,
        pinned_key,
        caller_policies,
        table_policy,
        scps,
    })
}

/// The first key ARN the bucket policy pins for the export's objects, if any.
fn pinned_key_of(request: &ExportRequest, policy: &str) -> Option<String> {
    let partition = Arn::parse("tableArn", &request.table_arn)
        .map(|a| a.partition)
        .unwrap_or_else(|_| "aws".into());
    let object = format!(
        "arn:{partition}:s3:::{}/{}AWSDynamoDB/00000000000000-00000000/_started",
        request.s3_bucket,
        request.key_prefix()
    );
    crate::domain::sse_rules::SseRules::from_policy(policy, &object)
        .ok()?
        .pinned_keys()
        .into_iter()
        .next()
}

/// The exporter's role in the table account, `(ARN, name)`: the incident's caller, else a role
/// the failure message names.
fn exporter_role(
    incident: &Incident,
    export: Option<&ExportDescription>,
    table_account: &str,
) -> Option<(String, String)> {
    let message = export
        .and_then(|e| e.failure_message.as_deref())
        .or(incident.failure_message.as_deref());
    let caller = incident.caller.clone().or_else(|| {
        message
            .and_then(super::access::parse_denial)
            .and_then(|d| d.principal)
    });
    caller
        .as_deref()
        .and_then(|c| role_in_account(c, table_account))
}

async fn role_facts(
    app: &Readers<'_>,
    role: &Option<(String, String)>,
) -> Option<(String, Fact<PrincipalPolicies>)> {
    match role {
        Some((arn, name)) => Some((
            arn.clone(),
            fact("iam:GetRole", app.iam.role_policies(name).await),
        )),
        None => None,
    }
}

/// The export as the trigger announced it (a `DynamoDB Export Failed` event that names the
/// destination): evidence can be read from it while DescribeExport is still on its way.
pub fn announced(incident: &Incident) -> Option<ExportDescription> {
    Some(ExportDescription {
        export_arn: incident.export_arn.clone()?,
        status: crate::model::ExportStatus::Failed,
        request: incident.announced.clone()?,
        failure_code: incident.failure_code.clone(),
        failure_message: incident.failure_message.clone(),
        start_time: None,
        end_time: None,
        item_count: None,
    })
}

/// Evidence read from the announced export, kept when DescribeExport agrees on everything those
/// reads depended on; read again from DescribeExport's answer when it does not. `incident` may
/// know more by now (the ledger's caller): the exporter's policies are read again if so.
pub async fn confirm(
    app: &Readers<'_>,
    incident: &Incident,
    early: Evidence,
    described: Option<ExportDescription>,
) -> Result<Evidence, Error> {
    let Some(described) = described else {
        return gather_from(app, incident, None).await;
    };
    if !early
        .request
        .as_ref()
        .is_some_and(|r| reads_alike(r, &described.request))
    {
        tracing::info!("the event's export parameters differ from DescribeExport's: read again");
        return gather_from(app, incident, Some(described)).await;
    }
    let mut evidence = early;
    let role = exporter_role(incident, Some(&described), &evidence.table_account);
    if role.as_ref().map(|r| &r.0) != evidence.caller_policies.as_ref().map(|c| &c.0) {
        evidence.caller_policies = role_facts(app, &role).await;
    }
    evidence.request = Some(described.request.clone());
    evidence.export = Some(described);
    Ok(evidence)
}

/// The request fields `gather_from` reads by: keep in step with it.
fn reads_alike(a: &ExportRequest, b: &ExportRequest) -> bool {
    a.table_arn == b.table_arn
        && a.s3_bucket == b.s3_bucket
        && a.s3_bucket_owner == b.s3_bucket_owner
        && a.s3_sse_kms_key_id == b.s3_sse_kms_key_id
}

/// `(role ARN, role name)` of a role or role session in `account`.
fn role_in_account(principal: &str, account: &str) -> Option<(String, String)> {
    let arn = Arn::parse("caller", principal).ok()?;
    if arn.account != account {
        return None;
    }
    let name = match arn.service.as_str() {
        "iam" => arn.resource.strip_prefix("role/")?.rsplit('/').next()?,
        "sts" => arn
            .resource
            .strip_prefix("assumed-role/")?
            .split('/')
            .next()?,
        _ => return None,
    };
    Some((
        format!("arn:{}:iam::{account}:role/{name}", arn.partition),
        name.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fakes::{self, FakeBucket, FakeKey, EXPORT_ARN, TABLE_ACCOUNT};
    use crate::model::{IncidentSource, KeyInfo};

    fn key(id: &str) -> FakeKey {
        FakeKey {
            info: KeyInfo {
                arn: format!("arn:aws:kms:us-east-1:{TABLE_ACCOUNT}:key/{id}"),
                state: "Enabled".into(),
                manager: "CUSTOMER".into(),
                usage: "ENCRYPT_DECRYPT".into(),
                spec: "SYMMETRIC_DEFAULT".into(),
            },
            policy: "{}".into(),
            grants: Vec::new(),
        }
    }

    fn bucket(world: &fakes::Shared, change: impl FnOnce(&mut FakeBucket)) {
        change(world.write().unwrap().buckets.get_mut("exports").unwrap());
    }

    fn default_key(world: &fakes::Shared, id: &str) {
        world.write().unwrap().keys.insert(id.into(), key(id));
        bucket(world, |b| {
            b.encryption = Some(BucketEncryption {
                algorithm: "aws:kms".into(),
                kms_key_id: Some(id.into()),
            })
        });
    }

    #[tokio::test]
    async fn a_bucket_default_key_hint_is_read_beside_the_bucket_and_never_trusted_over_it() {
        let world = fakes::world_with_table();
        world
            .write()
            .unwrap()
            .buckets
            .insert("exports".into(), FakeBucket::owned_by(TABLE_ACCOUNT));
        world.write().unwrap().exports.push(fakes::failed_export(
            fakes::request("exports"),
            "S3AccessDenied",
            "Access Denied",
        ));
        default_key(&world, "k1");
        let app = fakes::app(&world, Config::default());
        let mut incident = Incident::new(IncidentSource::Manual);
        incident.export_arn = Some(EXPORT_ARN.into());
        let reads = |world: &fakes::Shared| std::mem::take(&mut world.write().unwrap().key_reads);

        // No hint yet: the key is read after the bucket names it.
        let e = gather(&app.readers(), &incident).await.unwrap();
        assert_eq!(e.default_key.as_ref().unwrap().key_id, "k1");
        assert_eq!(reads(&world), ["k1"]);

        // Hinted and still right: the speculative read is the one used, not repeated.
        let e = gather(&app.readers(), &incident).await.unwrap();
        assert!(e.default_key.unwrap().info.get().is_some());
        assert_eq!(reads(&world), ["k1"]);

        // The bucket now names another key: the stale guess is read but the answer is k2's.
        default_key(&world, "k2");
        let e = gather(&app.readers(), &incident).await.unwrap();
        let k = e.default_key.unwrap();
        assert_eq!(k.key_id, "k2");
        assert!(k.info.get().unwrap().arn.ends_with("key/k2"));
        assert_eq!(reads(&world), ["k1", "k2"]);

        // No default key any more: no guess is read.
        bucket(&world, |b| b.encryption = None);
        let e = gather(&app.readers(), &incident).await.unwrap();
        assert!(e.default_key.is_none());
        let _ = reads(&world);
        gather(&app.readers(), &incident).await.unwrap();
        assert!(reads(&world).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_of_this_account_does_not_wait_for_the_lookup_in_other_accounts() {
        let world = fakes::world_with_table();
        {
            let mut w = world.write().unwrap();
            w.buckets
                .insert("exports".into(), FakeBucket::owned_by(TABLE_ACCOUNT));
            w.org_accounts = Some(vec![TABLE_ACCOUNT.into(), fakes::DATA_ACCOUNT.into()]);
            w.member_roles = vec![fakes::DATA_ACCOUNT.into()];
            w.stall_assume_role = true;
        }
        let config = Config {
            member_role_name: Some("ExportRemediatorMember".into()),
            ..Config::default()
        };
        let app = fakes::app(&world, config);
        let incident = Incident::new(IncidentSource::Manual);
        let request = fakes::request("exports");
        let export = fakes::failed_export(request, "S3AccessDenied", "Access Denied");
        let e = tokio::time::timeout(
            Duration::from_secs(5),
            gather_from(&app.readers(), &incident, Some(export.clone())),
        )
        .await
        .expect("the own account's answer is not held up by the stalled lookup")
        .unwrap();
        assert_eq!(e.bucket.unwrap().owner.get().unwrap(), TABLE_ACCOUNT);

        // Another account's bucket does need the lookup: it waits for it.
        bucket(&world, |b| b.owner = fakes::DATA_ACCOUNT.into());
        let waited = tokio::time::timeout(
            Duration::from_millis(200),
            gather_from(&app.readers(), &incident, Some(export)),
        )
        .await;
        assert!(waited.is_err());
    }

    #[tokio::test]
    async fn confirmed_early_evidence_reads_the_exporter_the_ledger_named_since() {
        let world = fakes::world_with_table();
        let role = format!("arn:aws:iam::{TABLE_ACCOUNT}:role/Pipeline");
        {
            let mut w = world.write().unwrap();
            w.buckets
                .insert("exports".into(), FakeBucket::owned_by(TABLE_ACCOUNT));
            w.roles
                .insert("Pipeline".into(), PrincipalPolicies::default());
        }
        let app = fakes::app(&world, Config::default());
        let described =
            fakes::failed_export(fakes::request("exports"), "S3AccessDenied", "Access Denied");
        let mut incident = Incident::new(IncidentSource::Event);
        incident.export_arn = Some(EXPORT_ARN.into());
        incident.failure_message = Some("Access Denied".into());
        incident.announced = Some(fakes::request("exports"));
        let early = gather_from(&app.readers(), &incident, announced(&incident))
            .await
            .unwrap();
        assert!(early.caller_policies.is_none());

        incident.caller = Some(format!(
            "arn:aws:sts::{TABLE_ACCOUNT}:assumed-role/Pipeline/run-1"
        ));
        let e = confirm(
            &app.readers(),
            &incident,
            early.clone(),
            Some(described.clone()),
        )
        .await
        .unwrap();
        let (arn, policies) = e.caller_policies.unwrap();
        assert_eq!(arn, role);
        assert!(policies.get().is_some());
        assert_eq!(e.export.as_ref(), Some(&described));

        // DescribeExport names another bucket: nothing of the early reads is kept.
        let mut elsewhere = described;
        elsewhere.request.s3_bucket = "missing-bucket".into();
        let e = confirm(&app.readers(), &incident, early, Some(elsewhere))
            .await
            .unwrap();
        assert_eq!(e.bucket.unwrap().name, "missing-bucket");
    }

    #[test]
    fn the_key_a_bucket_policy_pins_is_found_for_the_exports_objects() {
        let mut request = crate::fakes::request("exports-bucket");
        request.s3_prefix = Some("team/a".into());
        let key = "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let policy = |resource: &str| {
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "OnlyOurKey",
                "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": resource,
                "Condition": {"StringNotEqualsIfExists": {
                    "s3:x-amz-server-side-encryption-aws-kms-key-id": key}}}]})
            .to_string()
        };
        assert_eq!(
            pinned_key_of(&request, &policy("arn:aws:s3:::exports-bucket/*")).as_deref(),
            Some(key)
        );
        // A statement for other objects pins nothing for this export.
        assert_eq!(
            pinned_key_of(&request, &policy("arn:aws:s3:::exports-bucket/other/*")),
            None
        );
    }
}
