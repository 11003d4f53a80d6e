//! Closed periods on both real ledgers (an SQLite file and the PostgreSQL the scripts started),
//! through the `commons` binary: months close in order, a closed month's export is byte-identical
//! every time, what is learned later about it becomes a correction in the next month closed,
//! `commons ledger verify` recomputes every line from the raw intervals, and neither the raw
//! intervals nor a closed month can be changed in the database. The intervals are written straight
//! into the ledger (as the meter writes them) with October and November dates, since a month must
//! have ended to be closed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::process::Command;

use commons_crds::RateCard;
use commons_e2e::{client, commons};
use commons_operator::ledger::{Attribution, Close, Held, Interval, Kind, Ledger, Write};
use jiff::Timestamp;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::json;

const CARD: &str = "e2e-periods-card";
use commons_e2e::ledgers::PSQL;

fn ms(s: &str) -> i64 {
    s.parse::<Timestamp>().unwrap().as_millisecond()
}

fn pod(tenancy: &str, cpu_milli: i64, from: &str) -> Interval {
    Interval {
        key: format!("pod/{tenancy}/{}", ms(from)),
        kind: Kind::Pod,
        uid: format!("{tenancy}-uid"),
        namespace: format!("{tenancy}-apps"),
        name: "p".into(),
        attribution: Attribution {
            tenancy: tenancy.into(),
            organisation: format!("{tenancy}-org"),
            organisation_name: format!("{tenancy} council"),
            sector: "local-government".into(),
            cost_centre: "CC-1".into(),
            hosted_service: String::new(),
        },
        held: Held { cpu_milli, ..Held::default() },
        start_ms: ms(from),
        end_ms: None,
        estimated: false,
        recorded_ms: 0,
        end_recorded_ms: None,
    }
}

fn open(i: Interval) -> Write {
    Write::Open(Box::new(i))
}

fn ended(mut i: Interval, to: &str) -> Write {
    i.end_ms = Some(ms(to));
    Write::Open(Box::new(i))
}

