use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use ddb_export_remediator::{aws, handler, App, Config};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const MEMBER_ROLE: &str = "DdbExportRemediatorMember";

pub struct Moto {
    pub endpoint: String,
    _child: Mutex<Child>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn python() -> PathBuf {
    let p = repo().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `make tools` (or `make test`) first",
        p.display()
    );
    p
}

impl Moto {
    /// Starts a patched moto server on a free 127.0.0.1 port; it exits with this process.
    pub fn start() -> Moto {
        let mut child = Command::new(python())
            .arg(repo().join("tools/moto_server.py"))
            .args(["--parent-pid", &std::process::id().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the moto launcher");
        let stdout = child.stdout.take().expect("launcher stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read launcher output");
        let endpoint = line
            .strip_prefix("MOTO_READY ")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| panic!("moto launcher said {line:?}"));
        Moto {
            endpoint,
            _child: Mutex::new(child),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(child) = self._child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One emulator shared by the tests of this binary (each test names its own resources).
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

pub fn unique_suffix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Creates a scenario with tools/seed.py and returns what it made.
pub fn seed(scenario: &str) -> Value {
    seed_at(&moto().endpoint, &[scenario])
}

/// Runs tools/seed.py against `endpoint` with these arguments (scenario last).
pub fn seed_at(endpoint: &str, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(repo().join("tools/seed.py"))
        .args(["--endpoint", endpoint, "--suffix", &unique_suffix()])
        .args(args)
        .output()
        .expect("run seed.py");
    assert!(
        out.status.success(),
        "seed {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("seed output is JSON")
}

pub async fn sdk() -> SdkConfig {
    sdk_at(&moto().endpoint).await
}

pub async fn sdk_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

pub fn config() -> Config {
    Config {
        member_role_name: Some(MEMBER_ROLE.into()),
        s3_force_path_style: true,
        ..Config::default()
    }
}

pub async fn app(config: Config) -> App {
    aws::build_app(config, &sdk().await)
}

/// A fresh ledger table in the shared emulator, and the config that uses it.
pub fn ledger_config() -> Config {
    let name = format!("ledger-{}", unique_suffix());
    seed_at(&moto().endpoint, &["--table", &name, "ledger"]);
    Config {
        ledger_table_name: Some(name),
        ..config()
    }
}

/// How many exports the table has (ListExports).
pub async fn export_count(table_arn: &str) -> usize {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    let out = ddb
        .list_exports()
        .table_arn(table_arn)
        .send()
        .await
        .expect("ListExports");
    out.export_summaries().len()
}

/// Invokes the Lambda handler exactly as the runtime does, returning its JSON or Diagnostic.
pub async fn invoke(app: &App, payload: Value) -> Result<Value, Diagnostic> {
    handler::handle(app, LambdaEvent::new(payload, Context::default()))
        .await
        .map_err(Diagnostic::from)
}

/// Polls DescribeExport until the export leaves IN_PROGRESS; returns (status, failure code).
pub async fn wait_export(export_arn: &str) -> (String, Option<String>) {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = ddb
            .describe_export()
            .export_arn(export_arn)
            .send()
            .await
            .expect("DescribeExport");
        let d = d.export_description().expect("description");
        let status = d
            .export_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if status != "IN_PROGRESS" || Instant::now() > deadline {
            return (status, d.failure_code().map(str::to_string));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn causes(result: &Value) -> Vec<(String, String)> {
    result["findings"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    (
                        f["cause"].as_str().unwrap_or("").to_string(),
                        f["confidence"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn pair(cause: &str, confidence: &str) -> (String, String) {
    (cause.to_string(), confidence.to_string())
}
