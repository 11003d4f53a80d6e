//! Benchmark of the ledger on SQLite and on the PostgreSQL the scripts run: recording a month of
//! PODS pods over TENANCIES tenancies, rating them, the month's report, closing and verifying the
//! month; then streaming ROWS intervals through rating (the work of an export), with rows per
//! second and the process's peak memory.
//!
//! `cargo run --release -p commons-e2e --bin bench-ledger -- [PODS] [TENANCIES] [ROWS]`
//! (defaults 20000, 1000 and 1000000; the figure is for 10000000). PostgreSQL is reached at
//! COMMONS_E2E_POSTGRES (set by e2e/postgres.sh); each run makes fresh databases and files.

use std::time::Instant;

use commons_operator::ledger::{Attribution, Held, Interval, Kind, Ledger, Write};
use commons_operator::metering::periods::{self, Month};
use commons_operator::metering::rater::Rater;
use commons_operator::metering::rating::Card;
use commons_operator::metering::rating::Tariff;
use commons_operator::metering::report::{By, Period, summarise};
use futures::StreamExt;
use jiff::Timestamp;
use rust_decimal::Decimal;

fn card() -> Card {
    Card {
        name: "bench".into(),
        effective_from: "2026-01-01T00:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH),
        currency: "GBP".into(),
        cpu: Decimal::new(345, 4),
        memory: Decimal::new(46, 4),
        storage: Decimal::new(14, 5),
        load_balancer: Decimal::new(25, 3),
        overhead_percent: Decimal::new(125, 1),
    }
}

/// Pod `i` of `tenancies`: a deterministic stretch of November, some of it running past the end.
fn pod(i: usize, tenancies: usize, from: i64, month_ms: i64) -> Interval {
    let t = i % tenancies;
    let start = from + ((i as i64 * 7_919_000) % month_ms);
    let length = 60_000 + (i as i64 * 104_729) % (month_ms / 4);
    let tenancy = format!("bench-{t:04}");
    Interval {
        key: format!("pod/bench-{i}/{start}"),
        kind: Kind::Pod,
        uid: format!("bench-{i}"),
        namespace: format!("{tenancy}-app"),
        name: format!("p{i}"),
        attribution: Attribution {
            tenancy,
            organisation: format!("org-{:03}", t / 3),
            organisation_name: format!("Organisation {}", t / 3),
            sector: ["local-government", "health", "education", "central-government"][t % 4].into(),
            cost_centre: format!("CC-{}", t % 50),
            hosted_service: if i.is_multiple_of(3) { "app".into() } else { String::new() },
        },
        held: Held {
            cpu_milli: 100 + (i as i64 % 8) * 250,
            memory_milli: (128 << 20) * 1000 * (1 + i as i64 % 4),
            ..Held::default()
        },
        start_ms: start,
        end_ms: Some(start + length),
        estimated: false,
        recorded_ms: 0,
        end_recorded_ms: None,
    }
}

fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn write_all(
    ledger: &Ledger,
    n: usize,
    tenancies: usize,
    month: &Month,
    offset: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let (from, month_ms) =
        (month.from.as_millisecond(), month.until.as_millisecond() - month.from.as_millisecond());
    let started = Instant::now();
    let mut batch = Vec::with_capacity(5000);
    for i in 0..n {
        batch.push(Write::Open(Box::new(pod(offset + i, tenancies, from, month_ms))));
        if batch.len() == 5000 || i + 1 == n {
            ledger.write(&batch, Some(month.until.as_millisecond()), month.until.as_millisecond()).await?;
            batch.clear();
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

async fn bench(
    store: &str,
    url: &str,
    pods: usize,
    tenancies: usize,
    rows: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let ledger = Ledger::open(url)?;
    ledger.migrate().await?;
    let month = Month::parse("2026-11")?;
    ledger.metering_since(month.from.as_millisecond()).await?;
    let cards = Tariff::of_cards(vec![card()]);
    let wrote = write_all(&ledger, pods, tenancies, &month, 0).await?;
    println!(
        "{store}: recorded {pods} pods over {tenancies} tenancies in {wrote:.2}s ({:.0} intervals/s)",
        pods as f64 / wrote
    );

    let started = Instant::now();
    let lines = periods::rate(&ledger, &month, month.until, &cards, None).await?;
    let rated = started.elapsed().as_secs_f64();
    println!("{store}: rated {pods} pods over the month in {rated:.2}s ({} charge lines)", lines.len());

    let started = Instant::now();
    let (lines, _) = periods::lines(&ledger, &month, month.until, &cards).await?;
    let p =
        Period { name: &month.name, from: month.from, until: month.until, closed: false, currency: "GBP" };
    let report = summarise(p, &lines, By::Tenancy);
    let groups: std::collections::BTreeSet<&str> = report.lines.iter().map(|l| l.group.as_str()).collect();
    println!(
        "{store}: the month's report over {} tenancies in {:.2}s (total {} GBP)",
        groups.len(),
        started.elapsed().as_secs_f64(),
        report.total
    );

    let started = Instant::now();
    let closed = periods::close(&ledger, &month, &cards, Timestamp::now()).await?;
    let close_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let problems = periods::verify(&ledger, &closed).await?;
    println!(
        "{store}: closed the month ({} lines) in {close_s:.2}s; verified it in {:.2}s: {}",
        closed.lines,
        started.elapsed().as_secs_f64(),
        if problems.is_empty() {
            "every line agrees".to_owned()
        } else {
            format!("{} lines disagree", problems.len())
        }
    );

    // The streaming figure: ROWS intervals in December, read back in one stream and rated.
    let december = Month::parse("2026-12")?;
    let wrote = write_all(&ledger, rows, tenancies, &december, pods).await?;
    let before = peak_mib();
    let started = Instant::now();
    let mut rater = Rater::new(december.from, december.until, cards.clone(), None)?;
    let mut stream = ledger.overlapping(december.from.as_millisecond(), december.until.as_millisecond());
    let mut n = 0usize;
    while let Some(i) = stream.next().await {
        rater.add(&i?)?;
        n += 1;
    }
    drop(stream);
    let lines = rater.finish();
    let took = started.elapsed().as_secs_f64();
    println!(
        "{store}: streamed and rated {n} intervals in {took:.1}s ({:.0} rows/s) into {} charge lines; peak memory {:.1} MiB (before the stream {before:.1} MiB); writing them took {wrote:.1}s",
        n as f64 / took,
        lines.len(),
        peak_mib()
    );
    ledger.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pods: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let tenancies: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = commons_e2e::measure::cluster_dir().join("bench-ledger");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    bench("sqlite", &format!("sqlite://{}", dir.join("ledger.db").display()), pods, tenancies, rows).await?;
    bench("postgres", &commons_e2e::ledgers::fresh_postgres("commons_bench_ledger")?, pods, tenancies, rows)
        .await?;
    Ok(())
}
