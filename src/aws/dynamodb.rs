//! DynamoDB adapter: exports, tables, continuous backups.

use super::{classify, missing};
use crate::error::{AwsError, AwsErrorKind};
use crate::model::{
    ExportDescription, ExportRequest, ExportStatus, ExportSummary, IncrementalSpec, PitrInfo,
    SseAlgorithm, TableInfo,
};
use crate::ports::{ExportPage, ExportService, PortResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::describe_continuous_backups::DescribeContinuousBackupsError;
use aws_sdk_dynamodb::operation::describe_export::DescribeExportError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::export_table_to_point_in_time::ExportTableToPointInTimeError;
use aws_sdk_dynamodb::operation::get_resource_policy::GetResourcePolicyError;
use aws_sdk_dynamodb::primitives::DateTime;
use aws_sdk_dynamodb::types::{
    self as t, ExportFormat, ExportType, ExportViewType, IncrementalExportSpecification,
    PointInTimeRecoveryStatus, S3SseAlgorithm,
};
use aws_sdk_dynamodb::Client;

pub struct DynamoExports {
    client: Client,
}

impl DynamoExports {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn status(s: Option<&t::ExportStatus>) -> ExportStatus {
    match s {
        Some(t::ExportStatus::Completed) => ExportStatus::Completed,
        Some(t::ExportStatus::Failed) => ExportStatus::Failed,
        _ => ExportStatus::InProgress,
    }
}

fn to_domain(d: &t::ExportDescription) -> Result<ExportDescription, AwsError> {
    const OP: &str = "dynamodb:DescribeExport";
    let export_arn = d.export_arn().ok_or_else(|| missing(OP, "ExportArn"))?;
    let incremental = d
        .incremental_export_specification()
        .map(|s| IncrementalSpec {
            export_from_time: s.export_from_time().map(DateTime::as_secs_f64),
            export_to_time: s.export_to_time().map(DateTime::as_secs_f64),
            export_view_type: s.export_view_type().map(|v| v.as_str().to_string()),
        });
    let request = ExportRequest {
        table_arn: d
            .table_arn()
            .ok_or_else(|| missing(OP, "TableArn"))?
            .to_string(),
        s3_bucket: d
            .s3_bucket()
            .ok_or_else(|| missing(OP, "S3Bucket"))?
            .to_string(),
        s3_bucket_owner: d.s3_bucket_owner().map(str::to_string),
        s3_prefix: d.s3_prefix().map(str::to_string),
        s3_sse_algorithm: d
            .s3_sse_algorithm()
            .and_then(|a| SseAlgorithm::parse(a.as_str())),
        s3_sse_kms_key_id: d.s3_sse_kms_key_id().map(str::to_string),
        export_format: d.export_format().map(|f| f.as_str().to_string()),
        export_type: d.export_type().map(|f| f.as_str().to_string()),
        export_time: d.export_time().map(DateTime::as_secs_f64),
        incremental,
        client_token: d.client_token().map(str::to_string),
    };
    Ok(ExportDescription {
        export_arn: export_arn.to_string(),
        status: status(d.export_status()),
        request,
        failure_code: d.failure_code().map(str::to_string),
        failure_message: d.failure_message().map(str::to_string),
        start_time: d.start_time().map(DateTime::as_secs_f64),
        end_time: d.end_time().map(DateTime::as_secs_f64),
        item_count: d.item_count(),
    })
}

#[async_trait]
impl ExportService for DynamoExports {
    #[tracing::instrument(skip(self), fields(export_arn = %export_arn))]
    async fn describe_export(&self, export_arn: &str) -> PortResult<Option<ExportDescription>> {
        const OP: &str = "dynamodb:DescribeExport";
        match self
            .client
            .describe_export()
            .export_arn(export_arn)
            .send()
            .await
        {
            Ok(out) => {
                let d = out
                    .export_description()
                    .ok_or_else(|| missing(OP, "ExportDescription"))?;
                to_domain(d).map(Some)
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeExportError::ExportNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    #[tracing::instrument(skip(self, request), fields(table_arn = %request.table_arn, client_token = %client_token))]
    async fn start_export(
        &self,
        request: &ExportRequest,
        client_token: &str,
    ) -> PortResult<String> {
        const OP: &str = "dynamodb:ExportTableToPointInTime";
        let mut call = self
            .client
            .export_table_to_point_in_time()
            .table_arn(&request.table_arn)
            .s3_bucket(&request.s3_bucket)
            .set_s3_bucket_owner(request.s3_bucket_owner.clone())
            .set_s3_prefix(request.s3_prefix.clone())
            .set_s3_sse_kms_key_id(request.s3_sse_kms_key_id.clone())
            .set_export_time(request.export_time.map(DateTime::from_secs_f64))
            .client_token(client_token);
        if let Some(a) = request.s3_sse_algorithm {
            call = call.s3_sse_algorithm(match a {
                SseAlgorithm::Aes256 => S3SseAlgorithm::Aes256,
                SseAlgorithm::Kms => S3SseAlgorithm::Kms,
            });
        }
        if let Some(f) = &request.export_format {
            call = call.export_format(ExportFormat::from(f.as_str()));
        }
        if let Some(tp) = &request.export_type {
            call = call.export_type(ExportType::from(tp.as_str()));
        }
        if let Some(inc) = &request.incremental {
            let spec = IncrementalExportSpecification::builder()
                .set_export_from_time(inc.export_from_time.map(DateTime::from_secs_f64))
                .set_export_to_time(inc.export_to_time.map(DateTime::from_secs_f64))
                .set_export_view_type(inc.export_view_type.as_deref().map(ExportViewType::from))
                .build();
            call = call.incremental_export_specification(spec);
        }
        let out = call.send().await.map_err(|e| {
            // The domain decides on these two (retry later; our token reused): typed here.
            let kind = match e.as_service_error() {
                Some(ExportTableToPointInTimeError::LimitExceededException(_)) => {
                    Some(AwsErrorKind::LimitExceeded)
                }
                Some(ExportTableToPointInTimeError::ExportConflictException(_)) => {
                    Some(AwsErrorKind::ExportConflict)
                }
                _ => None,
            };
            let mut err = classify(OP, e);
            if let Some(kind) = kind {
                err.kind = kind;
            }
            err
        })?;
        out.export_description()
            .and_then(|d| d.export_arn())
            .map(str::to_string)
            .ok_or_else(|| missing(OP, "ExportDescription.ExportArn"))
    }

    #[tracing::instrument(skip(self))]
    async fn describe_table(&self, table: &str) -> PortResult<Option<TableInfo>> {
        const OP: &str = "dynamodb:DescribeTable";
        match self.client.describe_table().table_name(table).send().await {
            Ok(out) => {
                let t = out.table().ok_or_else(|| missing(OP, "Table"))?;
                Ok(Some(TableInfo {
                    arn: t
                        .table_arn()
                        .ok_or_else(|| missing(OP, "TableArn"))?
                        .to_string(),
                    status: t
                        .table_status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    sse_status: t
                        .sse_description()
                        .and_then(|s| s.status())
                        .map(|s| s.as_str().to_string()),
                    sse_key_arn: t
                        .sse_description()
                        .and_then(|s| s.kms_master_key_arn())
                        .map(str::to_string),
                }))
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeTableError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn continuous_backups(&self, table: &str) -> PortResult<Option<PitrInfo>> {
        const OP: &str = "dynamodb:DescribeContinuousBackups";
        match self
            .client
            .describe_continuous_backups()
            .table_name(table)
            .send()
            .await
        {
            Ok(out) => {
                let pitr = out
                    .continuous_backups_description()
                    .and_then(|d| d.point_in_time_recovery_description());
                Ok(Some(PitrInfo {
                    enabled: pitr.and_then(|p| p.point_in_time_recovery_status())
                        == Some(&PointInTimeRecoveryStatus::Enabled),
                    earliest_restorable: pitr
                        .and_then(|p| p.earliest_restorable_date_time())
                        .map(DateTime::as_secs_f64),
                    latest_restorable: pitr
                        .and_then(|p| p.latest_restorable_date_time())
                        .map(DateTime::as_secs_f64),
                }))
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeContinuousBackupsError::TableNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn table_policy(&self, table_arn: &str) -> PortResult<Option<String>> {
        const OP: &str = "dynamodb:GetResourcePolicy";
        match self
            .client
            .get_resource_policy()
            .resource_arn(table_arn)
            .send()
            .await
        {
            Ok(out) => Ok(out.policy().map(str::to_string)),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetResourcePolicyError::PolicyNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn list_exports(
        &self,
        table_arn: Option<&str>,
        next_token: Option<String>,
    ) -> PortResult<ExportPage> {
        const OP: &str = "dynamodb:ListExports";
        let out = self
            .client
            .list_exports()
            .set_table_arn(table_arn.map(str::to_string))
            .max_results(25)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let mut exports = Vec::new();
        for s in out.export_summaries() {
            let arn = s
                .export_arn()
                .ok_or_else(|| missing(OP, "ExportSummaries.ExportArn"))?;
            exports.push(ExportSummary {
                export_arn: arn.to_string(),
                status: status(s.export_status()),
            });
        }
        Ok(ExportPage {
            exports,
            next_token: out.next_token().map(str::to_string),
        })
    }

    #[tracing::instrument(skip(self))]
    async fn table_names(&self) -> PortResult<Vec<String>> {
        const OP: &str = "dynamodb:ListTables";
        let mut names = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .list_tables()
                .set_exclusive_start_table_name(start.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            names.extend(out.table_names().iter().cloned());
            match out.last_evaluated_table_name() {
                Some(last) => start = Some(last.to_string()),
                None => return Ok(names),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsErrorKind;
    use aws_sdk_dynamodb::operation::describe_export::DescribeExportOutput;
    use aws_sdk_dynamodb::operation::export_table_to_point_in_time::{
        ExportTableToPointInTimeError, ExportTableToPointInTimeOutput,
    };
    use aws_sdk_dynamodb::operation::list_exports::ListExportsOutput;
    use aws_sdk_dynamodb::types::error::{
        ExportConflictException, ExportNotFoundException, LimitExceededException,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508400000-9f8e7d6c";

    fn failed_description() -> t::ExportDescription {
        t::ExportDescription::builder()
            .export_arn(ARN)
            .export_status(t::ExportStatus::Failed)
            .table_arn("arn:aws:dynamodb:us-east-1:111122223333:table/orders")
            .s3_bucket("amzn-s3-demo-bucket")
            .s3_sse_algorithm(S3SseAlgorithm::Aes256)
            .failure_code("S3AccessDenied")
            .failure_message("Access Denied")
            .export_time(DateTime::from_secs(1_795_500_000))
            .build()
    }

    #[tokio::test]
    async fn describe_export_maps_a_failed_export_with_missing_fields() {
        let rule = mock!(Client::describe_export)
            .match_requests(|r| r.export_arn() == Some(ARN))
            .then_output(|| {
                DescribeExportOutput::builder()
                    .export_description(failed_description())
                    .build()
            });
        let exports = DynamoExports::new(mock_client!(aws_sdk_dynamodb, [&rule]));
        let d = exports.describe_export(ARN).await.unwrap().unwrap();
        assert_eq!(d.status, ExportStatus::Failed);
        assert_eq!(d.request.s3_sse_algorithm, Some(SseAlgorithm::Aes256));
        assert_eq!(d.request.s3_bucket_owner, None);
        assert_eq!(d.request.s3_prefix, None);
        assert_eq!(d.request.export_time, Some(1_795_500_000.0));
        assert_eq!(d.failure_code.as_deref(), Some("S3AccessDenied"));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn describe_export_not_found_is_none_and_403_is_access_denied() {
        let not_found = mock!(Client::describe_export).then_error(|| {
            DescribeExportError::ExportNotFoundException(ExportNotFoundException::builder().build())
        });
        let exports = DynamoExports::new(mock_client!(aws_sdk_dynamodb, [&not_found]));
        assert_eq!(exports.describe_export(ARN).await.unwrap(), None);

        let denied = mock!(Client::describe_export).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"not authorized"}"#,
                ),
            )
        });
        let exports = DynamoExports::new(mock_client!(aws_sdk_dynamodb, [&denied]));
        let err = exports.describe_export(ARN).await.unwrap_err();
        assert_eq!(err.kind, AwsErrorKind::AccessDenied, "{err:?}");
        assert_eq!(err.operation, "dynamodb:DescribeExport");
    }

    #[tokio::test]
    async fn start_export_sends_corrected_flags_and_token() {
        let rule = mock!(Client::export_table_to_point_in_time)
            .match_requests(|r| {
                r.s3_bucket_owner() == Some("444455556666")
                    && r.s3_sse_algorithm() == Some(&S3SseAlgorithm::Kms)
                    && r.s3_sse_kms_key_id() == Some("arn:aws:kms:us-east-1:111122223333:key/k1")
                    && r.client_token() == Some("ddbxr-abc-1")
                    && r.export_time() == Some(&DateTime::from_secs(1_795_500_000))
                    && r.export_format() == Some(&ExportFormat::DynamodbJson)
            })
            .then_output(|| {
                ExportTableToPointInTimeOutput::builder()
                    .export_description(
                        t::ExportDescription::builder()
                            .export_arn("arn:new")
                            .build(),
                    )
                    .build()
            });
        let exports = DynamoExports::new(mock_client!(aws_sdk_dynamodb, [&rule]));
        let req = crate::fakes::full_request();
        assert_eq!(
            exports.start_export(&req, "ddbxr-abc-1").await.unwrap(),
            "arn:new"
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn start_export_limit_exceeded_is_its_own_kind() {
        // ExportTableToPointInTime's modeled errors include LimitExceededException and
        // ExportConflictException (docs.rs aws_sdk_dynamodb ExportTableToPointInTimeError).
        // The SDK retries LimitExceededException as throttling, so every attempt gets it.
        let rule = mock!(Client::export_table_to_point_in_time)
            .sequence()
            .error(|| {
                ExportTableToPointInTimeError::LimitExceededException(
                    LimitExceededException::builder()
                        .message("too many")
                        .meta(
                            ErrorMetadata::builder()
                                .code("LimitExceededException")
                                .build(),
                        )
                        .build(),
                )
            })
            .repeatedly()
            .build();
        let exports = DynamoExports::new(mock_client!(aws_sdk_dynamodb, [&rule]));
        let req = ExportRequest {
            table_arn: "arn:aws:dynamodb:us-east-1:111122223333:table/orders".into(),
            s3_bucket: "b-1".into(),
            ..Default::default()
        };
        let err = exports.start_export(&req, "ddbxr-x-1").await.unwrap_err();
        assert!(rule.num_calls() > 1, "the SDK retried it");
        assert_eq!(err.kind, AwsErrorKind::LimitExceeded);
        assert!(err.reason().contains("rejected"), "{}", err.reason());
        assert!(
            err.message.contains("LimitExceededException"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn start_export_conflict_is_its_own_kind() {
        let rule = mock!(Client::export_table_to_point_in_time).then_error(|| {
            ExportTableToPointInTimeError::ExportConflictException(
                ExportConflictException::builder()
                    .message("token reused")
                    .meta(
                        ErrorMetadata::builder()
                            .code("ExportConflictException")
                            .message("token reused")
                            .build(),
                    )
                    .build(),
            )
        });
        let exports = DynamoExports::new(mock_client!(aws_sdk_dynamodb, [&rule]));
        let req = crate::fakes::full_request();
        let err = exports.start_export(&req, "ddbxr-x-1").await.unwrap_err();
        assert_eq!(err.kind, AwsErrorKind::ExportConflict);
        // Any other rejection keeps the shared classification.
        let rule = mock!(Client::export_table_to_point_in_time).then_error(|| {
            ExportTableToPointInTimeError::InvalidExportTimeException(
                aws_sdk_dynamodb::types::error::InvalidExportTimeException::builder()
                    .message("outside the window")
                    .meta(
                        ErrorMetadata::builder()
                            .code("InvalidExportTimeException")
                            .build(),
                    )
                    .build(),
            )
        });
        let exports = DynamoExports::new(mock_client!(aws_sdk_dynamodb, [&rule]));
        let err = exports.start_export(&req, "ddbxr-x-1").await.unwrap_err();
        assert_eq!(err.kind, AwsErrorKind::Rejected);
    }

    #[tokio::test]
    async fn list_exports_pages_with_the_token() {
        let first = mock!(Client::list_exports)
            .match_requests(|r| r.next_token().is_none() && r.max_results() == Some(25))
            .then_output(|| {
                ListExportsOutput::builder()
                    .export_summaries(
                        t::ExportSummary::builder()
                            .export_arn(ARN)
                            .export_status(t::ExportStatus::Failed)
                            .build(),
                    )
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::list_exports)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| ListExportsOutput::builder().build());
        let exports = DynamoExports::new(mock_client!(
            aws_sdk_dynamodb,
            RuleMode::Sequential,
            [&first, &second]
        ));
        let page = exports.list_exports(None, None).await.unwrap();
        assert_eq!(page.exports[0].status, ExportStatus::Failed);
        let page2 = exports.list_exports(None, page.next_token).await.unwrap();
        assert!(page2.exports.is_empty() && page2.next_token.is_none());
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }
}
