//! Organization mode in the templates (issue 19 items 1-2), parsed with serde_yaml (short tags
//! such as `!Ref` stay tagged values): the spoke role's trust and grants, the spoke rules'
//! targets, the hub's StackSets and bus policy, and that every OrgMode resource exists only
//! under `IsOrgMode`, so the default (`off`) deploys what it did before. On the emulator, both
//! spoke templates go through moto's SERVICE_MANAGED StackSets into an OU (tools/seed.py
//! org-spokes): roles, inline policies and rules are read back per member and Region, and
//! events put in members reach the hub bus.
//!
//! AWS pages these shapes follow: EventBridge User Guide, "Sending and receiving events between
//! AWS accounts" (an organization-granted sender needs a rule role) and "Permissions for event
//! buses" (aws:PrincipalOrgID); CloudFormation API Reference, "DeploymentTargets" (StackSets
//! never deploy to the management account) and "AutoDeployment"; CloudFormation Template
//! Reference, "Fn::Join" (no function in the delimiter). Linting is `make validate`.

use crate::template::{resource, s, statements, strings, tagged};
use ddb_export_remediator::domain::sweep::EVENT_SOURCE;
use serde_yaml::Value;
use std::collections::BTreeSet;

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hub() -> Value {
    load("template.yaml")
}

fn roles() -> Value {
    load("org/spoke-roles.yaml")
}

fn rules() -> Value {
    load("org/spoke-rules.yaml")
}

fn ref_name(v: &Value) -> Option<&str> {
    tagged(v, "Ref").and_then(Value::as_str)
}

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(k, r)| (s(k), r))
        .collect()
}

/// Every logical name a value refers to: `!Ref`, `!GetAtt X.Attr`, and `${X}`/`${X.Attr}` in
/// `!Sub` strings (pseudo parameters included; callers filter).
fn references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            match (tag.trim_start_matches('!'), &t.value) {
                ("Ref", Value::String(name)) => {
                    out.insert(name.clone());
                }
                ("GetAtt", Value::String(path)) => {
                    out.insert(path.split('.').next().unwrap_or_default().to_string());
                }
                ("Sub", Value::String(text)) => sub_names(text, out),
                ("Sub", Value::Sequence(args)) => {
                    if let Some(text) = args.first().and_then(Value::as_str) {
                        sub_names(text, out);
                    }
                    args.iter().skip(1).for_each(|a| references(a, out));
                }
                (_, inner) => references(inner, out),
            }
        }
        Value::Mapping(m) => m.values().for_each(|x| references(x, out)),
        Value::Sequence(items) => items.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

