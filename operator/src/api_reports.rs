//! Reports for the REST API: the annual report (`commons report --year`) and the savings report
//! (`commons report --savings`), made by the same code from the ledger and the cluster, for the
//! organisations asked for only, rendered as JSON, CSV or (the annual chart) SVG. Who shares what is
//! read from the shared stores, not the apiserver.

use commons_api::v1::reports::{Report, ReportDocument, ReportFormat, ReportQuery, ReportSource};
use commons_api::v1::usage::UsageError;
use commons_crds::subscription::Subscription;
use commons_crds::tenancy::Tenancy;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::ledger::Ledger;
use crate::metering::report::By;
use crate::metering::sharing::Saving;
use crate::metering::{annual, chart};
use crate::report_cmd::Format;

/// The ledger and the cluster the API's reports come from.
#[derive(Clone)]
pub struct LedgerReports {
    /// The ledger.
    pub ledger: Ledger,
    /// The shared stores: Subscriptions say what is shared, Namespaces and Tenancies whose.
    pub subscriptions: Store<Subscription>,
    /// Every Namespace.
    pub namespaces: Store<Namespace>,
    /// Every Tenancy.
    pub tenancies: Store<Tenancy>,
    /// Its rate cards and VAT rates (they price an open month).
    pub tariff: crate::report_cmd::StoredTariff,
}

impl std::fmt::Debug for LedgerReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerReports").field("ledger", &self.ledger.backend()).finish_non_exhaustive()
    }
}

fn failed(field: &'static str) -> impl Fn(crate::Error) -> UsageError {
    move |e| match e {
        crate::Error::Invalid(detail) => {
            UsageError::Invalid { field, detail: detail.replace("--period ", "").replace("--year ", "") }
        }
        other => UsageError::Unavailable(other.to_string()),
    }
}

/// What of `savings` the organisations `own` may see: the services they provide, whole; and
/// those they use, with no consumer but their own named. `organisation_of` maps a tenancy to its
/// organisation (a tenancy deleted since maps to none).
pub fn visible_savings(
    savings: Vec<Saving>,
    own: &[String],
    organisation_of: impl Fn(&str) -> Option<String>,
) -> Vec<Saving> {
    let is_own = |tenancy: &str| organisation_of(tenancy).is_some_and(|o| own.contains(&o));
    savings
        .into_iter()
        .filter_map(|mut s| {
            if is_own(&s.provider) {
                return Some(s);
            }
            s.consumers.retain(|c| is_own(c));
            (!s.consumers.is_empty()).then_some(s)
        })
        .collect()
}

impl LedgerReports {
    /// Who shares what, as the shared stores hold it now.
    fn sharing(&self) -> crate::annual_cmd::Sharing {
        crate::annual_cmd::Sharing {
            subscriptions: self.subscriptions.state(),
            namespaces: self.namespaces.state(),
            tenancies: self.tenancies.state(),
        }
    }

    async fn annual(&self, year: i16, by: &str, q: &ReportQuery) -> Result<ReportDocument, UsageError> {
        let by = By::parse(by).ok_or_else(|| UsageError::Invalid {
            field: "by",
            detail: "tenancy, organisation, sector, cost-centre or service".into(),
        })?;
        let tariff = self.tariff.now().await.map_err(failed("year"))?;
        let (a, closed) = crate::annual_cmd::annual_in(
            &self.sharing(),
            &self.ledger,
            tariff,
            (year, by),
            q.organisations.as_deref(),
        )
        .await
        .map_err(failed("year"))?;
        let body = match q.format {
            ReportFormat::Json => {
                serde_json::to_vec(&a).map_err(|e| UsageError::Unavailable(e.to_string()))?
            }
            ReportFormat::Csv => annual::csv(&a).into_bytes(),
            ReportFormat::Svg => chart::svg(&a).into_bytes(),
        };
        Ok(ReportDocument { closed, body })
    }

    async fn savings(&self, period: &str, q: &ReportQuery) -> Result<ReportDocument, UsageError> {
        let (mut savings, currency, closed) =
            crate::savings_cmd::savings_in(self.tariff.now(), &self.ledger, period)
                .await
                .map_err(failed("period"))?;
        if let Some(own) = &q.organisations {
            let organisation_of = |name: &str| {
                self.tenancies.get(&ObjectRef::new(name)).map(|t| t.spec.organisation.id.clone())
            };
            savings = visible_savings(savings, own, organisation_of);
        }
        let format = if q.format == ReportFormat::Csv { Format::Csv } else { Format::Json };
        let body = crate::savings_cmd::render(period, &savings, &currency, format).into_bytes();
        Ok(ReportDocument { closed, body })
    }
}

impl ReportSource for LedgerReports {
    fn report(&self, q: ReportQuery) -> BoxFuture<'_, Result<ReportDocument, UsageError>> {
        Box::pin(async move {
            crate::watch::synced(&[&self.subscriptions, &self.namespaces, &self.tenancies])
                .await
                .map_err(|e| UsageError::Unavailable(e.to_string()))?;
            match &q.report {
                Report::Annual { year, by } => self.annual(*year, by, &q).await,
                Report::Savings { period } => self.savings(period, &q).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    fn saving(provider: &str, consumers: &[&str]) -> Saving {
        Saving {
            service: format!("{provider}-apps/payroll"),
            provider: provider.into(),
            consumers: consumers.iter().map(|c| (*c).to_owned()).collect(),
            cost: dec!(24.00),
            paid_by_consumers: dec!(16.00),
            each_alone: dec!(72.00),
            saved: dec!(48.00),
        }
    }

    #[test]
    fn an_organisation_sees_what_it_provides_whole_and_what_it_uses_without_other_consumers() {
        let of = |t: &str| match t {
            "north-a" | "north-b" => Some("north".to_owned()),
            "south-a" => Some("south".to_owned()),
            "east-a" => Some("east".to_owned()),
            _ => None,
        };
        let all = vec![
            saving("north-a", &["south-a", "east-a"]),
            saving("south-a", &["north-b", "east-a"]),
            saving("east-a", &["south-a"]),
            saving("gone", &["north-a"]),
        ];
        let seen = visible_savings(all, &["north".to_owned()], of);
        let shown: Vec<(&str, Vec<&str>)> = seen
            .iter()
            .map(|s| (s.provider.as_str(), s.consumers.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            shown,
            [("north-a", vec!["south-a", "east-a"]), ("south-a", vec!["north-b"]), ("gone", vec!["north-a"]),]
        );
    }
}
