//! How ledger records are stored: attribute encoding and the incident and key-policy change
//! items (the table's layout is in `mod.rs`).

use super::*;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn export_pk(arn: &str) -> String {
    format!("EXPORT#{arn}")
}

pub(super) fn table_pk(table_arn: &str) -> String {
    format!("TABLE#{table_arn}")
}

pub(super) const SWEEP_SK: &str = "SWEEP";
pub(super) const INCIDENT_SK: &str = "INCIDENT";
pub(super) const OPEN_PK: &str = "OPEN";
/// A note longer than this is cut: an item stays far below DynamoDB's 400 KB item limit.
const NOTE_MAX_CHARS: usize = 2_000;
pub(super) const START_SK: &str = "START";
pub(super) const MARK_SK: &str = "MARK";
pub(super) const CURSOR_PK: &str = "SWEEP";
pub(super) const CURSOR_SK: &str = "CURSOR";

pub(super) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(super) fn base(pk: String, sk: &str, now: i64) -> Item {
    HashMap::from([
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), s(sk)),
        ("updatedAt".to_string(), n(now)),
        ("expiresAt".to_string(), n(now + RETENTION_SECS)),
    ])
}

pub(super) fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(super) fn get_n<T: std::str::FromStr>(item: &Item, key: &str) -> Option<T> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub(super) fn causes_of(item: &Item) -> Vec<String> {
    get_s(item, "causes")
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default()
}

pub(super) fn incident_item(r: &IncidentRecord, now: i64) -> Item {
    let mut item = base(export_pk(&r.export_arn), INCIDENT_SK, now);
    if r.status.is_open() {
        // TTL never deletes an open incident (DynamoDB deletes expired items on its own
        // schedule, within days): only settled ones expire.
        item.remove("expiresAt");
    }
    item.insert("exportArn".into(), s(&r.export_arn));
    item.insert("status".into(), s(r.status.as_str()));
    item.insert("leaseUntil".into(), n(r.lease_until));
    item.insert(
        "causes".into(),
        s(serde_json::to_string(&r.causes).unwrap_or_default()),
    );
    item.insert("attempt".into(), n(r.attempt));
    item.insert("rootExportArn".into(), s(&r.root_export_arn));
    let optional = [
        ("clientToken", r.client_token.clone().map(s)),
        ("exportTime", r.export_time.map(n)),
        ("retryExportArn", r.retry_export_arn.clone().map(s)),
        (
            "note",
            r.note
                .as_ref()
                .map(|t| s(t.chars().take(NOTE_MAX_CHARS).collect::<String>())),
        ),
        ("owner", r.owner.clone().map(s)),
        (
            "retryRequest",
            r.retry_request
                .as_ref()
                .and_then(|q| serde_json::to_string(q).ok())
                .map(s),
        ),
        (
            "afterPatch",
            r.after_patch.then_some(AttributeValue::Bool(true)),
        ),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            item.insert(k.into(), v);
        }
    }
    item
}

