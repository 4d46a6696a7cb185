//! Organization mode: ports in a member account and Region, through the spoke role there.
//!
//! Sessions come from the STS Regional endpoint of the function's Region (tokens from a Regional
//! endpoint are valid in every Region, opt-in ones included; the global endpoint's are not) and
//! are reused for at most 55 minutes: the function's own credentials are a role session, so
//! this is role chaining, which STS caps at one hour. Every spoke client gets its own retry
//! partition: the SDK's retry token bucket is process-wide per partition, and the default
//! partition (service and Region) would let one throttled account spend every account's budget.

use super::sts::assume;
use super::StsCrossAccount;
use super::{missing, task_ended, DynamoExports, IamPolicies, KmsKeys, S3Buckets};
use crate::ports::{Identity, PortResult, SitePorts, Spokes};
use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_types::region::Region;
use aws_types::SdkConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest session a chained role session may ask for.
const SESSION_SECS: i32 = 3600;
/// A cached session is used for at most this long (under the hour, with room for one invocation).
pub const REUSE: Duration = Duration::from_secs(55 * 60);

#[derive(Clone)]
struct Session {
    at: Instant,
    creds: Credentials,
    /// `arn:…:sts::<account>:assumed-role/<role>/<session>`, from AssumeRole's answer.
    arn: String,
}

pub struct StsSpokes {
    sts: aws_sdk_sts::Client,
    base: SdkConfig,
    hub_account: String,
    role_name: String,
    partition: String,
    force_path_style: bool,
    /// The hub's readers; a site's are these sessions with clients in the site's Region.
    cross: StsCrossAccount,
    /// The hub's own identity, for sites in its own account (another Region).
    identity: Arc<StsCrossAccount>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// One AssumeRole at a time per account: an account's Regions asked together share it.
    assuming: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl StsSpokes {
    pub fn new(
        sts: aws_sdk_sts::Client,
        base: SdkConfig,
        hub_account: String,
        role_name: String,
        cross: StsCrossAccount,
        identity: Arc<StsCrossAccount>,
    ) -> Self {
        let region = base.region().map(|r| r.to_string()).unwrap_or_default();
        Self {
            sts,
            partition: crate::arn::partition_of(&region).to_string(),
            force_path_style: cross.force_path_style(),
            base,
            hub_account,
            role_name,
            cross,
            identity,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            assuming: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, account: &str) -> Option<Session> {
        self.sessions
            .lock()
            .ok()
            .and_then(|s| s.get(account).filter(|s| s.at.elapsed() < REUSE).cloned())
    }

    async fn session(&self, account: &str) -> PortResult<Session> {
        const OP: &str = "sts:AssumeRole";
        if let Some(s) = self.cached(account) {
            return Ok(s);
        }
        let turn = self
            .assuming
            .lock()
            .map(|mut m| m.entry(account.to_string()).or_default().clone())
            .unwrap_or_default();
        let _turn = turn.lock().await;
        if let Some(s) = self.cached(account) {
            return Ok(s);
        }
        let role_arn = self.role_arn(account);
        // A task of its own, so that a session an abandoned invocation asked for is still cached.
        let (sts, cache, account) = (self.sts.clone(), self.sessions.clone(), account.to_string());
        let task = tokio::spawn(async move {
            let (creds, arn) = assume(
                &sts,
                &role_arn,
                "ddb-export-remediator-hub",
                SESSION_SECS,
                "ddb-export-remediator-spoke-role",
            )
            .await?;
            let session = Session {
                at: Instant::now(),
                creds,
                arn: arn.ok_or_else(|| missing(OP, "AssumedRoleUser"))?,
            };
            if let Ok(mut cache) = cache.lock() {
                cache.insert(account, session.clone());
            }
            Ok(session)
        });
        task.await.unwrap_or_else(|e| Err(task_ended(OP, e)))
    }
}

/// `<service>-<account>-<region>`: one retry budget per service, account and Region.
pub fn retry_partition(service: &str, account: &str, region: &str) -> String {
    format!("{service}-{account}-{region}")
}

/// The clients of one site, each in its own retry partition.
pub(crate) struct SiteClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub iam: aws_sdk_iam::Client,
}

pub(crate) fn site_clients(
    config: &SdkConfig,
    account: &str,
    region: &str,
    force_path_style: bool,
) -> SiteClients {
    use aws_sdk_dynamodb::config::retry::RetryPartition;
    let part = |service| RetryPartition::new(retry_partition(service, account, region));
    SiteClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .retry_partition(part("dynamodb"))
                .build(),
        ),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(config)
                .force_path_style(force_path_style)
                .retry_partition(part("s3"))
                .build(),
        ),
        kms: aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(config)
                .retry_partition(part("kms"))
                .build(),
        ),
        iam: aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(config)
                .retry_partition(part("iam"))
                .build(),
        ),
    }
}

/// The identity AssumeRole answered with: no GetCallerIdentity round for a spoke.
struct Assumed {
    account: String,
    arn: String,
}

