//! template.yaml, parsed (CloudFormation short tags such as `!Ref` stay tagged values): the
//! report topic, its key and message, the alarms, the failure rule's sources, the scoped
//! `kms:PutKeyPolicy` and `sts:AssumeRole`, the function's environment and the dashboard, whose
//! metric widgets must name metrics the function emits (src/metrics.rs).

use ddb_export_remediator::domain::report::{
    Applied, AppliedStatus, IncidentReport, RemediationResult, SweepReport,
};
use ddb_export_remediator::domain::sweep::EVENT_SOURCE;
use ddb_export_remediator::metrics::{self, NAMESPACE};
use ddb_export_remediator::model::{
    Cause, Confidence, Finding, Incident, IncidentSource, Mode, Remedy,
};
use serde_json::json;
use serde_yaml::Value;
use std::collections::BTreeSet;

fn template() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

pub(crate) fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["Resources"]
        .get(name)
        .unwrap_or_else(|| panic!("no resource {name}"))
}

/// The value under a short-form tag (`!Ref x` → `x`), or `None` for another tag or no tag.
pub(crate) fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == tag => Some(&t.value),
        _ => None,
    }
}

pub(crate) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

pub(crate) fn strings(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Sequence(items) => items.iter().map(|i| s(i).to_string()).collect(),
        other => BTreeSet::from([s(other).to_string()]),
    }
}

/// A statement of the function's inline policies, by Sid (inside `!If` blocks too).
fn function_statement(t: &Value, sid: &str) -> Value {
    let policies = resource(t, "RemediatorFunction")["Properties"]["Policies"]
        .as_sequence()
        .unwrap();
    policies
        .iter()
        .flat_map(|p| {
            let doc = tagged(p, "If").map(|args| &args[1]).unwrap_or(p);
            doc["Statement"].as_sequence().cloned().unwrap_or_default()
        })
        .find(|st| st["Sid"].as_str() == Some(sid))
        .unwrap_or_else(|| panic!("no statement {sid}"))
}

pub(crate) fn statements(policy: &Value) -> &Vec<Value> {
    policy["Statement"].as_sequence().unwrap()
}

fn by_service<'a>(policy: &'a Value, service: &str) -> &'a Value {
    statements(policy)
        .iter()
        .find(|st| st["Principal"]["Service"].as_str() == Some(service))
        .unwrap_or_else(|| panic!("no statement for {service}"))
}

#[test]
fn the_report_topic_has_its_own_rotating_key_that_admits_eventbridge_and_cloudwatch() {
    let t = template();
    // EventBridge cannot publish to a topic under alias/aws/sns: its key policy cannot admit
    // events.amazonaws.com (SNS Developer Guide, "Managing Amazon SNS encryption keys").
    let topic = resource(&t, "NotificationTopic");
    assert_eq!(
        tagged(&topic["Properties"]["KmsMasterKeyId"], "Ref").map(s),
        Some("NotificationKey")
    );
    let key = resource(&t, "NotificationKey");
    assert_eq!(s(&key["Type"]), "AWS::KMS::Key");
    assert_eq!(key["Condition"], topic["Condition"]);
    assert_eq!(key["Properties"]["EnableKeyRotation"].as_bool(), Some(true));
    let policy = &key["Properties"]["KeyPolicy"];
    let publish = BTreeSet::from(["kms:Decrypt".to_string(), "kms:GenerateDataKey*".into()]);
    for service in ["events.amazonaws.com", "cloudwatch.amazonaws.com"] {
        let st = by_service(policy, service);
        assert_eq!(s(&st["Effect"]), "Allow");
        assert_eq!(strings(&st["Action"]), publish, "{service}");
    }
    let cw = &by_service(policy, "cloudwatch.amazonaws.com")["Condition"];
    assert_eq!(
        tagged(&cw["StringEquals"]["aws:SourceAccount"], "Ref").map(s),
        Some("AWS::AccountId")
    );
    let alarms_arn = tagged(&cw["ArnLike"]["aws:SourceArn"], "Sub")
        .map(s)
        .unwrap();
    assert!(
        alarms_arn.ends_with(":alarm:${AWS::StackName}-*"),
        "{alarms_arn}"
    );
    // Administration by the account; nobody else, and never principal "*".
    for st in statements(policy) {
        let p = &st["Principal"];
        assert!(p.as_str() != Some("*") && p["AWS"].as_str() != Some("*"));
        if let Some(aws) = p.get("AWS") {
            assert!(s(tagged(aws, "Sub").unwrap()).ends_with(":iam::${AWS::AccountId}:root"));
        }
    }
    // The topic policy lets this stack's alarms publish (it replaces SNS's default policy).
    let topic_policy = &resource(&t, "NotificationTopicPolicy")["Properties"]["PolicyDocument"];
    let alarms = by_service(topic_policy, "cloudwatch.amazonaws.com");
    assert_eq!(s(&alarms["Action"]), "sns:Publish");
    assert_eq!(
        tagged(&alarms["Condition"]["ArnLike"]["aws:SourceArn"], "Sub").map(s),
        Some(alarms_arn)
    );
}

