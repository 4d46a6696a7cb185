//! S3 adapter: bucket existence, ownership listing, region, policy, encryption, payment.

use super::{classify, missing};
use crate::error::AwsErrorKind;
use crate::model::BucketEncryption;
use crate::ports::{BucketInspector, BucketPresence, PortResult};
use async_trait::async_trait;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::types::Payer;
use aws_sdk_s3::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub struct S3Buckets {
    client: Client,
}

impl S3Buckets {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// ListBuckets pages (S3 returns up to 10,000 buckets a page).
const MAX_LIST_PAGES: usize = 100;

#[async_trait]
impl BucketInspector for S3Buckets {
    #[tracing::instrument(skip(self))]
    async fn head_bucket(&self, bucket: &str) -> PortResult<BucketPresence> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(BucketPresence::Exists),
            Err(e) if matches!(e.as_service_error(), Some(HeadBucketError::NotFound(_))) => {
                Ok(BucketPresence::Missing)
            }
            Err(e) => {
                let err = classify("s3:HeadBucket", e);
                match err.kind {
                    // A 403 on HeadBucket means the bucket exists and is not ours to read.
                    AwsErrorKind::AccessDenied => Ok(BucketPresence::ExistsNoAccess),
                    AwsErrorKind::NotFound => Ok(BucketPresence::Missing),
                    _ => Err(err),
                }
            }
        }
    }

    #[tracing::instrument(skip(self))]
    async fn owned_bucket_names(&self) -> PortResult<Vec<String>> {
        const OP: &str = "s3:ListBuckets";
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let out = self
                .client
                .list_buckets()
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            names.extend(
                out.buckets()
                    .iter()
                    .filter_map(|b| b.name().map(str::to_string)),
            );
            match out.continuation_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(names),
            }
        }
        Ok(names)
    }

    #[tracing::instrument(skip(self))]
    async fn bucket_region(&self, bucket: &str) -> PortResult<String> {
        let out = self
            .client
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("s3:GetBucketLocation", e))?;
        // S3 reports us-east-1 as an empty constraint and eu-west-1 as the legacy "EU".
        Ok(match out.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(other) => other.to_string(),
        })
    }

    #[tracing::instrument(skip(self))]
    async fn bucket_policy(&self, bucket: &str) -> PortResult<Option<String>> {
        const OP: &str = "s3:GetBucketPolicy";
        match self.client.get_bucket_policy().bucket(bucket).send().await {
            Ok(out) => out
                .policy()
                .map(|p| Some(p.to_string()))
                .ok_or_else(|| missing(OP, "Policy")),
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => Ok(None),
            Err(e) => Err(classify(OP, e)),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn default_encryption(&self, bucket: &str) -> PortResult<Option<BucketEncryption>> {
        const OP: &str = "s3:GetBucketEncryption";
        match self
            .client
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|r| r.apply_server_side_encryption_by_default())
                .map(|d| BucketEncryption {
                    algorithm: d.sse_algorithm().as_str().to_string(),
                    kms_key_id: d.kms_master_key_id().map(str::to_string),
                })),
            Err(e) if e.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => {
                Ok(None)
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn requester_pays(&self, bucket: &str) -> PortResult<bool> {
        let out = self
            .client
            .get_bucket_request_payment()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("s3:GetBucketRequestPayment", e))?;
        Ok(out.payer() == Some(&Payer::Requester))
    }

    #[tracing::instrument(skip(self))]
    async fn restrict_public_buckets(&self, bucket: &str) -> PortResult<Option<bool>> {
        const OP: &str = "s3:GetPublicAccessBlock";
        match self
            .client
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.public_access_block_configuration()
                    .and_then(|c| c.restrict_public_buckets())
                    .unwrap_or(false),
            )),
            Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => Ok(None),
            Err(e) => Err(classify(OP, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_bucket_encryption::{
        GetBucketEncryptionError, GetBucketEncryptionOutput,
    };
    use aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput;
    use aws_sdk_s3::operation::get_bucket_policy::{GetBucketPolicyError, GetBucketPolicyOutput};
    use aws_sdk_s3::operation::head_bucket::HeadBucketOutput;
    use aws_sdk_s3::operation::list_buckets::ListBucketsOutput;
    use aws_sdk_s3::types::error::NotFound;
    use aws_sdk_s3::types::{
        Bucket, BucketLocationConstraint, ServerSideEncryption, ServerSideEncryptionByDefault,
        ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn status(code: u16) -> Response {
        Response::new(StatusCode::try_from(code).unwrap(), SdkBody::empty())
    }

    #[tokio::test]
    async fn head_bucket_distinguishes_exists_missing_and_forbidden() {
        let ok = mock!(Client::head_bucket)
            .match_requests(|r| r.bucket() == Some("amzn-s3-demo-bucket"))
            .then_output(|| HeadBucketOutput::builder().build());
        let gone = mock!(Client::head_bucket)
            .then_error(|| HeadBucketError::NotFound(NotFound::builder().build()));
        let forbidden = mock!(Client::head_bucket).then_http_response(|| status(403));
        let unavailable = mock!(Client::head_bucket).then_http_response(|| status(503));
        let s3 = S3Buckets::new(mock_client!(
            aws_sdk_s3,
            RuleMode::Sequential,
            [&ok, &gone, &forbidden, &unavailable]
        ));
        assert_eq!(
            s3.head_bucket("amzn-s3-demo-bucket").await.unwrap(),
            BucketPresence::Exists
        );
        assert_eq!(
            s3.head_bucket("x-bucket").await.unwrap(),
            BucketPresence::Missing
        );
        assert_eq!(
            s3.head_bucket("x-bucket").await.unwrap(),
            BucketPresence::ExistsNoAccess
        );
        // 503 is retried by the SDK; the mock keeps answering 503, so it surfaces as an error.
        assert!(s3.head_bucket("x-bucket").await.is_err());
    }

    #[tokio::test]
    async fn no_bucket_policy_is_none_and_denied_is_an_error() {
        let none = mock!(Client::get_bucket_policy).then_error(|| {
            GetBucketPolicyError::generic(
                ErrorMetadata::builder().code("NoSuchBucketPolicy").build(),
            )
        });
        let some = mock!(Client::get_bucket_policy)
            .match_requests(|r| r.bucket() == Some("b-2"))
            .then_output(|| {
                GetBucketPolicyOutput::builder()
                    .policy("{\"Statement\":[]}")
                    .build()
            });
        let denied = mock!(Client::get_bucket_policy).then_error(|| {
            GetBucketPolicyError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("Access Denied")
                    .build(),
            )
        });
        let s3 = S3Buckets::new(mock_client!(
            aws_sdk_s3,
            RuleMode::Sequential,
            [&none, &some, &denied]
        ));
        assert_eq!(s3.bucket_policy("b-1").await.unwrap(), None);
        assert!(s3
            .bucket_policy("b-2")
            .await
            .unwrap()
            .unwrap()
            .contains("Statement"));
        let err = s3.bucket_policy("b-3").await.unwrap_err();
        assert_eq!(err.kind, AwsErrorKind::AccessDenied);
        assert_eq!(err.operation, "s3:GetBucketPolicy");
    }

    #[tokio::test]
    async fn default_encryption_reads_the_kms_key_or_none() {
        let kms = mock!(Client::get_bucket_encryption).then_output(|| {
            let default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id("arn:aws:kms:us-east-1:111122223333:key/k1")
                .build()
                .unwrap();
            GetBucketEncryptionOutput::builder()
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder()
                        .rules(
                            ServerSideEncryptionRule::builder()
                                .apply_server_side_encryption_by_default(default)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
        });
        let none = mock!(Client::get_bucket_encryption).then_error(|| {
            GetBucketEncryptionError::generic(
                ErrorMetadata::builder()
                    .code("ServerSideEncryptionConfigurationNotFoundError")
                    .build(),
            )
        });
        let s3 = S3Buckets::new(mock_client!(
            aws_sdk_s3,
            RuleMode::Sequential,
            [&kms, &none]
        ));
        let enc = s3.default_encryption("b-1").await.unwrap().unwrap();
        assert_eq!(enc.algorithm, "aws:kms");
        assert_eq!(
            enc.kms_key_id.as_deref(),
            Some("arn:aws:kms:us-east-1:111122223333:key/k1")
        );
        assert_eq!(s3.default_encryption("b-1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn region_and_listing() {
        let us_east = mock!(Client::get_bucket_location)
            .then_output(|| GetBucketLocationOutput::builder().build());
        let eu = mock!(Client::get_bucket_location).then_output(|| {
            GetBucketLocationOutput::builder()
                .location_constraint(BucketLocationConstraint::Eu)
                .build()
        });
        let list = mock!(Client::list_buckets).then_output(|| {
            ListBucketsOutput::builder()
                .buckets(Bucket::builder().name("a-bucket").build())
                .buckets(Bucket::builder().name("b-bucket").build())
                .build()
        });
        let s3 = S3Buckets::new(mock_client!(
            aws_sdk_s3,
            RuleMode::Sequential,
            [&us_east, &eu, &list]
        ));
        assert_eq!(s3.bucket_region("b").await.unwrap(), "us-east-1");
        assert_eq!(s3.bucket_region("b").await.unwrap(), "eu-west-1");
        assert_eq!(
            s3.owned_bucket_names().await.unwrap(),
            vec!["a-bucket", "b-bucket"]
        );
        assert_eq!(list.num_calls(), 1);
    }
}
