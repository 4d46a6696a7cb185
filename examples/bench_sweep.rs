//! Sweep cost benchmark (not a test): `make bench-sweep` runs it and writes BENCHMARKS-sweep.md.
//!
//! For each size it starts a fresh patched moto emulator, seeds N exports over 10 tables with 5
//! FAILED, and runs the sweep twice through the real adapters: the first sweep finds the
//! failures, the second is the steady state. Every port call is counted and timed, so the
//! report separates the function's own time from time spent waiting on API calls.

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use ddb_export_remediator::model::{ExportDescription, ExportRequest, PitrInfo, TableInfo};
use ddb_export_remediator::ports::*;
use ddb_export_remediator::{aws, App, Config};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Meter {
    calls: AtomicUsize,
    nanos: AtomicU64,
}

impl Meter {
    async fn time<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }
    fn take(&self) -> (usize, Duration) {
        (
            self.calls.swap(0, Ordering::Relaxed),
            Duration::from_nanos(self.nanos.swap(0, Ordering::Relaxed)),
        )
    }
}

struct Timed<T> {
    inner: T,
    meter: Arc<Meter>,
}

#[async_trait]
impl ExportService for Timed<Box<dyn ExportService>> {
    async fn describe_export(&self, arn: &str) -> PortResult<Option<ExportDescription>> {
        self.meter.time(self.inner.describe_export(arn)).await
    }
    async fn start_export(&self, r: &ExportRequest, t: &str) -> PortResult<String> {
        self.meter.time(self.inner.start_export(r, t)).await
    }
    async fn describe_table(&self, t: &str) -> PortResult<Option<TableInfo>> {
        self.meter.time(self.inner.describe_table(t)).await
    }
    async fn continuous_backups(&self, t: &str) -> PortResult<Option<PitrInfo>> {
        self.meter.time(self.inner.continuous_backups(t)).await
    }
    async fn table_policy(&self, t: &str) -> PortResult<Option<String>> {
        self.meter.time(self.inner.table_policy(t)).await
    }
    async fn list_exports(&self, t: Option<&str>, n: Option<String>) -> PortResult<ExportPage> {
        self.meter.time(self.inner.list_exports(t, n)).await
    }
    async fn table_names(&self) -> PortResult<Vec<String>> {
        self.meter.time(self.inner.table_names()).await
    }
}

#[async_trait]
impl Ledger for Timed<Arc<dyn Ledger>> {
    async fn claim(&self, a: &str, n: i64, l: i64) -> PortResult<Claim> {
        self.meter.time(self.inner.claim(a, n, l)).await
    }
    async fn settle(&self, r: &IncidentRecord, n: i64) -> PortResult<()> {
        self.meter.time(self.inner.settle(r, n)).await
    }
    async fn lineage(&self, a: &str) -> PortResult<Option<Lineage>> {
        self.meter.time(self.inner.lineage(a)).await
    }
    async fn record_lineage(&self, a: &str, l: &Lineage, n: i64) -> PortResult<()> {
        self.meter.time(self.inner.record_lineage(a, l, n)).await
    }
    async fn record_start(&self, a: &str, s: &StartRecord, n: i64) -> PortResult<()> {
        self.meter.time(self.inner.record_start(a, s, n)).await
    }
    async fn start_record(&self, a: &str) -> PortResult<Option<StartRecord>> {
        self.meter.time(self.inner.start_record(a)).await
    }
    async fn sweep_states(&self, a: &[String]) -> PortResult<HashMap<String, SweepState>> {
        self.meter.time(self.inner.sweep_states(a)).await
    }
    async fn set_sweep_state(&self, a: &str, s: SweepState, n: i64) -> PortResult<()> {
        self.meter.time(self.inner.set_sweep_state(a, s, n)).await
    }
    async fn table_mark(&self, t: &str) -> PortResult<Option<String>> {
        self.meter.time(self.inner.table_mark(t)).await
    }
    async fn set_table_mark(&self, t: &str, m: &str, n: i64) -> PortResult<()> {
        self.meter.time(self.inner.set_table_mark(t, m, n)).await
    }
    async fn sweep_cursor(&self) -> PortResult<Option<String>> {
        self.meter.time(self.inner.sweep_cursor()).await
    }
    async fn set_sweep_cursor(&self, t: Option<&str>, n: i64) -> PortResult<()> {
        self.meter.time(self.inner.set_sweep_cursor(t, n)).await
    }
    async fn record_change(&self, c: &KeyPolicyChange, n: i64) -> PortResult<()> {
        self.meter.time(self.inner.record_change(c, n)).await
    }
    async fn key_change(&self, id: &str) -> PortResult<Option<KeyPolicyChange>> {
        self.meter.time(self.inner.key_change(id)).await
    }
    async fn set_change_status(
        &self,
        id: &str,
        from: ChangeStatus,
        to: ChangeStatus,
        note: Option<&str>,
        n: i64,
    ) -> PortResult<bool> {
        self.meter
            .time(self.inner.set_change_status(id, from, to, note, n))
            .await
    }
    async fn track_in_flight(&self, a: &str, at: i64, c: u32, n: i64) -> PortResult<()> {
        self.meter
            .time(self.inner.track_in_flight(a, at, c, n))
            .await
    }
    async fn in_flight_due(&self, n: i64, limit: usize) -> PortResult<Vec<InFlight>> {
        self.meter.time(self.inner.in_flight_due(n, limit)).await
    }
    async fn untrack_in_flight(&self, a: &str) -> PortResult<()> {
        self.meter.time(self.inner.untrack_in_flight(a)).await
    }
    async fn marker(&self, name: &str) -> PortResult<Option<i64>> {
        self.meter.time(self.inner.marker(name)).await
    }
    async fn set_marker(&self, name: &str, v: i64, n: i64) -> PortResult<()> {
        self.meter.time(self.inner.set_marker(name, v, n)).await
    }
}

