//! The emulator's enforcing mode (docs/emulator-enforcing.md): through the real launcher, an
//! export to a bucket tagged `moto-export-enforce=on` fails only because a policy moto holds
//! denies one of the requests DynamoDB makes for its caller, as @cloud-copilot/iam-simulate
//! judges them, and the `--enforce-log` line names the denying layer. The same policies on an
//! untagged bucket change nothing.
//!
//! AWS behaviour these worlds stand on: an SSE-KMS write needs kms:GenerateDataKey and
//! kms:Decrypt on the key ("Multipart upload and permissions",
//! https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html); a key policy must
//! allow the caller or delegate to its account ("Key policies in AWS KMS",
//! https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html); boundaries and SCPs
//! limit what identity policies allow ("Policy evaluation logic",
//! https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
//! moto shows none of it by itself: the launcher builds the requests and iam-simulate decides.

use crate::helpers::python;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::types::{PointInTimeRecoverySpecification, S3SseAlgorithm};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A launcher of its own, so that its `--enforce-log` holds only these tests' exports.
struct Enforcing {
    endpoint: String,
    log: PathBuf,
    _child: Mutex<Child>,
}

impl Drop for Enforcing {
    fn drop(&mut self) {
        if let Ok(child) = self._child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn launcher() -> &'static Enforcing {
    static L: OnceLock<Enforcing> = OnceLock::new();
    L.get_or_init(|| {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("enforce-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let mut child = Command::new(python())
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/moto_server.py"))
            .args(["--parent-pid", &std::process::id().to_string()])
            .arg("--enforce-log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the moto launcher");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read launcher output");
        let endpoint = line
            .strip_prefix("MOTO_READY ")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| panic!("moto launcher said {line:?}"));
        Enforcing {
            endpoint,
            log,
            _child: Mutex::new(child),
        }
    })
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

async fn sdk(creds: Option<Credentials>) -> SdkConfig {
    let creds = creds.unwrap_or_else(|| Credentials::new("testing", "testing", None, None, "t"));
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&launcher().endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .load()
        .await
}

fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

async fn assume(base: &SdkConfig, role_arn: &str, session_policy: Option<Value>) -> Credentials {
    let mut call = aws_sdk_sts::Client::new(base)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("exporter-session");
    if let Some(p) = session_policy {
        call = call.policy(p.to_string());
    }
    let c = call.send().await.expect("AssumeRole").credentials.unwrap();
    Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "session",
    )
}

/// An account's table (PITR on), its exporter role with `policy` (and `boundary`), and the
/// exporter's session.
struct World {
    admin: SdkConfig,
    account: String,
    table_arn: String,
    role_arn: String,
    session: SdkConfig,
}

fn allow(actions: &[&str]) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": "*"}]})
}

fn exporter_policy() -> Value {
    allow(&[
        "dynamodb:ExportTableToPointInTime",
        "s3:PutObject",
        "s3:PutObjectAcl",
        "s3:AbortMultipartUpload",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    ])
}

async fn world(admin: SdkConfig, policy: Value, boundary: Option<Value>) -> World {
    let account = aws_sdk_sts::Client::new(&admin)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity")
        .account()
        .unwrap()
        .to_string();
    let iam = aws_sdk_iam::Client::new(&admin);
    let name = unique("exporter");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "sts:AssumeRole"}]});
    let role_arn = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("CreateRole")
        .role()
        .unwrap()
        .arn()
        .to_string();
    iam.put_role_policy()
        .role_name(&name)
        .policy_name("export")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("PutRolePolicy");
    if let Some(b) = boundary {
        let arn = iam
            .create_policy()
            .policy_name(format!("{name}-boundary"))
            .policy_document(b.to_string())
            .send()
            .await
            .expect("CreatePolicy")
            .policy()
            .unwrap()
            .arn()
            .unwrap()
            .to_string();
        iam.put_role_permissions_boundary()
            .role_name(&name)
            .permissions_boundary(arn)
            .send()
            .await
            .expect("PutRolePermissionsBoundary");
    }
    let ddb = aws_sdk_dynamodb::Client::new(&admin);
    let table = unique("orders");
    let table_arn = ddb
        .create_table()
        .table_name(&table)
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable")
        .table_description()
        .unwrap()
        .table_arn()
        .unwrap()
        .to_string();
    ddb.update_continuous_backups()
        .table_name(&table)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("UpdateContinuousBackups");
    let session = sdk(Some(assume(&admin, &role_arn, None).await)).await;
    World {
        admin,
        account,
        table_arn,
        role_arn,
        session,
    }
}

