//! `commons run`'s flags for the REST API: the OpenID Connect issuer whose tokens it accepts and
//! which claims say who, and how long RBAC's answers are kept. API keys are always accepted; they
//! live in the ledger (`commons apikey`).

use std::sync::Arc;
use std::time::Duration;

use commons_api::auth::claims::ClaimMapping;
use commons_api::auth::http::{HttpFetch, allowed_url};
use commons_api::auth::oidc::{Oidc, OidcConfig};
use commons_api::v1::{Spend, SpendSource};

use crate::error::{Error, Result};
use crate::metering::budgets::Budgets;

/// The flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiFlags {
    /// The OpenID Connect issuer whose bearer tokens the API accepts (its `iss`, exactly; its keys
    /// are found by discovery). Without it, only API keys are accepted. https, or http to a
    /// loopback address.
    #[arg(long, env = "COMMONS_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// The audience tokens must name (`aud`).
    #[arg(long, env = "COMMONS_OIDC_AUDIENCE", default_value = "commons-api")]
    pub oidc_audience: String,
    /// The claim naming the person (Kubernetes' own default is `sub`).
    #[arg(long, env = "COMMONS_OIDC_USERNAME_CLAIM", default_value = "sub")]
    pub oidc_username_claim: String,
    /// Put before the name to make the Kubernetes user RBAC sees.
    #[arg(long, env = "COMMONS_OIDC_USERNAME_PREFIX", default_value = "oidc:")]
    pub oidc_username_prefix: String,
    /// The claim listing the person's groups.
    #[arg(long, env = "COMMONS_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,
    /// Put before each group to make the Kubernetes groups RBAC sees.
    #[arg(long, env = "COMMONS_OIDC_GROUPS_PREFIX", default_value = "oidc:")]
    pub oidc_groups_prefix: String,
    /// The claim naming the person's organisation(s).
    #[arg(long, env = "COMMONS_OIDC_ORGANISATION_CLAIM", default_value = "groups")]
    pub oidc_organisation_claim: String,
    /// Only values of that claim starting with this are organisations, and it is taken off
    /// (`/organisations/leeds-city-council` → `leeds-city-council`). Empty: every value is one.
    #[arg(long, env = "COMMONS_OIDC_ORGANISATION_PREFIX", default_value = "/organisations/")]
    pub oidc_organisation_prefix: String,
    /// Allowed clock difference with the issuer, in seconds (expiry and not-before).
    #[arg(long, env = "COMMONS_OIDC_LEEWAY_SECONDS", default_value_t = 5)]
    pub oidc_leeway_seconds: u64,
    /// How long an RBAC answer is kept, in seconds: a removed binding takes effect within it.
    #[arg(long, env = "COMMONS_AUTHZ_CACHE_SECONDS", default_value_t = 10)]
    pub authz_cache_seconds: u64,
    /// Calls a second each API client (a person or an API key) may make on average (this
    /// replica's share); over it, 429 with Retry-After.
    #[arg(long, env = "COMMONS_API_RATE", default_value_t = 50)]
    pub api_rate: u32,
    /// Calls each API client may make at once before the rate applies.
    #[arg(long, env = "COMMONS_API_BURST", default_value_t = 100)]
    pub api_burst: u32,
    /// Seconds a call may take, authentication and its body's arrival included; then 503 (a call that changes something still runs to its end).
    #[arg(long, env = "COMMONS_API_DEADLINE_SECONDS", default_value_t = 30)]
    pub api_deadline_seconds: u64,
    /// Seconds a client has to send a request's headers, from the connection's opening or the
    /// previous answer, so also how long a kept-alive connection may stay idle. Behind a proxy or
    /// load balancer that keeps connections to Commons open, set it above that proxy's idle
    /// timeout (ingress-nginx and most cloud load balancers: 60 s).
    #[arg(long, env = "COMMONS_API_READ_TIMEOUT_SECONDS", default_value_t = 10)]
    pub api_read_timeout_seconds: u64,
    /// The auto-approval policy for tenancy requests (YAML: rules under which a request is
    /// approved at once; docs/api.md). Without it every request waits for a platform admin.
    #[arg(long, env = "COMMONS_REQUEST_POLICY", value_name = "FILE")]
    pub request_policy: Option<std::path::PathBuf>,
    /// The namespace the API keeps TenancyRequests in (made at start if missing).
    #[arg(long, env = "COMMONS_REQUESTS_NAMESPACE", default_value = "commons-requests")]
    pub requests_namespace: String,
    /// The portal's flags.
    #[command(flatten)]
    pub portal: crate::portal_settings::PortalFlags,
}

