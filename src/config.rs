//! Function configuration from the environment (docs/configuration.md), parsed once at init.

use crate::arn::{is_account_id, Arn};
use crate::model::Mode;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mode: Mode,
    pub key_policy_patch: bool,
    /// Account ids or IAM ARNs allowed in the cross-account decrypt statement.
    pub decrypt_principals: Vec<String>,
    pub max_retries: u32,
    pub member_role_name: Option<String>,
    pub ledger_table_name: Option<String>,
    pub event_bus_name: String,
    pub org_role_arn: Option<String>,
    /// `ORG_MODE=on`: the hub's own account (`HUB_ACCOUNT_ID`). An incident in another account
    /// or Region is then read and retried there, through the spoke role `MEMBER_ROLE_NAME`.
    pub hub_account_id: Option<String>,
    /// `ORG_MODE=on`: the Regions the spokes cover (`SPOKE_REGIONS`), which the safety-net
    /// sweep visits in every account; empty = the hub's Region only.
    pub spoke_regions: Vec<String>,
    pub s3_force_path_style: bool,
    /// Put each result on the bus as a report (the Lambda does; the laptop CLI does not).
    pub publish_reports: bool,
    /// Buckets the function's role may write exports to (EXPORT_BUCKETS); None = unknown.
    pub export_buckets: Option<Scope>,
    /// Keys the function's role may encrypt exports with (KEY_ARNS); None = unknown.
    pub key_arns: Option<Scope>,
    /// A sweep never publishes a failure older than this (SWEEP_LOOKBACK_HOURS, docs/diagnosis.md, "Detection and exactly-once").
    pub sweep_lookback_hours: u32,
    /// How long a delivery's claim on an incident holds (CLAIM_LEASE_SECONDS). After it, a
    /// later delivery or the sweep may take the incident over, so it must exceed the function's
    /// timeout (the template sets 120 s; docs/reliability.md explains the choice).
    pub claim_lease_seconds: u32,
}

/// A write scope from the template (docs/safety.md, "Safety"): `*` = any, else exact names (a `*` inside an
/// entry matches any run of characters, as in the IAM resource the template builds from it).
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    Any,
    Only(Vec<String>),
}

impl Scope {
    fn parse(value: &str) -> Self {
        let items: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if items.iter().any(|i| i == "*") {
            Scope::Any
        } else {
            Scope::Only(items)
        }
    }

    pub fn allows(&self, name: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::Only(items) => items.iter().any(|i| wildcard(i, name)),
        }
    }

    /// The entries, comma-joined (empty for none), as a `--parameter-overrides` value.
    pub fn joined(&self) -> String {
        match self {
            Scope::Any => "*".into(),
            Scope::Only(items) => items.join(","),
        }
    }
}

/// `*` matches any run of characters; everything else literally.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Apply,
            key_policy_patch: false,
            decrypt_principals: Vec::new(),
            max_retries: 2,
            member_role_name: None,
            ledger_table_name: None,
            event_bus_name: "default".into(),
            org_role_arn: None,
            hub_account_id: None,
            spoke_regions: Vec::new(),
            s3_force_path_style: false,
            publish_reports: true,
            export_buckets: None,
            key_arns: None,
            sweep_lookback_hours: 24,
            claim_lease_seconds: DEFAULT_CLAIM_LEASE_SECONDS,
        }
    }
}

