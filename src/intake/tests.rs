use super::*;
use serde_json::json;

fn event(file: &str) -> Value {
    let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every sample in events/ parses to the trigger its name promises (or the error it documents).
#[test]
fn every_event_file_parses() {
    let dir = format!("{}/events", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let result = parse(&event(&name));
        let ok = match name.split('-').next().unwrap() {
            "cloudtrail" if name.contains("started") => {
                matches!(result, Ok(Trigger::ExportStarted(_)))
            }
            "cloudtrail" => {
                matches!(result, Ok(Trigger::Incident(ref i)) if i.source == IncidentSource::Cloudtrail)
            }
            "eventbridge" => {
                matches!(result, Ok(Trigger::Incident(ref i)) if i.source == IncidentSource::Event)
            }
            "schedule" => matches!(result, Ok(Trigger::Sweep)),
            "manual" => {
                matches!(result, Ok(Trigger::Incident(ref i)) if i.source == IncidentSource::Manual)
            }
            "preflight" => matches!(result, Ok(Trigger::Preflight(_))),
            "rollback" => matches!(result, Ok(Trigger::Rollback { .. })),
            "invalid" => matches!(result, Err(Error::InvalidEvent(_))),
            "unsupported" => matches!(result, Err(Error::UnsupportedEvent(_))),
            other => panic!("{name}: unknown prefix {other}"),
        };
        assert!(ok, "{name} parsed to {result:?}");
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} event files");
}

#[test]
fn cloudtrail_error_carries_request_caller_and_code() {
    let Trigger::Incident(i) = parse(&event("cloudtrail-access-denied.json")).unwrap() else {
        panic!("not an incident");
    };
    assert_eq!(i.failure_code.as_deref(), Some("AccessDeniedException"));
    assert_eq!(
        i.caller.as_deref(),
        Some("arn:aws:iam::111122223333:role/DataPlatformExporter")
    );
    let r = i.request.unwrap();
    assert_eq!(r.s3_bucket, "amzn-s3-demo-bucket");
    assert_eq!(r.s3_sse_algorithm, Some(SseAlgorithm::Aes256));
    assert_eq!(r.export_time, Some(1_795_500_000.0));
}

#[test]
fn pascal_case_request_parameters_are_accepted() {
    let ev = json!({
        "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.dynamodb",
        "detail": {"eventName": EXPORT_EVENT_NAME, "errorCode": "ValidationException",
            "requestParameters": {"TableArn": "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
                "S3Bucket": "amzn-s3-demo-bucket", "S3SseAlgorithm": "KMS", "S3BucketOwner": "444455556666"}}
    });
    let Trigger::Incident(i) = parse(&ev).unwrap() else {
        panic!()
    };
    let r = i.request.unwrap();
    assert_eq!(r.s3_sse_algorithm, Some(SseAlgorithm::Kms));
    assert_eq!(r.s3_bucket_owner.as_deref(), Some("444455556666"));
}

#[test]
fn null_request_parameters_still_make_an_incident() {
    let ev = json!({
        "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.dynamodb",
        "detail": {"eventName": EXPORT_EVENT_NAME, "errorCode": "AccessDenied",
                   "requestParameters": null, "userIdentity": {"arn": "arn:aws:iam::111122223333:user/bob"}}
    });
    let Trigger::Incident(i) = parse(&ev).unwrap() else {
        panic!()
    };
    assert!(i.request.is_none());
    assert_eq!(
        i.caller.as_deref(),
        Some("arn:aws:iam::111122223333:user/bob")
    );
}

#[test]
fn own_retry_is_recognised_by_client_token() {
    let Trigger::ExportStarted(s) =
        parse(&event("cloudtrail-export-started-own-retry.json")).unwrap()
    else {
        panic!()
    };
    assert!(s.own_retry);
    let Trigger::ExportStarted(s) = parse(&event("cloudtrail-export-started.json")).unwrap() else {
        panic!()
    };
    assert!(!s.own_retry);
    assert!(s.export_arn.unwrap().contains("/export/"));
}

#[test]
fn a_failed_event_that_names_the_destination_announces_it() {
    let mut e = event("eventbridge-export-failed-s3-access-denied.json");
    let Trigger::Incident(i) = parse(&e).unwrap() else {
        panic!()
    };
    let a = i.announced.unwrap();
    assert_eq!(a.s3_bucket, "amzn-s3-demo-bucket");
    assert_eq!(a.table_arn, i.table_arn.unwrap());
    assert_eq!(a.s3_sse_algorithm, Some(SseAlgorithm::Aes256));

    e["detail"]["s3BucketOwner"] = json!("12345");
    let err = parse(&e).unwrap_err().to_string();
    assert!(err.contains("detail.s3BucketOwner"), "{err}");
    e["detail"]["s3BucketOwner"] = Value::Null;
    e["detail"]["s3Bucket"] = json!("Not_A_Bucket");
    let err = parse(&e).unwrap_err().to_string();
    assert!(err.contains("detail.s3Bucket"), "{err}");

    let Trigger::Incident(i) =
        parse(&event("eventbridge-export-failed-no-such-bucket.json")).unwrap()
    else {
        panic!()
    };
    assert!(i.announced.is_none());
}

#[test]
fn bad_input_gets_typed_errors_naming_the_field() {
    let cases = [
        (json!([1, 2]), "InvalidEvent", "JSON object"),
        (
            json!({"hello": 1}),
            "InvalidEvent",
            "expected an EventBridge",
        ),
        (json!({"exportArn": "nope"}), "InvalidEvent", "exportArn"),
        (
            json!({"exportArn": "arn:aws:dynamodb:us-east-1:111122223333:table/t10/export/1", "mode": "yolo"}),
            "InvalidEvent",
            "mode",
        ),
        (
            json!({"exportArn": "arn:aws:dynamodb:us-east-1:111122223333:table/t10/export/1", "extra": 1}),
            "InvalidEvent",
            "unknown field",
        ),
        (
            json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
            "UnsupportedEvent",
            "EC2",
        ),
        (
            json!({"detail-type": FAILED_DETAIL_TYPE, "source": "x", "detail": {}}),
            "InvalidEvent",
            "exportArn is required",
        ),
        (
            json!({"detail-type": FAILED_DETAIL_TYPE, "source": "x", "detail": {"exportArn": 5}}),
            "InvalidEvent",
            "detail",
        ),
        (
            json!({"detail-type": 7, "source": "x", "detail": {}}),
            "InvalidEvent",
            "envelope",
        ),
        (
            json!({"preflight": {"tableArn": "arn:aws:dynamodb:us-east-1:111122223333:table/orders", "s3Bucket": "Bad_Bucket"}}),
            "InvalidEvent",
            "s3Bucket",
        ),
        (
            json!({"preflight": {"tableArn": "arn:aws:dynamodb:us-east-1:111122223333:table/orders", "s3Bucket": "ok-bucket", "s3SseAlgorithm": "aws:kms"}}),
            "InvalidEvent",
            "AES256 or KMS",
        ),
        (
            json!({"rollback": {"changeId": "../etc"}}),
            "InvalidEvent",
            "changeId",
        ),
    ];
    for (ev, ty, needle) in cases {
        let err = parse(&ev).unwrap_err();
        assert_eq!(err.error_type(), ty, "{ev}: {err}");
        assert!(err.to_string().contains(needle), "{ev}: {err}");
    }
}

fn place_of(event: &Value) -> Option<Place> {
    match parse(event).unwrap() {
        Trigger::Incident(i) | Trigger::Preflight(i) => i.place,
        other => panic!("not an incident: {other:?}"),
    }
}

fn place(account: &str, region: &str) -> Option<Place> {
    Some(Place {
        account: account.into(),
        region: region.into(),
    })
}

fn failed_event(detail: Value, account: &str, region: &str) -> Value {
    json!({"version": "0", "id": "1", "detail-type": FAILED_DETAIL_TYPE,
           "source": "ddb-export-remediator", "account": account, "region": region,
           "time": "2026-12-02T00:00:00Z", "resources": [], "detail": detail})
}

const WEST_EXPORT: &str =
    "arn:aws:dynamodb:us-west-2:222233334444:table/orders/export/01700000000000-a1b2c3d4";

#[test]
fn the_place_is_read_from_the_detail_before_the_arn_and_the_envelope() {
    // CloudTrail: recipientAccountId/awsRegion, while the envelope names the hub (moto rewrites
    // a forwarded event's region to the hub's).
    let mut ct = event("cloudtrail-access-denied.json");
    ct["account"] = json!("999988887777");
    ct["region"] = json!("us-east-1");
    let table = ct["detail"]["requestParameters"]["tableArn"]
        .as_str()
        .unwrap()
        .to_string();
    let arn = crate::arn::Arn::parse("t", &table).unwrap();
    ct["detail"]["recipientAccountId"] = json!(arn.account);
    ct["detail"]["awsRegion"] = json!(arn.region);
    assert_eq!(place_of(&ct), place(&arn.account, &arn.region));
    // The custom event: accountId/region in detail.
    let custom = failed_event(
        json!({"exportArn": WEST_EXPORT, "accountId": "222233334444", "region": "us-west-2"}),
        "999988887777",
        "us-east-1",
    );
    assert_eq!(place_of(&custom), place("222233334444", "us-west-2"));
    // Without them in detail, the export ARN decides; the envelope only fills what is missing.
    let bare = failed_event(
        json!({"exportArn": WEST_EXPORT}),
        "999988887777",
        "us-east-1",
    );
    assert_eq!(place_of(&bare), place("222233334444", "us-west-2"));
    // A manual payload: the ARN.
    assert_eq!(
        place_of(&json!({"exportArn": WEST_EXPORT})),
        place("222233334444", "us-west-2")
    );
}

#[test]
fn a_detail_that_contradicts_the_export_arn_or_is_malformed_is_refused() {
    for (detail, needle) in [
        (
            json!({"exportArn": WEST_EXPORT, "accountId": "444455556666"}),
            "account",
        ),
        (
            json!({"exportArn": WEST_EXPORT, "region": "eu-west-1"}),
            "region",
        ),
    ] {
        let err = parse(&failed_event(detail, "999988887777", "us-east-1")).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidEvent(m) if m.contains(needle)),
            "{err}"
        );
    }
    // CloudTrail: recipientAccountId must be the table's account, awsRegion a Region name.
    let mut ct = event("cloudtrail-access-denied.json");
    ct["detail"]["recipientAccountId"] = json!("444455556666");
    let err = parse(&ct).unwrap_err().to_string();
    assert!(err.contains("account"), "{err}");
    let mut ct = event("cloudtrail-access-denied.json");
    ct["detail"]["awsRegion"] = json!("US West");
    let err = parse(&ct).unwrap_err().to_string();
    assert!(err.contains("region"), "{err}");
}

#[test]
fn region_names_are_recognised() {
    for ok in [
        "us-west-2",
        "eu-central-1",
        "us-gov-west-1",
        "cn-north-1",
        "ap-southeast-5",
    ] {
        assert!(crate::arn::is_region(ok), "{ok}");
    }
    for bad in [
        "",
        "us",
        "us-west",
        "US-WEST-2",
        "us-west-x",
        "us--2",
        "us-west-2-",
    ] {
        assert!(!crate::arn::is_region(bad), "{bad}");
    }
}
