//! Usage for the REST API: a month's charge lines from the ledger (a closed month's as stored, an
//! open one's priced now with the cluster's rate cards), only the asked organisations' lines, as
//! the report `commons report` prints (JSON or CSV) or as FOCUS rows.

use commons_api::v1::usage::{TextRows, UsageDocument, UsageError, UsageFormat, UsageQuery, UsageSource};
use futures::future::BoxFuture;

use crate::ledger::Ledger;
use crate::metering::focus;
use crate::metering::periods::Month;
use crate::metering::rating::Card;
use crate::metering::report::{self as summary, By};
use crate::report_cmd::{CSV_HEADER, csv_rows, load_from};

/// The ledger and the cluster the API reads usage from.
#[derive(Clone)]
pub struct LedgerUsage {
    /// The ledger.
    pub ledger: Ledger,
    /// The cluster's rate cards and VAT rates (they price an open month).
    pub tariff: crate::report_cmd::StoredTariff,
}

impl std::fmt::Debug for LedgerUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerUsage").field("ledger", &self.ledger.backend()).finish_non_exhaustive()
    }
}

/// A month's FOCUS rows, written a slice at a time as the API sends them.
#[derive(Debug)]
struct FocusRows {
    month: Month,
    lines: Vec<crate::metering::charges::ChargeLine>,
    cards: Vec<Card>,
    currency: String,
}

impl TextRows for FocusRows {
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to memory cannot fail.
        let _ = focus::write_header(&mut out);
        out
    }
    fn len(&self) -> usize {
        self.lines.len()
    }
    fn rows(&self, from: usize, to: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let lines = self.lines.get(from..to).unwrap_or_default();
        if let Err(e) = focus::write_rows(&mut out, &self.month, lines, &self.cards, &self.currency) {
            tracing::warn!(error = %e, "FOCUS rows could not be written");
        }
        out
    }
}

/// A report's CSV rows, written a slice at a time as the API sends them.
#[derive(Debug)]
struct CsvRows {
    lines: Vec<summary::Line>,
    currency: String,
}

impl TextRows for CsvRows {
    fn header(&self) -> Vec<u8> {
        CSV_HEADER.as_bytes().to_vec()
    }
    fn len(&self) -> usize {
        self.lines.len()
    }
    fn rows(&self, from: usize, to: usize) -> Vec<u8> {
        let mut out = String::new();
        csv_rows(&mut out, self.lines.get(from..to).unwrap_or_default(), &self.currency);
        out.into_bytes()
    }
}

impl UsageSource for LedgerUsage {
    fn usage(&self, q: UsageQuery) -> BoxFuture<'_, Result<UsageDocument, UsageError>> {
        Box::pin(async move {
            let by = By::parse(&q.by).ok_or_else(|| UsageError::Invalid {
                field: "by",
                detail: "tenancy, organisation, sector, cost-centre or service".into(),
            })?;
            let mut loaded = load_from(&self.ledger, &q.period, self.tariff.now(), q.as_of).await.map_err(
                |e| match e {
                    crate::Error::AsOf(detail) => UsageError::Invalid { field: "asOf", detail },
                    crate::Error::Invalid(detail) => {
                        UsageError::Invalid { field: "period", detail: detail.replace("--period ", "") }
                    }
                    other => UsageError::Unavailable(other.to_string()),
                },
            )?;
            if let Some(own) = &q.organisations {
                // The platform's own lines (unallocated capacity) belong to no organisation.
                loaded.lines.retain(|l| own.contains(&l.grain.organisation));
            }
            match q.format {
                UsageFormat::Focus => Ok(UsageDocument::Text {
                    closed: loaded.closed,
                    text: std::sync::Arc::new(FocusRows {
                        month: loaded.month,
                        lines: loaded.lines,
                        cards: loaded.tariff.cards,
                        currency: loaded.currency,
                    }),
                }),
                format => {
                    let period = summary::Period {
                        name: &q.period,
                        from: loaded.month.from,
                        until: loaded.until,
                        closed: loaded.closed,
                        currency: &loaded.currency,
                    };
                    let report = summary::summarise(period, &loaded.lines, by);
                    if format == UsageFormat::Csv {
                        return Ok(UsageDocument::Text {
                            closed: loaded.closed,
                            text: std::sync::Arc::new(CsvRows {
                                lines: report.lines,
                                currency: report.currency,
                            }),
                        });
                    }
                    let report =
                        serde_json::to_value(&report).map_err(|e| UsageError::Unavailable(e.to_string()))?;
                    Ok(UsageDocument::Json { closed: loaded.closed, report })
                }
            }
        })
    }
}
