//! Organizations adapter: the organization's member accounts (owner candidates), and the
//! service control policies on an account's path (through ORG_ROLE_ARN when set).

use super::{classify, missing, task_ended, StsCrossAccount};
use crate::ports::{AccountDirectory, NamedPolicy, PortResult, ScpLevel, ScpPath};
use async_trait::async_trait;
use aws_sdk_organizations::types::{ParentType, PolicyType};
use aws_sdk_organizations::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures_util::future::try_join_all;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct Organizations {
    client: Client,
    /// The role that may read the organization's policies, and how to assume it.
    policy_role: Option<(StsCrossAccount, String)>,
    /// The account list, reused by a warm container for `REUSE`.
    cache: std::sync::Mutex<Option<(Instant, Vec<String>)>>,
    /// SCP paths by account, reused likewise.
    scp_cache: std::sync::Mutex<HashMap<String, (Instant, Option<ScpPath>)>>,
}

const REUSE: Duration = Duration::from_secs(300);
/// OUs nest at most five deep under the root; a longer walk is a defect, not an organization.
const MAX_DEPTH: usize = 8;

impl Organizations {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            policy_role: None,
            cache: std::sync::Mutex::new(None),
            scp_cache: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Reads policies as `role_arn` (ORG_ROLE_ARN: the management or delegated-admin account).
    pub fn with_policy_role(mut self, sts: StsCrossAccount, role_arn: String) -> Self {
        self.policy_role = Some((sts, role_arn));
        self
    }

    async fn policy_client(&self) -> PortResult<Client> {
        match &self.policy_role {
            Some((sts, role)) => Ok(Client::new(&sts.config_as(role).await?)),
            None => Ok(self.client.clone()),
        }
    }
}

/// ListAccounts pages read at most (20 accounts a page).
const MAX_PAGES: usize = 250;

/// The AWS managed SCP attached by default to every root, OU and account. Its id is fixed (a
/// customer policy's id has no capitals) and its document cannot be edited: no need to read it.
const FULL_AWS_ACCESS: &str = "p-FullAWSAccess";
const FULL_AWS_ACCESS_DOCUMENT: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// The SCPs attached to one target, with their documents.
async fn attached(client: &Client, target: &str) -> PortResult<Vec<NamedPolicy>> {
    const LIST: &str = "organizations:ListPoliciesForTarget";
    const DESCRIBE: &str = "organizations:DescribePolicy";
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let out = client
            .list_policies_for_target()
            .target_id(target)
            .filter(PolicyType::ServiceControlPolicy)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| classify(LIST, e))?;
        for p in out.policies() {
            let id = p.id().ok_or_else(|| missing(LIST, "PolicySummary.Id"))?;
            ids.push((id.to_string(), p.name().unwrap_or(id).to_string()));
        }
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    try_join_all(ids.into_iter().map(|(id, name)| async move {
        if id == FULL_AWS_ACCESS {
            return Ok(NamedPolicy {
                name: format!("{name} ({id})"),
                document: FULL_AWS_ACCESS_DOCUMENT.to_string(),
            });
        }
        let out = client
            .describe_policy()
            .policy_id(&id)
            .send()
            .await
            .map_err(|e| classify(DESCRIBE, e))?;
        let content = out
            .policy()
            .and_then(|p| p.content())
            .ok_or_else(|| missing(DESCRIBE, "Policy.Content"))?;
        PortResult::Ok(NamedPolicy {
            name: format!("{name} ({id})"),
            document: content.to_string(),
        })
    }))
    .await
}

/// The targets from `account_id` up to and including the root, nearest first, each with a
/// task already reading its SCPs: a level's policies are read while the walk goes on up.
async fn walk(client: &Client, account_id: &str) -> PortResult<Vec<(String, PolicyRead)>> {
    const OP: &str = "organizations:ListParents";
    let read = |target: &str| {
        let (client, target) = (client.clone(), target.to_string());
        PolicyRead(tokio::spawn(
            async move { attached(&client, &target).await },
        ))
    };
    let mut out = vec![(account_id.to_string(), read(account_id))];
    let mut child = account_id.to_string();
    for _ in 0..MAX_DEPTH {
        let answer = match client.list_parents().child_id(&child).send().await {
            Ok(a) => a,
            Err(e) => return Err(classify(OP, e)),
        };
        let parent = answer
            .parents()
            .first()
            .ok_or_else(|| missing(OP, "Parents"))?;
        let id = parent.id().ok_or_else(|| missing(OP, "Parent.Id"))?;
        out.push((id.to_string(), read(id)));
        if parent.r#type() == Some(&ParentType::Root) {
            return Ok(out);
        }
        child = id.to_string();
    }
    Err(missing(
        OP,
        "a root within the deepest nesting Organizations allows",
    ))
}

/// One level's SCP read, in a task of its own; dropped unread (the management account's walk,
/// a walk or organization that failed), it stops.
struct PolicyRead(tokio::task::JoinHandle<PortResult<Vec<NamedPolicy>>>);

