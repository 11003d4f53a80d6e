//! Usage for the REST API: a month's charge lines from the ledger (a closed month's as stored, an
//! open one's priced now with the cluster's rate cards), only the asked organisations' lines, as
//! the report `commons report` prints (JSON or CSV) or as FOCUS rows.

use commons_api::v1::usage::{UsageDocument, UsageError, UsageFormat, UsageQuery, UsageSource};
use futures::future::BoxFuture;
use kube::Client;

use crate::ledger::Ledger;
use crate::metering::focus;
use crate::metering::report::{self as summary, By};
use crate::report_cmd::{Format, load_from, render};

/// The ledger and the cluster the API reads usage from.
#[derive(Clone)]
pub struct LedgerUsage {
    /// The ledger.
    pub ledger: Ledger,
    /// The cluster (its rate cards and VAT rates price an open month).
    pub client: Client,
}

impl std::fmt::Debug for LedgerUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerUsage").field("ledger", &self.ledger.backend()).finish_non_exhaustive()
    }
}

impl UsageSource for LedgerUsage {
    fn usage(&self, q: UsageQuery) -> BoxFuture<'_, Result<UsageDocument, UsageError>> {
        Box::pin(async move {
            let by = By::parse(&q.by).ok_or_else(|| UsageError::Invalid {
                field: "by",
                detail: "tenancy, organisation, sector, cost-centre or service".into(),
            })?;
            let mut loaded = load_from(&self.ledger, &q.period, crate::report_cmd::tariff_in(&self.client))
                .await
                .map_err(|e| match e {
                    crate::Error::Invalid(detail) => {
                        UsageError::Invalid { field: "period", detail: detail.replace("--period ", "") }
                    }
                    other => UsageError::Unavailable(other.to_string()),
                })?;
            if let Some(own) = &q.organisations {
                // The platform's own lines (unallocated capacity) belong to no organisation.
                loaded.lines.retain(|l| own.contains(&l.grain.organisation));
            }
            match q.format {
                UsageFormat::Focus => {
                    let mut body = Vec::new();
                    focus::write(
                        &mut body,
                        &loaded.month,
                        &loaded.lines,
                        &loaded.tariff.cards,
                        &loaded.currency,
                    )
                    .map_err(|e| UsageError::Unavailable(e.to_string()))?;
                    Ok(UsageDocument::Text { closed: loaded.closed, body })
                }
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
                            body: render(&report, Format::Csv).into_bytes(),
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