fn sub_names(text: &str, out: &mut BTreeSet<String>) {
    for (i, _) in text.match_indices("${") {
        let rest = &text[i + 2..];
        if let Some(end) = rest.find('}') {
            out.insert(
                rest[..end]
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
}

fn refs_of(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    references(v, &mut out);
    out
}

/// The conditions a condition name stands on, transitively (`{Condition: X}` inside
/// `!And`/`!Or`/`!Not` included), with the name itself.
fn condition_closure(t: &Value, name: &str) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Mapping(m) => {
                if let Some(c) = m.get("Condition").and_then(Value::as_str) {
                    out.push(c.to_string());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Sequence(items) => items.iter().for_each(|x| walk(x, out)),
            Value::Tagged(tv) => {
                if tv.tag.to_string().trim_start_matches('!') == "Condition" {
                    if let Some(c) = tv.value.as_str() {
                        out.push(c.to_string());
                    }
                }
                walk(&tv.value, out)
            }
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(c) = todo.pop() {
        if seen.insert(c.clone()) {
            walk(&t["Conditions"][c.as_str()], &mut todo);
        }
    }
    seen
}

// ---- org/spoke-roles.yaml ----

#[test]
fn the_spoke_role_trusts_the_hub_account_root_only_for_the_hub_functions_role() {
    let t = roles();
    let role = &resource(&t, "SpokeRole")["Properties"];
    assert_eq!(ref_name(&role["RoleName"]), Some("MemberRoleName"));
    // The hub's sessions are chained role sessions, which IAM caps at one hour anyway.
    assert_eq!(role["MaxSessionDuration"].as_u64(), Some(3600));
    let trust = statements(&role["AssumeRolePolicyDocument"]);
    assert_eq!(trust.len(), 1, "one trust statement: {trust:?}");
    let st = &trust[0];
    assert_eq!(s(&st["Effect"]), "Allow");
    assert_eq!(s(&st["Action"]), "sts:AssumeRole");
    // The account root as Principal, never the role ARN: IAM rejects a trust policy naming a
    // role that does not exist yet and pins a named role by its unique id.
    let principal = s(tagged(&st["Principal"]["AWS"], "Sub").expect("!Sub principal"));
    assert_eq!(principal, "arn:${AWS::Partition}:iam::${HubAccountId}:root");
    let conditions = st["Condition"].as_mapping().unwrap();
    assert_eq!(conditions.len(), 1, "{conditions:?}");
    assert_eq!(
        ref_name(&st["Condition"]["ArnEquals"]["aws:PrincipalArn"]),
        Some("HubFunctionRoleArn")
    );
    // The hub fills both from itself: its account and its function's SAM-made role.
    let h = hub();
    let params = stackset_parameters(&h, "SpokeRolesStackSet");
    assert_eq!(ref_name(&params["HubAccountId"]), Some("AWS::AccountId"));
    assert_eq!(
        tagged(&params["HubFunctionRoleArn"], "GetAtt").map(s),
        Some("RemediatorFunctionRole.Arn")
    );
    assert_eq!(ref_name(&params["MemberRoleName"]), Some("MemberRoleName"));
}

/// (policy resource or "inline", its condition, statement) for every statement the spoke role gets.
fn spoke_role_statements(t: &Value) -> Vec<(String, Option<String>, Value)> {
    let mut out = Vec::new();
    for p in resource(t, "SpokeRole")["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
    {
        for st in statements(&p["PolicyDocument"]) {
            out.push(("inline".to_string(), None, st.clone()));
        }
    }
    for (name, r) in resources_of_type(t, "AWS::IAM::Policy") {
        let roles: Vec<_> = r["Properties"]["Roles"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(ref_name)
            .collect();
        assert_eq!(
            roles,
            ["SpokeRole"],
            "{name} attaches to the spoke role only"
        );
        for st in statements(&r["Properties"]["PolicyDocument"]) {
            let cond = r["Condition"].as_str().map(str::to_string);
            out.push((name.to_string(), cond, st.clone()));
        }
    }
    out
}

#[test]
fn the_spoke_role_reads_freely_and_writes_only_the_hubs_retry_scope() {
    let t = roles();
    let read_verbs = ["Describe", "Get", "List"];
    let mut writes = BTreeSet::new();
    for (policy, cond, st) in spoke_role_statements(&t) {
        assert_eq!(s(&st["Effect"]), "Allow");
        for action in strings(&st["Action"]) {
            let verb = action.split(':').nth(1).unwrap();
            if read_verbs.iter().any(|r| verb.starts_with(r)) {
                continue;
            }
            assert_ne!(
                policy, "inline",
                "{action} is a write in the always-on read policy"
            );
            writes.insert(action.clone());
            let needs: &[&str] = match action.as_str() {
                "dynamodb:ExportTableToPointInTime" => &[],
                "s3:PutObject" | "s3:AbortMultipartUpload" | "s3:PutObjectAcl" => {
                    &["HasExportBuckets"]
                }
                "kms:GenerateDataKey" | "kms:Decrypt" => &["HasKeyArns"],
                "kms:PutKeyPolicy" => &["PatchKeyPolicies"],
                other => panic!("unexpected write {other} in {policy}"),
            };
            let closure = cond
                .as_deref()
                .map(|c| condition_closure(&t, c))
                .unwrap_or_default();
            for n in needs {
                assert!(closure.contains(*n), "{action} in {policy} without {n}");
            }
        }
    }
    let expected: BTreeSet<String> = [
        "dynamodb:ExportTableToPointInTime",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:PutObjectAcl",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "kms:PutKeyPolicy",
    ]
    .map(String::from)
    .into();
    assert_eq!(writes, expected);
    // The retry only on this account's tables.
    let retry = spoke_role_statements(&t)
        .into_iter()
        .find(|(_, _, st)| st["Action"].as_str() == Some("dynamodb:ExportTableToPointInTime"))
        .unwrap()
        .2;
    assert_eq!(
        tagged(&retry["Resource"], "Sub").map(s),
        Some("arn:${AWS::Partition}:dynamodb:*:${AWS::AccountId}:table/*")
    );
    // kms:PutKeyPolicy: KeyArns when given, else only keys that opt in with the tag.
    let patches: Vec<_> = spoke_role_statements(&t)
        .into_iter()
        .filter(|(_, _, st)| st["Action"].as_str() == Some("kms:PutKeyPolicy"))
        .collect();
    assert_eq!(patches.len(), 2);
    for (policy, cond, st) in patches {
        let closure = condition_closure(&t, cond.as_deref().unwrap());
        if ref_name(&st["Resource"]) == Some("KeyArns") {
            assert!(closure.contains("HasKeyArns"), "{policy}");
            assert!(st.get("Condition").is_none(), "{policy}");
        } else {
            assert_eq!(
                s(&st["Condition"]["StringEquals"]["aws:ResourceTag/ddb-export-remediator"]),
                "patchable",
                "{policy}"
            );
        }
    }
    // The switch and the scopes are the hub's own parameters, passed through.
    let h = hub();
    let params = stackset_parameters(&h, "SpokeRolesStackSet");
    assert_eq!(ref_name(&params["KeyPolicyPatch"]), Some("KeyPolicyPatch"));
    for p in ["ExportBuckets", "KeyArns"] {
        let join = tagged(&params[p], "Join").unwrap_or_else(|| panic!("{p}: !Join"));
        assert_eq!((s(&join[0]), ref_name(&join[1])), (",", Some(p)));
    }
    assert_eq!(s(&t["Parameters"]["KeyPolicyPatch"]["Default"]), "off");
}

// ---- org/spoke-rules.yaml ----

#[test]
fn the_spoke_rules_forward_both_event_kinds_to_the_hub_bus_through_their_role() {
    let t = rules();
    let h = hub();
    let forward = resources_of_type(&t, "AWS::Events::Rule");
    assert_eq!(forward.len(), 2);
    for (name, r) in &forward {
        let p = &r["Properties"];
        assert_eq!(s(&p["EventBusName"]), "default", "{name}");
        assert_eq!(s(&p["State"]), "ENABLED", "{name}");
        let targets = p["Targets"].as_sequence().unwrap();
        assert_eq!(targets.len(), 1, "{name}");
        assert_eq!(ref_name(&targets[0]["Arn"]), Some("HubBusArn"), "{name}");
        assert_eq!(
            tagged(&targets[0]["RoleArn"], "GetAtt").map(s),
            Some("ForwarderRole.Arn"),
            "{name}"
        );
    }
    // What the spokes forward is exactly what the hub's rules on its bus match.
    let patterns: Vec<&Value> = forward
        .iter()
        .map(|(_, r)| &r["Properties"]["EventPattern"])
        .collect();
    for hub_rule in ["HubExportCallsRule", "HubExportFailedRule"] {
        let hp = &resource(&h, hub_rule)["Properties"]["EventPattern"];
        assert!(
            patterns.contains(&hp),
            "no spoke forwards {hub_rule}'s events"
        );
    }
    // The CloudTrail pattern is the single-account one, and the custom one is the sweep's.
    let single = &resource(&h, "RemediatorFunction")["Properties"]["Events"]
        ["ExportCallViaCloudTrail"]["Properties"]["Pattern"];
    assert!(patterns.contains(&single));
    let custom = &resource(&h, "HubExportFailedRule")["Properties"]["EventPattern"];
    assert_eq!(
        strings(&custom["source"]),
        BTreeSet::from([EVENT_SOURCE.to_string()])
    );
    assert_eq!(
        strings(&custom["detail-type"]),
        BTreeSet::from(["DynamoDB Export Failed".to_string()])
    );
    // The role: EventBridge may assume it, and it may only put events on the hub bus.
    let role = &resource(&t, "ForwarderRole")["Properties"];
    // Unnamed: the template runs in several Regions of one account and IAM names are global.
    assert!(role.get("RoleName").is_none());
    let trust = statements(&role["AssumeRolePolicyDocument"]);
    assert_eq!(trust.len(), 1);
    assert_eq!(s(&trust[0]["Principal"]["Service"]), "events.amazonaws.com");
    let granted: Vec<&Value> = role["Policies"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| statements(&p["PolicyDocument"]))
        .collect();
    assert_eq!(granted.len(), 1);
    assert_eq!(s(&granted[0]["Action"]), "events:PutEvents");
    assert_eq!(ref_name(&granted[0]["Resource"]), Some("HubBusArn"));
    // And the hub hands its own bus to the rules StackSet.
    let params = stackset_parameters(&h, "SpokeRulesStackSet");
    assert_eq!(
        tagged(&params["HubBusArn"], "GetAtt").map(s),
        Some("HubBus.Arn")
    );
}

#[test]
fn the_spoke_templates_are_plain_cloudformation_for_service_managed_stacksets() {
    // Service-managed StackSets reject transforms (AWS::Serverless, AWS::Include) and do not
    // work with nested stacks.
    for (path, t) in [
        ("org/spoke-roles.yaml", roles()),
        ("org/spoke-rules.yaml", rules()),
    ] {
        assert!(t.get("Transform").is_none(), "{path} has a Transform");
        for (_, r) in t["Resources"].as_mapping().unwrap() {
            let ty = s(&r["Type"]);
            assert!(
                !ty.starts_with("AWS::Serverless::") && ty != "AWS::CloudFormation::Stack",
                "{path}: {ty}"
            );
        }
    }
}

#[test]
fn no_join_delimiter_is_a_function() {
    // CloudFormation takes only a literal string as the Fn::Join delimiter (Template
    // Reference, "Fn::Join", supported functions); cfn-lint let one through template.yaml.
    fn walk(v: &Value, path: &str, found: &mut Vec<String>) {
        match v {
            Value::Tagged(t) => {
                if t.tag.to_string().trim_start_matches('!') == "Join" {
                    // Not is_string(): serde_yaml's as_str looks through tags (`!Sub "..."`).
                    let delimiter = &t.value[0];
                    if !matches!(delimiter, Value::String(_)) {
                        found.push(format!("{path}: {delimiter:?}"));
                    }
                }
                walk(&t.value, path, found)
            }
            Value::Mapping(m) => {
                for (k, x) in m {
                    if k.as_str() == Some("Fn::Join") && !matches!(x[0], Value::String(_)) {
                        found.push(format!("{path}: {:?}", x[0]));
                    }
                    walk(x, &format!("{path}/{}", k.as_str().unwrap_or("?")), found)
                }
            }
            Value::Sequence(items) => items.iter().for_each(|x| walk(x, path, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for path in [
        "template.yaml",
        "org/spoke-roles.yaml",
        "org/spoke-rules.yaml",
    ] {
        walk(&load(path), path, &mut found);
    }
    assert!(found.is_empty(), "{found:#?}");
}

// ---- template.yaml with OrgMode ----

const ORG_MODE_RESOURCES: [&str; 8] = [
    "HubBus",
    "HubBusPolicy",
    "HubExportCallsRule",
    "HubExportCallsPermission",
    "HubExportFailedRule",
    "HubExportFailedPermission",
    "SpokeRolesStackSet",
    "SpokeRulesStackSet",
];

const ORG_MODE_PARAMETERS: [&str; 5] = [
    "OrgMode",
    "SpokeOrganizationalUnitIds",
    "SpokeRegions",
    "SpokeRolesRegion",
    "StackSetCallAs",
];

fn stackset_parameters(t: &Value, name: &str) -> serde_yaml::Mapping {
    resource(t, name)["Properties"]["Parameters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| (p["ParameterKey"].clone(), p["ParameterValue"].clone()))
        .collect()
}

#[test]
fn org_mode_is_off_by_default_and_its_resources_exist_only_under_is_org_mode() {
    let t = hub();
    let p = &t["Parameters"]["OrgMode"];
    assert_eq!(s(&p["Default"]), "off");
    assert_eq!(
        strings(&p["AllowedValues"]),
        BTreeSet::from(["off".into(), "on".into()])
    );
    let cond = tagged(&t["Conditions"]["IsOrgMode"], "Equals").expect("!Equals");
    assert_eq!((ref_name(&cond[0]), s(&cond[1])), (Some("OrgMode"), "on"));

    let under: BTreeSet<&str> = t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Condition"].as_str() == Some("IsOrgMode"))
        .map(|(k, _)| s(k))
        .collect();
    assert_eq!(under, BTreeSet::from(ORG_MODE_RESOURCES));
    // Nothing else refers to them or to the OrgMode parameters, or asks IsOrgMode: with off
    // every other resource renders as before.
    let org_names: BTreeSet<String> = ORG_MODE_RESOURCES
        .iter()
        .chain(ORG_MODE_PARAMETERS.iter())
        .map(|n| n.to_string())
        .collect();
    for (name, r) in t["Resources"].as_mapping().unwrap() {
        let name = s(name);
        if under.contains(name) {
            continue;
        }
        // The one exception: the function is told the mode and the spoke Regions (with
        // ORG_MODE=off it reads neither).
        let mut r = r.clone();
        if name == "RemediatorFunction" {
            let vars = r["Properties"]["Environment"]["Variables"]
                .as_mapping_mut()
                .unwrap();
            let told = vars
                .remove("ORG_MODE")
                .expect("ORG_MODE in the function's environment");
            assert_eq!(ref_name(&told), Some("OrgMode"));
            let regions = vars.remove("SPOKE_REGIONS").expect("SPOKE_REGIONS");
            let join = tagged(&regions, "Join").expect("SPOKE_REGIONS: !Join");
            assert_eq!(ref_name(&join[1]), Some("SpokeRegions"));
        }
        let used: Vec<_> = refs_of(&r).intersection(&org_names).cloned().collect();
        assert!(used.is_empty(), "{name} depends on OrgMode: {used:?}");
        let text = serde_yaml::to_string(&r).unwrap();
        assert!(!text.contains("IsOrgMode"), "{name} asks IsOrgMode");
    }
    for (name, o) in t["Outputs"].as_mapping().unwrap() {
        if !refs_of(o).is_disjoint(&org_names) {
            assert_eq!(
                o["Condition"].as_str(),
                Some("IsOrgMode"),
                "output {}",
                s(name)
            );
        }
    }
}

#[test]
fn the_stacksets_are_service_managed_auto_deploying_and_pass_every_spoke_parameter() {
    let t = hub();
    for (name, file, regions) in [
        (
            "SpokeRolesStackSet",
            "org/spoke-roles.yaml",
            "SpokeRolesRegion",
        ),
        ("SpokeRulesStackSet", "org/spoke-rules.yaml", "SpokeRegions"),
    ] {
        let p = &resource(&t, name)["Properties"];
        assert_eq!(s(&p["PermissionModel"]), "SERVICE_MANAGED", "{name}");
        assert_eq!(
            p["AutoDeployment"]["Enabled"].as_bool(),
            Some(true),
            "{name}"
        );
        assert_eq!(ref_name(&p["CallAs"]), Some("StackSetCallAs"), "{name}");
        // A local file: sam package / sam deploy upload it and rewrite the URL.
        assert_eq!(s(&p["TemplateURL"]), file, "{name}");
        let spoke = load(file);
        let declared: BTreeSet<String> = spoke["Parameters"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| s(k).to_string())
            .collect();
        let passed: BTreeSet<String> = stackset_parameters(&t, name)
            .keys()
            .map(|k| s(k).to_string())
            .collect();
        assert!(
            passed.is_subset(&declared),
            "{name} passes {passed:?}, {file} declares {declared:?}"
        );
        for (k, decl) in spoke["Parameters"].as_mapping().unwrap() {
            if decl.get("Default").is_none() {
                assert!(
                    passed.contains(s(k)),
                    "{name} does not pass required {}",
                    s(k)
                );
            }
        }
        // Named IAM (the spoke role) needs CAPABILITY_NAMED_IAM; the unnamed forwarder, IAM.
        let caps = strings(&p["Capabilities"]);
        let named = resources_of_type(&spoke, "AWS::IAM::Role")
            .iter()
            .any(|(_, r)| r["Properties"].get("RoleName").is_some());
        let needed = if named {
            "CAPABILITY_NAMED_IAM"
        } else {
            "CAPABILITY_IAM"
        };
        assert!(caps.contains(needed), "{name}: {caps:?}");
        // One group: the OUs of the parameter, in the Regions of its parameter.
        let groups = p["StackInstancesGroup"].as_sequence().unwrap();
        assert_eq!(groups.len(), 1, "{name}");
        let ous = refs_of(&groups[0]["DeploymentTargets"]["OrganizationalUnitIds"]);
        assert_eq!(
            ous,
            BTreeSet::from(["SpokeOrganizationalUnitIds".to_string()]),
            "{name}"
        );
        assert!(refs_of(&groups[0]["Regions"]).contains(regions), "{name}");
    }
    // The roles' Region defaults to the hub's own.
    let regions = tagged(
        &resource(&t, "SpokeRolesStackSet")["Properties"]["StackInstancesGroup"][0]["Regions"],
        "If",
    )
    .expect("!If [HasSpokeRolesRegion, ...]");
    assert_eq!(s(&regions[0]), "HasSpokeRolesRegion");
    assert_eq!(ref_name(&regions[2][0]), Some("AWS::Region"));
}

#[test]
fn the_hub_bus_admits_only_the_organization_and_org_mode_requires_one() {
    let t = hub();
    let p = &resource(&t, "HubBusPolicy")["Properties"];
    assert_eq!(ref_name(&p["EventBusName"]), Some("HubBus"));
    let st = &p["Statement"];
    assert_eq!(s(&st["Effect"]), "Allow");
    assert_eq!(s(&st["Principal"]), "*");
    assert_eq!(s(&st["Action"]), "events:PutEvents");
    assert_eq!(tagged(&st["Resource"], "GetAtt").map(s), Some("HubBus.Arn"));
    let cond = st["Condition"].as_mapping().unwrap();
    assert_eq!(cond.len(), 1);
    assert_eq!(
        ref_name(&st["Condition"]["StringEquals"]["aws:PrincipalOrgID"]),
        Some("OrganizationId")
    );
    // "*" with an empty organization id would admit nobody, but OrgMode=on refuses to deploy
    // without one, and without the spoke role's name.
    let rule = &t["Rules"]["OrgModeHasItsSettings"];
    let when = tagged(&rule["RuleCondition"], "Equals").expect("!Equals");
    assert_eq!((ref_name(&when[0]), s(&when[1])), (Some("OrgMode"), "on"));
    let asserted: BTreeSet<String> = rule["Assertions"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|a| refs_of(&a["Assert"]))
        .collect();
    for needed in [
        "OrganizationId",
        "MemberRoleName",
        "SpokeOrganizationalUnitIds",
        "SpokeRegions",
    ] {
        assert!(
            asserted.contains(needed),
            "OrgMode=on does not assert {needed}"
        );
    }
}

#[test]
fn the_hub_rules_invoke_the_function_which_may_assume_spoke_roles_in_the_organization_only() {
    let t = hub();
    for (rule, permission) in [
        ("HubExportCallsRule", "HubExportCallsPermission"),
        ("HubExportFailedRule", "HubExportFailedPermission"),
    ] {
        let r = &resource(&t, rule)["Properties"];
        assert_eq!(ref_name(&r["EventBusName"]), Some("HubBus"));
        // No `account` filter: the forwarded envelope's account is the sender's (absent on moto).
        assert!(r["EventPattern"].get("account").is_none(), "{rule}");
        let targets = r["Targets"].as_sequence().unwrap();
        assert_eq!(targets.len(), 1);
        assert_eq!(
            tagged(&targets[0]["Arn"], "GetAtt").map(s),
            Some("RemediatorFunction.Arn")
        );
        let p = &resource(&t, permission)["Properties"];
        assert_eq!(s(&p["Principal"]), "events.amazonaws.com");
        assert_eq!(ref_name(&p["FunctionName"]), Some("RemediatorFunction"));
        assert_eq!(
            tagged(&p["SourceArn"], "GetAtt").map(s).map(String::from),
            Some(format!("{rule}.Arn"))
        );
    }
    // The spoke role is MemberRoleName: the existing AssumeMemberRole statement covers it,
    // limited by aws:ResourceOrgID whenever OrganizationId is set (which OrgMode=on asserts).
    let policies = resource(&t, "RemediatorFunction")["Properties"]["Policies"]
        .as_sequence()
        .unwrap();
    let assume = policies
        .iter()
        .filter_map(|p| tagged(p, "If"))
        .find(|args| s(&args[0]) == "HasMemberRole")
        .expect("AssumeMemberRole under HasMemberRole");
    let st = &statements(&assume[1])[0];
    assert_eq!(s(&st["Action"]), "sts:AssumeRole");
    assert_eq!(
        tagged(&st["Resource"], "Sub").map(s),
        Some("arn:${AWS::Partition}:iam::*:role/${MemberRoleName}")
    );
    let cond = tagged(&st["Condition"], "If").unwrap();
    assert_eq!(s(&cond[0]), "HasOrganizationId");
    assert_eq!(
        ref_name(&cond[1]["StringEquals"]["aws:ResourceOrgID"]),
        Some("OrganizationId")
    );
}

// ---- on the emulator: both spoke templates through moto's StackSets ----
//
// moto 5.2.5 provisions a SERVICE_MANAGED StackSet's resources in each member account of the
// OU, and delivers a rule's events to a bus in another account. It checks no trust policy and
// no bus policy, and ignores AutoDeployment: those are asserted on the templates above.

mod emulator {
    use super::*;
    use crate::helpers::{moto, sdk, seed, seed_at};
    use aws_config::{Region, SdkConfig};
    use serde_json::{json, Value as Json};

    /// The SDK config of `account` in `region`, through the role Organizations creates there.
    async fn as_account(account: &str, region: &str) -> SdkConfig {
        let sts = aws_sdk_sts::Client::new(&sdk().await);
        let c = sts
            .assume_role()
            .role_arn(format!(
                "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
            ))
            .role_session_name("org-spokes")
            .send()
            .await
            .expect("AssumeRole")
            .credentials
            .expect("credentials");
        let creds = aws_credential_types::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "member",
        );
        sdk()
            .await
            .to_builder()
            .region(Region::new(region.to_string()))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(creds),
            )
            .build()
    }

    /// IAM returns policy documents URL-encoded.
    fn decode(doc: &str) -> Json {
        let bytes = doc.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("policy document: {e}: {doc}"))
    }

    async fn put_event(account: &str, region: &str, source: &str, detail_type: &str, detail: Json) {
        let events = aws_sdk_eventbridge::Client::new(&as_account(account, region).await);
        let out = events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source(source)
                    .detail_type(detail_type)
                    .detail(detail.to_string())
                    .build(),
            )
            .send()
            .await
            .expect("PutEvents");
        assert_eq!(out.failed_entry_count(), 0);
    }

    /// (forwarding rule names, their target ARNs) on the default bus of `account` in `region`.
    async fn forwarding(account: &str, region: &str) -> (usize, BTreeSet<String>) {
        let events = aws_sdk_eventbridge::Client::new(&as_account(account, region).await);
        let rules = events.list_rules().send().await.expect("ListRules");
        let mut count = 0;
        let mut targets = BTreeSet::new();
        for rule in rules.rules() {
            let name = rule.name().unwrap();
            count += 1;
            let t = events
                .list_targets_by_rule()
                .rule(name)
                .send()
                .await
                .expect("ListTargetsByRule");
            for target in t.targets() {
                assert!(
                    target.role_arn().is_some(),
                    "{name}: a target without a role"
                );
                targets.insert(target.arn().to_string());
            }
        }
        (count, targets)
    }

    #[tokio::test]
    async fn stacksets_put_the_spoke_role_and_rules_in_every_ou_account_and_events_reach_the_hub() {
        let s = seed("org-spokes");
        let hub_bus = s["hubBusArn"].as_str().unwrap();
        let role_name = s["memberRoleName"].as_str().unwrap();
        let members: Vec<&str> = s["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        let hub_account = s["hubAccount"].as_str().unwrap();
        for account in &members {
            let iam = aws_sdk_iam::Client::new(&as_account(account, "us-east-1").await);
            let role = iam
                .get_role()
                .role_name(role_name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{account}: no spoke role: {e:?}"));
            let role = role.role().unwrap();
            assert_eq!(role.max_session_duration(), Some(3600));
            let trust = decode(role.assume_role_policy_document().unwrap());
            assert_eq!(
                trust["Statement"],
                json!([{
                    "Sid": "HubFunctionOnly",
                    "Effect": "Allow",
                    "Principal": {"AWS": format!("arn:aws:iam::{hub_account}:root")},
                    "Action": "sts:AssumeRole",
                    "Condition": {"ArnEquals": {"aws:PrincipalArn": s["hubFunctionRoleArn"]}}
                }]),
                "{account}"
            );
            // KeyPolicyPatch=on with two buckets and no keys: no KMS-use policy, the tagged
            // kms:PutKeyPolicy, and one S3 ARN per bucket.
            let names: BTreeSet<String> = iam
                .list_role_policies()
                .role_name(role_name)
                .send()
                .await
                .expect("ListRolePolicies")
                .policy_names()
                .iter()
                .cloned()
                .collect();
            let expected: BTreeSet<String> = [
                "read",
                "retry-export",
                "write-retried-exports",
                "patch-key-policy",
            ]
            .map(String::from)
            .into();
            assert_eq!(names, expected, "{account}");
            let writes = iam
                .get_role_policy()
                .role_name(role_name)
                .policy_name("write-retried-exports")
                .send()
                .await
                .expect("GetRolePolicy");
            let doc = decode(writes.policy_document());
            let buckets: Vec<String> = s["exportBuckets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| format!("arn:aws:s3:::{}/*", b.as_str().unwrap()))
                .collect();
            assert_eq!(doc["Statement"][0]["Resource"], json!(buckets), "{account}");
            let patch = iam
                .get_role_policy()
                .role_name(role_name)
                .policy_name("patch-key-policy")
                .send()
                .await
                .expect("GetRolePolicy");
            let doc = decode(patch.policy_document());
            assert_eq!(
                doc["Statement"][0]["Condition"]["StringEquals"]
                    ["aws:ResourceTag/ddb-export-remediator"],
                "patchable"
            );
            // Two forwarding rules in each spoke Region, all aimed at the hub bus.
            for region in ["us-east-1", "us-west-2"] {
                let (count, targets) = forwarding(account, region).await;
                assert_eq!(count, 2, "{account} {region}");
                assert_eq!(
                    targets,
                    BTreeSet::from([hub_bus.to_string()]),
                    "{account} {region}"
                );
            }
        }
        // The account outside the OU got nothing.
        let outside = s["outside"].as_str().unwrap();
        let iam = aws_sdk_iam::Client::new(&as_account(outside, "us-east-1").await);
        assert!(iam.get_role().role_name(role_name).send().await.is_err());
        assert_eq!(forwarding(outside, "us-west-2").await.0, 0);

        // A failure event in member A, us-west-2, and a CloudTrail-shaped call in member B,
        // us-east-1, reach the hub bus; an event of another source is not forwarded.
        let a_export = format!(
            "arn:aws:dynamodb:us-west-2:{}:table/orders/export/01700000000000-abcdef12",
            members[0]
        );
        let other_export = format!("{a_export}-other");
        let (a, b) = (members[0], members[1]);
        put_event(
            a,
            "us-west-2",
            EVENT_SOURCE,
            "DynamoDB Export Failed",
            json!({"exportArn": a_export, "accountId": a, "region": "us-west-2"}),
        )
        .await;
        put_event(
            b,
            "us-east-1",
            "aws.dynamodb",
            "AWS API Call via CloudTrail",
            json!({"eventSource": "dynamodb.amazonaws.com", "eventName": "ExportTableToPointInTime",
                   "recipientAccountId": b, "awsRegion": "us-east-1",
                   "errorCode": "AccessDeniedException"}),
        )
        .await;
        put_event(
            a,
            "us-west-2",
            "other",
            "DynamoDB Export Failed",
            json!({"exportArn": other_export}),
        )
        .await;
        let seen = seed_at(
            &moto().endpoint,
            &["--queue", s["queueUrl"].as_str().unwrap(), "count-events"],
        );
        // The CloudTrail event carries no detail.exportArn: counted under "?".
        assert_eq!(seen["byExport"], json!({a_export: 1, "?": 1}), "{seen}");
    }
}