impl PolicyRead {
    async fn policies(mut self) -> PortResult<Vec<NamedPolicy>> {
        (&mut self.0)
            .await
            .unwrap_or_else(|e| Err(task_ended("organizations:ListPoliciesForTarget", e)))
    }
}

impl Drop for PolicyRead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl AccountDirectory for Organizations {
    #[tracing::instrument(skip(self))]
    async fn account_ids(&self) -> PortResult<Vec<String>> {
        const OP: &str = "organizations:ListAccounts";
        let cached = self.cache.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(at, _)| at.elapsed() < REUSE)
                .map(|(_, ids)| ids.clone())
        });
        if let Some(ids) = cached {
            return Ok(ids);
        }
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .client
                .list_accounts()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            for a in out.accounts() {
                ids.push(a.id().ok_or_else(|| missing(OP, "Account.Id"))?.to_string());
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((Instant::now(), ids.clone()));
        }
        Ok(ids)
    }

    #[tracing::instrument(skip(self))]
    async fn scp_path(&self, account_id: &str) -> PortResult<Option<ScpPath>> {
        const ORG: &str = "organizations:DescribeOrganization";
        let cached = self.scp_cache.lock().ok().and_then(|c| {
            c.get(account_id)
                .filter(|(at, _)| at.elapsed() < REUSE)
                .map(|(_, path)| path.clone())
        });
        if let Some(path) = cached {
            return Ok(path);
        }
        let client = self.policy_client().await?;
        // The organization, the walk up and each level's policies as soon as the level is
        // known, all at once. The management account's walk is dropped unread (SCPs never
        // restrict it): its policy reads cost a request or two, never a round.
        let (org, walked) = tokio::join!(
            client.describe_organization().send(),
            walk(&client, account_id)
        );
        let org = match org {
            Ok(o) => o,
            Err(e) if e.code() == Some("AWSOrganizationsNotInUseException") => {
                self.remember(account_id, None);
                return Ok(None);
            }
            Err(e) => return Err(classify(ORG, e)),
        };
        let management = org
            .organization()
            .and_then(|o| o.master_account_id())
            .ok_or_else(|| missing(ORG, "Organization.MasterAccountId"))?;
        let answer = if management == account_id {
            ScpPath {
                management_account: true,
                levels: Vec::new(),
            }
        } else {
            let mut levels = Vec::new();
            for (target, read) in walked? {
                levels.push(ScpLevel {
                    target,
                    policies: read.policies().await?,
                });
            }
            ScpPath {
                management_account: false,
                levels,
            }
        };
        self.remember(account_id, Some(answer.clone()));
        Ok(Some(answer))
    }
}