/// Runs SQL straight against the store, as someone with the database's own tools would; returns
/// whether it succeeded and what it printed.
fn sql(url: &str, statement: &str) -> (bool, String) {
    let out = match url.strip_prefix("sqlite://") {
        Some(path) => Command::new("sqlite3").args([path, statement]).output().unwrap(),
        None => Command::new(PSQL).args([url, "-qAtc", statement]).output().unwrap(),
    };
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

fn ledger(args: &[&str], url: &str) -> Result<String, String> {
    let mut all = vec!["ledger"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--ledger", url]);
    commons(&all).map_err(|e| e.to_string())
}

fn report(period: &str, format: &str, url: &str) -> String {
    commons(&["report", "--period", period, "--format", format, "--ledger", url]).unwrap()
}

/// The export conforms to FOCUS 1.3, and its BilledCost adds up to the month's total.
fn assert_focus(csv: &str, total: &str) {
    let problems = commons_e2e::focus::check(csv);
    assert!(problems.is_empty(), "FOCUS 1.3: {problems:#?}\n{csv}");
    let rows = commons_e2e::focus::parse_csv(csv);
    let billed = rows[0].iter().position(|h| h == "BilledCost").unwrap();
    let sum: rust_decimal::Decimal =
        rows[1..].iter().map(|r| r[billed].parse::<rust_decimal::Decimal>().unwrap()).sum();
    assert_eq!(sum.to_string(), total, "{csv}");
}

async fn exercise(url: &str) {
    let l = Ledger::open(url).unwrap();
    l.migrate().await.unwrap();
    l.metering_since(ms("2026-10-01T00:00:00Z")).await.unwrap();
    // Recorded in October as they happened: a, ten hours of one core in its hosted service app,
    // shared with s for its first five hours; b, half a core from 20:00 on the 31st, still running
    // at the month's end; a node of 4 cores for a's ten hours.
    let october = ms("2026-10-31T23:00:00Z");
    let mut a = pod("e2e-per-a", 1000, "2026-10-10T00:00:00Z");
    a.attribution.hosted_service = "app".into();
    let b = pod("e2e-per-b", 500, "2026-10-31T20:00:00Z");
    let mut share = pod("e2e-per-s", 0, "2026-10-10T00:00:00Z");
    share.kind = Kind::Share;
    share.key = "share/e2e-per-s".into();
    share.attribution.hosted_service = "e2e-per-a-apps/app".into();
    share.held = Held { share_weight: 1, ..Held::default() };
    let mut node = pod("", 4000, "2026-10-10T00:00:00Z");
    node.kind = Kind::Node;
    node.key = "node/e2e-per-node".into();
    node.namespace = String::new();
    node.attribution = Attribution::default();
    l.write(
        &[
            ended(a, "2026-10-10T10:00:00Z"),
            open(b.clone()),
            ended(share, "2026-10-10T05:00:00Z"),
            ended(node, "2026-10-10T10:00:00Z"),
        ],
        Some(october),
        october,
    )
    .await
    .unwrap();

    let refused = ledger(&["close", "2026-11"], url).unwrap_err();
    assert!(refused.contains("close 2026-10 first"), "{refused}");
    let refused = ledger(&["close", "2099-01"], url).unwrap_err();
    assert!(refused.contains("has not ended"), "{refused}");
    // The meter's record ends on the 31st at 23:00: October cannot close yet.
    let refused = ledger(&["close", "2026-10"], url).unwrap_err();
    assert!(refused.contains("complete only up to 2026-10-31T23:00:00Z"), "{refused}");
    let now = Timestamp::now().as_millisecond();
    l.write(&[], Some(now), now).await.unwrap();
    let closed = ledger(&["close", "2026-10"], url).unwrap();
    // a: 10 core-hours at 1 = 10.00 + 1.00 overhead, half of which (5.50) moved to s, VAT 1.10
    // each; b: 2 core-hours = 2.00 + 0.20, VAT 0.44; 30 core-hours of the node no pod reserved,
    // 30.00 (no overhead, no VAT: nobody is charged it).
    assert!(closed.contains("closed 2026-10: 10 lines, total 45.84 GBP"), "{closed}");
    let refused = ledger(&["close", "2026-10"], url).unwrap_err();
    assert!(refused.contains("closed already"), "{refused}");

    let csv = report("2026-10", "csv", url);
    let json = report("2026-10", "json", url);
    let focus = report("2026-10", "focus", url);
    // Billed: all but the unallocated capacity, which nobody is invoiced for.
    assert_focus(&focus, "15.84");
    assert!(json.contains("\"closed\": true"), "{json}");
    for line in [
        "e2e-per-a,e2e-per-a council,cpu,10,core-hours,10.00,GBP,\n",
        "e2e-per-a,e2e-per-a council,shared-service-credit,,,-5.50,GBP,\n",
        "e2e-per-a,e2e-per-a council,vat,,,1.10,GBP,\n",
        "e2e-per-s,e2e-per-s council,shared-service,,,5.50,GBP,\n",
        "e2e-per-s,e2e-per-s council,vat,,,1.10,GBP,\n",
        "(unallocated capacity),,unallocated-cpu,30,core-hours,30.00,GBP,\n",
    ] {
        assert!(csv.contains(line), "{line} in {csv}");
    }
    let savings =
        commons(&["report", "--period", "2026-10", "--savings", "--format", "csv", "--ledger", url]).unwrap();
    assert!(
        savings.contains("\ne2e-per-a-apps/app,e2e-per-a,e2e-per-s,11.00,5.50,16.50,5.50,GBP\n"),
        "{savings}"
    );

    // Learned after October closed: c ran two hours in October while nothing recorded it, and b
    // ended in November.
    let c = pod("e2e-per-c", 1000, "2026-10-20T00:00:00Z");
    let now = Timestamp::now().as_millisecond();
    let end_b =
        Write::Close(Close { key: b.key.clone(), end_ms: ms("2026-11-01T04:00:00Z"), estimated: false });
    l.write(&[ended(c, "2026-10-20T02:00:00Z"), end_b], Some(now), now).await.unwrap();
    assert_eq!(report("2026-10", "csv", url), csv, "a closed month's export never changes");
    assert_eq!(report("2026-10", "json", url), json, "byte for byte");
    assert_eq!(report("2026-10", "focus", url), focus, "the FOCUS export too");
    let open_november = report("2026-11", "csv", url);
    assert!(
        open_november.contains("e2e-per-c,e2e-per-c council,cpu,2,core-hours,2.00,GBP,2026-10\n"),
        "{open_november}"
    );

    let closed = ledger(&["close", "2026-11"], url).unwrap();
    // b: 4 core-hours × 0.5 = 2.00 + 0.20 + 0.44 VAT; the correction for c: 2.00 + 0.20 + 0.44.
    assert!(closed.contains("closed 2026-11: 6 lines, total 5.28 GBP"), "{closed}");
    let november = report("2026-11", "csv", url);
    assert!(
        november.contains("e2e-per-c,e2e-per-c council,cpu,2,core-hours,2.00,GBP,2026-10\n"),
        "{november}"
    );
    assert!(
        november.contains("e2e-per-c,e2e-per-c council,platform-overhead,,,0.20,GBP,2026-10\n"),
        "{november}"
    );
    assert_eq!(report("2026-11", "csv", url), november);
    let focus = report("2026-11", "focus", url);
    assert_focus(&focus, "5.28");
    let rows = commons_e2e::focus::parse_csv(&focus);
    let class = rows[0].iter().position(|h| h == "ChargeClass").unwrap();
    let start = rows[0].iter().position(|h| h == "ChargePeriodStart").unwrap();
    let corrections: Vec<&Vec<String>> = rows[1..].iter().filter(|r| r[class] == "Correction").collect();
    assert_eq!(corrections.len(), 3, "c's CPU, overhead and VAT: {focus}");
    assert!(corrections.iter().all(|r| r[start] == "2026-10-01T00:00:00Z"), "charged for October: {focus}");
    let verified = ledger(&["verify"], url).unwrap();
    assert!(verified.contains("2026-10: 10 lines") && verified.contains("2026-11: 6 lines"), "{verified}");
    assert!(ledger(&["periods"], url).unwrap().contains("2026-11"));

    // The year by sector: October and November as closed, the total theirs.
    let year =
        commons(&["report", "--year", "2026", "--by", "sector", "--format", "csv", "--ledger", url]).unwrap();
    assert!(year.contains("\nlocal-government,0,0,0,0,0,0,0,0,0,15.84,5.28,0,21.12,GBP\n"), "{year}");
    assert!(year.contains("\n(unallocated capacity),0,0,0,0,0,0,0,0,0,30.00,0,0,30.00,GBP\n"), "{year}");
    let table = commons(&["report", "--year", "2026", "--by", "organisation", "--ledger", url]).unwrap();
    assert!(table.contains("2026-10 closed, 2026-11 closed"), "{table}");
    let svg =
        commons(&["report", "--year", "2026", "--by", "sector", "--format", "svg", "--ledger", url]).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("Spend in 2026 by sector, GBP")
            && svg.contains("local-government: 21.12 GBP."),
        "{svg}"
    );

    // Neither the raw record nor a closed month can be changed in the database itself.
    let (ok, said) = sql(url, "UPDATE allocation_interval SET cpu_milli = 1");
    assert!(!ok && said.contains("immutable"), "{said}");
    let (ok, said) = sql(url, "DELETE FROM allocation_interval");
    assert!(!ok && said.contains("never deleted"), "{said}");
    let (ok, said) = sql(url, "UPDATE charge_line SET amount_nanos = 0");
    assert!(!ok && said.contains("a closed period never changes"), "{said}");
    let (ok, said) = sql(
        url,
        "INSERT INTO charge_line (period, line_no, corrects, tenancy, namespace, hosted_service, organisation, \
         organisation_name, sector, cost_centre, charge, quantity, amount_nanos, rate_card) \
         VALUES ('2026-10', 99, '', 'x', 'x', '', 'x', 'x', 'x', 'x', 'cpu', '1', -1000000000, 'x')",
    );
    assert!(!ok && said.contains("a closed period never changes"), "nothing added to a closed month: {said}");
    // Someone who removes that protection and edits a line is found out, the line named.
    let drop = if url.starts_with("sqlite") {
        "DROP TRIGGER charge_line_immutable"
    } else {
        "DROP TRIGGER charge_line_immutable ON charge_line"
    };
    assert!(sql(url, drop).0);
    let (_, line) = sql(
        url,
        "SELECT line_no FROM charge_line WHERE period = '2026-10' AND tenancy = 'e2e-per-a' AND charge = 'cpu'",
    );
    let line = line.trim();
    assert!(
        sql(
            url,
            &format!("UPDATE charge_line SET amount_nanos = 1 WHERE period = '2026-10' AND line_no = {line}")
        )
        .0
    );
    let caught = ledger(&["verify"], url).unwrap_err();
    assert!(caught.contains(&format!("2026-10 line {line}: stored cpu 10 0.000000001")), "{caught}");
    assert!(caught.contains("recomputed cpu 10 10"), "{caught}");
    l.close().await;
}

#[tokio::test]
async fn months_close_in_order_never_change_and_verify_on_both_ledgers() {
    let client = client().await.unwrap();
    let card = json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "RateCard", "metadata": {"name": CARD},
        "spec": {"currency": "GBP", "effectiveFrom": "2026-09-01T00:00:00Z", "platformOverheadPercent": "10",
            "prices": {"cpuCoreHour": "1", "memoryGibHour": "0.5", "storageGibHour": "0", "loadBalancerHour": "0"}}
    });
    // Rate cards cannot be changed: one left by an earlier run is replaced.
    commons_e2e::ledgers::replace_rate_card(&client, card).await.unwrap();
    // VAT at 20% throughout, as in the examples.
    commons_e2e::ledgers::example_vat().unwrap();
    let dir = commons_e2e::measure::cluster_dir().join("e2e-periods");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A forecast prices a full quota for a month with the same code: October has 744 hours.
    let file = dir.join("tenancy.yaml");
    let tenancy = commons_e2e::tenancy_manifest(
        "e2e-forecast",
        &["apps"],
        json!({"quota": {"cpu": "2", "memory": "4Gi"}}),
    );
    std::fs::write(&file, serde_json::to_string(&tenancy).unwrap()).unwrap();
    let forecast =
        commons(&["forecast", "-f", file.to_str().unwrap(), "--month", "2026-10", "--json"]).unwrap();
    let f: serde_json::Value = serde_json::from_str(&forecast).unwrap();
    assert_eq!(f[0]["object"], "Tenancy/e2e-forecast");
    assert_eq!(
        f[0]["total"], "3928.32",
        "2 cores and 4 GiB for 744 h at 1 and 0.5, plus 10%, plus 20% VAT: {forecast}"
    );
    std::fs::write(
        &file,
        serde_json::to_string(&commons_e2e::tenancy_manifest(
            "e2e-forecast",
            &["apps"],
            json!({"quota": {"cpu": "two"}}),
        ))
        .unwrap(),
    )
    .unwrap();
    let refused = commons(&["forecast", "-f", file.to_str().unwrap()]).unwrap_err().to_string();
    assert!(
        refused.contains("Tenancy/e2e-forecast: spec.quota.cpu: \"two\" is not a Kubernetes quantity"),
        "{refused}"
    );
    exercise(&format!("sqlite://{}", dir.join("ledger.db").display())).await;
    exercise(&commons_e2e::ledgers::fresh_postgres("commons_e2e_periods").unwrap()).await;
    let _ = Api::<RateCard>::all(client).delete(CARD, &DeleteParams::default()).await;
}

