//! Condition operators (SPEC §5) with three-valued results: a context key whose value is
//! unknown yields `Tri::Unknown`, never a silent "absent".

use super::{substitute, Context, ContextValue, Tri};
use crate::domain::sse_rules::glob;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    None,
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator as written, for explanations.
    pub operator: String,
    pub base: Base,
    pub qualifier: SetQualifier,
    pub if_exists: bool,
    /// Lower-cased: condition keys are case-insensitive.
    pub key: String,
    pub values: Vec<String>,
}

pub fn parse_operator(text: &str) -> Option<(Base, SetQualifier, bool)> {
    let (qualifier, rest) = if let Some(r) = text.strip_prefix("ForAllValues:") {
        (SetQualifier::ForAllValues, r)
    } else if let Some(r) = text.strip_prefix("ForAnyValue:") {
        (SetQualifier::ForAnyValue, r)
    } else {
        (SetQualifier::None, text)
    };
    let (rest, if_exists) = match rest.strip_suffix("IfExists") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    use Base::*;
    let base = match rest {
        "StringEquals" => StringEquals,
        "StringNotEquals" => StringNotEquals,
        "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
        "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
        "StringLike" => StringLike,
        "StringNotLike" => StringNotLike,
        "NumericEquals" => NumericEquals,
        "NumericNotEquals" => NumericNotEquals,
        "NumericLessThan" => NumericLessThan,
        "NumericLessThanEquals" => NumericLessThanEquals,
        "NumericGreaterThan" => NumericGreaterThan,
        "NumericGreaterThanEquals" => NumericGreaterThanEquals,
        "DateEquals" => DateEquals,
        "DateNotEquals" => DateNotEquals,
        "DateLessThan" => DateLessThan,
        "DateLessThanEquals" => DateLessThanEquals,
        "DateGreaterThan" => DateGreaterThan,
        "DateGreaterThanEquals" => DateGreaterThanEquals,
        "Bool" => Bool,
        "IpAddress" => IpAddress,
        "NotIpAddress" => NotIpAddress,
        "ArnEquals" => ArnEquals,
        "ArnNotEquals" => ArnNotEquals,
        "ArnLike" => ArnLike,
        "ArnNotLike" => ArnNotLike,
        "Null" => Null,
        _ => return None,
    };
    if base == Null && (if_exists || qualifier != SetQualifier::None) {
        return None;
    }
    Some((base, qualifier, if_exists))
}

impl Base {
    /// Negated operators match when the key is absent (AWS: they evaluate true).
    fn negated(self) -> bool {
        use Base::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// Does one request value match one policy value?
    fn matches_one(self, policy: &str, actual: &str) -> Option<bool> {
        use Base::*;
        Some(match self {
            StringEquals | StringNotEquals => policy == actual,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                policy.eq_ignore_ascii_case(actual)
            }
            StringLike | StringNotLike => glob(policy, actual, false),
            ArnEquals | ArnNotEquals | ArnLike | ArnNotLike => arn_like(policy, actual),
            NumericEquals | NumericNotEquals => num(actual)? == num(policy)?,
            NumericLessThan => num(actual)? < num(policy)?,
            NumericLessThanEquals => num(actual)? <= num(policy)?,
            NumericGreaterThan => num(actual)? > num(policy)?,
            NumericGreaterThanEquals => num(actual)? >= num(policy)?,
            DateEquals | DateNotEquals => date(actual)? == date(policy)?,
            DateLessThan => date(actual)? < date(policy)?,
            DateLessThanEquals => date(actual)? <= date(policy)?,
            DateGreaterThan => date(actual)? > date(policy)?,
            DateGreaterThanEquals => date(actual)? >= date(policy)?,
            Bool => policy.eq_ignore_ascii_case(actual),
            IpAddress | NotIpAddress => cidr_contains(policy, actual)?,
            // Null is decided on presence alone, before any value is compared.
            Null => return None,
        })
    }
}

