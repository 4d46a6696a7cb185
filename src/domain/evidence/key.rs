//! A KMS key's facts (description, policy, grants), read in the key's account.

#[allow(unused_imports)]
use super::*;

/// Key facts, read in the key's account (the key policy is readable only there).
/// A bare key id or alias resolves in `home_account`, whose readers (if not the table's) are given.
pub(super) async fn key_facts(
    app: &Readers<'_>,
    key_id: &str,
    home_account: &str,
    table_account: &str,
    home_readers: Option<&AccountReaders>,
) -> KeyFacts {
    let key_account = account_of(key_id).unwrap_or_else(|| home_account.to_string());
    let assumed;
    let reader: &dyn KeyPolicyStore = match home_readers {
        Some(r) if key_account == home_account => r.keys.as_ref(),
        _ if key_account == table_account => app.keys,
        _ => match &app.config.member_role_name {
            Some(role) => match app.cross.readers_in(&key_account, role).await {
                Ok(r) => {
                    assumed = r;
                    assumed.keys.as_ref()
                }
                Err(e) => {
                    return KeyFacts {
                        key_id: key_id.to_string(),
                        info: Fact::failed("kms:DescribeKey", &e),
                        policy: Fact::failed("kms:GetKeyPolicy", &e),
                        grants: Fact::failed("kms:ListGrants", &e),
                    };
                }
            },
            // DescribeKey may still answer cross-account; GetKeyPolicy will say why not.
            None => app.keys,
        },
    };
    let (info, policy, grants) = tokio::join!(
        reader.describe_key(key_id),
        reader.key_policy(key_id),
        reader.grants(key_id)
    );
    KeyFacts {
        key_id: key_id.to_string(),
        info: fact("kms:DescribeKey", info),
        policy: fact("kms:GetKeyPolicy", policy),
        grants: fact("kms:ListGrants", grants),
    }
}