#[test]
fn the_report_is_the_outcomes_headline_the_functions_text_then_where_the_full_result_is() {
    let t = template();
    let target = &resource(&t, "NotificationRule")["Properties"]["Targets"][0];
    let transformer = &target["InputTransformer"];
    assert_eq!(s(&transformer["InputPathsMap"]["text"]), "$.detail.text");
    assert_eq!(
        s(&transformer["InputPathsMap"]["headline"]),
        "$.detail.headline"
    );
    // An outcome's result has its headline: what happened, whether the data landed.
    let mut closing = sample(vec![], vec![], None);
    let outcome = resolved();
    closing.outcome = Some(outcome.kind());
    closing.outcome_detail = Some(outcome);
    let detail = serde_json::to_value(&closing).unwrap();
    assert!(detail["headline"]
        .as_str()
        .is_some_and(|h| h.starts_with("Resolved:") && !h.contains('"')));
    assert_eq!(detail["outcome"], "RESOLVED");
    // The function publishes the result as the event's detail, and the result has `text`.
    let result = sample(vec![finding()], vec![], None);
    let detail = serde_json::to_value(&result).unwrap();
    assert!(detail["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("BUCKET_OWNER_MISSING (CONFIRMED)")));
    // A plain-text message: one JSON string per line (EventBridge User Guide, input
    // transformation, common issues), with the text, the log group and the dashboard.
    let body = s(tagged(&transformer["InputTemplate"], "Sub").unwrap());
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{line}: not one JSON string ({e})"));
        assert!(parsed.is_string(), "{line}");
    }
    assert_eq!(lines[0], "\"<headline>\"");
    assert_eq!(lines[2], "\"<text>\"");
    assert!(body.contains("${RemediatorLogGroup}"), "{body}");
    assert!(
        body.contains("#dashboards/dashboard/${Dashboard}"),
        "{body}"
    );
}

#[test]
fn a_non_empty_dlq_and_function_errors_raise_alarms_that_go_to_the_topic() {
    let t = template();
    let alarms: Vec<&Value> = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .collect();
    let find = |ns: &str, metric: &str| {
        *alarms
            .iter()
            .find(|a| {
                a["Properties"]["Namespace"].as_str() == Some(ns)
                    && a["Properties"]["MetricName"].as_str() == Some(metric)
            })
            .unwrap_or_else(|| panic!("no alarm on {ns} {metric}"))
    };
    let dlq = &find("AWS/SQS", "ApproximateNumberOfMessagesVisible")["Properties"];
    assert_eq!(s(&dlq["Dimensions"][0]["Name"]), "QueueName");
    assert_eq!(
        tagged(&dlq["Dimensions"][0]["Value"], "GetAtt").map(s),
        Some("DeadLetterQueue.QueueName")
    );
    let errors = &find("AWS/Lambda", "Errors")["Properties"];
    assert_eq!(
        tagged(&errors["Dimensions"][0]["Value"], "Ref").map(s),
        Some("RemediatorFunction")
    );
    for a in [dlq, errors] {
        assert_eq!(a["Threshold"].as_f64(), Some(0.0));
        assert_eq!(s(&a["ComparisonOperator"]), "GreaterThanThreshold");
        // Named so that the key and topic policies' aws:SourceArn pattern admits them.
        assert!(s(tagged(&a["AlarmName"], "Sub").unwrap()).starts_with("${AWS::StackName}-"));
        // To the topic when there is one (NotificationEmail set).
        let actions = tagged(&a["AlarmActions"], "If").unwrap();
        assert_eq!(s(&actions[0]), "HasNotificationEmail");
        assert_eq!(
            tagged(&actions[1][0], "Ref").map(s),
            Some("NotificationTopic")
        );
        assert_eq!(tagged(&actions[2], "Ref").map(s), Some("AWS::NoValue"));
    }
}

#[test]
fn the_failure_rule_admits_the_sweeps_source_and_the_listed_ones_only() {
    let t = template();
    let pattern = &resource(&t, "RemediatorFunction")["Properties"]["Events"]["ExportFailed"]
        ["Properties"]["Pattern"];
    assert_eq!(strings(&pattern["detail-type"]).len(), 1);
    let source = tagged(&pattern["source"], "If").expect("source: !If [...]");
    assert_eq!(s(&source[0]), "HasExtraFailureSources");
    // Without extra sources: exactly the sweep's (an empty list would be an invalid pattern).
    assert_eq!(
        strings(&source[2]),
        BTreeSet::from([EVENT_SOURCE.to_string()])
    );
    // With them: the sweep's, then the parameter's.
    let split = tagged(&source[1], "Split").expect("!Split");
    let joined = tagged(&split[1], "Join").expect("!Join");
    assert_eq!(s(&joined[1][0]), EVENT_SOURCE);
    let extra = tagged(&joined[1][1], "Join").unwrap();
    assert_eq!(tagged(&extra[1], "Ref").map(s), Some("ExtraFailureSources"));
    let cond = tagged(&t["Conditions"]["HasExtraFailureSources"], "Not").unwrap();
    assert!(format!("{cond:?}").contains("ExtraFailureSources"));
    assert_eq!(
        s(&t["Parameters"]["ExtraFailureSources"]["Type"]),
        "CommaDelimitedList"
    );
}

#[test]
fn put_key_policy_without_key_arns_reaches_only_keys_tagged_patchable() {
    let t = template();
    let st = function_statement(&t, "PatchKeyPolicy");
    let cond = tagged(&st["Condition"], "If").expect("Condition: !If [HasKeyArns, ...]");
    assert_eq!(s(&cond[0]), "HasKeyArns");
    assert_eq!(tagged(&cond[1], "Ref").map(s), Some("AWS::NoValue"));
    assert_eq!(
        s(&cond[2]["StringEquals"]["aws:ResourceTag/ddb-export-remediator"]),
        "patchable"
    );
    let resource = tagged(&st["Resource"], "If").unwrap();
    assert_eq!(tagged(&resource[1], "Ref").map(s), Some("KeyArns"));
}

#[test]
fn member_roles_are_assumed_only_inside_the_organization_when_one_is_given() {
    let t = template();
    let st = function_statement(&t, "AssumeMemberRole");
    let cond = tagged(&st["Condition"], "If").expect("Condition: !If [HasOrganizationId, ...]");
    assert_eq!(s(&cond[0]), "HasOrganizationId");
    assert_eq!(
        tagged(&cond[1]["StringEquals"]["aws:ResourceOrgID"], "Ref").map(s),
        Some("OrganizationId")
    );
    assert_eq!(tagged(&cond[2], "Ref").map(s), Some("AWS::NoValue"));
    let p = &t["Parameters"]["OrganizationId"];
    assert_eq!(p["Default"].as_str(), Some(""));
    assert!(s(&p["AllowedPattern"]).starts_with("^$|^o-"));
}

#[test]
fn the_function_is_told_its_write_scope_and_its_sweep_look_back() {
    let t = template();
    let env = &resource(&t, "RemediatorFunction")["Properties"]["Environment"]["Variables"];
    for (var, param) in [("EXPORT_BUCKETS", "ExportBuckets"), ("KEY_ARNS", "KeyArns")] {
        let join = tagged(&env[var], "Join").unwrap_or_else(|| panic!("{var}: !Join"));
        assert_eq!(s(&join[0]), ",");
        assert_eq!(tagged(&join[1], "Ref").map(s), Some(param), "{var}");
    }
    assert_eq!(
        tagged(&env["SWEEP_LOOKBACK_HOURS"], "Ref").map(s),
        Some("SweepLookbackHours")
    );
    // Organization mode: the function knows it is a hub, and which account is its own.
    assert_eq!(tagged(&env["ORG_MODE"], "Ref").map(s), Some("OrgMode"));
    assert_eq!(
        tagged(&env["HUB_ACCOUNT_ID"], "Ref").map(s),
        Some("AWS::AccountId")
    );
    let p = &t["Parameters"]["SweepLookbackHours"];
    assert_eq!(
        (
            s(&p["Type"]),
            p["Default"].as_u64(),
            p["MinValue"].as_u64(),
            p["MaxValue"].as_u64()
        ),
        ("Number", Some(24), Some(1), Some(2160))
    );
}

// ---- the dashboard ----

fn finding() -> Finding {
    Finding {
        cause: Cause::BucketOwnerMissing,
        confidence: Confidence::Confirmed,
        summary: String::new(),
        evidence: vec![],
        remedy: Remedy {
            text: "Pass the bucket owner.".into(),
            command: None,
            statement: None,
        },
        correction: None,
        patch: None,
    }
}

fn sample(
    findings: Vec<Finding>,
    applied: Vec<Applied>,
    sweep: Option<SweepReport>,
) -> RemediationResult {
    RemediationResult {
        schema_version: 1,
        mode: Mode::Apply,
        incident: IncidentReport::from_incident(&Incident::new(IncidentSource::Event)),
        findings,
        plan: vec![],
        applied,
        notes: vec!["gave up: attempt 3 would exceed MAX_RETRIES=2".into()],
        outside_write_scope: Vec::new(),
        sweep,
        rollback: None,
        gave_up: true,
        outcome: None,
        outcome_detail: None,
    }
}

/// A RESOLVED outcome (a followed retry that COMPLETED 6 minutes after the failure).
fn resolved() -> ddb_export_remediator::domain::outcome::Outcome {
    use ddb_export_remediator::domain::outcome::{on_completed, Followed, Subject};
    let followed = Followed {
        subject: Subject {
            root_export_arn: "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/1".into(),
            table_arn: Some("arn:aws:dynamodb:us-east-1:111122223333:table/orders".into()),
            s3_bucket: Some("acme-lake".into()),
            failed_at: Some(1_000),
        },
        retry_export_arn: "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/2".into(),
        attempt: 1,
        causes: vec!["BUCKET_OWNER_MISSING".into()],
        ..Followed::default()
    };
    on_completed(&followed, Some(3), Some(1_360))
}

/// (namespace, metric, dimension names) of everything the function emits, read from its EMF
/// directives for results that exercise every document kind.
fn emitted() -> BTreeSet<(String, String, Vec<String>)> {
    let done = |action| Applied {
        action,
        status: AppliedStatus::Done,
        result: json!({}),
    };
    let results = [
        sample(
            vec![finding()],
            vec![done("RETRY_EXPORT"), done("PATCH_KEY_POLICY")],
            None,
        ),
        sample(vec![], vec![], Some(SweepReport::default())),
        {
            use ddb_export_remediator::domain::outcome::on_disappeared;
            use ddb_export_remediator::domain::report::ClosedIncident;
            let mut sweep = SweepReport::default();
            sweep.outcomes.push(ClosedIncident::of(&resolved()));
            let gave_up = on_disappeared(&Default::default());
            sweep.outcomes.push(ClosedIncident::of(&gave_up));
            let mut needs = ClosedIncident::of(&gave_up);
            needs.outcome = ddb_export_remediator::domain::outcome::OutcomeKind::NeedsPerson;
            sweep.outcomes.push(needs);
            sample(vec![], vec![], Some(sweep))
        },
    ];
    let mut out = BTreeSet::new();
    for r in &results {
        for doc in metrics::documents(r, 0, 1) {
            for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
                let ns = directive["Namespace"].as_str().unwrap().to_string();
                for dims in directive["Dimensions"].as_array().unwrap() {
                    let mut dims: Vec<String> = dims
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_str().unwrap().to_string())
                        .collect();
                    dims.sort();
                    for m in directive["Metrics"].as_array().unwrap() {
                        let name = m["Name"].as_str().unwrap().to_string();
                        assert!(doc.get(&name).is_some(), "EMF: {name} is not a member");
                        out.insert((ns.clone(), name, dims.clone()));
                    }
                }
            }
        }
    }
    out
}

