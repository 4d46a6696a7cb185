//! The Lambda binary: tracing, configuration, one SdkConfig, the adapters, the runtime loop.

use aws_config::{timeout::TimeoutConfig, BehaviorVersion};
use ddb_export_remediator::{aws, handler, Config};
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
    // Loads region and credentials from the environment; no network I/O before the first call,
    // and one HTTPS client whose root certificates are read on the first request.
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(http) = aws::http::https_client(BehaviorVersion::latest()) {
        loader = loader.http_client(http);
    }
    let sdk = loader.load().await;
    let app = aws::build_app(config, &sdk);
    lambda_runtime::run(service_fn(|event| handler::handle(&app, event))).await
}
