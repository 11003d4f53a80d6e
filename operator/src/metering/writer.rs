//! Writes the meter's changes to the ledger in order, as they happen. While the ledger cannot be
//! written (disk full, database down) the changes wait in memory, metering reports why it is
//! unready, and the write is retried with backoff; nothing is dropped. Each write also records how
//! far the ledger is complete (`seen_through`), in the same transaction.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::health::{MeterMetrics, Standing};
use crate::ledger::{Ledger, Write};

/// What the meter sends the writer.
#[derive(Debug)]
pub enum Message {
    /// Changes, in the order they happened.
    Changes(Vec<Write>),
    /// The ledger holds everything the meter saw up to this instant once the changes sent before
    /// this message are written.
    SeenThrough(i64),
}

/// How long an idle ledger goes without its `seen_through` moving on.
const HEARTBEAT_MS: i64 = 2_000;
/// The longest wait between retries while the ledger cannot be written.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Writes until the meter stops sending, then writes what is left (for up to `final_wait`).
pub async fn run(
    ledger: Ledger,
    mut rx: UnboundedReceiver<Message>,
    standing: Arc<Standing>,
    metrics: MeterMetrics,
    final_wait: Duration,
) {
    let mut pending: Vec<Write> = Vec::new();
    let mut seen: Option<i64> = None;
    let mut written_seen = i64::MIN;
    let mut backoff = Duration::from_millis(500);
    let mut open = true;
    while open {
        // Wait for something to do, then take everything sent so far.
        match rx.recv().await {
            Some(m) => take(m, &mut pending, &mut seen),
            None => open = false,
        }
        while let Ok(m) = rx.try_recv() {
            take(m, &mut pending, &mut seen);
        }
        metrics.pending.set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
        let due = seen.is_some_and(|s| s >= written_seen.saturating_add(HEARTBEAT_MS));
        if pending.is_empty() && !due {
            continue;
        }
        // Until it is written; more changes arriving meanwhile join the batch.
        loop {
            let through = seen.unwrap_or(written_seen);
            let now = jiff::Timestamp::now().as_millisecond();
            let write = ledger.write(&pending, (through > i64::MIN).then_some(through), now);
            let outcome = match open {
                true => write.await,
                false => match tokio::time::timeout(final_wait, write).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::error!(
                            pending = pending.len(),
                            "the ledger could not be written before Commons stopped; the open intervals will be closed at the last instant seen when it starts again"
                        );
                        return;
                    }
                },
            };
            match outcome {
                Ok(()) => {
                    count(&pending, &metrics);
                    pending.clear();
                    written_seen = through;
                    metrics.pending.set(0);
                    metrics.ledger_up.set(1);
                    standing.ok();
                    backoff = Duration::from_millis(500);
                    break;
                }
                Err(e) => {
                    metrics.ledger_up.set(0);
                    metrics.ledger_errors.with_label_values(&[e.label()]).inc();
                    let reason = format!(
                        "the {} ledger cannot be written ({e}); {} changes are kept in memory and retried",
                        ledger.backend(),
                        pending.len()
                    );
                    tracing::warn!("{reason}");
                    standing.failing(reason);
                    if !open {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    while let Ok(m) = rx.try_recv() {
                        take(m, &mut pending, &mut seen);
                    }
                    metrics.pending.set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
                }
            }
        }
    }
}

fn take(m: Message, pending: &mut Vec<Write>, seen: &mut Option<i64>) {
    match m {
        Message::Changes(w) => pending.extend(w),
        Message::SeenThrough(s) => *seen = Some(s),
    }
}

fn count(writes: &[Write], metrics: &MeterMetrics) {
    for w in writes {
        match w {
            Write::Open(i) => {
                metrics.opened.inc();
                if i.end_ms.is_some() {
                    metrics.closed.with_label_values(&["recorded"]).inc();
                }
            }
            Write::Close(c) => {
                metrics.closed.with_label_values(&[if c.estimated { "estimated" } else { "recorded" }]).inc();
            }
        }
    }
}
