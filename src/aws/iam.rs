//! IAM adapter: a role's inline and attached policies and its permissions boundary.

use super::{classify, missing};
use crate::ports::{IdentityPolicies, NamedPolicy, PortResult, PrincipalPolicies};
use async_trait::async_trait;
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::Client;
use futures_util::future::join_all;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct IamPolicies {
    client: Client,
    /// Managed policy documents by ARN, for a warm container's next diagnoses.
    managed_cache: Mutex<HashMap<String, (Instant, NamedPolicy)>>,
}

/// How long a managed policy's document is reused (a new default version shows after this).
const MANAGED_TTL: Duration = Duration::from_secs(300);

impl IamPolicies {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            managed_cache: Mutex::new(HashMap::new()),
        }
    }

    async fn managed(&self, arn: &str) -> PortResult<NamedPolicy> {
        let cached = self.managed_cache.lock().ok().and_then(|c| {
            c.get(arn)
                .filter(|(at, _)| at.elapsed() < MANAGED_TTL)
                .map(|(_, p)| p.clone())
        });
        if let Some(p) = cached {
            return Ok(p);
        }
        let p = self.fetch_managed(arn).await?;
        if let Ok(mut c) = self.managed_cache.lock() {
            c.insert(arn.to_string(), (Instant::now(), p.clone()));
        }
        Ok(p)
    }

    /// The default version's document of a managed policy.
    async fn fetch_managed(&self, arn: &str) -> PortResult<NamedPolicy> {
        let policy = self
            .client
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| classify("iam:GetPolicy", e))?;
        let p = policy
            .policy()
            .ok_or_else(|| missing("iam:GetPolicy", "Policy"))?;
        let version = p
            .default_version_id()
            .ok_or_else(|| missing("iam:GetPolicy", "DefaultVersionId"))?;
        let out = self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| classify("iam:GetPolicyVersion", e))?;
        let doc = out
            .policy_version()
            .and_then(|v| v.document())
            .ok_or_else(|| missing("iam:GetPolicyVersion", "Document"))?;
        Ok(NamedPolicy {
            name: p.policy_name().unwrap_or(arn).to_string(),
            document: percent_decode(doc),
        })
    }
}

/// Most policies listed per role (IAM allows 10 managed and inline within 10,240 characters).
const MAX_PAGES: usize = 10;

impl IamPolicies {
    /// Every page of a role's inline policy names or attached policy ARNs.
    async fn inline_names(&self, role_name: &str) -> PortResult<Vec<String>> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .list_role_policies()
                .role_name(role_name)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify("iam:ListRolePolicies", e))?;
            names.extend(page.policy_names().iter().cloned());
            match page.marker().filter(|_| page.is_truncated()) {
                Some(m) => marker = Some(m.to_string()),
                None => break,
            }
        }
        Ok(names)
    }

    async fn attached_arns(&self, role_name: &str) -> PortResult<Vec<String>> {
        let mut arns = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .list_attached_role_policies()
                .role_name(role_name)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify("iam:ListAttachedRolePolicies", e))?;
            arns.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string)),
            );
            match page.marker().filter(|_| page.is_truncated()) {
                Some(m) => marker = Some(m.to_string()),
                None => break,
            }
        }
        Ok(arns)
    }

    async fn inline(&self, role_name: &str, name: &str) -> PortResult<NamedPolicy> {
        let p = self
            .client
            .get_role_policy()
            .role_name(role_name)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| classify("iam:GetRolePolicy", e))?;
        Ok(NamedPolicy {
            name: name.to_string(),
            document: percent_decode(p.policy_document()),
        })
    }
}

#[async_trait]
impl IdentityPolicies for IamPolicies {
    /// Three dependent rounds at most: the role and both lists together, then every document
    /// together (a managed policy's GetPolicy, then its GetPolicyVersion).
    #[tracing::instrument(skip(self))]
    async fn role_policies(&self, role_name: &str) -> PortResult<Option<PrincipalPolicies>> {
        let (role, inline, attached) = tokio::join!(
            self.client.get_role().role_name(role_name).send(),
            self.inline_names(role_name),
            self.attached_arns(role_name)
        );
        let role = match role {
            Ok(out) => out,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetRoleError::NoSuchEntityException(_))
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(classify("iam:GetRole", e)),
        };
        let boundary = role
            .role()
            .and_then(|r| r.permissions_boundary())
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string);
        let (inline, attached) = (inline?, attached?);
        let (inline_docs, managed_docs, boundary_doc) = tokio::join!(
            join_all(inline.iter().map(|n| self.inline(role_name, n))),
            join_all(attached.iter().map(|arn| self.managed(arn))),
            async {
                match &boundary {
                    Some(arn) => Some(self.managed(arn).await),
                    None => None,
                }
            }
        );
        let mut out = PrincipalPolicies::default();
        for doc in inline_docs.into_iter().chain(managed_docs) {
            out.identity.push(doc?);
        }
        out.boundary = boundary_doc.transpose()?;
        Ok(Some(out))
    }
}