#[async_trait]
impl Identity for Assumed {
    async fn whoami(&self) -> PortResult<(String, String)> {
        Ok((self.account.clone(), self.arn.clone()))
    }
}

#[async_trait]
impl Spokes for StsSpokes {
    #[tracing::instrument(skip(self))]
    async fn site(&self, account: &str, region: &str) -> PortResult<SitePorts> {
        let in_region = self
            .base
            .to_builder()
            .region(Region::new(region.to_string()));
        let (config, identity, role_arn): (_, Box<dyn Identity>, _) = if account == self.hub_account
        {
            (in_region.build(), Box::new(self.identity.clone()), None)
        } else {
            let s = self.session(account).await?;
            let config = in_region
                .credentials_provider(SharedCredentialsProvider::new(s.creds))
                .build();
            let me = Assumed {
                account: account.to_string(),
                arn: s.arn,
            };
            (config, Box::new(me), Some(self.role_arn(account)))
        };
        let c = site_clients(&config, account, region, self.force_path_style);
        Ok(SitePorts {
            exports: Box::new(DynamoExports::new(c.dynamodb)),
            buckets: Box::new(S3Buckets::new(c.s3)),
            keys: Box::new(KmsKeys::new(c.kms)),
            iam: Box::new(IamPolicies::new(c.iam)),
            identity,
            cross: Box::new(self.cross.in_region(region)),
            role_arn,
        })
    }

