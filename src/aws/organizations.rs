//! Organizations adapter: the organization's member accounts (owner candidates).

use super::{classify, missing};
use crate::ports::{AccountDirectory, PortResult};
use async_trait::async_trait;
use aws_sdk_organizations::Client;
use std::time::{Duration, Instant};

pub struct Organizations {
    client: Client,
    /// The account list, reused by a warm container for `REUSE`.
    cache: std::sync::Mutex<Option<(Instant, Vec<String>)>>,
}

const REUSE: Duration = Duration::from_secs(300);

impl Organizations {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: std::sync::Mutex::new(None),
        }
    }
}

/// ListAccounts pages read at most (20 accounts a page).
const MAX_PAGES: usize = 250;

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
