//! Benchmark: requests per second and p99 latency of the REST API's usage route and its
//! request-create route, measured with a real load generator (vegeta, built from the Go module
//! proxy into $COMMONS_CACHE/bin on first use) against the running `commons` (COMMONS_LISTEN,
//! default 127.0.0.1:18080) and its ledger (COMMONS_LEDGER).
//!
//! `cargo run --release -p commons-e2e --bin bench-api -- [SECONDS] [WORKERS]` (defaults 10 and
//! 16). Each route is attacked as fast as WORKERS connections allow for SECONDS, spread over 20
//! API keys so the per-client rate limit is not what is measured. The usage route reads this
//! month by organisation as central finance; the create route makes TenancyRequests for the
//! organisation `bench-council` (none matches the auto-approval policy: they stay pending), which
//! are deleted afterwards, and the keys revoked.

use std::path::PathBuf;
use std::process::Command;

use commons_e2e::api::{api_key, ledger};
use commons_e2e::{E2eError, commons, kubectl};
use serde_json::Value;

const VEGETA: &str = "github.com/tsenart/vegeta/v12@v12.13.0";
const KEYS: usize = 20;

fn cache() -> PathBuf {
    std::env::var_os("COMMONS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/commons"))
}

/// vegeta, built once with `go install`.
fn vegeta() -> Result<PathBuf, E2eError> {
    let dir = cache().join("bin/vegeta-v12.13.0");
    let bin = dir.join("vegeta");
    if !bin.exists() {
        eprintln!("building {VEGETA} (once) ...");
        let out = Command::new("go")
            .args(["install", VEGETA])
            .env("GOBIN", &dir)
            .output()
            .map_err(|source| E2eError::Spawn { cmd: "go install vegeta".into(), source })?;
        if !out.status.success() {
            return Err(E2eError::Command {
                cmd: format!("go install {VEGETA}"),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
    }
    Ok(bin)
}

fn keys(organisation: &str, role: &str) -> Result<Vec<String>, E2eError> {
    (0..KEYS).map(|i| api_key(organisation, role, &format!("bench-api {i}"), "bench-api")).collect()
}

fn revoke(keys: &[String]) {
    for key in keys {
        if let Some(id) = key.strip_prefix("cmk_").and_then(|k| k.split('_').next()) {
            let _ = commons(&["apikey", "revoke", id, "--by", "bench-api", "--ledger", &ledger()]);
        }
    }
}

/// Attacks `targets` (vegeta's HTTP format) for `seconds` with `workers` connections, as fast as
/// they go; vegeta's JSON report.
fn attack(name: &str, targets: &str, seconds: u64, workers: usize) -> Result<Value, E2eError> {
    let dir = std::env::temp_dir().join(format!("bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| E2eError::Spawn { cmd: "mkdir".into(), source })?;
    let file = dir.join(format!("{name}.targets"));
    std::fs::write(&file, targets)
        .map_err(|source| E2eError::Spawn { cmd: "write targets".into(), source })?;
    let results = dir.join(format!("{name}.bin"));
    let bin = vegeta()?;
    let status = Command::new(&bin)
        .args(["attack", "-rate=0", &format!("-max-workers={workers}"), &format!("-workers={workers}")])
        .arg(format!("-duration={seconds}s"))
        .arg(format!("-targets={}", file.display()))
        .arg(format!("-output={}", results.display()))
        .current_dir(&dir)
        .status()
        .map_err(|source| E2eError::Spawn { cmd: "vegeta attack".into(), source })?;
    if !status.success() {
        return Err(E2eError::Command {
            cmd: "vegeta attack".into(),
            status: status.to_string(),
            stderr: String::new(),
        });
    }
    let out = Command::new(&bin)
        .args(["report", "-type=json"])
        .arg(&results)
        .output()
        .map_err(|source| E2eError::Spawn { cmd: "vegeta report".into(), source })?;
    serde_json::from_slice(&out.stdout).map_err(E2eError::from)
}

fn print(route: &str, report: &Value) {
    let ms = |ns: &Value| ns.as_f64().unwrap_or(0.0) / 1e6;
    println!(
        "{route:<34} {:>9.1} req/s  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  success {:>5.1}%  {} requests  codes {}",
        report["throughput"].as_f64().unwrap_or(0.0),
        ms(&report["latencies"]["50th"]),
        ms(&report["latencies"]["99th"]),
        ms(&report["latencies"]["max"]),
        report["success"].as_f64().unwrap_or(0.0) * 100.0,
        report["requests"],
        report["status_codes"],
    );
}

fn main() -> Result<(), E2eError> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let base =
        format!("http://{}", std::env::var("COMMONS_LISTEN").unwrap_or_else(|_| "127.0.0.1:18080".into()));
    let month = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    println!("REST API, {seconds} s per route, {workers} connections, {KEYS} API keys");

    let finance = keys("northshire-county-council", "finance-central")?;
    let targets: String = finance
        .iter()
        .map(|k| format!("GET {base}/v1/usage?period={month}&by=organisation\nAuthorization: Bearer {k}\n\n"))
        .collect();
    let usage = attack("usage", &targets, seconds, workers);
    revoke(&finance);
    print("GET /v1/usage (this month)", &usage?);

    let requesters = keys("bench-council", "requester")?;
    let body = std::env::temp_dir().join(format!("bench-api-{}-body.json", std::process::id()));
    let request = serde_json::json!({
        "tenancyName": "bench-request",
        "justification": "a benchmark of the request-create route",
        "tenancy": {
            "organisation": {"id": "bench-council", "displayName": "Bench Council", "sector": "local-government",
                             "costCentre": "BENCH-1", "contactEmail": "bench@council.example.gov.uk"},
            "owners": [{"kind": "User", "name": "bench@council.example.gov.uk"}],
            "namespaces": [{"name": "app"}],
            "quota": {"cpu": "2", "memory": "4Gi"}
        }
    });
    std::fs::write(&body, request.to_string())
        .map_err(|source| E2eError::Spawn { cmd: "write body".into(), source })?;
    let targets: String = requesters
        .iter()
        .map(|k| {
            format!(
                "POST {base}/v1/tenancy-requests\nAuthorization: Bearer {k}\nContent-Type: application/json\n@{}\n\n",
                body.display()
            )
        })
        .collect();
    let create = attack("create", &targets, seconds, workers);
    revoke(&requesters);
    let cleaned = kubectl(&[
        "delete",
        "tenancyrequests",
        "-n",
        "commons-requests",
        "-l",
        "commons.dev/organisation=bench-council",
        "--wait=false",
    ]);
    print("POST /v1/tenancy-requests", &create?);
    println!(
        "cleaned up: {}",
        cleaned.map(|o| o.lines().count().to_string()).unwrap_or_else(|e| e.to_string())
    );
    Ok(())
}