/// The DashboardBody with every `${...}` of !Sub replaced, parsed as JSON.
fn dashboard() -> serde_json::Value {
    let t = template();
    let body = s(tagged(
        &resource(&t, "Dashboard")["Properties"]["DashboardBody"],
        "Sub",
    )
    .unwrap())
    .to_string();
    let mut out = String::new();
    let mut rest = body.as_str();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').unwrap();
        out.push_str("SUBSTITUTED");
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("DashboardBody is not JSON: {e}"))
}

/// (namespace, metric, dimension names) of `SEARCH('{Ns,Dim,...} MetricName="X"', ...)`.
fn searched(expression: &str) -> Vec<(String, String, Vec<String>)> {
    expression
        .match_indices("SEARCH('{")
        .map(|(i, m)| {
            let rest = &expression[i + m.len()..];
            let schema = &rest[..rest.find('}').unwrap()];
            let mut parts = schema.split(',').map(|p| p.trim().to_string());
            let ns = parts.next().unwrap();
            let mut dims: Vec<String> = parts.collect();
            dims.sort();
            let name_at = rest.find("MetricName=\"").unwrap() + "MetricName=\"".len();
            let name = rest[name_at..].split('"').next().unwrap().to_string();
            (ns, name, dims)
        })
        .collect()
}

