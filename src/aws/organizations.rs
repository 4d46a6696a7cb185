//! Organizations adapter: the organization's member accounts (owner candidates), and the
//! service control policies on an account's path (through ORG_ROLE_ARN when set).

use super::{classify, missing, task_ended, StsCrossAccount};
use crate::ports::{AccountDirectory, NamedPolicy, PortResult, ScpLevel, ScpPath};
use async_trait::async_trait;
use aws_sdk_organizations::types::{ParentType, PolicyType};
use aws_sdk_organizations::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures_util::future::{join_all, try_join_all, BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::sync::Arc;
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

    async fn list_account_ids(&self, client: &Client) -> PortResult<Vec<String>> {
        const OP: &str = "organizations:ListAccounts";
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let out = client
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
        Ok(ids)
    }

    fn keep_ids(&self, ids: Vec<String>) -> Vec<String> {
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((Instant::now(), ids.clone()));
        }
        ids
    }
}

/// ListAccounts pages read at most (20 accounts a page).
const MAX_PAGES: usize = 250;

/// The AWS managed SCP attached by default to every root, OU and account. Its id is fixed (a
/// customer policy's id has no capitals) and its document cannot be edited: no need to read it.
const FULL_AWS_ACCESS: &str = "p-FullAWSAccess";
const FULL_AWS_ACCESS_DOCUMENT: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// The documents of the organization's first SCPs, read while the walk goes on up: a level's
/// policies are then known as soon as its list is, not one round after it. Shared by the levels'
/// reads; a policy it lacks (past the first `CATALOG_MAX`, or its read failed) is read alone.
type Catalog = Shared<BoxFuture<'static, Arc<HashMap<String, String>>>>;

/// Whether the account walked is a member account (SCPs restrict it), once DescribeOrganization
/// has said; the walk's reads ahead wait for it.
type Gate = tokio::sync::watch::Receiver<Option<bool>>;

async fn is_member(mut gate: Gate) -> bool {
    matches!(
        gate.wait_for(Option::is_some).await.as_deref(),
        Ok(Some(true))
    )
}

/// Most SCPs read ahead: the first page of ListPolicies (at most 20), capped so that a cold walk
/// stays within a burst Organizations answers without throttling.
const CATALOG_MAX: usize = 10;

fn catalog(client: &Client, member: Gate) -> Catalog {
    let client = client.clone();
    let read = Task::spawn(async move {
        // Any failure (a policy role without organizations:ListPolicies) leaves it empty: the
        // walk then reads each policy it meets, as it would without it.
        let Ok(page) = client
            .list_policies()
            .filter(PolicyType::ServiceControlPolicy)
            .send()
            .await
        else {
            return HashMap::new();
        };
        if !is_member(member).await {
            return HashMap::new();
        }
        let ids = page
            .policies()
            .iter()
            .filter_map(|p| p.id())
            .filter(|id| *id != FULL_AWS_ACCESS)
            .take(CATALOG_MAX);
        let read = join_all(ids.map(|id| {
            let client = &client;
            async move { Some((id.to_string(), describe(client, id).await.ok()?)) }
        }));
        read.await.into_iter().flatten().collect()
    });
    async move { Arc::new(read.join().await.unwrap_or_default()) }
        .boxed()
        .shared()
}

async fn describe(client: &Client, id: &str) -> PortResult<String> {
    const OP: &str = "organizations:DescribePolicy";
    let out = client
        .describe_policy()
        .policy_id(id)
        .send()
        .await
        .map_err(|e| classify(OP, e))?;
    out.policy()
        .and_then(|p| p.content())
        .map(str::to_string)
        .ok_or_else(|| missing(OP, "Policy.Content"))
}

