//! The bucket's facts, as seen from the table account and, where the bucket is another
//! account's, from the owner's (found by listing the organization's buckets through the member role).

#[allow(unused_imports)]
use super::*;

/// Bucket facts, read in the bucket owner's account when that account is found.
pub(super) async fn bucket_facts(
    app: &Readers<'_>,
    request: &ExportRequest,
    table_account: &str,
) -> (BucketFacts, Option<AccountReaders>) {
    let name = request.s3_bucket.as_str();
    let own = app.buckets;
    // This account's checks, its reads of the bucket's settings and the owner lookup in other
    // accounts all run in one round; what is used depends on who turns out to own the bucket.
    let own_checks = pin!(async {
        tokio::join!(
            own.head_bucket(name),
            own.owned_bucket_names(),
            own.bucket_region(name),
            read_settings(own, name)
        )
    });
    let lookup = pin!(speculative_lookup(app, request, table_account));
    let ((presence, listed, region, own_reads), found) = match select(own_checks, lookup).await {
        Either::Left((mine, lookup)) => {
            let here = matches!(&mine.1, Ok(names) if names.iter().any(|n| n == name));
            let gone = matches!(&mine.0, Ok(BucketPresence::Missing));
            // The bucket is this account's (or no one's): what the lookup elsewhere would find
            // is not used, so it is not waited for (dropping it cancels its calls).
            let found = match here || gone {
                true => Lookup::Done(Box::new((
                    Fact::unknown("s3:ListBuckets", "not looked for"),
                    None,
                    None,
                ))),
                false => lookup.await,
            };
            (mine, found)
        }
        Either::Right((found, mine)) => (mine.await, found),
    };
    let presence = fact_value("s3:HeadBucket", presence);
    let in_table_account = fact_value(
        "s3:ListBuckets",
        listed.map(|names| names.iter().any(|n| n == name)),
    );
    let region = fact_value("s3:GetBucketLocation", region);
    let missing = presence.get() == Some(&BucketPresence::Missing);

    let mut owner_readers = None;
    let mut reads = Some(own_reads);
    let owner = match in_table_account.get() {
        Some(true) => Fact::known("s3:ListBuckets", table_account.to_string()),
        _ if missing => Fact::absent("s3:HeadBucket"),
        _ => {
            let (owner, readers, prefetched) = match found {
                Lookup::Done(answer) => *answer,
                Lookup::Deferred(candidates, note) => {
                    look_in(app, request, &candidates, &note, false).await
                }
            };
            // Read in the owner's account; with no owner found, this account's answers stay.
            if readers.is_some() {
                reads = prefetched;
            }
            owner_readers = readers;
            owner
        }
    };
    let (policy, encryption, requester_pays, restrict_public) = if missing {
        (
            Fact::absent("s3:GetBucketPolicy"),
            Fact::absent("s3:GetBucketEncryption"),
            Fact::absent("s3:GetBucketRequestPayment"),
            Fact::absent("s3:GetPublicAccessBlock"),
        )
    } else {
        let (p, e, rp, pab) = match (reads, &owner_readers) {
            (Some(r), _) => r,
            (None, Some(r)) => read_settings(r.buckets.as_ref(), name).await,
            (None, None) => read_settings(own, name).await,
        };
        (
            fact("s3:GetBucketPolicy", p),
            fact("s3:GetBucketEncryption", e),
            fact_value("s3:GetBucketRequestPayment", rp),
            fact("s3:GetPublicAccessBlock", pab),
        )
    };
    let facts = BucketFacts {
        name: name.to_string(),
        presence,
        in_table_account,
        owner,
        region,
        policy,
        encryption,
        requester_pays,
        restrict_public,
    };
    (facts, owner_readers)
}

/// A bucket's policy, default encryption, request payment and public access block, as one
/// account sees them.
pub(super) type Settings = (
    PortResult<Option<String>>,
    PortResult<Option<BucketEncryption>>,
    PortResult<bool>,
    PortResult<Option<bool>>,
);

pub(super) async fn read_settings(readers: &dyn BucketInspector, name: &str) -> Settings {
    tokio::join!(
        readers.bucket_policy(name),
        readers.default_encryption(name),
        readers.requester_pays(name),
        readers.restrict_public_buckets(name)
    )
}

