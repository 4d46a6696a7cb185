//! The one HTTPS client every SDK client of the function shares, whose connector (and with it
//! the system's root certificates) is built on the first request instead of at init.
//!
//! The SDK builds an HTTPS client's connector when a service client is constructed
//! (`HttpClient::validate_base_client_config`), so that the root certificates are loaded before
//! the first request. Without a client in the SdkConfig every service client also brings its
//! own. Nine clients built at init parsed the certificate bundle nine times before the
//! function asked for its first event, and each assumed-role client built during an invocation
//! parsed it again.

use aws_smithy_runtime::client::defaults::default_http_client_plugin_v2;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::shared::IntoShared;

/// An HTTP client that builds nothing when a service client is constructed: its connectors
/// (one per connector settings, cached by the inner client) are built on first use.
#[derive(Debug)]
struct OnFirstRequest(SharedHttpClient);

impl HttpClient for OnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The SDK's default HTTPS client (TLS, proxy from the environment, as `behavior` selects it),
/// shared and built on first use; `None` if this build has no default client.
pub fn https_client(behavior: BehaviorVersion) -> Option<SharedHttpClient> {
    let plugin = default_http_client_plugin_v2(behavior)?;
    let components = plugin.runtime_components(&RuntimeComponentsBuilder::new("https_client"));
    Some(lazy(components.http_client()?))
}

fn lazy(client: SharedHttpClient) -> SharedHttpClient {
    OnFirstRequest(client).into_shared()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture};
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::config_bag::ConfigBag;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    /// Counts what the SDK asks of an HTTP client; answers GetCallerIdentity.
    #[derive(Debug, Default)]
    struct Counts {
        validated: AtomicUsize,
        connectors: AtomicUsize,
    }

    #[derive(Debug, Clone, Default)]
    struct Counting(Arc<Counts>);

    #[derive(Debug)]
    struct Answer;

    impl HttpConnector for Answer {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            const BODY: &str = "<GetCallerIdentityResponse><GetCallerIdentityResult>\
                <Arn>arn:aws:iam::111122223333:role/r</Arn><UserId>AROA:s</UserId>\
                <Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>";
            HttpConnectorFuture::ready(Ok(HttpResponse::new(
                200.try_into().unwrap(),
                SdkBody::from(BODY),
            )))
        }
    }

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _settings: &HttpConnectorSettings,
            _components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            self.0.connectors.fetch_add(1, SeqCst);
            Answer.into_shared()
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.validated.fetch_add(1, SeqCst);
            Ok(())
        }
    }

    fn sdk(http: SharedHttpClient) -> aws_types::SdkConfig {
        aws_types::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::for_tests(),
                ),
            )
            .http_client(http)
            .build()
    }

    #[tokio::test]
    async fn clients_are_built_without_a_connector_and_the_first_request_builds_it() {
        let inner = Counting::default();
        let sdk = sdk(lazy(inner.clone().into_shared()));
        let clients: Vec<_> = (0..3).map(|_| aws_sdk_sts::Client::new(&sdk)).collect();
        assert_eq!(
            inner.0.validated.load(SeqCst),
            0,
            "no connector at construction"
        );
        assert_eq!(inner.0.connectors.load(SeqCst), 0);
        let me = clients[0].get_caller_identity().send().await.unwrap();
        assert_eq!(me.account(), Some("111122223333"));
        assert_eq!(inner.0.connectors.load(SeqCst), 1);

        // The same client without the wrapper: the SDK asks for a connector per client built.
        let eager = Counting::default();
        let sdk = super::tests::sdk(eager.clone().into_shared());
        for _ in 0..3 {
            aws_sdk_sts::Client::new(&sdk);
        }
        assert_eq!(eager.0.validated.load(SeqCst), 3);
    }

    #[test]
    fn this_build_has_the_sdks_default_https_client() {
        assert!(https_client(BehaviorVersion::latest()).is_some());
    }
}