/// The SCPs attached to one target, with their documents.
async fn attached(
    client: &Client,
    target: &str,
    catalog: &Catalog,
) -> PortResult<Vec<NamedPolicy>> {
    const LIST: &str = "organizations:ListPoliciesForTarget";
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
        let document = if id == FULL_AWS_ACCESS {
            FULL_AWS_ACCESS_DOCUMENT.to_string()
        } else {
            match catalog.clone().await.get(&id) {
                Some(document) => document.clone(),
                None => describe(client, &id).await?,
            }
        };
        PortResult::Ok(NamedPolicy {
            name: format!("{name} ({id})"),
            document,
        })
    }))
    .await
}

/// The targets from `account_id` up to and including the root, nearest first, each with a
/// task already reading its SCPs: a level's policies are read while the walk goes on up. The
/// root (an organization has one) and its policies are read from the start, beside the first
/// ListParents, so the last level costs no round of its own.
async fn walk(
    client: &Client,
    account_id: &str,
    member: Gate,
) -> PortResult<Vec<(String, PolicyRead)>> {
    const OP: &str = "organizations:ListParents";
    let catalog = catalog(client, member.clone());
    let read = |target: &str| {
        let (client, target, catalog) = (client.clone(), target.to_string(), catalog.clone());
        Task::spawn(async move { attached(&client, &target, &catalog).await })
    };
    let root = {
        let (client, catalog) = (client.clone(), catalog.clone());
        Task::spawn(async move {
            let roots = client.list_roots().send().await.ok()?;
            let id = roots.roots().first()?.id()?.to_string();
            if !is_member(member).await {
                return None;
            }
            let policies = attached(&client, &id, &catalog).await;
            Some((id, policies))
        })
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
        if parent.r#type() == Some(&ParentType::Root) {
            // The root read ahead; read again only if that failed or named another root.
            let (client, catalog, target) = (client.clone(), catalog.clone(), id.to_string());
            let level = Task::spawn(async move {
                match root.join().await {
                    Ok(Some((root, policies))) if root == target => policies,
                    _ => attached(&client, &target, &catalog).await,
                }
            });
            out.push((id.to_string(), level));
            return Ok(out);
        }
        out.push((id.to_string(), read(id)));
        child = id.to_string();
    }
    Err(missing(
        OP,
        "a root within the deepest nesting Organizations allows",
    ))
}

/// One level's SCP read.
type PolicyRead = Task<PortResult<Vec<NamedPolicy>>>;

/// A read in a task of its own, so that it goes on while the walk does; dropped unread (the
/// management account's walk, a walk or organization that failed), it stops.
struct Task<T>(tokio::task::JoinHandle<T>);