#[async_trait]
impl EventPublisher for Timed<Arc<dyn EventPublisher>> {
    async fn publish(&self, e: &[OutboundEvent]) -> PortResult<Vec<bool>> {
        self.meter.time(self.inner.publish(e)).await
    }
}

#[async_trait]
impl Identity for Timed<Box<dyn Identity>> {
    async fn whoami(&self) -> PortResult<(String, String)> {
        self.meter.time(self.inner.whoami()).await
    }
}

/// CPU time of this process so far: the sum over its threads of /proc/<pid>/task/*/schedstat
/// (nanoseconds on CPU). Linux only; 0 elsewhere.
fn cpu_nanos() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn python(args: &[&str]) -> Value {
    let out = Command::new(".venv/bin/python")
        .args(args)
        .output()
        .expect("run python from .venv (make tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

struct Row {
    exports: usize,
    label: &'static str,
    wall: Duration,
    api: Duration,
    cpu: Duration,
    calls: usize,
    list_calls: u64,
    describe_calls: u64,
    published: usize,
}

async fn run(exports: usize) -> Vec<Row> {
    let mut child = Command::new(".venv/bin/python")
        .args([
            "tools/moto_server.py",
            "--parent-pid",
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("moto ready line");
    let endpoint = line.trim().trim_start_matches("MOTO_READY ").to_string();
    let seeded = Instant::now();
    let n = exports.to_string();
    python(&[
        "tools/seed.py",
        "--endpoint",
        &endpoint,
        "--tables",
        "10",
        "--exports",
        &n,
        "--failed",
        "5",
        "bulk",
    ]);
    python(&[
        "tools/seed.py",
        "--endpoint",
        &endpoint,
        "--table",
        "ledger",
        "ledger",
    ]);
    eprintln!("seeded {exports} exports in {:.1?}", seeded.elapsed());

    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "bench"))
        .load()
        .await;
    let config = Config {
        ledger_table_name: Some("ledger".into()),
        s3_force_path_style: true,
        ..Config::default()
    };
    let meter = Arc::new(Meter::default());
    let app = aws::build_app(config, &sdk);
    let app = App {
        exports: Box::new(Timed {
            inner: app.exports,
            meter: meter.clone(),
        }),
        ledger: app.ledger.map(|l| {
            Arc::new(Timed {
                inner: l,
                meter: meter.clone(),
            }) as Arc<dyn Ledger>
        }),
        events: Arc::new(Timed {
            inner: app.events,
            meter: meter.clone(),
        }),
        identity: Box::new(Timed {
            inner: app.identity,
            meter: meter.clone(),
        }),
        ..app
    };
    let event = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let mut rows = Vec::new();
    for label in [
        "first sweep (finds the 5 failures)",
        "steady sweep (nothing new)",
    ] {
        let start = Instant::now();
        let cpu_start = cpu_nanos();
        let result = app.handle(&event, None).await.expect("sweep");
        let wall = start.elapsed();
        let cpu = Duration::from_nanos(cpu_nanos().saturating_sub(cpu_start));
        let (calls, api) = meter.take();
        let sweep = serde_json::to_value(result.sweep).expect("report");
        rows.push(Row {
            exports,
            label,
            wall,
            api,
            cpu,
            calls,
            list_calls: sweep["listCalls"].as_u64().unwrap_or(0),
            describe_calls: sweep["describeCalls"].as_u64().unwrap_or(0),
            published: sweep["published"].as_array().map_or(0, Vec::len),
        });
    }
    let _ = child.kill();
    let _ = child.wait();
    rows
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    let mut rows = Vec::new();
    for n in sizes {
        rows.extend(run(n).await);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut md = format!(
        "# Sweep benchmark\n\n\
         Command: `cargo run --release --example bench_sweep -- {}` (`make bench-sweep` runs 1000 10000).\n\
         Each size: a fresh patched moto 5.2.5 on 127.0.0.1, 10 tables (+ the ledger table), 5 FAILED exports;\n\
         the real adapters; every port call counted and timed (\"API time\" sums the calls' durations,\n\
         so concurrent DescribeExport calls can add up to more than the wall time). \"Function CPU\" is\n\
         the CPU time of the benchmark process during the sweep (all threads, from /proc schedstat):\n\
         the function's own work beyond waiting on API calls, SDK request signing and parsing included.\n\n",
        args.join(" ")
    );
    md.push_str(&format!(
        "Machine: {} cores, {}.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    ));
    md.push_str("| exports | sweep | wall | API time | function CPU | API calls | ListExports | DescribeExport | published |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.1} ms | {} | {} | {} | {} |\n",
            r.exports,
            r.label,
            r.wall.as_secs_f64() * 1e3,
            r.api.as_secs_f64() * 1e3,
            r.cpu.as_secs_f64() * 1e3,
            r.calls,
            r.list_calls,
            r.describe_calls,
            r.published
        ));
    }
    print!("{md}");
    let mut f = std::fs::File::create("BENCHMARKS-sweep.md").expect("write BENCHMARKS-sweep.md");
    f.write_all(md.as_bytes()).expect("write");
}
