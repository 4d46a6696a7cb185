//! Organizations adapter: the organization's member accounts (owner candidates), and the
//! service control policies on an account's path (through ORG_ROLE_ARN when set).

use super::{classify, missing, StsCrossAccount};
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

/// The targets above `account_id`, nearest first, up to and including the root.
async fn parents(client: &Client, account_id: &str) -> PortResult<Vec<String>> {
    const OP: &str = "organizations:ListParents";
    let mut out = Vec::new();
    let mut child = account_id.to_string();
    for _ in 0..MAX_DEPTH {
        let answer = client
            .list_parents()
            .child_id(&child)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let parent = answer
            .parents()
            .first()
            .ok_or_else(|| missing(OP, "Parents"))?;
        let id = parent.id().ok_or_else(|| missing(OP, "Parent.Id"))?;
        out.push(id.to_string());
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
        // One round for the organization, the path's first step and the account's own SCPs;
        // then the rest of the path; then the policies of the levels above the account.
        let (org, path, own) = tokio::join!(
            client.describe_organization().send(),
            parents(&client, account_id),
            attached(&client, account_id)
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
            let path = path?;
            let above = try_join_all(path.iter().map(|t| attached(&client, t))).await?;
            let mut levels = vec![ScpLevel {
                target: account_id.to_string(),
                policies: own?,
            }];
            levels.extend(
                path.into_iter()
                    .zip(above)
                    .map(|(target, policies)| ScpLevel { target, policies }),
            );
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
}
