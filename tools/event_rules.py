#!/usr/bin/env python3
"""Which of the template's EventBridge rules does each sample event match? Asked of the emulator.

    python3 tools/event_rules.py [--endpoint URL] [--event NAME=FILE ...] [--text]
    python3 tools/event_rules.py --endpoint URL --deploy-here CONFIG > deployed.json
    python3 tools/event_rules.py --endpoint URL --collect deployed.json

For each configuration (CONFIGS: OrgMode off with the defaults; with ExtraFailureSources and a
report topic; with EventBusName=ops-bus; OrgMode on with the Makefile's ORG_ON_PARAMS):

1. template.yaml goes through the SAM translator (`samtranslator`, the package SAM CLI itself
   uses, pinned in tools/requirements.txt), so the rules SAM generates from the function's
   `Events` are there as they will be on AWS.
2. The translated template is deployed into the emulator's CloudFormation (moto) with that
   configuration's parameters: moto resolves the intrinsics (`!If`, `!Split`, `!Join`, `!Ref`)
   and creates the rules on their buses. The whole template is tried first (in an account of
   its own); moto refuses it, so the resources of types its CloudFormation lacks are left out
   and every reference to them replaced (reduce_to_supported; both are in the output). With
   OrgMode=on, org/spoke-rules.yaml is deployed too, as a plain stack in a second account and
   Region, aimed at the deployed hub bus.
3. Each deployed rule keeps its real targets where moto can deliver to them (another bus) and
   gets one extra SQS queue as a probe; targets moto cannot deliver to (Lambda, SNS) are recorded
   and replaced by the probe, since moto raises on them.
4. Every sample event is put on every bus it can arrive on (PutEvents), and the probes say which
   rules matched: moto's own EventPattern matcher decides, not code written here.
5. The same pairs go through TestEventPattern (tools/moto_test_event_pattern.py answers it with
   that matcher); any disagreement with the probes is listed.

A schedule rule has no pattern: EventBridge never matches it against put events, it sends its
own `Scheduled Event`. Moto treats an empty pattern as "match everything", so schedule rules get
no probe; the output lists them with their expression instead.

The JSON output is what tests/handler/event_rules.rs checks against its expected table, and
docs/event-rules.md explains it. The tool starts its own emulator (tools/moto_server.py on a free
127.0.0.1 port, stopped at the end) unless --endpoint names one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import re
import secrets
import subprocess
import sys
import zipfile

import boto3
import botocore.exceptions
from botocore.config import Config

ROOT = pathlib.Path(__file__).resolve().parent.parent
REGION = "us-east-1"
SPOKE_REGION = "us-west-2"
STACK = "ddbxr"
CODE_BUCKET = "event-rules-code"

# Sites: where an event can be put. hub:default is the deployment's own account and Region;
# hub:HubBus the organization bus (an event put there directly has the form a spoke forwards);
# spoke:default a member account's default bus in another Region, where org/spoke-rules.yaml
# forwards to the hub bus (the whole chain runs in the emulator).
CONFIGS: dict[str, dict] = {
    "off": {"parameters": {}, "sites": ["hub:default"]},
    "off-sources": {
        "parameters": {"ExtraFailureSources": "my-data-pipeline,orders-scheduler",
                       "NotificationEmail": "ops@example.com"},
        "sites": ["hub:default"],
    },
    "off-bus": {
        "parameters": {"EventBusName": "ops-bus", "NotificationEmail": "ops@example.com"},
        "buses": ["ops-bus"],
        "sites": ["hub:default", "hub:ops-bus"],
    },
    "on": {
        "parameters": "ORG_ON_PARAMS",
        "extra": {"NotificationEmail": "ops@example.com"},
        "sites": ["hub:default", "hub:HubBus", "spoke:default"],
    },
}


def org_on_params() -> dict[str, str]:
    """The Makefile's ORG_ON_PARAMS (what `make validate` lints OrgMode=on with), parsed."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^ORG_ON_PARAMS\s*:=((?:.*\\\n)*.*)$", text, re.M)
    if not match:
        sys.exit("Makefile: ORG_ON_PARAMS not found")
    words = match.group(1).replace("\\\n", " ").split()
    return dict(w.split("=", 1) for w in words)


