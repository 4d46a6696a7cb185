//! Condition operators (docs/diagnosis.md and AWS's "Policy evaluation logic") with three-valued results: a context key whose value is
//! unknown yields `Tri::Unknown`, never a silent "absent".

use super::{
    plain, resolve, wildcard_match, Context, ContextValue, Resolved, Tri, LITERAL_NOTE,
    LITERAL_VARIABLE,
};
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
            StringEquals | StringNotEquals => plain(policy) == actual,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                plain(policy).eq_ignore_ascii_case(actual)
            }
            StringLike | StringNotLike => wildcard_match(policy, actual, false),
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
    /// Variables fill only string and ARN operators' values ("You can't use a policy variable
    /// with other operators, such as Numeric, Date, Boolean, Binary, IP Address, or Null").
    fn takes_variables(&self) -> bool {
        use Base::*;
        !matches!(
            self.base,
            NumericEquals
                | NumericNotEquals
                | NumericLessThan
                | NumericLessThanEquals
                | NumericGreaterThan
                | NumericGreaterThanEquals
                | DateEquals
                | DateNotEquals
                | DateLessThan
                | DateLessThanEquals
                | DateGreaterThan
                | DateGreaterThanEquals
                | Bool
                | IpAddress
                | NotIpAddress
                | Null
        )
    }

    /// The policy values filled from the request: the ones that resolved, the variables with
    /// no value (they match nothing), and a variable whose value is Unknown.
    fn resolved_values(&self, ctx: &Context) -> (Vec<String>, Vec<String>, Option<String>) {
        let (mut values, mut no_value, mut unknown) = (Vec::new(), Vec::new(), None);
        for v in &self.values {
            if !self.takes_variables() {
                values.push(v.clone());
                continue;
            }
            match resolve(v, ctx) {
                Resolved::Text(t) => values.push(t),
                Resolved::NoValue(key) => no_value.push(key),
                Resolved::Unknown(key) => unknown = Some(key),
            }
        }
        (values, no_value, unknown)
    }

    /// Says which of this condition's policy variables had no value in the request, or that
    /// `${…}` was literal text, if either shaped the result.
    pub fn variable_note(&self, ctx: &Context) -> Option<String> {
        let (_, no_value, _) = self.resolved_values(ctx);
        if !no_value.is_empty() {
            return Some(format!(
                "${{{}}} has no value in the request",
                no_value.join("}, ${")
            ));
        }
        self.values
            .iter()
            .any(|v| v.contains(LITERAL_VARIABLE))
            .then(|| LITERAL_NOTE.to_string())
    }

    pub fn evaluate(&self, ctx: &Context) -> Tri {
        let actual = match ctx.get(&self.key) {
            Some(ContextValue::Unknown) => return Tri::Unknown,
            Some(ContextValue::Values(v)) => Some(v),
            None => None,
        };
        let (values, _, unknown_variable) = self.resolved_values(ctx);
        if self.base == Base::Null {
            let want_absent = values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return Tri::from(actual.is_none() == want_absent);
        }
        let Some(actual) = actual else {
            // A missing key decides without the values (condition operators page).
            return Tri::from(match self.qualifier {
                SetQualifier::ForAllValues => true,
                SetQualifier::ForAnyValue => false,
                SetQualifier::None => self.if_exists || self.base.negated(),
            });
        };
        if unknown_variable.is_some() {
            return Tri::Unknown;
        }
        // A variable with no value left no policy value behind: "StringEquals or StringLike do
        // not match", and "Inverted condition operators like StringNotEquals or StringNotLike
        // do match against a null value" (Variables and tags, "Policy variables with no value").
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
        // Values parsed under a Version without variables hold `${` as `${$}{`: show it as written.
        let values: Vec<String> = self
            .values
            .iter()
            .map(|v| v.replace(LITERAL_VARIABLE, "${"))
            .collect();
        format!("{} {} {:?}", self.operator, self.key, values)
    }
}

/// ARN matching: six colon-separated parts, each a wildcard match (the resource part case-sensitive).
fn arn_like(policy: &str, actual: &str) -> bool {
    let p: Vec<&str> = policy.splitn(6, ':').collect();
    let a: Vec<&str> = actual.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| wildcard_match(p, a, false))
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

    fn condition(operator: &str, value: &str) -> Condition {
        let (base, qualifier, if_exists) = parse_operator(operator).unwrap();
        Condition {
            operator: operator.into(),
            base,
            qualifier,
            if_exists,
            key: "s3:existingobjecttag/team".into(),
            values: vec![value.into()],
        }
    }

    /// "IAM policy elements: Variables and tags", Policy variables with no value: "StringEquals
    /// or StringLike do not match", "Inverted condition operators like StringNotEquals or
    /// StringNotLike do match against a null value"; with the key itself absent, the condition
    /// operators page decides (IfExists and negated operators true, ForAllValues true).
    #[test]
    fn a_variable_with_no_value_matches_nothing() {
        let mut tagged = Context::default();
        tagged.set(
            "s3:ExistingObjectTag/Team",
            ContextValue::Values(vec!["blue".into()]),
        );
        let untagged = Context::default();
        let var = "${aws:PrincipalTag/Team}";
        let cases = [
            ("StringEquals", &tagged, Tri::False),
            ("StringLike", &tagged, Tri::False),
            ("StringEqualsIfExists", &tagged, Tri::False),
            ("ForAnyValue:StringEquals", &tagged, Tri::False),
            ("ArnLike", &tagged, Tri::False),
            ("StringNotEquals", &tagged, Tri::True),
            ("StringNotLike", &tagged, Tri::True),
            ("StringNotEqualsIfExists", &tagged, Tri::True),
            ("ForAllValues:StringNotEquals", &tagged, Tri::True),
            ("StringEquals", &untagged, Tri::False),
            ("StringEqualsIfExists", &untagged, Tri::True),
            ("StringNotEquals", &untagged, Tri::True),
            ("ForAllValues:StringEquals", &untagged, Tri::True),
        ];
        for (op, ctx, want) in cases {
            assert_eq!(condition(op, var).evaluate(ctx), want, "{op}");
        }
        // The same variable with a value compares as usual.
        let mut both = tagged.clone();
        both.set(
            "aws:PrincipalTag/Team",
            ContextValue::Values(vec!["blue".into()]),
        );
        assert_eq!(condition("StringEquals", var).evaluate(&both), Tri::True);
        assert_eq!(
            condition("StringNotEquals", var).evaluate(&both),
            Tri::False
        );
        // Unknown is not absent: the condition stays Unknown.
        let mut unknown = tagged.clone();
        unknown.set("aws:PrincipalTag/Team", ContextValue::Unknown);
        assert_eq!(
            condition("StringNotEquals", var).evaluate(&unknown),
            Tri::Unknown
        );
        assert_eq!(
            condition("StringEquals", var).evaluate(&unknown),
            Tri::Unknown
        );
        // Numeric operators take no variables: the text is compared as written and is no number.
        let mut n = Context::default();
        n.set(
            "s3:existingobjecttag/team",
            ContextValue::Values(vec!["5".into()]),
        );
        n.set(
            "aws:PrincipalTag/Team",
            ContextValue::Values(vec!["5".into()]),
        );
        assert_eq!(condition("NumericEquals", var).evaluate(&n), Tri::False);
        assert!(condition("StringEquals", var)
            .variable_note(&tagged)
            .is_some_and(|n| n.contains("${aws:PrincipalTag/Team} has no value")));
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