impl Condition {
    pub fn evaluate(&self, ctx: &Context) -> Tri {
        let values: Vec<String> = self.values.iter().map(|v| substitute(v, ctx)).collect();
        if values.iter().any(|v| v.contains("${")) {
            // A policy variable the context cannot fill: the condition cannot match.
            return Tri::False;
        }
        let actual = match ctx.get(&self.key) {
            Some(ContextValue::Unknown) => return Tri::Unknown,
            Some(ContextValue::Values(v)) => Some(v),
            None => None,
        };
        if self.base == Base::Null {
            let want_absent = values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return Tri::from(actual.is_none() == want_absent);
        }
        let Some(actual) = actual else {
            return Tri::from(match self.qualifier {
                SetQualifier::ForAllValues => true,
                SetQualifier::ForAnyValue => false,
                SetQualifier::None => self.if_exists || self.base.negated(),
            });
        };
        let any_policy = |a: &str| {
            values
                .iter()
                .any(|p| self.base.matches_one(p, a) == Some(true))
        };
        let positive = |a: &str| {
            if self.base.negated() {
                !any_policy(a)
            } else {
                any_policy(a)
            }
        };
        Tri::from(match self.qualifier {
            SetQualifier::ForAllValues => actual.iter().all(|a| positive(a)),
            SetQualifier::ForAnyValue => actual.iter().any(|a| positive(a)),
            // A single-valued key: every value the request carries must satisfy it.
            SetQualifier::None => !actual.is_empty() && actual.iter().all(|a| positive(a)),
        })
    }

    pub fn describe(&self) -> String {
        format!("{} {} {:?}", self.operator, self.key, self.values)
    }
}

/// ARN matching: six colon-separated parts, each a wildcard match (the resource part case-sensitive).
fn arn_like(policy: &str, actual: &str) -> bool {
    let p: Vec<&str> = policy.splitn(6, ':').collect();
    let a: Vec<&str> = actual.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob(p, a, false))
}

fn num(text: &str) -> Option<f64> {
    text.trim().parse().ok()
}

/// Epoch seconds from `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` or a number of epoch seconds.
pub fn date(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<f64>() {
        return Some(n);
    }
    let (date, time) = t.split_once(['T', ' '])?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, o) = time.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    } else {
        (time, 0)
    };
    let mut c = clock.split(':');
    let (hh, mm): (i64, i64) = (c.next()?.parse().ok()?, c.next()?.parse().ok()?);
    let ss: f64 = c.next().unwrap_or("0").parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 - offset) as f64 + ss)
}

fn cidr_contains(cidr: &str, ip: &str) -> Option<bool> {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n.parse::<IpAddr>().ok()?, b.parse::<u32>().ok()?),
        None => {
            let n = cidr.parse::<IpAddr>().ok()?;
            (n, if n.is_ipv4() { 32 } else { 128 })
        }
    };
    let ip: IpAddr = ip.parse().ok()?;
    Some(match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_as_epoch_seconds() {
        assert_eq!(date("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(date("2020-01-01T00:00:00Z"), Some(1_577_836_800.0));
        assert_eq!(date("2020-01-01T01:00:00+01:00"), Some(1_577_836_800.0));
        assert_eq!(date("1577836800"), Some(1_577_836_800.0));
        assert_eq!(date("yesterday"), None);
    }

    #[test]
    fn cidrs_match_v4_and_v6() {
        assert_eq!(cidr_contains("203.0.113.0/24", "203.0.113.10"), Some(true));
        assert_eq!(cidr_contains("203.0.113.0/24", "198.51.100.7"), Some(false));
        assert_eq!(
            cidr_contains("2001:db8:1::/48", "2001:db8:1::5"),
            Some(true)
        );
        assert_eq!(
            cidr_contains("2001:db8:1::/48", "203.0.113.10"),
            Some(false)
        );
        assert_eq!(cidr_contains("not-a-cidr", "203.0.113.10"), None);
    }

    #[test]
    fn operators_parse_with_qualifiers_and_if_exists() {
        assert_eq!(
            parse_operator("ForAnyValue:StringEqualsIfExists"),
            Some((Base::StringEquals, SetQualifier::ForAnyValue, true))
        );
        assert_eq!(parse_operator("NullIfExists"), None);
        assert_eq!(parse_operator("StringSortOf"), None);
    }
}