def parameters_of(name: str) -> dict[str, str]:
    config = CONFIGS[name]
    params = org_on_params() if config["parameters"] == "ORG_ON_PARAMS" else dict(config["parameters"])
    params.update(config.get("extra", {}))
    return params


def translate(path: pathlib.Path, params: dict[str, str]) -> dict:
    """template.yaml as CloudFormation, through the SAM translator (as `sam deploy` submits it,
    but CloudFormation itself applies the transform on AWS: the same library)."""
    from samcli.yamlhelper import yaml_parse
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:  # the template names no managed policy by name
        def load(self) -> dict:
            return {}

    template = yaml_parse(path.read_text(encoding="utf-8"))
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            # `sam package` replaces the local CodeUri with the uploaded artifact's S3 URI.
            resource["Properties"]["CodeUri"] = f"s3://{CODE_BUCKET}/bootstrap.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(template, dict(params), NoManagedPolicies())


def moto_supported_types() -> set[str]:
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    return set(get_model_map()) - set(NULL_MODELS)


def reduce_to_supported(template: dict, supported: set[str]) -> tuple[dict, dict[str, str]]:
    """The template without the resources moto's CloudFormation does not implement, and every
    reference to them (`Ref`, `Fn::GetAtt`, `${X}` in `Fn::Sub`, `DependsOn`) replaced by a
    placeholder string, so that the rest deploys. Returns it and {removed logical id: type}."""
    removed = {k: r["Type"] for k, r in template["Resources"].items() if r["Type"] not in supported}
    worked_around: set[str] = set()

    def placeholder(name: str) -> str:
        return f"moto-unsupported-{name}"

    def sub_text(text: str, local: set[str]) -> str:
        def repl(m: re.Match) -> str:
            name = m.group(1).split(".")[0]
            return placeholder(name) if name in removed and name not in local else m.group(0)
        return re.sub(r"\$\{([A-Za-z0-9.:]+)\}", repl, text)

    # moto's CloudFormation answers `Ref` to an AWS::Events::EventBus with its model object,
    # then fails (AttributeError in moto/events/models.py); CloudFormation answers the bus name
    # (CloudFormation Template Reference, "AWS::Events::EventBus", Return values).
    buses = {k: r["Properties"]["Name"] for k, r in template["Resources"].items()
             if r["Type"] == "AWS::Events::EventBus"}

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in removed:
                return placeholder(node["Ref"])
            if set(node) == {"Ref"} and node["Ref"] in buses:
                worked_around.add(f"Ref {node['Ref']} (AWS::Events::EventBus): its Name")
                return buses[node["Ref"]]
            if set(node) == {"Fn::GetAtt"}:
                target = node["Fn::GetAtt"]
                name = target[0] if isinstance(target, list) else str(target).split(".")[0]
                if name in removed:
                    return placeholder(name)
            if set(node) == {"Fn::Sub"}:
                arg = node["Fn::Sub"]
                if isinstance(arg, str):
                    return {"Fn::Sub": sub_text(arg, set())}
                text, local = arg[0], arg[1] if len(arg) > 1 else {}
                return {"Fn::Sub": [sub_text(text, set(local)), walk(local)]}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out = dict(template)
    kept = {}
    for name, res in template["Resources"].items():
        if name in removed:
            continue
        res = walk(res)
        if res["Type"] == "AWS::IAM::Role" and isinstance(res["Properties"].get("Policies"), list):
            # moto's CloudFormation keeps an `!If [c, policy, !Ref AWS::NoValue]` list item as
            # None and fails on it (TypeError in moto/iam/models.py): keep the plain policies.
            policies = res["Properties"]["Policies"]
            plain = [p for p in policies if not (isinstance(p, dict) and "Fn::If" in p)]
            if len(plain) != len(policies):
                removed[f"{name}.Policies[Fn::If]"] = "conditional inline policies"
                res["Properties"]["Policies"] = plain
        deps = res.get("DependsOn")
        if isinstance(deps, str):
            deps = [deps]
        if deps is not None:
            deps = [d for d in deps if d not in removed]
            if deps:
                res["DependsOn"] = deps
            else:
                res.pop("DependsOn")
        kept[name] = res
    out["Resources"] = kept
    out["Outputs"] = walk(template.get("Outputs", {}))
    for w in worked_around:
        removed[w] = "replaced for moto"
    return out, removed