    fn role_arn(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            self.partition, self.role_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
    use aws_sdk_sts::types::{AssumedRoleUser, Credentials as StsCredentials};
    use aws_sdk_sts::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use serde_json::json;

    const HUB: &str = "999988887777";
    const MEMBER_A: &str = "222233334444";
    const MEMBER_B: &str = "555566667777";
    const ROLE: &str = "ddb-export-remediator-spoke";

    fn base() -> SdkConfig {
        SdkConfig::builder()
            .region(Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    fn spokes(sts: Client) -> StsSpokes {
        let cross = StsCrossAccount::new(sts.clone(), base(), "aws", true);
        let identity = Arc::new(cross.in_region("us-east-1"));
        StsSpokes::new(sts, base(), HUB.into(), ROLE.into(), cross, identity)
    }

    fn partition_of(c: &SiteClients) -> [String; 4] {
        let name = |p: Option<&aws_sdk_dynamodb::config::retry::RetryPartition>| {
            p.map(ToString::to_string).unwrap_or_default()
        };
        [
            name(c.dynamodb.config().retry_partition()),
            name(c.s3.config().retry_partition()),
            name(c.kms.config().retry_partition()),
            name(c.iam.config().retry_partition()),
        ]
    }

    #[test]
    fn every_spoke_client_has_a_retry_partition_of_its_own_account_and_region() {
        let a_west = site_clients(&base(), MEMBER_A, "us-west-2", true);
        assert_eq!(
            partition_of(&a_west),
            [
                "dynamodb-222233334444-us-west-2",
                "s3-222233334444-us-west-2",
                "kms-222233334444-us-west-2",
                "iam-222233334444-us-west-2"
            ]
        );
        let b_west = site_clients(&base(), MEMBER_B, "us-west-2", true);
        let a_east = site_clients(&base(), MEMBER_A, "us-east-1", true);
        for other in [partition_of(&b_west), partition_of(&a_east)] {
            for (x, y) in partition_of(&a_west).iter().zip(other.iter()) {
                assert_ne!(x, y);
            }
        }
    }

    fn assumed(account: &'static str) -> aws_smithy_mocks::Rule {
        mock!(Client::assume_role)
            .match_requests(move |r| {
                r.role_arn() == Some(&format!("arn:aws:iam::{account}:role/{ROLE}"))
                    && r.duration_seconds() == Some(3600)
            })
            .then_output(move || {
                AssumeRoleOutput::builder()
                    .credentials(
                        StsCredentials::builder()
                            .access_key_id("ASIAEXAMPLE")
                            .secret_access_key("secret")
                            .session_token("token")
                            .expiration(aws_smithy_types::DateTime::from_secs(4_000_000_000))
                            .build()
                            .unwrap(),
                    )
                    .assumed_role_user(
                        AssumedRoleUser::builder()
                            .assumed_role_id("AROAEXAMPLE:ddb-export-remediator-hub")
                            .arn(format!(
                                "arn:aws:sts::{account}:assumed-role/{ROLE}/ddb-export-remediator-hub"
                            ))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
    }

    #[tokio::test]
    async fn a_member_site_assumes_the_spoke_role_once_per_account_and_knows_who_it_is() {
        // Sequential: one AssumeRole answer only, so a second call for A would fail the test.
        let rule = assumed(MEMBER_A);
        let s = spokes(mock_client!(aws_sdk_sts, RuleMode::Sequential, [&rule]));
        let west = s.site(MEMBER_A, "us-west-2").await.unwrap();
        assert_eq!(
            west.role_arn.as_deref(),
            Some("arn:aws:iam::222233334444:role/ddb-export-remediator-spoke")
        );
        let (account, arn) = west.identity.whoami().await.unwrap();
        assert_eq!(account, MEMBER_A);
        assert!(
            arn.starts_with("arn:aws:sts::222233334444:assumed-role/ddb-export-remediator-spoke/")
        );
        // Another Region of the same account reuses the session.
        let east = s.site(MEMBER_A, "us-east-1").await.unwrap();
        assert_eq!(east.identity.whoami().await.unwrap().0, MEMBER_A);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_accounts_regions_asked_together_share_one_assume_role() {
        let rule = assumed(MEMBER_A);
        let s = spokes(mock_client!(aws_sdk_sts, RuleMode::Sequential, [&rule]));
        let (east, west) =
            tokio::join!(s.site(MEMBER_A, "us-east-1"), s.site(MEMBER_A, "us-west-2"));
        assert!(east.is_ok() && west.is_ok());
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_hubs_own_account_in_another_region_needs_no_role() {
        let s = spokes(mock_client!(aws_sdk_sts, RuleMode::Sequential, []));
        let site = s.site(HUB, "us-west-2").await.unwrap();
        assert_eq!(site.role_arn, None);
    }

    fn denied() -> aws_smithy_mocks::Rule {
        // The wire answer of STS's query protocol for a trust policy that does not admit the hub.
        mock!(Client::assume_role).then_http_response(|| {
            HttpResponse::new(
                StatusCode::try_from(403).unwrap(),
                SdkBody::from(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
                     <Type>Sender</Type><Code>AccessDenied</Code><Message>User: \
                     arn:aws:sts::999988887777:assumed-role/hub/fn is not authorized to perform: \
                     sts:AssumeRole on resource: arn:aws:iam::222233334444:role/\
                     ddb-export-remediator-spoke</Message></Error><RequestId>r</RequestId>\
                     </ErrorResponse>",
                ),
            )
        })
    }

    #[tokio::test]
    async fn a_denied_assume_role_is_an_access_denied_naming_sts() {
        let rule = denied();
        let s = spokes(mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]));
        let err = s.site(MEMBER_A, "us-west-2").await.err().unwrap();
        assert_eq!(err.kind, crate::error::AwsErrorKind::AccessDenied);
        assert_eq!(err.operation, "sts:AssumeRole");
        assert!(err.reason().contains("not authorized"), "{}", err.reason());
    }

    #[tokio::test]
    async fn an_incident_in_a_member_whose_role_is_denied_gets_unknown_facts_and_a_report() {
        use crate::fakes::*;
        let rule = denied();
        let world = world_with_table();
        let config = crate::Config {
            hub_account_id: Some(HUB.into()),
            member_role_name: Some(ROLE.into()),
            ledger_table_name: Some("ledger".into()),
            ..crate::Config::default()
        };
        let mut app = app(&world, config);
        app.spokes = Some(Arc::new(spokes(mock_client!(
            aws_sdk_sts,
            RuleMode::MatchAny,
            [&rule]
        ))));
        let export =
            "arn:aws:dynamodb:us-west-2:222233334444:table/orders/export/01700000000000-a1b2c3d4";
        let event = json!({
            "version": "0", "id": "e1", "detail-type": "DynamoDB Export Failed",
            "source": "ddb-export-remediator", "account": HUB, "region": "us-east-1",
            "time": "2026-12-02T00:00:00Z", "resources": [],
            "detail": {"exportArn": export, "accountId": MEMBER_A, "region": "us-west-2",
                       "s3Bucket": "amzn-s3-demo-bucket", "failureCode": "S3AccessDenied"}
        });
        // THEN the invocation succeeds, with a report that names the site and the refusal
        let result = app.handle(&event, None).await.unwrap();
        let out = serde_json::to_value(&result).unwrap();
        assert_eq!(out["incident"]["account"], MEMBER_A, "{out:#}");
        assert_eq!(out["incident"]["region"], "us-west-2");
        assert_eq!(out["incident"]["spoke"]["assumed"], false);
        assert!(out["incident"]["spoke"]["error"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"));
        // AND every fact read in A is Unknown, nothing was changed, and no call reached A
        let facts: Vec<&str> = result
            .findings
            .iter()
            .flat_map(|f| f.evidence.iter().map(|e| e.fact.as_str()))
            .collect();
        assert!(!facts.is_empty(), "{out:#}");
        assert!(
            facts
                .iter()
                .any(|f| f.contains("Unknown") || f.contains("unknown")),
            "{facts:#?}"
        );
        assert!(result.applied.is_empty(), "{out:#}");
        assert!(result.mode <= crate::model::Mode::Plan);
        assert!(world.read().unwrap().started.is_empty());
        // AND the metric for an unreachable spoke is emitted
        let docs = crate::metrics::documents(&result, 0, 1);
        assert!(
            docs.iter()
                .any(|d| d.get("SpokeUnreachable") == Some(&json!(1))),
            "{docs:#?}"
        );
    }
}