impl ApiFlags {
    /// The auto-approval policy: the file's, or none.
    pub fn policy(&self) -> Result<crate::request::policy::Policy> {
        let Some(path) = &self.request_policy else { return Ok(Default::default()) };
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            action: "cannot read --request-policy",
            path: path.clone(),
            source,
        })?;
        crate::request::policy::Policy::parse(&text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    }

    /// The token verifier, when an issuer is configured.
    pub fn oidc(&self) -> Result<Option<Arc<Oidc>>> {
        let Some(issuer) = &self.oidc_issuer else { return Ok(None) };
        allowed_url(issuer).map_err(|e| Error::Invalid(format!("--oidc-issuer {e}")))?;
        let fetch = HttpFetch::new(Duration::from_secs(10))
            .map_err(|e| Error::Invalid(format!("--oidc-issuer: {e}")))?;
        let config = OidcConfig {
            issuer: issuer.clone(),
            audience: self.oidc_audience.clone(),
            mapping: ClaimMapping {
                username_claim: self.oidc_username_claim.clone(),
                username_prefix: self.oidc_username_prefix.clone(),
                groups_claim: self.oidc_groups_claim.clone(),
                groups_prefix: self.oidc_groups_prefix.clone(),
                organisation_claim: self.oidc_organisation_claim.clone(),
                organisation_prefix: self.oidc_organisation_prefix.clone(),
            },
            leeway: Duration::from_secs(self.oidc_leeway_seconds),
            min_refresh: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
        };
        for (flag, prefix) in [
            ("--oidc-username-prefix", &config.mapping.username_prefix),
            ("--oidc-groups-prefix", &config.mapping.groups_prefix),
        ] {
            // Empty, a name from the identity provider could be `system:masters` or one of the
            // names Commons gives API keys (`commons:apikey:...`).
            if prefix.is_empty() || prefix.starts_with("system:") || prefix.starts_with("commons:") {
                return Err(Error::Invalid(format!(
                    "{flag} {prefix:?}: must be set, and not begin with system: or commons: (names Kubernetes and Commons give their own)"
                )));
            }
        }
        Ok(Some(Arc::new(Oidc::new(config, Arc::new(fetch)))))
    }
}

/// Spend for the API, from the figures the budgets loop keeps.
#[derive(Debug)]
pub struct BudgetSpend(pub Arc<Budgets>);

impl SpendSource for BudgetSpend {
    fn of(&self, tenancy: &str) -> Option<Spend> {
        match self.0.of(tenancy) {
            Some(f) => Some(Spend {
                period: f.period,
                month_to_date: f.month_to_date.to_string(),
                projected: f.projected.to_string(),
                currency: f.currency,
            }),
            // Measured, and nothing of it charged this month: it has spent nothing (and holds
            // nothing to spend by the month's end). Before the first measurement: unknown.
            None => self.0.currency().map(|currency| Spend {
                period: jiff::Timestamp::now().strftime("%Y-%m").to_string(),
                month_to_date: "0.00".into(),
                projected: "0.00".into(),
                currency,
            }),
        }
    }
}

/// Prices a quota for the API with the forecast code `commons forecast` uses and the cluster's
/// rate cards and VAT rates: next month, all of the quota held all month, VAT included.
#[derive(Clone)]
pub struct ClusterForecast(pub crate::report_cmd::StoredTariff);

impl std::fmt::Debug for ClusterForecast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterForecast")
    }
}

/// Next month's cost of `quota` with `tariff`.
fn price(
    quota: &commons_crds::tenancy::TenancyQuota,
    tariff: &crate::metering::rating::Tariff,
) -> std::result::Result<commons_api::v1::Estimate, String> {
    use crate::metering::forecast;
    let currency = tariff.cards.first().map(|c| c.currency.clone()).ok_or("no rate card is published")?;
    let month = forecast::next_month(jiff::Timestamp::now());
    let held = forecast::of_quota(quota, "tenancy.quota").map_err(|e| e.to_string())?;
    let lines = forecast::month_cost(held, &month, tariff).map_err(|e| e.to_string())?;
    let total: rust_decimal::Decimal = lines.iter().map(|l| l.amount).sum();
    Ok(commons_api::v1::Estimate {
        month: month.name,
        currency,
        total: total.to_string(),
        lines: lines
            .iter()
            .map(|l| commons_api::v1::EstimateLine {
                charge: l.charge.to_string(),
                quantity: l.quantity.map(|q| format!("{} {}", q.round_dp(3).normalize(), l.charge.unit())),
                amount: l.amount.to_string(),
            })
            .collect(),
    })
}

impl commons_api::v1::Forecaster for ClusterForecast {
    fn monthly(
        &self,
        quota: &commons_crds::tenancy::TenancyQuota,
    ) -> futures::future::BoxFuture<'_, std::result::Result<commons_api::v1::Estimate, String>> {
        let quota = quota.clone();
        Box::pin(async move {
            let tariff = self.0.now().await.map_err(|e| e.to_string())?;
            price(&quota, &tariff)
        })
    }

    fn monthly_each(
        &self,
        quotas: Vec<commons_crds::tenancy::TenancyQuota>,
    ) -> futures::future::BoxFuture<
        '_,
        std::result::Result<Vec<std::result::Result<commons_api::v1::Estimate, String>>, String>,
    > {
        Box::pin(async move {
            // The cluster's rate cards and VAT rates, read once for them all.
            let tariff = self.0.now().await.map_err(|e| e.to_string())?;
            Ok(quotas.iter().map(|q| price(q, &tariff)).collect())
        })
    }
}

/// Makes the namespace TenancyRequests are kept in, if missing (server-side apply: one write,
/// the same every start).
pub async fn ensure_requests_namespace(client: &kube::Client, name: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, Patch, PatchParams};
    let api: Api<Namespace> = Api::all(client.clone());
    if api
        .get_opt(name)
        .await
        .map_err(|source| Error::Kube { context: format!("reading namespace {name}"), source })?
        .is_some()
    {
        return Ok(());
    }
    let ns = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "commons"}},
    });
    crate::apply::count_write("Namespace", "apply");
    api.patch(name, &PatchParams::apply("commons"), &Patch::Apply(&ns))
        .await
        .map(|_| ())
        .map_err(|source| Error::Kube { context: format!("making namespace {name}"), source })
}