impl Organizations {
    fn remember(&self, account_id: &str, path: Option<ScpPath>) {
        if let Ok(mut c) = self.scp_cache.lock() {
            c.insert(account_id.to_string(), (Instant::now(), path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsErrorKind;
    use aws_sdk_organizations::operation::list_accounts::{ListAccountsError, ListAccountsOutput};
    use aws_sdk_organizations::types::error::AccessDeniedException;
    use aws_sdk_organizations::types::Account;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn account_ids_follow_pages() {
        let p1 = mock!(Client::list_accounts)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                ListAccountsOutput::builder()
                    .accounts(Account::builder().id("111122223333").build())
                    .next_token("t2")
                    .build()
            });
        let p2 = mock!(Client::list_accounts)
            .match_requests(|r| r.next_token() == Some("t2"))
            .then_output(|| {
                ListAccountsOutput::builder()
                    .accounts(Account::builder().id("444455556666").build())
                    .build()
            });
        let org = Organizations::new(mock_client!(
            aws_sdk_organizations,
            RuleMode::Sequential,
            [&p1, &p2]
        ));
        assert_eq!(
            org.account_ids().await.unwrap(),
            vec!["111122223333", "444455556666"]
        );
    }

    #[tokio::test]
    async fn member_account_is_denied() {
        let denied = mock!(Client::list_accounts).then_error(|| {
            ListAccountsError::AccessDeniedException(
                AccessDeniedException::builder()
                    .message("no")
                    .meta(
                        aws_smithy_types::error::ErrorMetadata::builder()
                            .code("AccessDeniedException")
                            .build(),
                    )
                    .build(),
            )
        });
        let org = Organizations::new(mock_client!(aws_sdk_organizations, [&denied]));
        assert_eq!(
            org.account_ids().await.unwrap_err().kind,
            AwsErrorKind::AccessDenied
        );
    }

    use aws_sdk_organizations::operation::describe_organization::{
        DescribeOrganizationError, DescribeOrganizationOutput,
    };
    use aws_sdk_organizations::operation::describe_policy::DescribePolicyOutput;
    use aws_sdk_organizations::operation::list_parents::ListParentsOutput;
    use aws_sdk_organizations::operation::list_policies_for_target::ListPoliciesForTargetOutput;
    use aws_sdk_organizations::types::error::AwsOrganizationsNotInUseException;
    use aws_sdk_organizations::types::{Organization, Parent, PolicySummary};

    const ACCOUNT: &str = "111122223333";

    fn organization(management: &'static str) -> aws_smithy_mocks::Rule {
        mock!(Client::describe_organization).then_output(move || {
            DescribeOrganizationOutput::builder()
                .organization(
                    Organization::builder()
                        .master_account_id(management)
                        .build(),
                )
                .build()
        })
    }

    fn parent(child: &'static str, id: &'static str, kind: ParentType) -> aws_smithy_mocks::Rule {
        mock!(Client::list_parents)
            .match_requests(move |r| r.child_id() == Some(child))
            .then_output(move || {
                ListParentsOutput::builder()
                    .parents(Parent::builder().id(id).r#type(kind.clone()).build())
                    .build()
            })
    }

    #[tokio::test]
    async fn the_management_account_reads_no_policies() {
        let org = organization(ACCOUNT);
        let up = parent(ACCOUNT, "r-ab12", ParentType::Root);
        // No ListPoliciesForTarget rule: the walk's policy read fails, and the management
        // account's answer neither waits for it nor depends on it.
        let orgs = Organizations::new(mock_client!(
            aws_sdk_organizations,
            RuleMode::MatchAny,
            [&org, &up]
        ));
        let path = orgs.scp_path(ACCOUNT).await.unwrap().unwrap();
        assert!(path.management_account);
        assert!(path.levels.is_empty());
    }

    fn full_aws_access() -> PolicySummary {
        PolicySummary::builder()
            .id("p-FullAWSAccess")
            .name("FullAWSAccess")
            .build()
    }

    #[tokio::test]
    async fn a_member_accounts_path_is_walked_to_the_root_with_each_levels_scps() {
        let org = organization("999988887777");
        let to_ou = parent(ACCOUNT, "ou-ab12-34cd56ef", ParentType::OrganizationalUnit);
        let to_root = parent("ou-ab12-34cd56ef", "r-ab12", ParentType::Root);
        let listed = mock!(Client::list_policies_for_target)
            .match_requests(|r| r.filter() == Some(&PolicyType::ServiceControlPolicy))
            .then_output(|| {
                ListPoliciesForTargetOutput::builder()
                    .policies(full_aws_access())
                    .build()
            });
        const DENY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:*","Resource":"*"}]}"#;
        let listed_ou = mock!(Client::list_policies_for_target)
            .match_requests(|r| r.target_id() == Some("ou-ab12-34cd56ef"))
            .then_output(|| {
                ListPoliciesForTargetOutput::builder()
                    .policies(full_aws_access())
                    .policies(
                        PolicySummary::builder()
                            .id("p-ab12cd34")
                            .name("NoKms")
                            .build(),
                    )
                    .build()
            });
        // The AWS managed policy is never read: its document is fixed.
        let described = mock!(Client::describe_policy)
            .match_requests(|r| r.policy_id() == Some("p-ab12cd34"))
            .then_output(|| {
                DescribePolicyOutput::builder()
                    .policy(
                        aws_sdk_organizations::types::Policy::builder()
                            .content(DENY)
                            .build(),
                    )
                    .build()
            });
        let orgs = Organizations::new(mock_client!(
            aws_sdk_organizations,
            RuleMode::MatchAny,
            [&org, &to_ou, &to_root, &listed_ou, &listed, &described]
        ));
        let path = orgs.scp_path(ACCOUNT).await.unwrap().unwrap();
        assert!(!path.management_account);
        let targets: Vec<&str> = path.levels.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, [ACCOUNT, "ou-ab12-34cd56ef", "r-ab12"]);
        for level in &path.levels {
            assert_eq!(level.policies[0].name, "FullAWSAccess (p-FullAWSAccess)");
            assert_eq!(level.policies[0].document, FULL_AWS_ACCESS_DOCUMENT);
        }
        let ou = &path.levels[1].policies;
        assert_eq!(ou.len(), 2);
        assert_eq!(
            (ou[1].name.as_str(), ou[1].document.as_str()),
            ("NoKms (p-ab12cd34)", DENY)
        );
        assert_eq!(listed.num_calls() + listed_ou.num_calls(), 3);
        assert_eq!(described.num_calls(), 1);
        // A warm container asks again only after REUSE.
        orgs.scp_path(ACCOUNT).await.unwrap();
        assert_eq!(org.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_account_in_no_organization_has_no_scp_path() {
        let not_in_use = mock!(Client::describe_organization).then_error(|| {
            DescribeOrganizationError::AwsOrganizationsNotInUseException(
                AwsOrganizationsNotInUseException::builder()
                    .meta(
                        aws_smithy_types::error::ErrorMetadata::builder()
                            .code("AWSOrganizationsNotInUseException")
                            .build(),
                    )
                    .build(),
            )
        });
        let up = mock!(Client::list_parents).then_error(|| {
            aws_sdk_organizations::operation::list_parents::ListParentsError::AwsOrganizationsNotInUseException(
                AwsOrganizationsNotInUseException::builder().build(),
            )
        });
        let orgs = Organizations::new(mock_client!(
            aws_sdk_organizations,
            RuleMode::MatchAny,
            [&not_in_use, &up]
        ));
        assert_eq!(orgs.scp_path(ACCOUNT).await.unwrap(), None);
    }
}
