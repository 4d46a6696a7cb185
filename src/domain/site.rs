//! Organization mode (docs/organization.md, issue 19): an incident is read and retried in its own account
//! and Region, through the spoke role there. The hub's ledger, bus, clock and organization reads
//! serve every site.

use super::report::{RemediationResult, SpokeAccess};
use super::App;
use crate::error::{AwsError, AwsErrorKind, Error};
use crate::model::{
    BucketEncryption, ExportDescription, ExportRequest, Incident, KeyGrant, KeyInfo, PitrInfo,
    Place, TableInfo,
};
use crate::ports::{
    AccountReaders, BucketInspector, BucketPresence, CrossAccount, ExportPage, ExportService,
    Identity, IdentityPolicies, KeyPolicyStore, PortResult, PrincipalPolicies, SitePorts,
};
use async_trait::async_trait;

impl App {
    /// Remediates where the incident happened: here, or (organization mode) in its account and
    /// Region through the spoke role. A role that cannot be assumed leaves that site's facts
    /// Unknown and changes nothing; the invocation still succeeds with a report.
    pub(super) async fn remediate_where(
        &self,
        incident: Incident,
    ) -> Result<RemediationResult, Error> {
        let Some(hub) = self.config.hub_account_id.as_deref() else {
            self.in_my_region(&incident)?;
            return self.remediate(incident).await;
        };
        let place = match &incident.place {
            Some(p) if !(p.account == hub && p.region == self.region) => p.clone(),
            _ => return self.remediate(incident).await,
        };
        let spokes = self.spokes.as_deref().ok_or_else(|| {
            Error::NotAvailable("ORG_MODE=on, but this build has no spoke ports".into())
        })?;
        let site = match spokes.site(&place.account, &place.region).await {
            Ok(site) => {
                let access = site.role_arn.clone().map(|role_arn| SpokeAccess {
                    role_arn,
                    assumed: true,
                    error: None,
                });
                self.at(&place, site, access)
            }
            Err(e) => {
                tracing::warn!(account = %place.account, region = %place.region, error = %e.reason(), "spoke role not assumed");
                let access = SpokeAccess {
                    role_arn: spokes.role_arn(&place.account),
                    assumed: false,
                    error: Some(e.reason()),
                };
                let reason = format!("{} was not assumed: {}", access.role_arn, e.reason());
                self.at(&place, Unreachable::ports(&reason), Some(access))
            }
        };
        site.remediate(incident).await
    }

    /// This app with the site's ports, in the site's Region; the hub's ports shared.
    pub(super) fn at(&self, place: &Place, site: SitePorts, spoke: Option<SpokeAccess>) -> App {
        App {
            config: self.config.clone(),
            region: place.region.clone(),
            exports: site.exports,
            buckets: site.buckets,
            keys: site.keys,
            cross: site.cross,
            identity: site.identity,
            iam: site.iam,
            accounts: self.accounts.clone(),
            ledger: self.ledger.clone(),
            events: self.events.clone(),
            hints: self.hints.clone(),
            clock: self.clock.clone(),
            spokes: None,
            spoke,
        }
    }

    /// The spoke role of this site could not be assumed: facts are Unknown, nothing is changed.
    pub(super) fn unreachable(&self) -> bool {
        self.spoke.as_ref().is_some_and(|s| !s.assumed)
    }

    /// The site of `place`: this app itself for the hub's own account and Region, else the
    /// ports there through the spoke role (Err when it cannot be assumed).
    pub(super) async fn site_for(&self, place: &Place) -> Result<Site<'_>, crate::error::AwsError> {
        let hub = self.config.hub_account_id.as_deref();
        if hub == Some(place.account.as_str()) && place.region == self.region {
            return Ok(Site::Here(self));
        }
        match self.spokes.as_deref() {
            Some(spokes) => {
                let ports = spokes.site(&place.account, &place.region).await?;
                Ok(Site::There(Box::new(self.at(place, ports, None))))
            }
            None => Ok(Site::Here(self)),
        }
    }
}

/// The ports of one place: the app itself, or one built for a spoke.
pub(super) enum Site<'a> {
    Here(&'a App),
    There(Box<App>),
}