#[test]
fn every_dashboard_metric_of_the_function_is_one_it_emits_and_every_emitted_one_is_shown() {
    let emitted = emitted();
    assert!(emitted.len() >= 12, "{emitted:?}");
    let board = dashboard();
    let mut shown = BTreeSet::new();
    let mut dlq = false;
    for w in board["widgets"].as_array().unwrap() {
        if w["type"] != "metric" {
            continue;
        }
        for row in w["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            let used: Vec<(String, String, Vec<String>)> =
                if let Some(expr) = row[0].get("expression") {
                    searched(expr.as_str().unwrap())
                } else {
                    let parts: Vec<&str> = row.iter().filter_map(|v| v.as_str()).collect();
                    let mut dims: Vec<String> = parts[2..]
                        .iter()
                        .step_by(2)
                        .map(|d| d.to_string())
                        .collect();
                    dims.sort();
                    if parts[..2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"] {
                        dlq = dims == ["QueueName"];
                    }
                    vec![(parts[0].to_string(), parts[1].to_string(), dims)]
                };
            for m in used {
                if m.0 == NAMESPACE {
                    assert!(
                        emitted.contains(&m),
                        "the dashboard shows {m:?}, which the function does not emit"
                    );
                    shown.insert(m);
                }
            }
        }
    }
    assert!(dlq, "no DLQ depth widget");
    let missing: Vec<_> = emitted.difference(&shown).collect();
    assert!(
        missing.is_empty(),
        "emitted but not on the dashboard: {missing:?}"
    );
    // Logs Insights widgets query the function's log group.
    let logs: Vec<&serde_json::Value> = board["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["type"] == "log")
        .collect();
    assert!(logs.len() >= 2);
    let t = template();
    let body = s(tagged(
        &resource(&t, "Dashboard")["Properties"]["DashboardBody"],
        "Sub",
    )
    .unwrap());
    assert_eq!(
        body.matches("SOURCE '${RemediatorLogGroup}'").count(),
        logs.len()
    );
    // The two alarms' states are on it.
    for alarm in ["${DeadLetterQueueAlarm.Arn}", "${FunctionErrorsAlarm.Arn}"] {
        assert!(body.contains(alarm), "{alarm}");
    }
    // Its URL is an output.
    let url = s(tagged(&t["Outputs"]["DashboardUrl"]["Value"], "Sub").unwrap());
    assert!(url.ends_with("#dashboards/dashboard/${Dashboard}"), "{url}");
}
