//! ARN parsing for the handful of resource kinds the remediator names.

use std::fmt;

/// `arn:partition:service:region:account:resource`, split once and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ArnError {
    pub field: &'static str,
    pub reason: String,
}

impl ArnError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];
const MAX_ARN_LEN: usize = 2048;

impl Arn {
    /// Parses any ARN; `field` names the input in the error.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, ArnError> {
        if text.len() > MAX_ARN_LEN {
            return Err(ArnError::new(field, "longer than 2048 characters"));
        }
        let mut parts = text.splitn(6, ':');
        let mut next = || parts.next().unwrap_or_default().to_string();
        let (prefix, partition, service, region, account, resource) =
            (next(), next(), next(), next(), next(), next());
        if prefix != "arn" || resource.is_empty() {
            return Err(ArnError::new(
                field,
                format!("not an ARN: {:?}", short(text)),
            ));
        }
        if !PARTITIONS.contains(&partition.as_str()) {
            return Err(ArnError::new(
                field,
                format!("unknown partition {:?}", short(&partition)),
            ));
        }
        Ok(Self {
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    fn expect_service(self, field: &'static str, service: &str) -> Result<Self, ArnError> {
        if self.service != service {
            return Err(ArnError::new(
                field,
                format!("expected a {service} ARN, got service {:?}", self.service),
            ));
        }
        if self.region.is_empty() && service != "s3" {
            return Err(ArnError::new(field, "the ARN has no region"));
        }
        if service != "s3" && !is_account_id(&self.account) {
            return Err(ArnError::new(
                field,
                "the ARN's account is not a 12-digit account id",
            ));
        }
        Ok(self)
    }

    /// A DynamoDB table ARN: `…:table/<name>`.
    pub fn table(field: &'static str, text: &str) -> Result<Self, ArnError> {
        let arn = Self::parse(field, text)?.expect_service(field, "dynamodb")?;
        match arn.resource.strip_prefix("table/") {
            Some(name) if !name.contains('/') => match table_name_problem(name) {
                None => Ok(arn),
                Some(problem) => Err(ArnError::new(field, problem)),
            },
            _ => Err(ArnError::new(field, "expected table/<name>")),
        }
    }

    /// A DynamoDB export ARN: `…:table/<name>/export/<id>`.
    pub fn export(field: &'static str, text: &str) -> Result<Self, ArnError> {
        let arn = Self::parse(field, text)?.expect_service(field, "dynamodb")?;
        let parts = arn
            .resource
            .strip_prefix("table/")
            .and_then(|rest| rest.split_once("/export/"))
            .filter(|(name, id)| !name.contains('/') && !id.is_empty());
        match parts.map(|(name, _)| table_name_problem(name)) {
            Some(None) => Ok(arn),
            // The shape is right; the table name breaks DynamoDB's naming rule: say which.
            Some(Some(problem)) => Err(ArnError::new(field, problem)),
            None => Err(ArnError::new(field, "expected table/<name>/export/<id>")),
        }
    }

    /// The table name of a table or export ARN.
    pub fn table_name(&self) -> Option<&str> {
        let rest = self.resource.strip_prefix("table/")?;
        Some(rest.split('/').next().unwrap_or(rest))
    }

    /// The table ARN an export ARN belongs to.
    pub fn table_arn_of_export(&self) -> Option<String> {
        let name = self.table_name()?;
        Some(format!(
            "arn:{}:dynamodb:{}:{}:table/{}",
            self.partition, self.region, self.account, name
        ))
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// The partition of a region (`aws-cn` for cn-*, `aws-us-gov` for us-gov-*).
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `us-west-2`, `eu-central-1`, `us-gov-west-1`, `cn-north-1`: lowercase words and a number.
pub fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 3
        && text.len() <= 32
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// What breaks DynamoDB's table naming rule, if anything: 3 to 255 characters of `a-z`, `A-Z`,
/// `0-9`, `_`, `-` and `.` ("Supported data types and naming rules in Amazon DynamoDB",
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html).
fn table_name_problem(name: &str) -> Option<String> {
    const RULE: &str = "a table name is 3-255 characters of a-z, A-Z, 0-9, '_', '-' and '.'";
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if !(3..=255).contains(&name.len()) {
        let n = name.chars().count();
        let unit = if n == 1 { "character" } else { "characters" };
        Some(format!(
            "the table name {:?} is {n} {unit} long; {RULE}",
            short(name)
        ))
    } else {
        let odd = name.chars().find(|c| !c.is_ascii() || !allowed(*c as u8));
        odd.map(|c| format!("the table name {:?} contains {c:?}; {RULE}", short(name)))
    }
}

/// The account id of a KMS key ARN or an IAM principal ARN, if the text is one.
pub fn account_of(text: &str) -> Option<String> {
    Arn::parse("arn", text)
        .ok()
        .map(|a| a.account)
        .filter(|a| is_account_id(a))
}

fn short(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The role name of `arn:…:iam::<acct>:role/<path/>Name` or `arn:…:sts::<acct>:assumed-role/Name/session`.
pub fn role_name(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        rest.split('/').next()
    } else {
        resource
            .strip_prefix("role/")
            .and_then(|r| r.rsplit('/').next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_arn_yields_its_table() {
        let arn = Arn::export(
            "exportArn",
            "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01771261885495-c7ead50c",
        )
        .unwrap();
        assert_eq!(arn.table_name(), Some("orders"));
        assert_eq!(
            arn.table_arn_of_export().as_deref(),
            Some("arn:aws:dynamodb:us-east-1:111122223333:table/orders")
        );
    }

    #[test]
    fn other_partitions_parse() {
        for p in ["aws-cn", "aws-us-gov"] {
            let text = format!("arn:{p}:dynamodb:cn-north-1:111122223333:table/orders");
            assert_eq!(Arn::table("tableArn", &text).unwrap().partition, p);
        }
    }

    #[test]
    fn bad_arns_name_the_field_and_reason() {
        let cases = [
            ("orders", "not an ARN"),
            (
                "arn:aws-xx:dynamodb:us-east-1:111122223333:table/orders",
                "partition",
            ),
            ("arn:aws:s3:::bucket", "expected a dynamodb ARN"),
            ("arn:aws:dynamodb:us-east-1:1111:table/orders", "12-digit"),
            (
                "arn:aws:dynamodb:us-east-1:111122223333:table/a",
                "the table name \"a\" is 1 character long; a table name is 3-255 characters",
            ),
            (
                "arn:aws:dynamodb:us-east-1:111122223333:table/or ders",
                "contains ' '",
            ),
            (
                "arn:aws:dynamodb:us-east-1:111122223333:index/orders",
                "expected table/<name>",
            ),
            ("arn:aws:dynamodb::111122223333:table/orders", "no region"),
        ];
        for (text, needle) in cases {
            let err = Arn::table("tableArn", text).unwrap_err();
            assert_eq!(err.field, "tableArn");
            assert!(err.reason.contains(needle), "{text}: {}", err.reason);
        }
        let err = Arn::export(
            "exportArn",
            "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
        )
        .unwrap_err();
        assert!(err.reason.contains("export"));
    }

    #[test]
    fn a_short_table_name_in_an_export_arn_is_named_with_the_rule_it_breaks() {
        // The shape table/<name>/export/<id> is right: the name is what is wrong.
        let err = Arn::export(
            "EXPORT_ARN",
            "arn:aws:dynamodb:us-east-1:111122223333:table/t/export/01795508400000-9f8e7d6c",
        )
        .unwrap_err();
        assert_eq!(
            err.reason,
            "the table name \"t\" is 1 character long; a table name is 3-255 characters of a-z, A-Z, 0-9, '_', '-' and '.'"
        );
        // A wrong shape still says which shape is expected.
        let err = Arn::export(
            "EXPORT_ARN",
            "arn:aws:dynamodb:us-east-1:111122223333:table/orders/stream/2024",
        )
        .unwrap_err();
        assert_eq!(err.reason, "expected table/<name>/export/<id>");
        assert!(table_name_problem(&"x".repeat(255)).is_none());
        assert!(table_name_problem(&"x".repeat(256)).is_some());
        assert!(table_name_problem("Orders_2024-v1.0").is_none());
    }

    #[test]
    fn account_of_reads_key_and_principal_arns() {
        assert_eq!(
            account_of("arn:aws:kms:us-east-1:444455556666:key/abc").as_deref(),
            Some("444455556666")
        );
        assert_eq!(account_of("alias/aws/s3"), None);
    }
}