/// Most candidate accounts looked in before this account's own answer is in: beyond it, the
/// lookup waits, so a bucket of this account does not cost a ListBuckets in every account.
pub(super) const SPECULATE_MAX: usize = 20;

/// The owner lookup's answer: the owner (with readers in its account and, when read beside
/// the lookup, the bucket's settings there), or why unknown.
pub(super) type OwnerLookup = (Fact<String>, Option<AccountReaders>, Option<Settings>);

/// Up to this many candidates, each one's bucket settings are read beside its ListBuckets.
pub(super) const PREFETCH_MAX: usize = 3;

/// The accounts the bucket may belong to (S3BucketOwner, the organization's accounts), or
/// why none can be looked in; and a note when the organization could not be listed.
pub(super) async fn owner_candidates(
    app: &Readers<'_>,
    request: &ExportRequest,
    table_account: &str,
) -> Result<(Vec<String>, String), String> {
    if app.config.member_role_name.is_none() {
        return Err(
            "the bucket is not in this account, and MEMBER_ROLE_NAME is not set to look in others"
                .into(),
        );
    }
    let mut candidates: Vec<String> = request.s3_bucket_owner.iter().cloned().collect();
    let org_note = match app.accounts.account_ids().await {
        Ok(ids) => {
            candidates.extend(ids);
            String::new()
        }
        Err(e) => format!("; organization accounts unavailable ({})", e.reason()),
    };
    candidates.retain(|a| a != table_account);
    candidates.sort();
    candidates.dedup();
    Ok((candidates, org_note))
}

/// Looks for the bucket in the candidates through the member role; the owner is the account
/// whose ListBuckets lists it.
pub(super) async fn look_in(
    app: &Readers<'_>,
    request: &ExportRequest,
    candidates: &[String],
    org_note: &str,
    prefetch: bool,
) -> OwnerLookup {
    const SOURCE: &str = "s3:ListBuckets";
    let role = app.config.member_role_name.as_deref().unwrap_or_default();
    let name = request.s3_bucket.as_str();
    let prefetch = prefetch && candidates.len() <= PREFETCH_MAX;
    let checks = candidates.iter().map(|account| async move {
        let readers = app.cross.readers_in(account, role).await?;
        let (names, settings) = tokio::join!(readers.buckets.owned_bucket_names(), async {
            match prefetch {
                true => Some(read_settings(readers.buckets.as_ref(), name).await),
                false => None,
            }
        });
        let found = names?.iter().any(|n| n == name);
        PortResult::Ok(found.then_some((account.clone(), readers, settings)))
    });
    let results = join_all(checks).await;
    let mut failures = Vec::new();
    let mut transient = false;
    for (account, result) in candidates.iter().zip(results) {
        match result {
            Ok(Some((owner, readers, settings))) => {
                return (Fact::known(SOURCE, owner), Some(readers), settings)
            }
            Ok(None) => {}
            Err(e) => {
                transient |= e.is_transient();
                failures.push(format!("{account}: {}", e.reason()))
            }
        }
    }
    let mut reason = format!(
        "not listed by this account nor by {} candidate account(s) checked through role {role}",
        candidates.len()
    );
    if !failures.is_empty() {
        reason.push_str(&format!("; could not check {}", failures.join(", ")));
    }
    reason.push_str(org_note);
    (
        Fact::unknown(SOURCE, reason).transient_if(transient),
        None,
        None,
    )
}

/// The owner lookup, started beside this account's own checks: it looks in at most
/// `SPECULATE_MAX` candidates right away, else it only lists them.
pub(super) enum Lookup {
    Done(Box<OwnerLookup>),
    Deferred(Vec<String>, String),
}

pub(super) async fn speculative_lookup(
    app: &Readers<'_>,
    request: &ExportRequest,
    table_account: &str,
) -> Lookup {
    match owner_candidates(app, request, table_account).await {
        Err(why) => Lookup::Done(Box::new((Fact::unknown("s3:ListBuckets", why), None, None))),
        Ok((c, note)) if c.len() <= SPECULATE_MAX => {
            Lookup::Done(Box::new(look_in(app, request, &c, &note, true).await))
        }
        Ok((c, note)) => Lookup::Deferred(c, note),
    }
}