/// IAM returns policy documents URL-encoded (RFC 3986); plain JSON passes through unchanged.
pub fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::get_policy::GetPolicyOutput;
    use aws_sdk_iam::operation::get_policy_version::GetPolicyVersionOutput;
    use aws_sdk_iam::operation::get_role::GetRoleOutput;
    use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
    use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
    use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
    use aws_sdk_iam::types::{
        AttachedPermissionsBoundary, AttachedPolicy, Policy, PolicyVersion, Role,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    const DOC: &str = "%7B%22Statement%22%3A%5B%5D%7D";

    #[tokio::test]
    async fn a_role_yields_inline_attached_and_boundary_documents_decoded() {
        let role = mock!(Client::get_role)
            .match_requests(|r| r.role_name() == Some("Exporter"))
            .then_output(|| {
                let boundary = AttachedPermissionsBoundary::builder()
                    .permissions_boundary_arn("arn:aws:iam::111122223333:policy/Boundary")
                    .build();
                GetRoleOutput::builder()
                    .role(
                        Role::builder()
                            .path("/")
                            .role_name("Exporter")
                            .role_id("AROA1")
                            .arn("arn:aws:iam::111122223333:role/Exporter")
                            .create_date(aws_smithy_types::DateTime::from_secs(0))
                            .permissions_boundary(boundary)
                            .build()
                            .unwrap(),
                    )
                    .build()
            });
        let inline_names = mock!(Client::list_role_policies).then_output(|| {
            ListRolePoliciesOutput::builder()
                .policy_names("inline-1")
                .is_truncated(false)
                .build()
                .unwrap()
        });
        let inline = mock!(Client::get_role_policy)
            .match_requests(|r| r.policy_name() == Some("inline-1"))
            .then_output(|| {
                GetRolePolicyOutput::builder()
                    .role_name("Exporter")
                    .policy_name("inline-1")
                    .policy_document(DOC)
                    .build()
                    .unwrap()
            });
        let attached = mock!(Client::list_attached_role_policies).then_output(|| {
            ListAttachedRolePoliciesOutput::builder()
                .attached_policies(
                    AttachedPolicy::builder()
                        .policy_name("Managed")
                        .policy_arn("arn:aws:iam::111122223333:policy/Managed")
                        .build(),
                )
                .build()
        });
        let get_policy = mock!(Client::get_policy).then_output(|| {
            GetPolicyOutput::builder()
                .policy(
                    Policy::builder()
                        .policy_name("P")
                        .default_version_id("v2")
                        .build(),
                )
                .build()
        });
        let version = mock!(Client::get_policy_version)
            .match_requests(|r| r.version_id() == Some("v2"))
            .then_output(|| {
                GetPolicyVersionOutput::builder()
                    .policy_version(PolicyVersion::builder().document(DOC).build())
                    .build()
            });
        let iam = IamPolicies::new(mock_client!(
            aws_sdk_iam,
            RuleMode::MatchAny,
            [
                &role,
                &inline_names,
                &inline,
                &attached,
                &get_policy,
                &version
            ]
        ));
        let got = iam.role_policies("Exporter").await.unwrap().unwrap();
        assert_eq!(got.identity.len(), 2);
        assert_eq!(got.identity[0].document, r#"{"Statement":[]}"#);
        assert!(got.boundary.is_some());
        assert_eq!(
            version.num_calls(),
            2,
            "the managed policy and the boundary"
        );
    }

    #[test]
    fn percent_decoding_leaves_plain_json_alone() {
        assert_eq!(percent_decode(r#"{"a":"b%"}"#), r#"{"a":"b%"}"#);
        assert_eq!(percent_decode("%7B%22a%22%3A1%7D"), r#"{"a":1}"#);
    }
}