/// Every invalid variable at once, so one failed deploy shows them all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid environment: {}", .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get` so tests never touch the process environment.
    pub fn from_map(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut cfg = Config::default();
        let value = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        if let Some(v) = value("MODE") {
            match Mode::parse(&v) {
                Some(m) => cfg.mode = m,
                None => problems.push(format!("MODE={v:?}: expected diagnose, plan or apply")),
            }
        }
        if let Some(v) = value("KEY_POLICY_PATCH") {
            match v.as_str() {
                "on" => cfg.key_policy_patch = true,
                "off" => cfg.key_policy_patch = false,
                _ => problems.push(format!("KEY_POLICY_PATCH={v:?}: expected on or off")),
            }
        }
        if let Some(v) = value("DECRYPT_PRINCIPALS") {
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let ok = is_account_id(item)
                    || Arn::parse("DECRYPT_PRINCIPALS", item).is_ok_and(|a| a.service == "iam");
                if !ok || item.contains('*') {
                    problems.push(format!(
                        "DECRYPT_PRINCIPALS: {item:?} is neither a 12-digit account id nor an IAM ARN"
                    ));
                } else {
                    cfg.decrypt_principals.push(item.to_string());
                }
            }
        }
        if let Some(v) = value("MAX_RETRIES") {
            match v.parse::<u32>() {
                Ok(n) if n <= 10 => cfg.max_retries = n,
                _ => problems.push(format!("MAX_RETRIES={v:?}: expected a whole number 0-10")),
            }
        }
        if let Some(v) = value("MEMBER_ROLE_NAME") {
            if valid_role_name(&v) {
                cfg.member_role_name = Some(v);
            } else {
                problems.push(format!("MEMBER_ROLE_NAME={v:?}: not a valid IAM role name"));
            }
        }
        cfg.ledger_table_name = value("LEDGER_TABLE_NAME");
        if let Some(v) = value("EVENT_BUS_NAME") {
            cfg.event_bus_name = v;
        }
        if let Some(v) = value("ORG_ROLE_ARN") {
            match Arn::parse("ORG_ROLE_ARN", &v) {
                Ok(a) if a.service == "iam" && a.resource.starts_with("role/") => {
                    cfg.org_role_arn = Some(v)
                }
                _ => problems.push(format!("ORG_ROLE_ARN={v:?}: expected an IAM role ARN")),
            }
        }
        match value("ORG_MODE").as_deref() {
            None | Some("off") => {}
            Some("on") => match value("HUB_ACCOUNT_ID") {
                Some(a) if crate::arn::is_account_id(&a) => {
                    if cfg.member_role_name.is_none() {
                        problems.push(
                            "ORG_MODE=on needs MEMBER_ROLE_NAME (the spoke role's name)".into(),
                        );
                    }
                    cfg.hub_account_id = Some(a);
                }
                Some(a) => problems.push(format!(
                    "HUB_ACCOUNT_ID={a:?}: expected the hub's 12-digit account id"
                )),
                None => problems.push("ORG_MODE=on needs HUB_ACCOUNT_ID".into()),
            },
            Some(v) => problems.push(format!("ORG_MODE={v:?}: expected on or off")),
        }
        if let Some(v) = value("SPOKE_REGIONS") {
            for r in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                if crate::arn::is_region(r) {
                    cfg.spoke_regions.push(r.to_string());
                } else {
                    problems.push(format!("SPOKE_REGIONS: {r:?} is not a Region name"));
                }
            }
        }
        if let Some(v) = value("S3_FORCE_PATH_STYLE") {
            match v.as_str() {
                "true" => cfg.s3_force_path_style = true,
                "false" => cfg.s3_force_path_style = false,
                _ => problems.push(format!("S3_FORCE_PATH_STYLE={v:?}: expected true or false")),
            }
        }
        // Set but empty means "none" (the template's default), unset means unknown.
        cfg.export_buckets = get("EXPORT_BUCKETS").map(|v| Scope::parse(&v));
        if let Some(v) = get("KEY_ARNS") {
            let scope = Scope::parse(&v);
            if let Scope::Only(items) = &scope {
                for item in items {
                    let ok = Arn::parse("KEY_ARNS", item).is_ok_and(|a| {
                        a.service == "kms" && a.resource.starts_with("key/") && !item.contains('*')
                    });
                    if !ok {
                        problems.push(format!(
                            "KEY_ARNS: {item:?} is not a full KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
                        ));
                    }
                }
            }
            cfg.key_arns = Some(scope);
        }
        if let Some(v) = value("SWEEP_LOOKBACK_HOURS") {
            match v.parse::<u32>() {
                Ok(n) if (1..=2160).contains(&n) => cfg.sweep_lookback_hours = n,
                _ => problems.push(format!(
                    "SWEEP_LOOKBACK_HOURS={v:?}: expected a whole number of hours, 1-2160"
                )),
            }
        }
        if let Some(v) = value("CLAIM_LEASE_SECONDS") {
            match v.parse::<u32>() {
                Ok(n) if (1..=MAX_CLAIM_LEASE_SECONDS).contains(&n) => cfg.claim_lease_seconds = n,
                _ => problems.push(format!(
                    "CLAIM_LEASE_SECONDS={v:?}: expected a whole number of seconds, 1-{MAX_CLAIM_LEASE_SECONDS}, longer than the function's timeout"
                )),
            }
        }
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// The default lease: the template's 120 s function timeout, and margin for a slow start.
pub const DEFAULT_CLAIM_LEASE_SECONDS: u32 = 300;
/// A day: a longer lease only delays the takeover of a crashed delivery's incident.
pub const MAX_CLAIM_LEASE_SECONDS: u32 = 86_400;

