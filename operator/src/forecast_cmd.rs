//! `commons forecast -f FILE`: the monthly cost of each Tenancy's quota, TenancyRequest's quota or
//! HostedService in a YAML file, with the cluster's rate cards.

use std::path::Path;

use commons_crds::hosted_service::HostedService;
use commons_crds::tenancy::Tenancy;
use commons_crds::tenancy_request::TenancyRequest;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::metering::charges::ChargeLine;
use crate::metering::forecast::{self, ForecastError};
use crate::metering::periods::Month;
use crate::metering::rating::Tariff;

/// One object's forecast.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    /// `Kind/name`.
    pub object: String,
    /// The month priced.
    pub month: String,
    /// The currency.
    pub currency: String,
    /// The month's lines if all of it is held throughout.
    pub lines: Vec<ChargeLine>,
    /// Their sum.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

fn invalid(e: ForecastError) -> Error {
    match e {
        ForecastError::Charge(c) => Error::Charge(c),
        other => Error::Invalid(other.to_string()),
    }
}

/// The forecasts of every supported object in `yaml`, for `month`.
pub fn forecasts(yaml: &str, month: &Month, tariff: &Tariff) -> Result<Vec<Forecast>> {
    let currency = tariff.cards.first().map(|c| c.currency.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for doc in serde_saphyr::from_multiple::<serde_json::Value>(yaml)
        .map_err(|e| Error::Invalid(format!("the file is not YAML: {e}")))?
    {
        let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_owned();
        let name = doc.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("(unnamed)").to_owned();
        let bad = |e: serde_json::Error| Error::Invalid(format!("{kind}/{name}: {e}"));
        let held = match kind.as_str() {
            "Tenancy" => {
                let t: Tenancy = serde_json::from_value(doc).map_err(bad)?;
                forecast::of_quota(&t.spec.quota.unwrap_or_default(), "spec.quota")
            }
            "TenancyRequest" => {
                let r: TenancyRequest = serde_json::from_value(doc).map_err(bad)?;
                match (r.spec.tenancy, r.spec.quota) {
                    (Some(t), _) => forecast::of_quota(&t.quota.unwrap_or_default(), "spec.tenancy.quota"),
                    // A quota change, alone: the limits it asks for (the Tenancy's others are not in the file).
                    (None, q) => forecast::of_quota(&q.unwrap_or_default(), "spec.quota"),
                }
            }
            "HostedService" => {
                let s: HostedService = serde_json::from_value(doc).map_err(bad)?;
                forecast::of_service(&s.spec)
            }
            _ => continue,
        }
        .map_err(|e| Error::Invalid(format!("{kind}/{name}: {e}")))?;
        let lines = forecast::month_cost(held, month, tariff).map_err(invalid)?;
        let total = lines.iter().map(|l| l.amount).sum();
        out.push(Forecast {
            object: format!("{kind}/{name}"),
            month: month.name.clone(),
            currency: currency.clone(),
            lines,
            total,
        });
    }
    if out.is_empty() {
        return Err(Error::Invalid(
            "the file has no Tenancy, TenancyRequest or HostedService to forecast".into(),
        ));
    }
    Ok(out)
}

/// Runs the command.
pub async fn run(file: &Path, month: Option<&str>, json: bool) -> Result<String> {
    let yaml = std::fs::read_to_string(file).map_err(|source| Error::Io {
        action: "cannot read",
        path: file.to_path_buf(),
        source,
    })?;
    let month = match month {
        Some(m) => Month::parse(m)?,
        None => forecast::next_month(Timestamp::now()),
    };
    let tariff = crate::report_cmd::cluster_tariff().await?;
    let all = forecasts(&yaml, &month, &tariff)?;
    if json {
        return serde_json::to_string_pretty(&all).map_err(|e| Error::Invalid(e.to_string()));
    }
    let mut out = String::new();
    for f in &all {
        out.push_str(&format!(
            "{} in {} (all of its quota held all month), in {}\n",
            f.object, f.month, f.currency
        ));
        for l in &f.lines {
            let quantity =
                l.quantity.map(|q| format!("{} {}", q.round_dp(3), l.charge.unit())).unwrap_or_default();
            out.push_str(&format!("  {:<18} {:>22} {:>12}\n", l.charge.to_string(), quantity, l.amount));
        }
        out.push_str(&format!("  {:<18} {:>22} {:>12}\n\n", "total", "", f.total));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::rating::Card;
    use rust_decimal::dec;

    #[test]
    fn every_supported_kind_in_a_file_is_forecast_and_a_bad_quantity_is_named() {
        let card = Card {
            name: "c".into(),
            effective_from: "2026-01-01T00:00:00Z".parse().unwrap(),
            currency: "GBP".into(),
            cpu: dec!(1),
            memory: dec!(0),
            storage: dec!(0),
            load_balancer: dec!(0),
            overhead_percent: dec!(0),
        };
        let yaml = r#"
apiVersion: commons.dev/v1alpha1
kind: HostedService
metadata: {name: payroll, namespace: northshire-council-revenues}
spec: {image: "r/x:1", replicas: 2, resources: {requests: {cpu: 250m, memory: 256Mi}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"#;
        let month = Month::parse("2026-11").unwrap();
        let f = forecasts(yaml, &month, &Tariff::of_cards(vec![card.clone()])).unwrap();
        assert_eq!(
            (f.len(), f[0].object.as_str(), f[0].total),
            (1, "HostedService/payroll", dec!(360.00)),
            "0.5 cores × 720 h"
        );
        let bad = yaml.replace("250m", "lots");
        let err = forecasts(&bad, &month, &Tariff::of_cards(vec![card])).unwrap_err().to_string();
        assert!(
            err.contains("HostedService/payroll") && err.contains("spec.resources.requests.cpu"),
            "{err}"
        );
    }
}
