//! KMS adapter: key metadata and key policy.

use super::{classify, missing};
use crate::model::{KeyGrant, KeyInfo};
use crate::ports::{KeyPolicyStore, PortResult};
use async_trait::async_trait;
use aws_sdk_kms::operation::describe_key::DescribeKeyError;
use aws_sdk_kms::operation::get_key_policy::GetKeyPolicyError;
use aws_sdk_kms::operation::list_grants::ListGrantsError;
use aws_sdk_kms::Client;

pub struct KmsKeys {
    client: Client,
}

impl KmsKeys {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// GetKeyPolicy and ListGrants take no alias: an alias is resolved with DescribeKey first.
    /// `None` when the alias names no key.
    async fn without_alias(&self, key_id: &str) -> PortResult<Option<String>> {
        if is_alias(key_id) {
            Ok(self.describe_key(key_id).await?.map(|info| info.arn))
        } else {
            Ok(Some(key_id.to_string()))
        }
    }
}

fn is_alias(key_id: &str) -> bool {
    key_id.starts_with("alias/") || key_id.contains(":alias/")
}

#[async_trait]
impl KeyPolicyStore for KmsKeys {
    #[tracing::instrument(skip(self))]
    async fn describe_key(&self, key_id: &str) -> PortResult<Option<KeyInfo>> {
        const OP: &str = "kms:DescribeKey";
        match self.client.describe_key().key_id(key_id).send().await {
            Ok(out) => {
                let m = out
                    .key_metadata()
                    .ok_or_else(|| missing(OP, "KeyMetadata"))?;
                Ok(Some(KeyInfo {
                    arn: m
                        .arn()
                        .ok_or_else(|| missing(OP, "KeyMetadata.Arn"))?
                        .to_string(),
                    state: m
                        .key_state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    manager: m
                        .key_manager()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    usage: m
                        .key_usage()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    spec: m
                        .key_spec()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                }))
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeKeyError::NotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn key_policy(&self, key_id: &str) -> PortResult<Option<String>> {
        const OP: &str = "kms:GetKeyPolicy";
        let Some(key) = self.without_alias(key_id).await? else {
            return Ok(None);
        };
        let key = key.as_str();
        match self
            .client
            .get_key_policy()
            .key_id(key)
            .policy_name("default")
            .send()
            .await
        {
            Ok(out) => out
                .policy()
                .map(|p| Some(p.to_string()))
                .ok_or_else(|| missing(OP, "Policy")),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetKeyPolicyError::NotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    /// Pages are read to the end, at most `GRANT_PAGES`.
    #[tracing::instrument(skip(self))]
    async fn grants(&self, key_id: &str) -> PortResult<Option<Vec<KeyGrant>>> {
        const OP: &str = "kms:ListGrants";
        const GRANT_PAGES: usize = 10;
        let Some(key) = self.without_alias(key_id).await? else {
            return Ok(None);
        };
        let key = key.as_str();
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..GRANT_PAGES {
            let page = match self
                .client
                .list_grants()
                .key_id(key)
                .limit(100)
                .set_marker(marker.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e)
                    if matches!(
                        e.as_service_error(),
                        Some(ListGrantsError::NotFoundException(_))
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(classify(OP, e)),
            };
            for g in page.grants() {
                out.push(KeyGrant {
                    grant_id: g.grant_id().unwrap_or_default().to_string(),
                    grantee: g.grantee_principal().unwrap_or_default().to_string(),
                    operations: g
                        .operations()
                        .iter()
                        .map(|o| o.as_str().to_string())
                        .collect(),
                    constrained: g.constraints().is_some_and(|c| {
                        c.encryption_context_subset().is_some_and(|m| !m.is_empty())
                            || c.encryption_context_equals().is_some_and(|m| !m.is_empty())
                    }),
                });
            }
            match page.next_marker().filter(|_| page.truncated()) {
                Some(m) => marker = Some(m.to_string()),
                None => return Ok(Some(out)),
            }
        }
        Err(missing(OP, "the last page within 10 pages of grants"))
    }

    #[tracing::instrument(skip(self, policy), fields(bytes = policy.len()))]
    async fn put_key_policy(&self, key_arn: &str, policy: &str) -> PortResult<()> {
        const OP: &str = "kms:PutKeyPolicy";
        self.client
            .put_key_policy()
            .key_id(key_arn)
            .policy_name("default")
            .policy(policy)
            // The safety check refuses a policy that would lock the caller out; never skip it.
            .bypass_policy_lockout_safety_check(false)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsErrorKind;
    use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
    use aws_sdk_kms::operation::get_key_policy::GetKeyPolicyOutput;
    use aws_sdk_kms::types::error::NotFoundException;
    use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeySpec, KeyState, KeyUsageType};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn metadata() -> KeyMetadata {
        KeyMetadata::builder()
            .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
            .arn(KEY)
            .key_state(KeyState::PendingDeletion)
            .key_manager(KeyManagerType::Customer)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .key_spec(KeySpec::SymmetricDefault)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn describe_key_maps_state_and_not_found() {
        let found = mock!(Client::describe_key)
            .match_requests(|r| r.key_id() == Some(KEY))
            .then_output(|| {
                DescribeKeyOutput::builder()
                    .key_metadata(metadata())
                    .build()
            });
        let gone = mock!(Client::describe_key).then_error(|| {
            DescribeKeyError::NotFoundException(NotFoundException::builder().build())
        });
        let kms = KmsKeys::new(mock_client!(
            aws_sdk_kms,
            RuleMode::Sequential,
            [&found, &gone]
        ));
        let info = kms.describe_key(KEY).await.unwrap().unwrap();
        assert_eq!(
            (info.state.as_str(), info.manager.as_str()),
            ("PendingDeletion", "CUSTOMER")
        );
        assert_eq!(info.spec, "SYMMETRIC_DEFAULT");
        assert_eq!(kms.describe_key(KEY).await.unwrap(), None);
    }

    #[tokio::test]
    async fn grants_are_read_page_by_page_with_their_constraints() {
        use aws_sdk_kms::operation::list_grants::ListGrantsOutput;
        use aws_sdk_kms::types::{GrantConstraints, GrantListEntry, GrantOperation};
        let first = mock!(Client::list_grants)
            .match_requests(|r| r.key_id() == Some(KEY) && r.marker().is_none())
            .then_output(|| {
                ListGrantsOutput::builder()
                    .grants(
                        GrantListEntry::builder()
                            .grant_id("g1")
                            .grantee_principal("arn:aws:iam::111122223333:role/Exporter")
                            .operations(GrantOperation::GenerateDataKey)
                            .operations(GrantOperation::Decrypt)
                            .build(),
                    )
                    .truncated(true)
                    .next_marker("m1")
                    .build()
            });
        let second = mock!(Client::list_grants)
            .match_requests(|r| r.marker() == Some("m1"))
            .then_output(|| {
                ListGrantsOutput::builder()
                    .grants(
                        GrantListEntry::builder()
                            .grant_id("g2")
                            .grantee_principal("dynamodb.amazonaws.com")
                            .operations(GrantOperation::Decrypt)
                            .constraints(
                                GrantConstraints::builder()
                                    .encryption_context_subset("aws:dynamodb:tableName", "orders")
                                    .build(),
                            )
                            .build(),
                    )
                    .truncated(false)
                    .build()
            });
        let gone = mock!(Client::list_grants).then_error(|| {
            ListGrantsError::NotFoundException(NotFoundException::builder().build())
        });
        let kms = KmsKeys::new(mock_client!(
            aws_sdk_kms,
            RuleMode::Sequential,
            [&first, &second, &gone]
        ));
        let grants = kms.grants(KEY).await.unwrap().unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(grants[0].operations, vec!["GenerateDataKey", "Decrypt"]);
        assert!(!grants[0].constrained && grants[1].constrained);
        assert_eq!(kms.grants(KEY).await.unwrap(), None);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn key_policy_resolves_an_alias_and_asks_for_the_default_policy() {
        let describe = mock!(Client::describe_key)
            .match_requests(|r| r.key_id() == Some("alias/exports"))
            .then_output(|| {
                DescribeKeyOutput::builder()
                    .key_metadata(metadata())
                    .build()
            });
        let policy = mock!(Client::get_key_policy)
            .match_requests(|r| r.key_id() == Some(KEY) && r.policy_name() == Some("default"))
            .then_output(|| {
                GetKeyPolicyOutput::builder()
                    .policy("{\"Statement\":[]}")
                    .build()
            });
        let kms = KmsKeys::new(mock_client!(
            aws_sdk_kms,
            RuleMode::Sequential,
            [&describe, &policy]
        ));
        assert!(kms.key_policy("alias/exports").await.unwrap().is_some());
        assert_eq!((describe.num_calls(), policy.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn cross_account_key_policy_read_is_access_denied() {
        let denied = mock!(Client::get_key_policy).then_error(|| {
            GetKeyPolicyError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("User is not authorized to perform: kms:GetKeyPolicy")
                    .build(),
            )
        });
        let kms = KmsKeys::new(mock_client!(aws_sdk_kms, [&denied]));
        let err = kms.key_policy(KEY).await.unwrap_err();
        assert_eq!(err.kind, AwsErrorKind::AccessDenied);
    }

    #[tokio::test]
    async fn put_key_policy_never_bypasses_the_lockout_check_and_reports_malformed() {
        let ok = mock!(Client::put_key_policy)
            .match_requests(|r| {
                r.key_id() == Some(KEY)
                    && r.policy_name() == Some("default")
                    && r.bypass_policy_lockout_safety_check() == Some(false)
            })
            .then_output(|| {
                aws_sdk_kms::operation::put_key_policy::PutKeyPolicyOutput::builder().build()
            });
        let malformed = mock!(Client::put_key_policy).then_error(|| {
            aws_sdk_kms::operation::put_key_policy::PutKeyPolicyError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("MalformedPolicyDocumentException")
                    .message("Policy contains a statement with one or more invalid principals.")
                    .build(),
            )
        });
        let kms = KmsKeys::new(mock_client!(
            aws_sdk_kms,
            RuleMode::Sequential,
            [&ok, &malformed]
        ));
        kms.put_key_policy(KEY, "{}").await.unwrap();
        let err = kms.put_key_policy(KEY, "{}").await.unwrap_err();
        assert!(
            err.message
                .contains("MalformedPolicyDocumentException: Policy contains"),
            "{err:?}"
        );
        assert_eq!(ok.num_calls(), 1);
    }
}