pub(super) fn incident_from(item: &Item) -> PortResult<IncidentRecord> {
    const OP: &str = "ledger:GetIncident";
    let status = get_s(item, "status")
        .and_then(IncidentStatus::parse)
        .ok_or_else(|| missing(OP, "a known status"))?;
    Ok(IncidentRecord {
        export_arn: get_s(item, "exportArn")
            .ok_or_else(|| missing(OP, "exportArn"))?
            .to_string(),
        status,
        lease_until: get_n(item, "leaseUntil").unwrap_or(0),
        causes: causes_of(item),
        attempt: get_n(item, "attempt").unwrap_or(0),
        root_export_arn: get_s(item, "rootExportArn").unwrap_or_default().to_string(),
        client_token: get_s(item, "clientToken").map(str::to_string),
        export_time: get_n(item, "exportTime"),
        retry_export_arn: get_s(item, "retryExportArn").map(str::to_string),
        note: get_s(item, "note").map(str::to_string),
        owner: get_s(item, "owner").map(str::to_string),
        retry_request: get_s(item, "retryRequest").and_then(|q| serde_json::from_str(q).ok()),
        after_patch: item
            .get("afterPatch")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

pub(super) fn change_pk(id: &str) -> String {
    format!("CHANGE#{id}")
}

pub(super) const CHANGE_SK: &str = "KEY_POLICY";

pub(super) fn change_item(c: &KeyPolicyChange, now: i64) -> Item {
    let mut item = base(change_pk(&c.change_id), CHANGE_SK, now);
    // The audit record outlives the incident records: no TTL.
    item.remove("expiresAt");
    let strings = |v: &Vec<String>| s(serde_json::to_string(v).unwrap_or_default());
    for (k, v) in [
        ("changeId", s(&c.change_id)),
        ("keyArn", s(&c.key_arn)),
        ("purpose", s(c.purpose.as_str())),
        ("sid", s(&c.sid)),
        ("grantees", strings(&c.grantees)),
        ("beforePolicy", s(&c.before)),
        ("afterPolicy", s(&c.after)),
        ("status", s(c.status.as_str())),
        ("causes", strings(&c.causes)),
        ("actor", s(&c.actor)),
        ("createdAt", n(c.created_at)),
    ] {
        item.insert(k.into(), v);
    }
    if let Some(e) = &c.export_arn {
        item.insert("exportArn".into(), s(e));
    }
    if let Some(note) = &c.note {
        item.insert("note".into(), s(note));
    }
    item
}

pub(super) fn change_from(item: &Item) -> PortResult<KeyPolicyChange> {
    const OP: &str = "ledger:GetKeyPolicyChange";
    let text = |k: &'static str| {
        get_s(item, k)
            .map(str::to_string)
            .ok_or_else(|| missing(OP, k))
    };
    let list = |k: &str| -> Vec<String> {
        get_s(item, k)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    };
    Ok(KeyPolicyChange {
        change_id: text("changeId")?,
        key_arn: text("keyArn")?,
        purpose: get_s(item, "purpose")
            .and_then(PatchPurpose::parse)
            .ok_or_else(|| missing(OP, "a known purpose"))?,
        sid: text("sid")?,
        grantees: list("grantees"),
        before: text("beforePolicy")?,
        after: text("afterPolicy")?,
        status: get_s(item, "status")
            .and_then(ChangeStatus::parse)
            .ok_or_else(|| missing(OP, "a known status"))?,
        export_arn: get_s(item, "exportArn").map(str::to_string),
        causes: list("causes"),
        actor: get_s(item, "actor").unwrap_or_default().to_string(),
        created_at: get_n(item, "createdAt").unwrap_or(0),
        note: get_s(item, "note").map(str::to_string),
    })
}

pub(super) fn sweep_state_text(state: SweepState) -> &'static str {
    match state {
        SweepState::InProgress => "IN_PROGRESS",
        SweepState::Published => "PUBLISHED",
        SweepState::TooOld => "TOO_OLD",
    }
}

pub(super) fn sweep_state_from(item: &Item) -> SweepState {
    match get_s(item, "state") {
        Some("PUBLISHED") => SweepState::Published,
        Some("TOO_OLD") => SweepState::TooOld,
        _ => SweepState::InProgress,
    }
}

pub(super) fn start_from(item: &Item) -> StartRecord {
    StartRecord {
        caller: get_s(item, "caller").map(str::to_string),
        request: get_s(item, "request").and_then(|r| serde_json::from_str::<ExportRequest>(r).ok()),
    }
}

/// One request of a BatchWriteItem call: the item to put, or the key to delete.
pub(super) enum Write {
    Put(Item),
    Delete(Item),
}

impl Write {
    pub(super) fn key(&self) -> (Option<String>, Option<String>) {
        let (Self::Put(i) | Self::Delete(i)) = self;
        (
            get_s(i, "pk").map(str::to_string),
            get_s(i, "sk").map(str::to_string),
        )
    }

    pub(super) fn request(self) -> Result<WriteRequest, BuildError> {
        Ok(match self {
            Self::Put(item) => WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                .build(),
            Self::Delete(key) => WriteRequest::builder()
                .delete_request(DeleteRequest::builder().set_key(Some(key)).build()?)
                .build(),
        })
    }
}

pub(super) fn sweep_write(write: &SweepWrite, now: i64) -> Write {
    match write {
        SweepWrite::State { export_arn, state } => {
            let mut item = base(export_pk(export_arn), SWEEP_SK, now);
            item.insert("state".into(), s(sweep_state_text(*state)));
            Write::Put(item)
        }
        SweepWrite::Mark {
            table_arn,
            export_arn,
        } => {
            let mut item = base(table_pk(table_arn), MARK_SK, now);
            item.insert("mark".into(), s(export_arn));
            Write::Put(item)
        }
        SweepWrite::Cursor(Some(table_arn)) => {
            let mut item = base(CURSOR_PK.into(), CURSOR_SK, now);
            item.insert("table".into(), s(table_arn));
            Write::Put(item)
        }
        SweepWrite::Cursor(None) => Write::Delete(key(CURSOR_PK.into(), CURSOR_SK)),
    }
}
