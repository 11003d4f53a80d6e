//! `commons report --year YYYY`: what each part of government spent, month by month, and which
//! services they share, from the ledger and the cluster.

use std::collections::{BTreeMap, BTreeSet};

use commons_crds::subscription::{Subscription, SubscriptionMode, SubscriptionPhase};
use commons_crds::tenancy::Tenancy;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use kube::{Client, ResourceExt};

use crate::catalogue_cmd::list;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::metering::annual::{self, Annual, Shared};
use crate::metering::chart;
use crate::metering::periods::{self, Month};
use crate::metering::rating::Tariff;
use crate::metering::report::By;
use crate::report_cmd::tariff_in;

/// The group a tenancy is in when grouping `by` (as the ledger records it: `annual::group_of`).
fn group(by: By, t: &Tenancy, namespace: &str, service: &str) -> String {
    let o = &t.spec.organisation;
    match by {
        By::Tenancy => t.name_any(),
        By::Organisation => o.id.clone(),
        By::Sector => o.sector.to_string(),
        By::CostCentre => format!("{}/{}", o.id, o.cost_centre),
        By::Service => format!("{namespace}/{service}"),
    }
}

/// What the cluster holds that says who shares what: its Subscriptions, Namespaces and Tenancies
/// (listed for the command, or the shared stores' for the API).
#[derive(Debug, Default)]
pub struct Sharing {
    /// Every Subscription.
    pub subscriptions: Vec<std::sync::Arc<Subscription>>,
    /// Every Namespace.
    pub namespaces: Vec<std::sync::Arc<Namespace>>,
    /// Every Tenancy.
    pub tenancies: Vec<std::sync::Arc<Tenancy>>,
}

impl Sharing {
    /// Listed from the apiserver.
    pub async fn listed(client: &Client) -> Result<Sharing> {
        Ok(Sharing {
            subscriptions: list::<Subscription>(client).await?,
            namespaces: list::<Namespace>(client).await?,
            tenancies: list::<Tenancy>(client).await?,
        })
    }
}

/// The services shared through active subscriptions, grouped `by`. With `organisations`, only
/// what those organisations already see: the services they provide (with every consumer) and
/// their own subscriptions to others' services (with the provider, and no other consumer).
pub fn shared(cluster: &Sharing, by: By, organisations: Option<&[String]>) -> Vec<Shared> {
    let tenancy_of = |ns: &str| {
        let n = cluster.namespaces.iter().find(|n| n.name_any() == ns)?;
        let name = crate::hosted::admit::tenancy_of(n)?;
        cluster.tenancies.iter().find(|t| t.name_any() == name).cloned()
    };
    let mut by_service: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for s in cluster.subscriptions.iter().filter(|s| {
        s.spec.mode == SubscriptionMode::Shared
            && s.status.as_ref().and_then(|st| st.phase.as_ref()) == Some(&SubscriptionPhase::Active)
    }) {
        let svc = &s.spec.service;
        let (Some(provider), Some(consumer)) =
            (tenancy_of(&svc.namespace), tenancy_of(&s.namespace().unwrap_or_default()))
        else {
            continue;
        };
        let own = |t: &Tenancy| organisations.is_none_or(|o| o.contains(&t.spec.organisation.id));
        if !own(&provider) && !own(&consumer) {
            continue;
        }
        let key =
            (format!("{}/{}", svc.namespace, svc.name), group(by, &provider, &svc.namespace, &svc.name));
        by_service.entry(key).or_default().insert(group(by, &consumer, "", ""));
    }
    by_service
        .into_iter()
        .map(|((service, provider), consumers)| Shared {
            service,
            provider,
            consumers: consumers.into_iter().collect(),
        })
        .collect()
}

/// The year's report from `ledger`, open months priced with `tariff`, and what `cluster`'s
/// subscriptions share; with `organisations`, only theirs. Also whether it can never change (every
/// month closed).
pub async fn annual_in(
    cluster: &Sharing,
    ledger: &Ledger,
    tariff: Tariff,
    (year, by): (i16, By),
    organisations: Option<&[String]>,
) -> Result<(Annual, bool)> {
    let began = ledger.metering_began().await?.and_then(|ms| Timestamp::from_millisecond(ms).ok());
    let now = Timestamp::now();
    let mut months = Vec::new();
    let mut currency = tariff.cards.first().map(|c| c.currency.clone()).unwrap_or_default();
    let mut final_ = true;
    for m in 1..=12 {
        let month = Month::parse(&format!("{year:04}-{m:02}"))?;
        let reported = began.is_some_and(|b| month.until > b) && month.from < now;
        if !reported {
            // Before metering began it stays empty; a month still to come does not.
            final_ &= month.until <= now;
            months.push(None);
            continue;
        }
        let (mut lines, closed) = periods::lines(ledger, &month, month.until.min(now), &tariff).await?;
        if let Some(p) = &closed {
            currency = p.currency.clone();
        }
        final_ &= closed.is_some();
        if let Some(own) = organisations {
            // The platform's own lines (unallocated capacity) belong to no organisation.
            lines.retain(|l| own.contains(&l.grain.organisation));
        }
        months.push(Some((month.name, closed.is_some(), lines)));
    }
    let shared = shared(cluster, by, organisations);
    Ok((annual::build(year, by, &currency, &months, shared), final_))
}

/// The year's spend grouped `by`.
pub async fn annual(year: i16, by: By, ledger_url: &str) -> Result<Annual> {
    let client = Client::try_default().await.map_err(Error::KubeConfig)?;
    let ledger = Ledger::open_to_read(ledger_url)?;
    let tariff = tariff_in(&client).await?;
    let cluster = Sharing::listed(&client).await?;
    let made = annual_in(&cluster, &ledger, tariff, (year, by), None).await;
    ledger.close().await;
    Ok(made?.0)
}

pub async fn run(year: i16, by: &str, format: &str, ledger_url: &str) -> Result<String> {
    let by = By::parse(by).ok_or_else(|| {
        Error::Invalid(format!("--by {by:?}: expected tenancy, organisation, sector, cost-centre or service"))
    })?;
    if !(1970..=9999).contains(&year) {
        return Err(Error::Invalid(format!("--year {year}: expected a year such as 2026")));
    }
    let a = annual(year, by, ledger_url).await?;
    match format {
        "table" => Ok(annual::table(&a)),
        "csv" => Ok(annual::csv(&a)),
        "json" => serde_json::to_string_pretty(&a).map_err(|e| Error::Invalid(e.to_string())),
        "svg" => Ok(chart::svg(&a)),
        other => {
            Err(Error::Invalid(format!("--format {other:?} with --year: expected table, json, csv or svg")))
        }
    }
}