fn valid_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(|k| map.get(k).cloned())
    }

    #[test]
    fn empty_environment_gives_safe_defaults() {
        let cfg = from(&[]).unwrap();
        assert_eq!(cfg, Config::default());
        assert!(!cfg.key_policy_patch);
        assert_eq!(cfg.max_retries, 2);
        assert_eq!(cfg.event_bus_name, "default");
    }

    #[test]
    fn every_variable_is_read() {
        let cfg = from(&[
            ("MODE", "plan"),
            ("KEY_POLICY_PATCH", "on"),
            (
                "DECRYPT_PRINCIPALS",
                "444455556666, arn:aws:iam::444455556666:role/Reader",
            ),
            ("MAX_RETRIES", "3"),
            ("MEMBER_ROLE_NAME", "DdbExportRemediatorMember"),
            ("LEDGER_TABLE_NAME", "ledger"),
            ("EVENT_BUS_NAME", "ops"),
            ("ORG_ROLE_ARN", "arn:aws:iam::111122223333:role/OrgReader"),
            ("S3_FORCE_PATH_STYLE", "true"),
            ("EXPORT_BUCKETS", "exports-a, team-*"),
            (
                "KEY_ARNS",
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            ),
            ("SWEEP_LOOKBACK_HOURS", "48"),
            ("CLAIM_LEASE_SECONDS", "600"),
        ])
        .unwrap();
        assert_eq!(cfg.claim_lease_seconds, 600);
        assert_eq!(
            cfg.export_buckets,
            Some(Scope::Only(vec!["exports-a".into(), "team-*".into()]))
        );
        assert!(cfg.key_arns.as_ref().is_some_and(|k| k.allows(
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        )));
        assert_eq!(cfg.sweep_lookback_hours, 48);
        assert_eq!(cfg.mode, Mode::Plan);
        assert!(cfg.key_policy_patch);
        assert_eq!(cfg.decrypt_principals.len(), 2);
        assert_eq!(cfg.max_retries, 3);
        assert_eq!(
            cfg.member_role_name.as_deref(),
            Some("DdbExportRemediatorMember")
        );
        assert_eq!(cfg.ledger_table_name.as_deref(), Some("ledger"));
        assert_eq!(cfg.event_bus_name, "ops");
        assert!(cfg.org_role_arn.is_some());
        assert!(cfg.s3_force_path_style);
    }

    #[test]
    fn all_invalid_values_are_reported_together() {
        let err = from(&[
            ("MODE", "yolo"),
            ("KEY_POLICY_PATCH", "yes"),
            ("DECRYPT_PRINCIPALS", "*"),
            ("MAX_RETRIES", "-1"),
            ("MEMBER_ROLE_NAME", "bad role"),
            ("ORG_ROLE_ARN", "arn:aws:s3:::bucket"),
            ("S3_FORCE_PATH_STYLE", "1"),
            ("KEY_ARNS", "alias/exports"),
            ("SWEEP_LOOKBACK_HOURS", "0"),
            ("CLAIM_LEASE_SECONDS", "0"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 10, "{err}");
        for name in [
            "MODE",
            "KEY_POLICY_PATCH",
            "DECRYPT_PRINCIPALS",
            "MAX_RETRIES",
            "MEMBER_ROLE_NAME",
            "ORG_ROLE_ARN",
            "S3_FORCE_PATH_STYLE",
            "KEY_ARNS",
            "SWEEP_LOOKBACK_HOURS",
            "CLAIM_LEASE_SECONDS",
        ] {
            assert!(err.to_string().contains(name), "{name} missing from {err}");
        }
    }

    #[test]
    fn org_mode_needs_the_hub_account_and_the_spoke_role_name() {
        let on = from(&[
            ("ORG_MODE", "on"),
            ("HUB_ACCOUNT_ID", "111122223333"),
            ("MEMBER_ROLE_NAME", "ddb-export-remediator-spoke"),
        ])
        .unwrap();
        assert_eq!(on.hub_account_id.as_deref(), Some("111122223333"));
        assert_eq!(from(&[("ORG_MODE", "off")]).unwrap().hub_account_id, None);
        let err = from(&[("ORG_MODE", "on")]).unwrap_err().to_string();
        assert!(err.contains("HUB_ACCOUNT_ID"), "{err}");
        let err = from(&[("ORG_MODE", "on"), ("HUB_ACCOUNT_ID", "111122223333")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("MEMBER_ROLE_NAME"), "{err}");
        let regions = from(&[("SPOKE_REGIONS", "us-east-1, us-west-2,")]).unwrap();
        assert_eq!(regions.spoke_regions, ["us-east-1", "us-west-2"]);
        let err = from(&[("SPOKE_REGIONS", "us-east-1,Oregon")]).unwrap_err();
        assert!(err.to_string().contains("Oregon"), "{err}");
        let err = from(&[("ORG_MODE", "yes")]).unwrap_err().to_string();
        assert!(err.contains("ORG_MODE"), "{err}");
        let err = from(&[
            ("ORG_MODE", "on"),
            ("HUB_ACCOUNT_ID", "hub"),
            ("MEMBER_ROLE_NAME", "spoke"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("HUB_ACCOUNT_ID"), "{err}");
    }

    #[test]
    fn an_unset_scope_is_unknown_an_empty_one_allows_nothing_and_star_allows_all() {
        let unset = from(&[]).unwrap();
        assert_eq!(unset.export_buckets, None);
        assert_eq!(unset.key_arns, None);
        let empty = from(&[("EXPORT_BUCKETS", ""), ("KEY_ARNS", "")]).unwrap();
        assert_eq!(empty.export_buckets, Some(Scope::Only(vec![])));
        assert!(!empty.export_buckets.unwrap().allows("any-bucket"));
        let star = from(&[("EXPORT_BUCKETS", "a,*")]).unwrap();
        assert_eq!(star.export_buckets, Some(Scope::Any));
    }

    #[test]
    fn scope_entries_match_exactly_or_by_wildcard() {
        let s = Scope::parse("exports, team-*-raw, *-audit");
        assert!(s.allows("exports"));
        assert!(!s.allows("exports2"));
        assert!(s.allows("team-a-raw"));
        assert!(!s.allows("team-a-raw2"));
        assert!(s.allows("x-audit"));
        assert!(!s.allows("audit"));
        assert_eq!(s.joined(), "exports,team-*-raw,*-audit");
    }
}