def client(endpoint: str, service: str, region: str = REGION, creds: dict | None = None):
    kwargs = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                  aws_secret_access_key="testing",
                  config=Config(retries={"max_attempts": 2, "mode": "standard"}))
    if creds:
        kwargs.update(aws_access_key_id=creds["AccessKeyId"],
                      aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
    return boto3.client(service, **kwargs)


class Site:
    """One account and Region of the emulator, with its clients."""

    def __init__(self, endpoint: str, region: str, creds: dict | None = None):
        self.endpoint, self.region, self.creds = endpoint, region, creds

    def client(self, service: str):
        return client(self.endpoint, service, self.region, self.creds)


def deploy(site: Site, stack: str, body: dict | str, params: dict[str, str], caps: list[str]) -> dict:
    cfn = site.client("cloudformation")
    text = body if isinstance(body, str) else json.dumps(body)
    cfn.create_stack(StackName=stack, TemplateBody=text, Capabilities=caps,
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    return {
        "status": desc["StackStatus"],
        "reason": desc.get("StackStatusReason"),
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])},
        "resources": {r["LogicalResourceId"]: {"type": r["ResourceType"],
                                               "physical": r.get("PhysicalResourceId")}
                      # moto lists resources whose condition is false without a logical id
                      for r in resources if r.get("LogicalResourceId")},
    }


def probe_rules(site: Site, site_name: str, deployed: dict, template: dict, tag: str) -> dict:
    """Gives every pattern rule of the stack an SQS probe; returns {rule id: facts}."""
    events, sqs = site.client("events"), site.client("sqs")
    rules = {}
    for logical, res in template["Resources"].items():
        if res.get("Type") != "AWS::Events::Rule":
            continue
        rule_id = f"{site_name}:{logical}"
        if logical not in deployed["resources"]:
            rules[rule_id] = {"deployed": False, "condition": res.get("Condition")}
            continue
        physical = deployed["resources"][logical]["physical"]
        bus = _bus_of(events, physical)
        described = events.describe_rule(Name=physical, EventBusName=bus)
        targets = events.list_targets_by_rule(Rule=physical, EventBusName=bus)["Targets"]
        facts = {
            "deployed": True,
            "bus": bus,
            # The bus as the template names it: a bus resource's logical id, else its name.
            "busRole": _bus_resource(template, res) or bus,
            "state": described.get("State"),
            "pattern": json.loads(described["EventPattern"]) if described.get("EventPattern") else None,
            "schedule": described.get("ScheduleExpression"),
            "targets": [_target_kind(t["Arn"]) for t in targets],
        }
        rules[rule_id] = facts
        if facts["pattern"] is None:
            # A schedule (see the module docstring): moto would match it against every event,
            # so it keeps no target moto would then fail on.
            events.remove_targets(Rule=physical, EventBusName=bus, Ids=[t["Id"] for t in targets])
            continue
        undeliverable = [t["Id"] for t in targets if _target_kind(t["Arn"]) not in ("event-bus",)]
        if undeliverable:
            events.remove_targets(Rule=physical, EventBusName=bus, Ids=undeliverable)
        name = re.sub(r"[^A-Za-z0-9_-]", "-", f"probe-{tag}-{rule_id}")[:80]
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_targets(Rule=physical, EventBusName=bus, Targets=[{"Id": "probe", "Arn": arn}])
        facts["probe"] = url
    return rules


def _bus_resource(template: dict, rule: dict) -> str | None:
    ref = rule.get("Properties", {}).get("EventBusName")
    if isinstance(ref, dict) and ref.get("Ref") in template["Resources"]:
        return ref["Ref"]
    return None


