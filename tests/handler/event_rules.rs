//! The template's EventBridge rules, matched against real event shapes by an implementation not
//! written here. `tools/event_rules.py` renders template.yaml with the SAM translator (the
//! `samtranslator` package SAM CLI uses), deploys it into the emulator's CloudFormation for
//! each configuration below (and, with OrgMode=on, org/spoke-rules.yaml in a member account of
//! another Region, aimed at the deployed hub bus), gives every rule an SQS probe and puts every
//! sample event on every bus it can arrive on; moto's own pattern matcher decides (and again
//! through TestEventPattern, which tools/moto_test_event_pattern.py answers with that matcher).
//! This test holds the EXPECTED table: each event matches exactly these rules and no other.
//!
//! What the emulator cannot show, and where this table says AWS's answer instead of moto's
//! (docs/event-rules.md has the whole list):
//! - EventBridge matches a pattern field inside an array of objects as if the array were not
//!   there: Event Ruler, the library behind EventBridge's rules, README "JSON Array Matching",
//!   https://github.com/aws/event-ruler#json-array-matching (the EventBridge User Guide,
//!   "Arrays in Amazon EventBridge event patterns",
//!   https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html,
//!   states the intersection rule for arrays of values). moto never looks into arrays. The
//!   report topic's rule matches the top-level `detail.outcome` by default (`NotifyOn=outcomes`),
//!   which moto matches as AWS does; only `NotifyOn=all` adds `detail.findings.cause`, inside an
//!   array. `MOTO_MISSES` lists the cells where moto would differ (none in these
//!   configurations).
//! - A schedule rule is never matched against put events (EventBridge User Guide, "Creating a
//!   scheduled rule (legacy) in Amazon EventBridge",
//!   https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-rule-schedule.html);
//!   moto would match its empty pattern against every event, so the tool gives schedule rules
//!   no probe and the test checks their expression instead.
//! - A forwarded event keeps the sender's `account` on AWS (EventBridge User Guide, "Sending
//!   and receiving events between AWS accounts in Amazon EventBridge",
//!   https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html); moto
//!   re-stamps it with the hub's account and drops `resources`. No pattern here filters on
//!   `account`, `region` or `resources`, which the test checks, so the difference cannot
//!   change a match.

