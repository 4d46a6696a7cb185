use aws_config::{timeout::TimeoutConfig, BehaviorVersion};
use ddb_export_remediator::aws::{self, sts::s3_client};
use ddb_export_remediator::{handler, App, Config};
use lambda_runtime::service_fn;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(20))
        .build();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await;
    let partition = aws::partition_of(sdk.region().map(|r| r.as_ref()));
    let app = App {
        exports: Box::new(aws::DynamoExports::new(aws_sdk_dynamodb::Client::new(&sdk))),
        buckets: Box::new(aws::S3Buckets::new(s3_client(
            &sdk,
            config.s3_force_path_style,
        ))),
        keys: Box::new(aws::KmsKeys::new(aws_sdk_kms::Client::new(&sdk))),
        accounts: Box::new(aws::Organizations::new(aws_sdk_organizations::Client::new(
            &sdk,
        ))),
        cross: Box::new(aws::StsCrossAccount::new(
            aws_sdk_sts::Client::new(&sdk),
            sdk.clone(),
            partition,
            config.s3_force_path_style,
        )),
        config,
    };
    lambda_runtime::run(service_fn(|event| handler::handle(&app, event))).await
}
