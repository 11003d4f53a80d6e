//! A quota's estimated monthly cost as the API answers it (`estimatedMonthlyCost`), and how the
//! request page and the check-answers page show it.

use serde::Deserialize;

use super::format;

/// An estimate.
#[derive(Debug, Clone, Deserialize)]
pub struct Estimate {
    month: String,
    currency: String,
    total: String,
    lines: Vec<Line>,
}

#[derive(Debug, Clone, Deserialize)]
struct Line {
    charge: String,
    #[serde(default)]
    quantity: Option<String>,
    amount: String,
}

impl Estimate {
    /// The month's total, as money.
    pub fn total(&self) -> String {
        format::money(&self.total, &self.currency)
    }

    /// The month priced, as people read it.
    pub fn month(&self) -> String {
        format::month(&self.month)
    }

    /// Its lines: what, how much, the amount.
    pub fn rows(&self) -> Vec<(String, String, String)> {
        self.lines
            .iter()
            .map(|l| {
                (
                    format::charge(&l.charge),
                    l.quantity.clone().unwrap_or_default(),
                    format::money(&l.amount, &self.currency),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimate_reads_as_people_read_money_and_months() {
        let e: Estimate = serde_json::from_value(serde_json::json!({
            "month": "2027-01", "currency": "GBP", "total": "574.32",
            "lines": [{"charge": "cpu", "quantity": "11904 core-hours", "amount": "410.69"}, {"charge": "vat", "amount": "95.72"}]
        }))
        .unwrap();
        assert_eq!((e.total(), e.month()), ("£574.32".to_owned(), "January 2027".to_owned()));
        assert_eq!(
            e.rows(),
            [
                ("CPU".to_owned(), "11904 core-hours".to_owned(), "£410.69".to_owned()),
                ("VAT".to_owned(), String::new(), "£95.72".to_owned()),
            ]
        );
    }
}