use ddb_export_remediator::domain::report::{IncidentReport, RemediationResult, SweepReport};
use ddb_export_remediator::domain::sweep::EVENT_SOURCE;
use ddb_export_remediator::intake::REPORT_DETAIL_TYPE;
use ddb_export_remediator::model::{
    Cause, Confidence, Finding, Incident, IncidentSource, Mode, Remedy,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Short names of the rules, as the tool names them (`<site>:<logical id>`).
const RULES: &[(&str, &str)] = &[
    ("CT", "hub:RemediatorFunctionExportCallViaCloudTrail"),
    ("FAILED", "hub:RemediatorFunctionExportFailed"),
    ("NOTIFY", "hub:NotificationRule"),
    ("HUB_CT", "hub:HubExportCallsRule"),
    ("HUB_FAILED", "hub:HubExportFailedRule"),
    ("FWD_CT", "spoke:ForwardExportCalls"),
    ("FWD_FAILED", "spoke:ForwardExportFailed"),
    ("SWEEP", "hub:RemediatorFunctionSweep"),
];

/// The columns: (configuration, the bus the event is put on). `off`: the defaults.
/// `off-sources`: ExtraFailureSources=my-data-pipeline,orders-scheduler and a report topic.
/// `off-bus`: EventBusName=ops-bus and a report topic. `on`: the Makefile's ORG_ON_PARAMS and a
/// report topic; `HubBus` is the organization bus (an event put there has the form a spoke
/// forwards), `spoke` a member account's default bus in us-west-2 with org/spoke-rules.yaml.
const COLUMNS: [(&str, &str); 7] = [
    ("off", "hub:default"),
    ("off-sources", "hub:default"),
    ("off-bus", "hub:default"),
    ("off-bus", "hub:ops-bus"),
    ("on", "hub:default"),
    ("on", "hub:HubBus"),
    ("on", "spoke:default"),
];

/// The expected table: for each event, the rules it matches in each column ("-": none).
/// A `spoke` cell lists the spoke's forwarding rule and the hub rule the forwarded copy then
/// matches on the hub bus (the emulator runs the whole chain).
#[rustfmt::skip]
const EXPECTED: &[(&str, [&str; 7])] = &[
    //                                                     off       off-sources off-bus:default off-bus:ops-bus on:default on:HubBus     on:spoke
    ("cloudtrail-access-denied.json",                     ["CT",     "CT",       "CT",           "-",            "CT",      "HUB_CT",     "FWD_CT HUB_CT"]),
    ("cloudtrail-pitr-unavailable.json",                  ["CT",     "CT",       "CT",           "-",            "CT",      "HUB_CT",     "FWD_CT HUB_CT"]),
    ("cloudtrail-table-not-found.json",                   ["CT",     "CT",       "CT",           "-",            "CT",      "HUB_CT",     "FWD_CT HUB_CT"]),
    ("cloudtrail-member-pitr-unavailable.json",           ["CT",     "CT",       "CT",           "-",            "CT",      "HUB_CT",     "FWD_CT HUB_CT"]),
    ("cloudtrail-export-started.json",                    ["CT",     "CT",       "CT",           "-",            "CT",      "HUB_CT",     "FWD_CT HUB_CT"]),
    ("cloudtrail-export-started-own-retry.json",          ["CT",     "CT",       "CT",           "-",            "CT",      "HUB_CT",     "FWD_CT HUB_CT"]),
    ("eventbridge-export-failed-s3-access-denied.json",   ["FAILED", "FAILED",   "-",            "FAILED",       "FAILED",  "HUB_FAILED", "FWD_FAILED HUB_FAILED"]),
    ("eventbridge-export-failed-org-sweep.json",          ["FAILED", "FAILED",   "-",            "FAILED",       "FAILED",  "HUB_FAILED", "FWD_FAILED HUB_FAILED"]),
    ("eventbridge-export-failed-no-such-bucket.json",     ["-",      "FAILED",   "-",            "-",            "-",       "-",          "-"]),
    ("schedule-sweep.json",                               ["-",      "-",        "-",            "-",            "-",       "-",          "-"]),
    ("unsupported-ec2-state-change.json",                 ["-",      "-",        "-",            "-",            "-",       "-",          "-"]),
    ("fixtures/cloudtrail-describe-export.json",          ["-",      "-",        "-",            "-",            "-",       "-",          "-"]),
    ("fixtures/remediation-report-with-findings.json",    ["-",      "-",        "-",            "-",            "-",       "-",          "-"]),
    ("fixtures/remediation-report-outcome.json",          ["-",      "NOTIFY",   "-",            "NOTIFY",       "NOTIFY",  "-",          "-"]),
    ("fixtures/remediation-report-sweep.json",            ["-",      "-",        "-",            "-",            "-",       "-",          "-"]),
];

/// Cells where AWS matches and moto does not (see the module comment): (event, column, rule).
const MOTO_MISSES: &[(&str, usize, &str)] = &[];

/// The rules each configuration deploys (a rule whose condition is false is not there).
const DEPLOYED: &[(&str, &str)] = &[
    ("off", "CT FAILED SWEEP"),
    ("off-sources", "CT FAILED NOTIFY SWEEP"),
    ("off-bus", "CT FAILED NOTIFY SWEEP"),
    (
        "on",
        "CT FAILED NOTIFY SWEEP HUB_CT HUB_FAILED FWD_CT FWD_FAILED",
    ),
];

/// Resource types of the translated template that moto 5.2.5's CloudFormation does not
/// implement (the tool deploys the rest, with references to these replaced).
const UNSUPPORTED: &[&str] = &[
    "AWS::CloudFormation::StackSet",
    "AWS::CloudWatch::Alarm",
    "AWS::Events::EventBusPolicy",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::SNS::TopicPolicy",
];

fn full(short: &str) -> &'static str {
    RULES
        .iter()
        .find(|(s, _)| *s == short)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("unknown rule {short}"))
}

fn cell(text: &str) -> BTreeSet<String> {
    text.split_whitespace()
        .filter(|s| *s != "-")
        .map(|s| full(s).to_string())
        .collect()
}