impl std::ops::Deref for Site<'_> {
    type Target = App;
    fn deref(&self) -> &App {
        match self {
            Site::Here(app) => app,
            Site::There(app) => app,
        }
    }
}

/// Every read of a site whose spoke role could not be assumed: refused, with the reason.
struct Unreachable(String);

impl Unreachable {
    fn ports(reason: &str) -> SitePorts {
        let one = || Box::new(Unreachable(reason.to_string()));
        SitePorts {
            exports: one(),
            buckets: one(),
            keys: one(),
            iam: one(),
            identity: one(),
            cross: one(),
            role_arn: None,
        }
    }

    fn err<T>(&self, operation: &'static str) -> PortResult<T> {
        Err(AwsError::new(
            operation,
            AwsErrorKind::AccessDenied,
            self.0.clone(),
        ))
    }
}

#[async_trait]
impl ExportService for Unreachable {
    async fn describe_export(&self, _: &str) -> PortResult<Option<ExportDescription>> {
        self.err("dynamodb:DescribeExport")
    }
    async fn start_export(&self, _: &ExportRequest, _: &str) -> PortResult<String> {
        self.err("dynamodb:ExportTableToPointInTime")
    }
    async fn describe_table(&self, _: &str) -> PortResult<Option<TableInfo>> {
        self.err("dynamodb:DescribeTable")
    }
    async fn continuous_backups(&self, _: &str) -> PortResult<Option<PitrInfo>> {
        self.err("dynamodb:DescribeContinuousBackups")
    }
    async fn table_policy(&self, _: &str) -> PortResult<Option<String>> {
        self.err("dynamodb:GetResourcePolicy")
    }
    async fn list_exports(&self, _: Option<&str>, _: Option<String>) -> PortResult<ExportPage> {
        self.err("dynamodb:ListExports")
    }
    async fn table_names(&self) -> PortResult<Vec<String>> {
        self.err("dynamodb:ListTables")
    }
}

#[async_trait]
impl BucketInspector for Unreachable {
    async fn head_bucket(&self, _: &str) -> PortResult<BucketPresence> {
        self.err("s3:HeadBucket")
    }
    async fn owned_bucket_names(&self) -> PortResult<Vec<String>> {
        self.err("s3:ListBuckets")
    }
    async fn bucket_region(&self, _: &str) -> PortResult<String> {
        self.err("s3:GetBucketLocation")
    }
    async fn bucket_policy(&self, _: &str) -> PortResult<Option<String>> {
        self.err("s3:GetBucketPolicy")
    }
    async fn default_encryption(&self, _: &str) -> PortResult<Option<BucketEncryption>> {
        self.err("s3:GetBucketEncryption")
    }
    async fn requester_pays(&self, _: &str) -> PortResult<bool> {
        self.err("s3:GetBucketRequestPayment")
    }
    async fn restrict_public_buckets(&self, _: &str) -> PortResult<Option<bool>> {
        self.err("s3:GetPublicAccessBlock")
    }
}

#[async_trait]
impl KeyPolicyStore for Unreachable {
    async fn describe_key(&self, _: &str) -> PortResult<Option<KeyInfo>> {
        self.err("kms:DescribeKey")
    }
    async fn key_policy(&self, _: &str) -> PortResult<Option<String>> {
        self.err("kms:GetKeyPolicy")
    }
    async fn grants(&self, _: &str) -> PortResult<Option<Vec<KeyGrant>>> {
        self.err("kms:ListGrants")
    }
    async fn put_key_policy(&self, _: &str, _: &str) -> PortResult<()> {
        self.err("kms:PutKeyPolicy")
    }
}

#[async_trait]
impl IdentityPolicies for Unreachable {
    async fn role_policies(&self, _: &str) -> PortResult<Option<PrincipalPolicies>> {
        self.err("iam:GetRole")
    }
}

#[async_trait]
impl Identity for Unreachable {
    async fn whoami(&self) -> PortResult<(String, String)> {
        self.err("sts:AssumeRole")
    }
}

#[async_trait]
impl CrossAccount for Unreachable {
    async fn readers_in(&self, _: &str, _: &str) -> PortResult<AccountReaders> {
        self.err("sts:AssumeRole")
    }
}