/// A VAT rate published after a month closed taxes the months after it, never the closed one:
/// its corrections are rated with the VAT rates it closed with. (The tariffs are given to the
/// ledger code directly, as `commons ledger close` gives the cluster's, so the cluster's own VAT
/// rates are left alone.)
async fn vat_published_later(url: &str) {
    use commons_operator::metering::charges::Charge;
    use commons_operator::metering::periods::{self, Month};
    use commons_operator::metering::rating::{Card, Tariff, VatRate};
    use rust_decimal::Decimal;

    let l = Ledger::open(url).unwrap();
    l.migrate().await.unwrap();
    l.metering_since(ms("2026-09-01T00:00:00Z")).await.unwrap();
    let card = Card {
        name: "flat".into(),
        effective_from: "2026-01-01T00:00:00Z".parse().unwrap(),
        currency: "GBP".into(),
        cpu: Decimal::ONE,
        memory: Decimal::ZERO,
        storage: Decimal::ZERO,
        load_balancer: Decimal::ZERO,
        overhead_percent: Decimal::ZERO,
    };
    // Ten core-hours in September, ten in October.
    let now = Timestamp::now().as_millisecond();
    let sep = pod("e2e-vat-a", 1000, "2026-09-10T00:00:00Z");
    let oct = pod("e2e-vat-a", 1000, "2026-10-10T00:00:00Z");
    l.write(&[ended(sep, "2026-09-10T10:00:00Z"), ended(oct, "2026-10-10T10:00:00Z")], Some(now), now)
        .await
        .unwrap();
    let september = Month::parse("2026-09").unwrap();
    let october = Month::parse("2026-10").unwrap();
    let closed = periods::close(&l, &september, &Tariff::of_cards(vec![card.clone()]), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(closed.total_nanos, 10_000_000_000, "10.00, no VAT yet");
    // Then VAT at 20% is published, from before September.
    let vat = VatRate {
        name: "late".into(),
        effective_from: "2026-01-01T00:00:00Z".parse().unwrap(),
        percent: Decimal::from(20),
    };
    let with_vat = Tariff { cards: vec![card], vat: vec![vat] };
    periods::close(&l, &october, &with_vat, Timestamp::now()).await.unwrap();
    let (lines, _) = periods::lines(&l, &october, october.until, &with_vat).await.unwrap();
    let vat_for = |corrects: &str| -> Decimal {
        lines.iter().filter(|x| x.charge == Charge::Vat && x.corrects == corrects).map(|x| x.amount).sum()
    };
    assert_eq!(vat_for(""), Decimal::new(200, 2), "October is taxed: 20% of 10.00");
    assert_eq!(
        vat_for("2026-09"),
        Decimal::ZERO,
        "September, closed without VAT, is not taxed later: {lines:#?}"
    );
    assert!(periods::verify(&l, &l.closed_periods().await.unwrap()[1]).await.unwrap().is_empty());
    l.close().await;
}

#[tokio::test]
async fn a_vat_rate_published_later_never_taxes_a_closed_month_on_both_ledgers() {
    let dir = commons_e2e::measure::cluster_dir().join("e2e-periods-vat");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    vat_published_later(&format!("sqlite://{}", dir.join("ledger.db").display())).await;
    vat_published_later(&commons_e2e::ledgers::fresh_postgres("commons_e2e_periods_vat").unwrap()).await;
}