/// The `DynamoDB Export Remediation` events the function publishes (`App::publish_report`:
/// the result, serialized, is the detail): one with a finding (a step), one that closes an
/// incident (an outcome), and a sweep's (no finding).
fn reports() -> [(&'static str, Value); 3] {
    let mut incident = Incident::new(IncidentSource::Event);
    incident.export_arn = Some(
        "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508400000-9f8e7d6c"
            .into(),
    );
    let with_finding = RemediationResult {
        schema_version: 1,
        mode: Mode::Apply,
        incident: IncidentReport::from_incident(&incident),
        findings: vec![Finding {
            cause: Cause::BucketOwnerMissing,
            confidence: Confidence::Confirmed,
            summary: "The bucket is in another account and the export named no owner.".into(),
            evidence: vec![],
            remedy: Remedy {
                text: "Pass the bucket owner.".into(),
                command: None,
                statement: None,
            },
            correction: None,
            patch: None,
        }],
        plan: vec![],
        applied: vec![],
        notes: vec![],
        outside_write_scope: vec![],
        sweep: None,
        rollback: None,
        gave_up: false,
        outcome: None,
        outcome_detail: None,
    };
    let sweep = RemediationResult {
        schema_version: 1,
        mode: Mode::Apply,
        incident: IncidentReport::from_incident(&Incident::new(IncidentSource::Sweep)),
        findings: vec![],
        plan: vec![],
        applied: vec![],
        notes: vec![],
        outside_write_scope: vec![],
        sweep: Some(SweepReport::default()),
        rollback: None,
        gave_up: false,
        outcome: None,
        outcome_detail: None,
    };
    // The same incident closed: its one retry COMPLETED 6 minutes after the failure.
    let with_outcome = {
        use ddb_export_remediator::domain::outcome::{on_completed, Followed, Subject};
        let followed = Followed {
            subject: Subject {
                root_export_arn: incident.export_arn.clone().unwrap_or_default(),
                table_arn: Some("arn:aws:dynamodb:us-east-1:111122223333:table/orders".into()),
                s3_bucket: Some("acme-lake".into()),
                failed_at: Some(1_795_508_460),
            },
            retry_export_arn:
                "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508500000-1a2b3c4d"
                    .into(),
            attempt: 1,
            causes: vec!["BUCKET_OWNER_MISSING".into()],
            corrections: vec!["S3BucketOwner 444455556666".into()],
            ..Followed::default()
        };
        let outcome = on_completed(&followed, Some(1_204_332), Some(1_795_508_820));
        RemediationResult {
            incident: IncidentReport::from_incident(&Incident::new(IncidentSource::Sweep)),
            findings: vec![],
            gave_up: false,
            outcome: Some(outcome.kind()),
            outcome_detail: Some(outcome),
            ..with_finding.clone()
        }
    };
    let envelope = |result: &RemediationResult, id: &str, resources: Vec<String>| {
        json!({
            "version": "0", "id": id, "detail-type": REPORT_DETAIL_TYPE, "source": EVENT_SOURCE,
            "account": "111122223333", "time": "2026-11-24T12:01:00Z", "region": "us-east-1",
            "resources": resources,
            "detail": serde_json::to_value(result).unwrap(),
        })
    };
    [
        (
            "remediation-report-with-findings.json",
            envelope(
                &with_finding,
                "5e0c8a1d-0000-4000-8000-000000000201",
                incident.export_arn.iter().cloned().collect(),
            ),
        ),
        (
            "remediation-report-sweep.json",
            envelope(&sweep, "5e0c8a1d-0000-4000-8000-000000000202", vec![]),
        ),
        (
            "remediation-report-outcome.json",
            envelope(
                &with_outcome,
                "5e0c8a1d-0000-4000-8000-000000000203",
                incident.export_arn.iter().cloned().collect(),
            ),
        ),
    ]
}

/// The report fixtures are what the serializer writes today (so the table matches the real
/// shape): `EVENT_RULES_WRITE_FIXTURES=1` rewrites them after a change to the report.
#[test]
fn the_report_fixtures_are_what_the_function_publishes() {
    let dir = repo().join("events/fixtures/event-rules");
    for (name, event) in reports() {
        let path = dir.join(name);
        if std::env::var_os("EVENT_RULES_WRITE_FIXTURES").is_some() {
            let text = serde_json::to_string_pretty(&event).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
        }
        let stored: Value = serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}")),
        )
        .unwrap();
        assert_eq!(
            stored, event,
            "{name} differs from the report the function publishes: rerun with \
             EVENT_RULES_WRITE_FIXTURES=1"
        );
    }
}

/// One run of the tool for the tests of this file (about 20 s).
fn run_tool() -> &'static Value {
    static REPORT: OnceLock<Value> = OnceLock::new();
    REPORT.get_or_init(tool_report)
}

