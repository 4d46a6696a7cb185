//! The ClientToken this function gives its retries: it encodes the lineage (root export and
//! attempt), so diagnosis, plan and intake can each recognise a retry of ours.

use sha2::{Digest, Sha256};

/// Prefix of every ClientToken this function issues.
pub const CLIENT_TOKEN_PREFIX: &str = "ddbxr-";

/// The lineage encoded in our ClientToken: `ddbxr-<32 hex of the root export ARN's SHA-256>-<attempt>`.
pub fn client_token(root_hash: &str, attempt: u32) -> String {
    format!("{CLIENT_TOKEN_PREFIX}{root_hash}-{attempt}")
}

pub fn root_hash(export_arn: &str) -> String {
    let digest = Sha256::digest(export_arn.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `(root hash, attempt)` when the token is one this function issued.
pub fn parse_token(token: &str) -> Option<(String, u32)> {
    let rest = token.strip_prefix(CLIENT_TOKEN_PREFIX)?;
    let (hash, attempt) = rest.rsplit_once('-')?;
    let ok = hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(())?;
    Some((hash.to_string(), attempt.parse().ok()?))
}