impl<T: Send + 'static> Task<T> {
    fn spawn(read: impl std::future::Future<Output = T> + Send + 'static) -> Self {
        Self(tokio::spawn(read))
    }

    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl AccountDirectory for Organizations {
    #[tracing::instrument(skip(self))]
    async fn account_ids(&self) -> PortResult<Vec<String>> {
        let cached = self.cache.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(at, _)| at.elapsed() < REUSE)
                .map(|(_, ids)| ids.clone())
        });
        if let Some(ids) = cached {
            return Ok(ids);
        }
        // ListAccounts answers only in the management account or a delegated administrator
        // (AWS Organizations API Reference, "ListAccounts",
        // https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html):
        // from a member account the owner lookup asks through ORG_ROLE_ARN, else (or when that
        // role may not list accounts) with the function's own role.
        if self.policy_role.is_some() {
            if let Ok(ids) = self.list_account_ids(&self.policy_client().await?).await {
                return Ok(self.keep_ids(ids));
            }
        }
        let ids = self.list_account_ids(&self.client).await?;
        Ok(self.keep_ids(ids))
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
        // The reads ahead (the root's and the organization's policies) wait for the answer
        // (it comes in the round of their lists): none for the management account.
        let (member, gate) = tokio::sync::watch::channel(None);
        let org = async {
            let org = client.describe_organization().send().await;
            let management = org
                .as_ref()
                .ok()
                .and_then(|o| o.organization()?.master_account_id());
            let _ = member.send(Some(management.is_some_and(|m| m != account_id)));
            org
        };
        let (org, walked) = tokio::join!(org, walk(&client, account_id, gate));
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
                    policies: read.join().await.unwrap_or_else(|e| {
                        Err(task_ended("organizations:ListPoliciesForTarget", e))
                    })?,
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
    use aws_sdk_organizations::operation::list_policies::{ListPoliciesError, ListPoliciesOutput};
    use aws_sdk_organizations::operation::list_policies_for_target::ListPoliciesForTargetOutput;
    use aws_sdk_organizations::operation::list_roots::{ListRootsError, ListRootsOutput};
    use aws_sdk_organizations::types::error::AwsOrganizationsNotInUseException;
    use aws_sdk_organizations::types::{Organization, Parent, PolicySummary, Root};

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

    const OU: &str = "ou-ab12-34cd56ef";
    const ROOT: &str = "r-ab12";
    const DENY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:*","Resource":"*"}]}"#;

    /// A member account under one OU, whose SCP `p-ab12cd34` denies KMS; FullAWSAccess on every
    /// level. The rules: (account and root lists, the OU's list, DescribePolicy of any policy).
    fn member_under_an_ou() -> Vec<aws_smithy_mocks::Rule> {
        let listed = mock!(Client::list_policies_for_target)
            .match_requests(|r| {
                r.filter() == Some(&PolicyType::ServiceControlPolicy) && r.target_id() != Some(OU)
            })
            .then_output(|| {
                ListPoliciesForTargetOutput::builder()
                    .policies(full_aws_access())
                    .build()
            });
        let listed_ou = mock!(Client::list_policies_for_target)
            .match_requests(|r| r.target_id() == Some(OU))
            .then_output(|| {
                ListPoliciesForTargetOutput::builder()
                    .policies(full_aws_access())
                    .policies(summary("p-ab12cd34", "NoKms"))
                    .build()
            });
        let described = mock!(Client::describe_policy)
            .match_requests(|r| r.policy_id() != Some(FULL_AWS_ACCESS))
            .then_output(|| {
                DescribePolicyOutput::builder()
                    .policy(
                        aws_sdk_organizations::types::Policy::builder()
                            .content(DENY)
                            .build(),
                    )
                    .build()
            });
        vec![listed, listed_ou, described]
    }

    fn summary(id: &'static str, name: &'static str) -> PolicySummary {
        PolicySummary::builder().id(id).name(name).build()
    }

    fn the_member_path(path: &ScpPath) {
        assert!(!path.management_account);
        let targets: Vec<&str> = path.levels.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, [ACCOUNT, OU, ROOT]);
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
    }

    #[tokio::test]
    async fn a_member_accounts_path_is_walked_to_the_root_with_each_levels_scps() {
        let org = organization("999988887777");
        let to_ou = parent(ACCOUNT, OU, ParentType::OrganizationalUnit);
        let to_root = parent(OU, ROOT, ParentType::Root);
        // The root and the organization's SCPs are listed from the start (two rounds sooner).
        let roots = mock!(Client::list_roots).then_output(|| {
            ListRootsOutput::builder()
                .roots(Root::builder().id(ROOT).build())
                .build()
        });
        let all = mock!(Client::list_policies)
            .match_requests(|r| r.filter() == Some(&PolicyType::ServiceControlPolicy))
            .then_output(|| {
                ListPoliciesOutput::builder()
                    .policies(full_aws_access())
                    .policies(summary("p-ab12cd34", "NoKms"))
                    .build()
            });
        let [listed, listed_ou, described] = <[_; 3]>::try_from(member_under_an_ou()).unwrap();
        let orgs = Organizations::new(mock_client!(
            aws_sdk_organizations,
            RuleMode::MatchAny,
            [&org, &to_ou, &to_root, &roots, &all, &listed_ou, &listed, &described]
        ));
        let path = orgs.scp_path(ACCOUNT).await.unwrap().unwrap();
        the_member_path(&path);
        // Each level listed once (the root's read ahead is the one used), and the OU's SCP read
        // once, ahead; the AWS managed policy never (its document is fixed).
        assert_eq!(listed.num_calls() + listed_ou.num_calls(), 3);
        assert_eq!(described.num_calls(), 1);
        // A warm container asks again only after REUSE.
        orgs.scp_path(ACCOUNT).await.unwrap();
        assert_eq!(org.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_policy_role_that_may_not_list_roots_and_policies_still_walks_the_whole_path() {
        let org = organization("999988887777");
        let to_ou = parent(ACCOUNT, OU, ParentType::OrganizationalUnit);
        let to_root = parent(OU, ROOT, ParentType::Root);
        let denied = || {
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("AccessDeniedException")
                .build()
        };
        let roots = mock!(Client::list_roots).then_error(move || {
            ListRootsError::AccessDeniedException(
                AccessDeniedException::builder().meta(denied()).build(),
            )
        });
        let all = mock!(Client::list_policies).then_error(move || {
            ListPoliciesError::AccessDeniedException(
                AccessDeniedException::builder().meta(denied()).build(),
            )
        });
        let [listed, listed_ou, described] = <[_; 3]>::try_from(member_under_an_ou()).unwrap();
        let orgs = Organizations::new(mock_client!(
            aws_sdk_organizations,
            RuleMode::MatchAny,
            [&org, &to_ou, &to_root, &roots, &all, &listed_ou, &listed, &described]
        ));
        let path = orgs.scp_path(ACCOUNT).await.unwrap().unwrap();
        the_member_path(&path);
        assert_eq!((roots.num_calls(), all.num_calls()), (1, 1));
        assert_eq!(listed.num_calls() + listed_ou.num_calls(), 3);
        assert_eq!(described.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_policy_not_read_ahead_is_read_when_its_level_names_it() {
        // GIVEN the first page of the organization's SCPs lists only another policy
        let org = organization("999988887777");
        let to_ou = parent(ACCOUNT, OU, ParentType::OrganizationalUnit);
        let to_root = parent(OU, ROOT, ParentType::Root);
        let roots = mock!(Client::list_roots).then_output(|| {
            ListRootsOutput::builder()
                .roots(Root::builder().id(ROOT).build())
                .build()
        });
        let all = mock!(Client::list_policies).then_output(|| {
            ListPoliciesOutput::builder()
                .policies(summary("p-zz99yy88", "Elsewhere"))
                .next_token("more")
                .build()
        });
        let [listed, listed_ou, described] = <[_; 3]>::try_from(member_under_an_ou()).unwrap();
        let orgs = Organizations::new(mock_client!(
            aws_sdk_organizations,
            RuleMode::MatchAny,
            [&org, &to_ou, &to_root, &roots, &all, &listed_ou, &listed, &described]
        ));
        // WHEN the path is walked THEN the OU's policy is read on its own: the path is whole
        let path = orgs.scp_path(ACCOUNT).await.unwrap().unwrap();
        the_member_path(&path);
        assert_eq!(
            described.num_calls(),
            2,
            "p-zz99yy88 ahead, p-ab12cd34 alone"
        );
    }

    #[tokio::test]
    async fn the_organizations_policies_are_read_ahead_only_for_a_member_account() {
        let all = mock!(Client::list_policies).then_output(|| {
            ListPoliciesOutput::builder()
                .policies(full_aws_access())
                .policies(summary("p-ab12cd34", "NoKms"))
                .build()
        });
        let [_, _, described] = <[_; 3]>::try_from(member_under_an_ou()).unwrap();
        let client = mock_client!(
            aws_sdk_organizations,
            RuleMode::MatchAny,
            [&all, &described]
        );
        for (member, read) in [(false, 0), (true, 1)] {
            let (said, gate) = tokio::sync::watch::channel(None);
            let ahead = catalog(&client, gate);
            said.send(Some(member)).unwrap();
            let documents = ahead.await;
            assert_eq!(documents.len(), read, "member: {member}");
        }
        // The management account's list cost one ListPolicies; its policies were not read.
        assert_eq!((all.num_calls(), described.num_calls()), (2, 1));
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