fn tool_report() -> Value {
    let out = Command::new(crate::helpers::python())
        .arg(repo().join("tools/event_rules.py"))
        .output()
        .expect("run tools/event_rules.py");
    assert!(
        out.status.success(),
        "event_rules.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("event_rules.py prints JSON")
}

#[test]
fn every_event_matches_exactly_the_rules_it_should_on_the_emulator() {
    let report = run_tool();
    let configs = &report["configs"];

    // Every event envelope in events/ and every extra sample is in the table, and the direct
    // invoke payloads (no bus carries them) are the only files left out.
    let sent: BTreeSet<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let table: BTreeSet<&str> = EXPECTED.iter().map(|(e, _)| *e).collect();
    assert_eq!(sent, table, "events sent vs the expected table");
    for direct in report["directPayloads"].as_array().unwrap() {
        let name = direct.as_str().unwrap();
        let prefix = name.split('-').next().unwrap();
        assert!(
            ["manual", "preflight", "rollback", "invalid"].contains(&prefix),
            "{name} is neither an event envelope nor a direct invoke payload"
        );
    }

    // The rules each configuration deploys, on the buses they should be on.
    for (config, rules) in DEPLOYED {
        let deployed: BTreeSet<String> = configs[config]["rules"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["deployed"] == true)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(deployed, cell(rules), "{config}: rules deployed");
    }
    let rule = |config: &str, short: &str| &configs[config]["rules"][full(short)];
    for config in ["off", "off-sources", "on"] {
        // CloudTrail delivers only to the default bus: that rule stays there.
        assert_eq!(rule(config, "CT")["bus"], "default");
        assert_eq!(rule(config, "FAILED")["bus"], "default");
    }
    assert_eq!(rule("off-bus", "CT")["bus"], "default");
    assert_eq!(rule("off-bus", "FAILED")["bus"], "ops-bus");
    assert_eq!(rule("off-bus", "NOTIFY")["bus"], "ops-bus");
    for short in ["HUB_CT", "HUB_FAILED"] {
        assert_eq!(rule("on", short)["busRole"], "HubBus");
    }
    for short in ["FWD_CT", "FWD_FAILED"] {
        assert_eq!(rule("on", short)["bus"], "default");
        assert_eq!(rule("on", short)["targets"], json!(["event-bus"]));
    }
    for short in ["CT", "FAILED", "HUB_CT", "HUB_FAILED", "SWEEP"] {
        assert_eq!(rule("on", short)["targets"], json!(["lambda"]), "{short}");
    }
    assert_eq!(rule("on", "NOTIFY")["targets"], json!(["sns"]));

    // The schedule: a rule with an expression and no pattern (never matched against events).
    for (config, _) in DEPLOYED {
        let sweep = rule(config, "SWEEP");
        assert_eq!(sweep["schedule"], "rate(5 minutes)", "{config}");
        assert!(sweep["pattern"].is_null(), "{config}");
    }

    // No pattern filters on the envelope fields a forwarded event may carry differently.
    for (config, value) in configs.as_object().unwrap() {
        for (id, r) in value["rules"].as_object().unwrap() {
            if let Some(p) = r["pattern"].as_object() {
                for field in ["account", "region", "resources"] {
                    assert!(!p.contains_key(field), "{config} {id} filters on {field}");
                }
            }
        }
    }

    // TestEventPattern (moto's matcher, through tools/moto_test_event_pattern.py) gives the
    // probes' answer for every pattern rule and event put on that rule's bus.
    for (config, value) in configs.as_object().unwrap() {
        let check = &value["testEventPattern"];
        assert!(check["asked"].as_u64().unwrap() > 0, "{config}");
        assert_eq!(check["disagreements"], json!([]), "{config}");
    }

    // The match table.
    let misses: BTreeSet<(&str, usize, &str)> = MOTO_MISSES.iter().copied().collect();
    let mut wrong = Vec::new();
    for (event, cells) in EXPECTED {
        for (i, (config, site)) in COLUMNS.iter().enumerate() {
            let expected = cell(cells[i]);
            let moto_expected: BTreeSet<String> = expected
                .iter()
                .filter(|r| {
                    !misses
                        .iter()
                        .any(|(e, c, s)| e == event && *c == i && full(s) == r.as_str())
                })
                .cloned()
                .collect();
            let got: BTreeSet<String> = configs[config]["matches"][site][event]
                .as_array()
                .unwrap_or_else(|| panic!("no result for {event} on {config} {site}"))
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            if got != moto_expected {
                wrong.push(format!(
                    "{event} on {config} {site}: matched {got:?}, expected {moto_expected:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_stack_deploys_into_the_emulator_without_the_types_it_lacks() {
    let report = run_tool();
    let mut seen = BTreeMap::new();
    for (config, value) in report["configs"].as_object().unwrap() {
        let stack = &value["stack"];
        assert_eq!(stack["status"], "CREATE_COMPLETE", "{config}");
        let unsupported: BTreeSet<&str> = stack["unsupportedTypes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        seen.insert(config.clone(), unsupported);
        // The whole template does not deploy (an alarm is referenced by the dashboard).
        assert_eq!(stack["whole"]["deployed"], false, "{config}");
    }
    let all: BTreeSet<&str> = seen.values().flatten().copied().collect();
    assert_eq!(all, UNSUPPORTED.iter().copied().collect());
    let spoke = &report["configs"]["on"]["spokeStack"];
    assert_eq!(spoke["status"], "CREATE_COMPLETE");
    assert_eq!(spoke["unsupportedTypes"], json!([]));
}

/// Runs the tool against `endpoint` with these arguments; its JSON answer.
fn tool_at(endpoint: &str, args: &[&str]) -> Value {
    let out = Command::new(crate::helpers::python())
        .arg(repo().join("tools/event_rules.py"))
        .args(["--endpoint", endpoint])
        .args(args)
        .output()
        .expect("run tools/event_rules.py");
    assert!(
        out.status.success(),
        "event_rules.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("event_rules.py prints JSON")
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// GIVEN the template (ExtraFailureSources and a report topic) deployed in the emulator with a
/// probe on each rule, and one FAILED export
/// WHEN the real function sweeps, and then handles the event the failure rule delivered
/// THEN the sweep's event reaches exactly the failure rule, its fields are those the sample
/// in events/ documents, and nothing the function publishes afterwards invokes it again.
#[tokio::test]
async fn the_sweeps_real_event_reaches_the_failure_rule_and_the_reports_invoke_nothing() {
    use crate::helpers::{config, invoke, sdk_at, seed_at, Moto};
    use ddb_export_remediator::{aws, Config};

    // Its own emulator: the other tests' sweeps publish on the shared one's default bus.
    let moto = Moto::start();
    let deployed = tool_at(&moto.endpoint, &["--deploy-here", "off-sources"]);
    let saved = std::env::temp_dir().join(format!("event-rules-{}.json", std::process::id()));
    std::fs::write(&saved, deployed.to_string()).unwrap();
    let collect = || tool_at(&moto.endpoint, &["--collect", saved.to_str().unwrap()]);

    let bulk = seed_at(
        &moto.endpoint,
        &["--tables", "1", "--exports", "2", "--failed", "1", "bulk"],
    );
    seed_at(&moto.endpoint, &["--table", "ledger", "ledger"]);
    let app = aws::build_app(
        Config {
            ledger_table_name: Some("ledger".into()),
            ..config()
        },
        &sdk_at(&moto.endpoint).await,
    );
    let schedule: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("events/schedule-sweep.json")).unwrap(),
    )
    .unwrap();
    let swept = invoke(&app, schedule).await.unwrap();
    assert_eq!(swept["sweep"]["published"], bulk["failed"], "{swept:#}");

    let got = collect();
    let failed = got[full("FAILED")].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{got:#}");
    assert_eq!(got[full("CT")], json!([]));
    // The sweep's own report (no finding) matches nothing, not even the report topic's rule.
    assert_eq!(got[full("NOTIFY")], json!([]));
    let event = &failed[0];
    assert_eq!(event["detail-type"], "DynamoDB Export Failed");
    assert_eq!(event["detail"]["exportArn"], bulk["failed"][0]);
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo().join("events/eventbridge-export-failed-s3-access-denied.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let sent = keys(&event["detail"]);
    assert!(
        sent.is_subset(&keys(&sample["detail"])),
        "the sweep sends {sent:?}; the sample documents {:?}",
        keys(&sample["detail"])
    );

    // EventBridge invokes the function with what the rule delivered: an incident, a report.
    let handled = invoke(&app, event.clone()).await.unwrap();
    assert_eq!(handled["incident"]["source"], "event", "{handled:#}");
    assert!(
        handled["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty() && f.iter().all(|x| x["cause"].is_string())),
        "{handled:#}"
    );
    let after = collect();
    for short in ["CT", "FAILED"] {
        assert_eq!(after[full(short)], json!([]), "{short}: {after:#}");
    }
    // No retry fixes this failure, so the remediation closes the incident NEEDS_PERSON: the
    // report carries the top-level `outcome`, which the topic's rule matches (once).
    let notified = after[full("NOTIFY")].as_array().unwrap();
    assert_eq!(notified.len(), 1, "{after:#}");
    assert_eq!(notified[0]["detail"]["outcome"], "NEEDS_PERSON");
    assert!(notified[0]["detail"]["headline"]
        .as_str()
        .is_some_and(|h| h.starts_with("Needs a person:")));
    let _ = std::fs::remove_file(&saved);
}
