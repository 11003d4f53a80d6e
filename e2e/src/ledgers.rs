//! What the metering tests and benchmark share: fresh databases on the PostgreSQL the scripts run
//! (e2e/postgres.sh), and rate cards replaced whole (a card cannot be changed once written).

use std::process::Command;
use std::time::Duration;

use commons_crds::RateCard;
use kube::api::DeleteParams;
use kube::{Api, Client};

use crate::E2eError;

/// Debian's psql for PostgreSQL 15.
pub const PSQL: &str = "/usr/lib/postgresql/15/bin/psql";

/// Runs one statement against `url` with psql.
pub fn psql(url: &str, sql: &str) -> Result<(), E2eError> {
    let out = Command::new(PSQL)
        .args([url, "-qAtc", sql])
        .output()
        .map_err(|source| E2eError::Spawn { cmd: "psql".into(), source })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(E2eError::Command {
            cmd: sql.into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        })
    }
}

/// A fresh database `name` on the server COMMONS_E2E_POSTGRES names, and its URL.
pub fn fresh_postgres(name: &str) -> Result<String, E2eError> {
    let admin = std::env::var("COMMONS_E2E_POSTGRES").map_err(|_| {
        E2eError::Timeout(Duration::ZERO, "COMMONS_E2E_POSTGRES (set by e2e/postgres.sh)".into())
    })?;
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    psql(&admin, &format!("CREATE DATABASE {name}"))?;
    Ok(admin.rsplit_once('/').map(|(server, _)| format!("{server}/{name}")).unwrap_or(admin))
}

/// Applies the example VAT rate (`docs/examples/vat-rates.yaml`: 20% from the start of 2026), as
/// the README's first command does, so tests that check amounts know the VAT in force.
pub fn example_vat() -> Result<(), E2eError> {
    let file = crate::repo_root().join("docs/examples/vat-rates.yaml");
    crate::kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=commons-examples",
        "-f",
        file.to_str().unwrap_or_default(),
    ])?;
    Ok(())
}

/// Makes rate card `card` (JSON), first deleting one of the same name left by an earlier run.
pub async fn replace_rate_card(client: &Client, card: serde_json::Value) -> Result<(), E2eError> {
    let name = card["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let api = Api::<RateCard>::all(client.clone());
    let _ = api.delete(&name, &DeleteParams::default()).await;
    crate::wait_for(&format!("earlier rate card {name} gone"), Duration::from_secs(30), || async {
        api.get_opt(&name).await.ok()?.is_none().then_some(())
    })
    .await?;
    crate::apply_raw::<RateCard>(client, None, card).await?;
    Ok(())
}

/// Every interval of the running operator's ledger (the one `COMMONS_LEDGER` names) for the
/// object `uid`, by start.
pub async fn intervals_of(uid: &str) -> Result<Vec<commons_operator::ledger::Interval>, String> {
    use futures::StreamExt;
    let url =
        std::env::var("COMMONS_LEDGER").map_err(|_| "COMMONS_LEDGER is not set (e2e/commons.sh sets it)")?;
    let ledger = commons_operator::ledger::Ledger::open_to_read(&url).map_err(|e| format!("{url}: {e}"))?;
    let mut all: Vec<commons_operator::ledger::Interval> = ledger
        .overlapping(0, i64::MAX)
        .filter_map(|i| std::future::ready(i.ok()))
        .filter(|i| std::future::ready(i.uid == uid))
        .collect()
        .await;
    ledger.close().await;
    all.sort_by_key(|i| i.start_ms);
    Ok(all)
}