/// A bucket in the world's account, with `policy`, tagged for enforcement when `enforce`.
async fn bucket(w: &World, policy: Option<Value>, enforce: bool) -> String {
    let s3 = s3(&w.admin);
    let name = unique("exports");
    s3.create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("CreateBucket");
    if let Some(p) = policy {
        let p = p.to_string().replace("BUCKET", &name);
        s3.put_bucket_policy()
            .bucket(&name)
            .policy(p)
            .send()
            .await
            .expect("PutBucketPolicy");
    }
    if enforce {
        let tag = aws_sdk_s3::types::Tag::builder()
            .key("moto-export-enforce")
            .value("on")
            .build()
            .unwrap();
        s3.put_bucket_tagging()
            .bucket(&name)
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .tag_set(tag)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("PutBucketTagging");
    }
    name
}

async fn key(w: &World, policy: Value) -> String {
    aws_sdk_kms::Client::new(&w.admin)
        .create_key()
        .policy(policy.to_string())
        .send()
        .await
        .expect("CreateKey")
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

fn root_delegation(account: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "EnableIam", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"}]})
}

/// What one export ended as, and the launcher's log line about it (None: not enforced).
struct Outcome {
    status: String,
    failure_code: Option<String>,
    failure_message: Option<String>,
    line: Option<Value>,
}

async fn export(w: &World, as_: &SdkConfig, bucket: &str, kms_key: Option<&str>) -> Outcome {
    let mut call = aws_sdk_dynamodb::Client::new(as_)
        .export_table_to_point_in_time()
        .table_arn(&w.table_arn)
        .s3_bucket(bucket)
        .s3_prefix("exports");
    if let Some(k) = kms_key {
        call = call
            .s3_sse_algorithm(S3SseAlgorithm::Kms)
            .s3_sse_kms_key_id(k);
    }
    let arn = call
        .send()
        .await
        .expect("ExportTableToPointInTime")
        .export_description()
        .unwrap()
        .export_arn()
        .unwrap()
        .to_string();
    let ddb = aws_sdk_dynamodb::Client::new(&w.admin);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = ddb
            .describe_export()
            .export_arn(&arn)
            .send()
            .await
            .expect("DescribeExport");
        let d = out.export_description().unwrap();
        let status = d.export_status().unwrap().as_str().to_string();
        if status != "IN_PROGRESS" {
            // The launcher writes the line before it ends the export.
            let line = std::fs::read_to_string(&launcher().log)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a log line is JSON"))
                .find(|l| l["exportArn"] == arn.as_str());
            return Outcome {
                status,
                failure_code: d.failure_code().map(str::to_string),
                failure_message: d.failure_message().map(str::to_string),
                line,
            };
        }
        assert!(Instant::now() < deadline, "export {arn} still IN_PROGRESS");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (action, decision, denying layers) of each request the line records.
fn requests(line: &Value) -> Vec<(String, String, Vec<String>)> {
    line["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["decision"].as_str().unwrap().to_string(),
                r["denyingLayers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn denied(line: &Value) -> Vec<(String, String, Vec<String>)> {
    requests(line)
        .into_iter()
        .filter(|(_, d, _)| d != "Allow")
        .collect()
}

fn r(action: &str, decision: &str, layers: &[&str]) -> (String, String, Vec<String>) {
    (
        action.to_string(),
        decision.to_string(),
        layers.iter().map(|s| s.to_string()).collect(),
    )
}

/// The failure message has the shape the line says, and names the caller when enhanced.
fn assert_shape(o: &Outcome, line: &Value) {
    let message = o.failure_message.as_deref().expect("a failure message");
    match line["messageShape"].as_str() {
        Some("bare") => assert!(message.starts_with("Access Denied (Service: Amazon S3;")),
        Some("enhanced") => assert!(
            message.starts_with(&format!(
                "User: {} is not authorized",
                line["caller"].as_str().unwrap()
            )),
            "{message}"
        ),
        other => panic!("messageShape {other:?}"),
    }
}

/// A deny-unless-SSE-KMS bucket statement, as S3's guide writes it ("Requiring server-side
/// encryption", https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
fn deny_unless_kms() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "DenyUnEncryptedObjectUploads",
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::BUCKET/*",
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}]})
}

#[tokio::test]
async fn a_same_account_export_the_policies_allow_completes() {
    let w = world(sdk(None).await, exporter_policy(), None).await;
    let b = bucket(&w, None, true).await;
    let o = export(&w, &w.session, &b, None).await;
    assert_eq!(o.status, "COMPLETED", "{:?}", o.failure_message);
    let line = o.line.expect("an enforced export is logged");
    assert_eq!(line["outcome"], "COMPLETED");
    assert_eq!(line["refused"], Value::Null);
    assert_eq!(line["callerRole"], w.role_arn.as_str());
    assert_eq!(line["bucketAccount"], w.account.as_str());
    assert_eq!(line["keyArn"], Value::Null, "an SSE-S3 bucket uses no key");
    assert_eq!(line["bucketOwnerCanDecrypt"], Value::Null);
    assert_eq!(
        requests(&line),
        vec![
            r("s3:PutObject", "Allow", &[]),
            r("s3:PutObjectAcl", "Allow", &[]),
            r("s3:AbortMultipartUpload", "Allow", &[]),
        ]
    );
    let put = &line["requests"][0];
    assert_eq!(put["principal"], line["caller"]);
    assert_eq!(
        put["context"]["aws:CalledVia"],
        json!(["dynamodb.amazonaws.com"])
    );
    assert_eq!(put["context"]["aws:SecureTransport"], "true");
    assert!(put["context"]
        .get("s3:x-amz-server-side-encryption")
        .is_none());
}

#[tokio::test]
async fn a_bucket_policy_requiring_kms_fails_an_export_without_flags_and_names_the_bucket_policy() {
    let w = world(sdk(None).await, exporter_policy(), None).await;
    let b = bucket(&w, Some(deny_unless_kms()), true).await;
    let o = export(&w, &w.session, &b, None).await;
    assert_eq!(o.status, "FAILED");
    assert_eq!(o.failure_code.as_deref(), Some("S3AccessDenied"));
    let line = o.line.as_ref().expect("logged");
    assert_eq!(
        denied(line),
        vec![r("s3:PutObject", "ExplicitDeny", &["bucket_policy"])]
    );
    assert_shape(&o, line);

    // The same export with KMS and a key the caller may use gets past that statement.
    let k = key(&w, root_delegation(&w.account)).await;
    let o = export(&w, &w.session, &b, Some(&k)).await;
    assert_eq!(o.status, "COMPLETED", "{:?}", o.failure_message);
    let line = o.line.expect("logged");
    assert_eq!(line["keyArn"], k.as_str());
    assert_eq!(
        line["requests"][0]["context"]["s3:x-amz-server-side-encryption"],
        "aws:kms"
    );
    assert_eq!(
        line["requests"][3]["context"]["kms:ViaService"],
        "s3.us-east-1.amazonaws.com"
    );
}

#[tokio::test]
async fn without_the_tag_the_same_policies_change_nothing() {
    let w = world(sdk(None).await, exporter_policy(), None).await;
    let b = bucket(&w, Some(deny_unless_kms()), false).await;
    let o = export(&w, &w.session, &b, None).await;
    assert_eq!(o.status, "COMPLETED", "moto evaluates no policy by itself");
    assert!(
        o.line.is_none(),
        "an export that is not enforced is not logged"
    );
}

#[tokio::test]
async fn a_key_policy_leaving_the_caller_out_fails_naming_the_key_policy() {
    let w = world(sdk(None).await, exporter_policy(), None).await;
    let b = bucket(&w, None, true).await;
    let admin_only = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:role/key-admin", w.account)},
        "Action": "kms:*", "Resource": "*"}]});
    let k = key(&w, admin_only).await;
    let o = export(&w, &w.session, &b, Some(&k)).await;
    assert_eq!(o.status, "FAILED");
    assert_eq!(o.failure_code.as_deref(), Some("S3AccessDenied"));
    let line = o.line.as_ref().expect("logged");
    assert_eq!(line["keyArn"], k.as_str());
    assert_eq!(
        denied(line),
        vec![
            r("kms:GenerateDataKey", "ImplicitDeny", &["key_policy"]),
            r("kms:Decrypt", "ImplicitDeny", &["key_policy"]),
        ]
    );
    assert_shape(&o, line);

    // A grant to the exporter's role for both operations stands in for a key policy statement
    // (Grants in AWS KMS, https://docs.aws.amazon.com/kms/latest/developerguide/grants.html).
    aws_sdk_kms::Client::new(&w.admin)
        .create_grant()
        .key_id(&k)
        .grantee_principal(&w.role_arn)
        .operations(aws_sdk_kms::types::GrantOperation::GenerateDataKey)
        .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
        .send()
        .await
        .expect("CreateGrant");
    let o = export(&w, &w.session, &b, Some(&k)).await;
    assert_eq!(o.status, "COMPLETED", "{:?}", o.failure_message);
}

#[tokio::test]
async fn a_cross_account_bucket_whose_default_key_leaves_the_exporter_out_fails_naming_the_key_policy(
) {
    // The bucket is in the management account and grants the table account; its default
    // encryption is a customer managed key there that only that account may use. The export
    // sends no SSE flags, so S3 applies the bucket default ("Setting default server-side
    // encryption behavior for Amazon S3 buckets",
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-encryption.html).
    let management = sdk(None).await;
    let (_, inside) = member_account(&management).await;
    let w = world(inside, exporter_policy(), None).await;
    let owner = aws_sdk_sts::Client::new(&management)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity")
        .account()
        .unwrap()
        .to_string();
    let key_arn = aws_sdk_kms::Client::new(&management)
        .create_key()
        .policy(root_delegation(&owner).to_string())
        .send()
        .await
        .expect("CreateKey")
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let s3 = s3(&management);
    let name = unique("shared");
    s3.create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("CreateBucket");
    let grant = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", w.account)},
        "Action": ["s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload"],
        "Resource": format!("arn:aws:s3:::{name}/*")}]});
    s3.put_bucket_policy()
        .bucket(&name)
        .policy(grant.to_string())
        .send()
        .await
        .expect("PutBucketPolicy");
    let rule = aws_sdk_s3::types::ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .kms_master_key_id(&key_arn)
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_encryption()
        .bucket(&name)
        .server_side_encryption_configuration(
            aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutBucketEncryption");
    let tag = aws_sdk_s3::types::Tag::builder()
        .key("moto-export-enforce")
        .value("on")
        .build()
        .unwrap();
    s3.put_bucket_tagging()
        .bucket(&name)
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(tag)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutBucketTagging");

    let o = export(&w, &w.session, &name, None).await;
    assert_eq!(o.status, "FAILED");
    let line = o.line.as_ref().expect("logged");
    assert_eq!(line["bucketAccount"], owner.as_str());
    assert_eq!(line["keyArn"], key_arn.as_str());
    assert_eq!(
        denied(line),
        vec![
            r("kms:GenerateDataKey", "ImplicitDeny", &["key_policy"]),
            r("kms:Decrypt", "ImplicitDeny", &["key_policy"]),
        ]
    );
    assert_eq!(
        line["requests"][3]["context"]["kms:CallerAccount"],
        w.account.as_str()
    );
    assert_eq!(
        line["bucketOwnerCanDecrypt"], true,
        "the key is the owner's own"
    );
    assert_shape(&o, line);

    // With the exporter's own key (its account's root delegation only) the export completes,
    // and the bucket owner cannot read what it wrote.
    let own_key = key(&w, root_delegation(&w.account)).await;
    let o = export(&w, &w.session, &name, Some(&own_key)).await;
    assert_eq!(o.status, "COMPLETED", "{:?}", o.failure_message);
    let line = o.line.expect("logged");
    assert_eq!(line["keyArn"], own_key.as_str());
    assert_eq!(line["bucketOwnerCanDecrypt"], false);
}

#[tokio::test]
async fn a_boundary_leaving_kms_out_fails_naming_the_boundary() {
    let boundary = allow(&["dynamodb:*", "s3:*"]);
    let w = world(sdk(None).await, exporter_policy(), Some(boundary)).await;
    let b = bucket(&w, None, true).await;
    let k = key(&w, root_delegation(&w.account)).await;
    let o = export(&w, &w.session, &b, Some(&k)).await;
    assert_eq!(o.status, "FAILED");
    let line = o.line.as_ref().expect("logged");
    assert_eq!(
        denied(line),
        vec![
            r("kms:GenerateDataKey", "ImplicitDeny", &["boundary"]),
            r("kms:Decrypt", "ImplicitDeny", &["boundary"]),
        ]
    );
    assert_shape(&o, line);
}

#[tokio::test]
async fn a_session_policy_leaving_kms_out_fails_naming_the_session() {
    let w = world(sdk(None).await, exporter_policy(), None).await;
    let scoped = assume(&w.admin, &w.role_arn, Some(allow(&["dynamodb:*", "s3:*"]))).await;
    let scoped = sdk(Some(scoped)).await;
    let b = bucket(&w, None, true).await;
    let k = key(&w, root_delegation(&w.account)).await;
    let o = export(&w, &scoped, &b, Some(&k)).await;
    assert_eq!(o.status, "FAILED");
    let line = o.line.as_ref().expect("logged");
    assert_eq!(
        denied(line),
        vec![
            r("kms:GenerateDataKey", "ImplicitDeny", &["session"]),
            r("kms:Decrypt", "ImplicitDeny", &["session"]),
        ]
    );
}

/// The launcher's organization (its default account manages it), made once.
async fn organization(management: &SdkConfig) -> aws_sdk_organizations::Client {
    static MADE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let org = aws_sdk_organizations::Client::new(management);
    MADE.get_or_init(|| async {
        org.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .expect("CreateOrganization");
    })
    .await;
    org
}

/// A new member account and the management account's way into it.
async fn member_account(management: &SdkConfig) -> (String, SdkConfig) {
    let org = organization(management).await;
    let name = unique("member");
    let member = org
        .create_account()
        .email(format!("{name}@example.com"))
        .account_name(&name)
        .send()
        .await
        .expect("CreateAccount")
        .create_account_status()
        .unwrap()
        .account_id()
        .unwrap()
        .to_string();
    let inside = assume(
        management,
        &format!("arn:aws:iam::{member}:role/OrganizationAccountAccessRole"),
        None,
    )
    .await;
    (member, sdk(Some(inside)).await)
}

#[tokio::test]
async fn an_scp_denying_unencrypted_writes_fails_a_member_export_naming_the_scp() {
    // SCPs do not affect the management account (How SCPs work,
    // https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html):
    // the world lives in a member account under an OU with the SCP.
    let management = sdk(None).await;
    let (member, inside) = member_account(&management).await;
    let org = organization(&management).await;
    let name = unique("guardrail");
    let root = org.list_roots().send().await.expect("ListRoots").roots()[0]
        .id()
        .unwrap()
        .to_string();
    let ou = org
        .create_organizational_unit()
        .parent_id(&root)
        .name(&name)
        .send()
        .await
        .expect("CreateOrganizationalUnit")
        .organizational_unit()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    org.move_account()
        .account_id(&member)
        .source_parent_id(&root)
        .destination_parent_id(&ou)
        .send()
        .await
        .expect("MoveAccount");
    let scp = json!({"Version": "2012-10-17", "Statement": [{"Sid": "DenyUnencryptedPuts",
        "Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
        "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}]});
    let policy = org
        .create_policy()
        .name(&name)
        .description("guardrail")
        .r#type(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .content(scp.to_string())
        .send()
        .await
        .expect("CreatePolicy")
        .policy()
        .unwrap()
        .policy_summary()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    org.attach_policy()
        .policy_id(&policy)
        .target_id(&ou)
        .send()
        .await
        .expect("AttachPolicy");
    let w = world(inside, exporter_policy(), None).await;
    assert_eq!(w.account, member);
    let b = bucket(&w, None, true).await;
    let o = export(&w, &w.session, &b, None).await;
    assert_eq!(o.status, "FAILED");
    let line = o.line.as_ref().expect("logged");
    assert_eq!(
        denied(line),
        vec![r("s3:PutObject", "ExplicitDeny", &["scp"])]
    );
    assert!(line["requests"][0]["context"]["aws:PrincipalOrgID"].is_string());
    assert_shape(&o, line);
}

#[tokio::test]
async fn a_world_the_launcher_cannot_judge_is_refused_not_passed() {
    // The account's own credentials are no role session: there is no role to judge.
    let w = world(sdk(None).await, exporter_policy(), None).await;
    let b = bucket(&w, None, true).await;
    let o = export(&w, &w.admin, &b, None).await;
    assert_eq!(o.status, "FAILED");
    assert_eq!(o.failure_code.as_deref(), Some("EmulatorRefused"));
    let line = o.line.expect("logged");
    assert!(line["refused"].is_string(), "{line:#}");
    assert_eq!(line["outcome"], "FAILED");

    // A bucket policy iam-simulate rejects (an Effect that is neither Allow nor Deny; moto
    // stores it, AWS would not) is refused too.
    let bad = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Denie", "Principal": "*",
        "Action": "s3:PutObject", "Resource": "arn:aws:s3:::BUCKET/*"}]});
    let b = bucket(&w, Some(bad), true).await;
    let o = export(&w, &w.session, &b, None).await;
    assert_eq!(o.failure_code.as_deref(), Some("EmulatorRefused"));
    assert!(o.line.expect("logged")["refused"].is_string());
}
