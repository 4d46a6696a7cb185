//! Pure diagnosis throughput (not a test): `make bench-diagnosis` writes BENCHMARKS-diagnosis.md.
//!
//! One thread diagnoses prepared incidents (plain data, no I/O) for a fixed time: a
//! cross-account export with a bucket policy of six statements and an SSE-KMS key policy, and a
//! same-account SSE mismatch. Reported as incidents per second, min/median/max of 5 rounds.

use ddb_export_remediator::domain::diagnosis::diagnose;
use ddb_export_remediator::domain::evidence::{BucketFacts, Evidence, KeyFacts};
use ddb_export_remediator::model::*;
use ddb_export_remediator::ports::BucketPresence;
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};

const TABLE: &str = "arn:aws:dynamodb:us-east-1:111122223333:table/orders";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn evidence(cross_account: bool) -> (Incident, Evidence) {
    let request = ExportRequest {
        table_arn: TABLE.into(),
        s3_bucket: "amzn-s3-demo-bucket".into(),
        s3_prefix: Some("exports".into()),
        s3_sse_algorithm: Some(if cross_account {
            SseAlgorithm::Kms
        } else {
            SseAlgorithm::Aes256
        }),
        s3_sse_kms_key_id: cross_account.then(|| KEY.to_string()),
        export_time: Some(1_795_500_000.0),
        ..Default::default()
    };
    let bucket_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Grant", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
         "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"], "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*"},
        {"Sid": "RequireKms", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
        {"Sid": "Tls", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "Readers", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::444455556666:role/Reader", "arn:aws:iam::444455556666:role/Auditor"]},
         "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"]},
        {"Sid": "OrgOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
         "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-exampleorgid"}}},
        {"Sid": "Lifecycle", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/logs/*"}
    ]})
    .to_string();
    let key_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"}, "Action": "kms:*", "Resource": "*"}
    ]})
    .to_string();
    let owner = if cross_account {
        "444455556666"
    } else {
        "111122223333"
    };
    let evidence = Evidence {
        table_account: "111122223333".into(),
        export: Some(ExportDescription {
            export_arn: format!("{TABLE}/export/01795508400000-9f8e7d6c"),
            status: ExportStatus::Failed,
            request: request.clone(),
            failure_code: Some("S3AccessDenied".into()),
            failure_message: Some(
                "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)"
                    .into(),
            ),
            start_time: None,
            end_time: None,
            item_count: None,
        }),
        request: Some(request),
        table: Fact::known(
            "dynamodb:DescribeTable",
            TableInfo {
                arn: TABLE.into(),
                status: "ACTIVE".into(),
                sse_status: None,
                sse_key_arn: None,
            },
        ),
        pitr: Fact::known(
            "dynamodb:DescribeContinuousBackups",
            PitrInfo {
                enabled: true,
                earliest_restorable: None,
                latest_restorable: None,
            },
        ),
        bucket: Some(BucketFacts {
            name: "amzn-s3-demo-bucket".into(),
            presence: Fact::known("s3:HeadBucket", BucketPresence::Exists),
            in_table_account: Fact::known("s3:ListBuckets", !cross_account),
            owner: Fact::known("s3:ListBuckets", owner.into()),
            region: Fact::known("s3:GetBucketLocation", "us-east-1".into()),
            policy: Fact::known("s3:GetBucketPolicy", bucket_policy),
            encryption: Fact::known(
                "s3:GetBucketEncryption",
                BucketEncryption {
                    algorithm: "aws:kms".into(),
                    kms_key_id: Some(KEY.into()),
                },
            ),
            requester_pays: Fact::known("s3:GetBucketRequestPayment", false),
            restrict_public: Fact::absent("s3:GetPublicAccessBlock"),
        }),
        export_key: cross_account.then(|| KeyFacts {
            key_id: KEY.into(),
            info: Fact::known(
                "kms:DescribeKey",
                KeyInfo {
                    arn: KEY.into(),
                    state: "Enabled".into(),
                    manager: "CUSTOMER".into(),
                    usage: "ENCRYPT_DECRYPT".into(),
                    spec: "SYMMETRIC_DEFAULT".into(),
                },
            ),
            policy: Fact::known("kms:GetKeyPolicy", key_policy),
            grants: Fact::known("kms:ListGrants", Vec::new()),
        }),
        default_key: None,
        pinned_key: None,
        caller_policies: None,
        table_policy: Fact::absent("dynamodb:GetResourcePolicy"),
        scps: Fact::absent("organizations:ListPoliciesForTarget"),
    };
    let mut incident = Incident::new(IncidentSource::Event);
    incident.export_arn = evidence.export.as_ref().map(|e| e.export_arn.clone());
    (incident, evidence)
}

fn main() {
    let cases = [
        ("cross-account SSE-KMS, key policy denies", evidence(true)),
        ("same-account SSE mismatch", evidence(false)),
    ];
    let mut md = String::from(
        "# Diagnosis throughput\n\nCommand: `make bench-diagnosis` (`cargo run --release --example bench_diagnosis`).\n\
         One thread, plain data (no I/O): `diagnose(incident, evidence)` including parsing and evaluating the\n\
         bucket policy (6 statements) and key policy for both candidate principals. 5 rounds of 1 s each.\n\n",
    );
    md.push_str(&format!("Machine: {} cores, {}.\n\n| incident | causes | incidents/s min | median | max |\n|---|---|---|---|---|\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()), std::env::consts::ARCH));
    for (label, (incident, evidence)) in &cases {
        let causes: Vec<&str> = diagnose(incident, evidence)
            .iter()
            .map(|f| f.cause.code())
            .collect();
        let mut rates = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < Duration::from_secs(1) {
                for _ in 0..100 {
                    black_box(diagnose(black_box(incident), black_box(evidence)));
                }
                n += 100;
            }
            rates.push(n as f64 / start.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        md.push_str(&format!(
            "| {label} | {} | {:.0} | {:.0} | {:.0} |\n",
            causes.join(", "),
            rates[0],
            rates[2],
            rates[4]
        ));
    }
    print!("{md}");
    std::fs::write("BENCHMARKS-diagnosis.md", md).expect("write BENCHMARKS-diagnosis.md");
}