def _bus_of(events, rule_name: str) -> str:
    for bus in events.list_event_buses()["EventBuses"]:
        names = [r["Name"] for r in events.list_rules(EventBusName=bus["Name"]).get("Rules", [])]
        if rule_name in names:
            return bus["Name"]
    raise LookupError(f"rule {rule_name} is on no bus")


def _target_kind(arn: str) -> str:
    parts = arn.split(":")
    service = parts[2] if len(parts) > 2 else "?"
    if service == "events" and ":event-bus/" in arn:
        return "event-bus"
    return {"lambda": "lambda", "sns": "sns", "sqs": "sqs"}.get(service, service)


def drain(site: Site, url: str) -> list[dict]:
    sqs = site.client("sqs")
    got = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return got
        for m in msgs:
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


FIXTURES = "events/fixtures/event-rules"


def sample_events(extra: dict[str, pathlib.Path]) -> dict[str, dict]:
    """Every envelope in events/ (manual payloads are invoked directly: no bus carries them),
    and the extra samples in events/fixtures/event-rules/ (named fixtures/<file>)."""
    out = {}
    for path in sorted((ROOT / "events").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "detail-type" in doc and "source" in doc:
            out[path.name] = doc
    for path in sorted((ROOT / FIXTURES).glob("*.json")):
        out[f"fixtures/{path.name}"] = json.loads(path.read_text(encoding="utf-8"))
    for name, path in extra.items():
        out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def direct_payloads() -> list[str]:
    out = []
    for path in sorted((ROOT / "events").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(doc, dict) and "detail-type" in doc and "source" in doc):
            out.append(path.name)
    return out


def put(site: Site, bus: str, event: dict) -> None:
    entry = {"Source": event["source"], "DetailType": event["detail-type"],
             "Detail": json.dumps(event.get("detail", {})), "EventBusName": bus}
    if event.get("resources"):
        entry["Resources"] = event["resources"]
    answer = site.client("events").put_events(Entries=[entry])
    if answer.get("FailedEntryCount"):
        raise RuntimeError(f"PutEvents refused {event['detail-type']}: {answer}")


def account_site(endpoint: str, account: str, region: str) -> Site:
    """Credentials in `account` (the emulator's STS answers any role ARN), so that each
    configuration's stack, and each attempt, has its buses to itself."""
    creds = client(endpoint, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/event-rules-deployer",
        RoleSessionName="event-rules")["Credentials"]
    return Site(endpoint, region, creds)


def upload_code(site: Site) -> None:
    """A stand-in artifact where the translated template's CodeUri points."""
    s3 = site.client("s3")
    try:
        s3.create_bucket(Bucket=CODE_BUCKET)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        return
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    s3.put_object(Bucket=CODE_BUCKET, Key="bootstrap.zip", Body=buf.getvalue())


def run_config(endpoint: str, name: str, events: dict[str, dict]) -> dict:
    params = parameters_of(name)
    tag = f"{name}-{secrets.token_hex(3)}"
    account = f"{secrets.randbelow(10**11) + 10**11:012d}"
    hub = account_site(endpoint, account, REGION)
    upload_code(hub)
    for bus in CONFIGS[name].get("buses", []):
        hub.client("events").create_event_bus(Name=bus)
    template = translate(ROOT / "template.yaml", params)
    supported = moto_supported_types()
    stack_name = f"{STACK}-{tag}"
    caps = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    # First the whole translated template, as CloudFormation would get it; moto refuses it when
    # a supported resource refers to one of the types it skips, so then the reduced template.
    # The whole attempt runs in an account of its own: what moto created before it failed must
    # not answer for the reduced stack.
    attempt = account_site(endpoint, f"{int(account) + 1:012d}", REGION)
    removed: dict[str, str] = {}
    try:
        deployed = deploy(attempt, stack_name, template, params, caps)
        whole = {"deployed": True, "error": None}
    except botocore.exceptions.ClientError as exc:
        whole = {"deployed": False, "error": exc.response.get("Error", {}).get("Message", str(exc))}
    reduced, removed = reduce_to_supported(template, supported)
    deployed = deploy(hub, stack_name, reduced, params, caps)
    result = {
        "parameters": params,
        "stack": {
            "status": deployed["status"],
            "reason": deployed["reason"],
            "types": sorted({r["Type"] for r in template["Resources"].values()}),
            "unsupportedTypes": sorted({r["Type"] for r in template["Resources"].values()
                                        if r["Type"] not in supported}),
            "created": sorted(deployed["resources"]),
            "whole": whole,
            "removedForMoto": removed,
        },
    }
    sites = {"hub": hub}
    rules = probe_rules(hub, "hub", deployed, template, tag)
    if "spoke:default" in CONFIGS[name]["sites"]:
        spoke = account_site(endpoint, f"{int(account) + 2:012d}", SPOKE_REGION)
        sites["spoke"] = spoke
        spoke_text = (ROOT / "org/spoke-rules.yaml").read_text(encoding="utf-8")
        from samcli.yamlhelper import yaml_parse

        spoke_template = yaml_parse(spoke_text)
        spoke_deployed = deploy(spoke, f"{STACK}-spoke-rules-{tag}", spoke_text,
                                {"HubBusArn": deployed["outputs"]["HubBusArn"]}, ["CAPABILITY_IAM"])
        result["spokeStack"] = {
            "status": spoke_deployed["status"],
            "types": sorted({r["Type"] for r in spoke_template["Resources"].values()}),
            "unsupportedTypes": sorted({r["Type"] for r in spoke_template["Resources"].values()
                                        if r["Type"] not in supported}),
            "created": sorted(spoke_deployed["resources"]),
        }
        rules.update(probe_rules(spoke, "spoke", spoke_deployed, spoke_template, tag))
    result["rules"] = {k: {kk: vv for kk, vv in v.items() if kk != "probe"} for k, v in rules.items()}
    hub_bus = deployed["outputs"].get("HubBusArn", "").split("/")[-1]
    matches: dict[str, dict[str, list[str]]] = {}
    for site_name in CONFIGS[name]["sites"]:
        account, bus_role = site_name.split(":")
        site = sites[account]
        bus = hub_bus if bus_role == "HubBus" else bus_role
        matches[site_name] = {}
        for event_name, event in events.items():
            put(site, bus, event)
            got = []
            for rule_id, facts in rules.items():
                if "probe" in facts:
                    owner = sites[rule_id.split(":")[0]]
                    if drain(owner, facts["probe"]):
                        got.append(rule_id)
            matches[site_name][event_name] = sorted(got)
    result["matches"] = matches
    result["testEventPattern"] = cross_check(hub, rules, events, matches, CONFIGS[name]["sites"])
    return result


def cross_check(site: Site, rules: dict, events: dict[str, dict], matches: dict,
                sites: list[str]) -> dict:
    """The same question through TestEventPattern (tools/moto_test_event_pattern.py): for each
    pattern rule and event, does the pattern match? Compared with the probes wherever the event
    was put on the rule's own bus. Returns the number of pairs asked and the disagreements."""
    client_ = site.client("events")
    asked, disagree = 0, []
    for rule_id, rule in rules.items():
        if not rule.get("deployed") or rule.get("pattern") is None:
            continue
        for event_name, event in events.items():
            answer = client_.test_event_pattern(EventPattern=json.dumps(rule["pattern"]),
                                                Event=json.dumps(event))["Result"]
            asked += 1
            put_here = f"{rule_id.split(':')[0]}:{rule['busRole']}"
            if put_here in sites and (rule_id in matches[put_here][event_name]) != answer:
                disagree.append({"rule": rule_id, "event": event_name, "testEventPattern": answer})
    return {"asked": asked, "disagreements": disagree}


def deploy_here(endpoint: str, name: str) -> dict:
    """`--deploy-here NAME`: the configuration's stack in the caller's own account (where the
    function under test publishes), every pattern rule with a probe; nothing is put. The
    answer, saved to a file, is what `--collect` reads after the function has run."""
    if any(not s.startswith("hub:") for s in CONFIGS[name]["sites"]):
        sys.exit(f"--deploy-here: {name} needs a second account; use a single-account one")
    params = parameters_of(name)
    hub = Site(endpoint, REGION)
    upload_code(hub)
    for bus in CONFIGS[name].get("buses", []):
        hub.client("events").create_event_bus(Name=bus)
    template = translate(ROOT / "template.yaml", params)
    reduced, _ = reduce_to_supported(template, moto_supported_types())
    tag = f"{name}-{secrets.token_hex(3)}"
    deployed = deploy(hub, f"{STACK}-{tag}", reduced, params,
                      ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"])
    return {"config": name, "rules": probe_rules(hub, "hub", deployed, template, tag)}


def collect(endpoint: str, deployed: dict) -> dict[str, list[dict]]:
    """`--collect FILE`: the events each probed rule of a `--deploy-here` answer received."""
    hub = Site(endpoint, REGION)
    return {rule_id: drain(hub, facts["probe"])
            for rule_id, facts in deployed["rules"].items() if "probe" in facts}


def start_emulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tools/moto_server.py"), "--parent-pid", str(os.getpid())],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("MOTO_READY "):
        proc.kill()
        sys.exit(f"the emulator did not start: {line!r}")
    return proc, line.split()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="an emulator already running (default: start one)")
    parser.add_argument("--event", action="append", default=[], metavar="NAME=FILE",
                        help="one more event to match, beside events/*.json")
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS),
                        help="only these configurations (default: all)")
    parser.add_argument("--text", action="store_true",
                        help="print the match table as text instead of the JSON report")
    parser.add_argument("--deploy-here", metavar="CONFIG",
                        help="with --endpoint: deploy CONFIG in the caller's account with probes, "
                             "print the rules and their probe queues, put nothing")
    parser.add_argument("--collect", metavar="FILE",
                        help="with --endpoint: drain the probes of a --deploy-here answer")
    args = parser.parse_args()
    if args.deploy_here or args.collect:
        if not args.endpoint:
            parser.error("--deploy-here and --collect need --endpoint")
        if args.deploy_here:
            if args.deploy_here not in CONFIGS:
                parser.error(f"unknown configuration {args.deploy_here}")
            out = deploy_here(args.endpoint, args.deploy_here)
        else:
            out = collect(args.endpoint, json.loads(pathlib.Path(args.collect).read_text()))
        json.dump(out, sys.stdout, indent=2, sort_keys=True)
        print()
        return
    extra = {}
    for pair in args.event:
        name, sep, path = pair.partition("=")
        if not sep:
            parser.error(f"not NAME=FILE: {pair}")
        extra[name] = pathlib.Path(path)
    events = sample_events(extra)
    proc = None
    endpoint = args.endpoint
    if endpoint is None:
        proc, endpoint = start_emulator()
    try:
        out = {
            "events": sorted(events),
            "directPayloads": direct_payloads(),
            "configs": {name: run_config(endpoint, name, events) for name in (args.config or CONFIGS)},
        }
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
    if args.text:
        print(as_text(out))
        return
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    print()


def as_text(report: dict) -> str:
    """One block per configuration and bus: each event and the rules the emulator matched."""
    lines = []
    for name, config in report["configs"].items():
        stack = config["stack"]
        lines.append(f"== {name}: {json.dumps(config['parameters'])}")
        lines.append(f"   moto lacks: {', '.join(stack['unsupportedTypes']) or 'nothing'}")
        for rule_id, rule in sorted(config["rules"].items()):
            if rule["deployed"]:
                what = rule["schedule"] or json.dumps(rule["pattern"], sort_keys=True)
                lines.append(f"   rule {rule_id} on {rule['bus']} -> {','.join(rule['targets'])}: {what}")
        for site, matches in config["matches"].items():
            lines.append(f"   -- put on {site}")
            width = max(len(e) for e in matches)
            for event, rules in matches.items():
                lines.append(f"      {event:<{width}}  {' '.join(rules) or '-'}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
