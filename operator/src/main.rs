//! `commons`: the Commons control plane's one binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commons_operator::admission::registration::Endpoint;
use commons_operator::{catalogue_cmd, crds_cmd, reachability_cmd, run};
use tracing_subscriber::EnvFilter;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Commons: the control plane of a shared government cloud.
#[derive(Debug, Parser)]
#[command(name = "commons", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print every Commons CRD as YAML (pipe to `kubectl apply --server-side -f -`), or write or
    /// check one file per CRD in a directory.
    Crds {
        /// Write one `<plural>.commons.dev.yaml` per CRD into this directory.
        #[arg(long, value_name = "DIR", conflicts_with = "check")]
        output_dir: Option<PathBuf>,
        /// Exit non-zero, naming the files, when DIR differs from what the types generate.
        #[arg(long, value_name = "DIR")]
        check: Option<PathBuf>,
    },
    /// Print who can reach whom, evaluated from the NetworkPolicies, namespaces and pods in the
    /// cluster (real NetworkPolicy semantics): tenancy to tenancy, or service to service.
    Reachability {
        /// Service to service (pods labelled commons.dev/hosted-service, else app) instead of
        /// tenancy to tenancy.
        #[arg(long)]
        services: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the catalogue (the applications store) from the cluster: each published
    /// HostedService, its provider, classification and ports, and how many tenancies use it
    /// shared and as instances of their own.
    Catalogue {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a month's spend from the ledger, priced with the cluster's rate cards: per tenancy,
    /// organisation, sector, cost centre or hosted service, each line rounded once to the
    /// currency's minor unit, the platform overhead a line of its own. A month still running is
    /// reported until now (month to date).
    Report {
        /// The month, `YYYY-MM` (UTC).
        #[arg(long, required_unless_present = "year", conflicts_with = "year")]
        period: Option<String>,
        /// A whole year instead, month by month (`--format table|json|csv|svg`), with the services
        /// each group shares: what each part of government spends.
        #[arg(long)]
        year: Option<i16>,
        /// tenancy, organisation, sector, cost-centre or service.
        #[arg(long, default_value = "tenancy")]
        by: String,
        /// With `--period`: the sharing-savings report instead: for each shared service, what it
        /// cost, what its consumers paid, and what each would have paid running its own copy.
        #[arg(long, conflicts_with = "year")]
        savings: bool,
        /// table, json, csv, focus (FinOps FOCUS 1.3 Cost and Usage CSV, one row per charge line;
        /// `--by` does not apply) or, with `--year`, svg (a chart of the months).
        #[arg(long, default_value = "table")]
        format: String,
        /// The ledger: `sqlite://PATH` or `postgres://USER@HOST/DB`.
        #[arg(long, env = "COMMONS_LEDGER", default_value = "sqlite://commons-ledger.db")]
        ledger: String,
    },
    /// The monthly cost of each Tenancy's quota, TenancyRequest's quota or HostedService in a YAML
    /// file if all of it were held all month, priced by the same code as bills with the cluster's
    /// rate cards (a scheduled price change included).
    Forecast {
        /// The YAML file (several documents allowed).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// The month to price, `YYYY-MM` (default: next month).
        #[arg(long)]
        month: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Close a month, verify closed months against the raw intervals, or list them.
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
        /// The ledger: `sqlite://PATH` or `postgres://USER@HOST/DB`.
        #[arg(long, global = true, env = "COMMONS_LEDGER", default_value = "sqlite://commons-ledger.db")]
        ledger: String,
    },
    /// API keys for machine clients (a finance system pulling reports nightly): make one (printed
    /// once; only its hash is kept), list them without secrets, revoke one.
    Apikey {
        #[command(subcommand)]
        action: ApikeyAction,
        /// Where keys are kept: the ledger's database, `sqlite://PATH` or `postgres://USER@HOST/DB`.
        #[arg(long, global = true, env = "COMMONS_LEDGER", default_value = "sqlite://commons-ledger.db")]
        ledger: String,
    },
    /// Run the meter alone (no controllers, no webhook) against the cluster in KUBECONFIG,
    /// recording into one ledger: what `commons run` records, for a second ledger or a cluster
    /// whose controllers run elsewhere.
    Meter {
        /// Where health, readiness (`/readyz/metering`) and metrics are served.
        #[arg(long, env = "COMMONS_METER_LISTEN", default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// The ledger: `sqlite://PATH` or `postgres://USER@HOST/DB`.
        #[arg(long, env = "COMMONS_LEDGER")]
        ledger: String,
        /// Log as JSON lines.
        #[arg(long, env = "COMMONS_LOG_JSON")]
        log_json: bool,
    },
    /// Run the operator and the API in one process against the cluster in KUBECONFIG (or the
    /// in-cluster service account).
    Run {
        /// Address the API listens on.
        #[arg(long, env = "COMMONS_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// How often every object is reconciled again even when nothing changed, in seconds.
        #[arg(long, env = "COMMONS_RESYNC_SECONDS", default_value_t = 300)]
        resync_seconds: u64,
        /// Log as JSON lines instead of text.
        #[arg(long, env = "COMMONS_LOG_JSON")]
        log_json: bool,
        /// Serve the quota admission webhook (HTTPS) on this address, and register it with the
        /// apiserver. Without it the tenancy quota rests on ResourceQuota shares alone.
        #[arg(long, env = "COMMONS_WEBHOOK_LISTEN", requires = "webhook_cert_dir")]
        webhook_listen: Option<SocketAddr>,
        /// Directory with the webhook's tls.crt, tls.key and ca.crt (a kubernetes.io/tls Secret).
        #[arg(long, env = "COMMONS_WEBHOOK_CERT_DIR", value_name = "DIR")]
        webhook_cert_dir: Option<PathBuf>,
        /// How the apiserver reaches the webhook: a base URL (https://host:port) or a Service as
        /// service:NAMESPACE/NAME:PORT. Defaults to https://<--webhook-listen>.
        #[arg(long, env = "COMMONS_WEBHOOK_ENDPOINT", value_name = "URL|service:NS/NAME:PORT")]
        webhook_endpoint: Option<String>,
        /// The CA (PEM) of the client certificate the apiserver presents to admission webhooks:
        /// the webhook serves no other client. Use a CA that signs nothing else (see
        /// docs/tenancy.md, "Only the apiserver calls the webhook").
        #[arg(long, env = "COMMONS_WEBHOOK_CLIENT_CA", value_name = "FILE")]
        webhook_client_ca: Option<PathBuf>,
        /// Serve the webhook to any client, without a client certificate: only where the
        /// apiserver cannot be configured to present one, and its port is reachable from the
        /// control plane alone.
        #[arg(long, env = "COMMONS_WEBHOOK_INSECURE_ANY_CLIENT", conflicts_with = "webhook_client_ca")]
        webhook_insecure_any_client: bool,
        /// Registries (optionally with a path, comma-separated) container images may come from in
        /// tenancies whose spec.allowed.registries is absent, for example
        /// `registry.k8s.io,ghcr.io/our-org`. Without it, any registry. Enforced by the webhook.
        #[arg(long, env = "COMMONS_ALLOWED_REGISTRIES", value_delimiter = ',', value_parser = registry)]
        allowed_registries: Option<Vec<String>>,
        /// The cluster's pod and service networks (CIDRs, comma-separated), for example
        /// `10.244.0.0/16,10.96.0.0/12`: NetworkSegments' egress and ingress ranges that cover
        /// one have it cut out (and a range inside one is not applied), since on CNIs that apply
        /// ipBlock to pod addresses `0.0.0.0/0` would open every pod. Reported on the segment.
        #[arg(long, env = "COMMONS_CLUSTER_NETWORKS", value_delimiter = ',', value_parser = cluster_network)]
        cluster_networks: Vec<commons_operator::reachability::Cidr>,
        /// The ledger metering is kept in: `sqlite://PATH` (a file, made if missing; the default,
        /// beside Commons) or `postgres://USER@HOST/DB` for production and more than one replica.
        #[arg(long, env = "COMMONS_LEDGER", default_value = "sqlite://commons-ledger.db")]
        ledger: String,
        /// Days after a month ends that Commons closes it (its lines never change after; what is
        /// learned later becomes a correction in the next month). 0 closes at once.
        #[arg(long, env = "COMMONS_CLOSE_AFTER_DAYS", default_value_t = 5)]
        close_after_days: u32,
        /// How often each tenancy's spend this month is measured from the ledger and weighed
        /// against its budget (the BudgetExceeded condition, threshold Events, spend metrics).
        #[arg(long, env = "COMMONS_BUDGET_SECONDS", default_value_t = 300)]
        budget_seconds: u64,
        /// Run more than one replica: only the one holding the coordination Lease runs the
        /// controllers, the meter and the quota webhook; every replica serves the API. A replica
        /// that loses the Lease starts itself again in place (same process id), as a follower.
        #[arg(long, env = "COMMONS_LEADER_ELECT")]
        leader_elect: bool,
        /// The namespace of the leader Lease (`commons-leader`).
        #[arg(long, env = "COMMONS_LEADER_NAMESPACE", default_value = "commons-system")]
        leader_namespace: String,
        /// This replica's identity in the Lease: its Pod's name in a cluster (POD_NAME), else the
        /// host name and process id.
        #[arg(long, env = "POD_NAME")]
        leader_identity: Option<String>,
        /// How long a Lease not renewed stays its holder's, in seconds, 6 to 300 (the holder
        /// stops leading after two thirds of it without a renewal).
        #[arg(long, env = "COMMONS_LEADER_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(6..=300))]
        leader_lease_seconds: u64,
        #[command(flatten)]
        api: Box<commons_operator::api_settings::ApiFlags>,
    },
}

#[derive(Debug, Subcommand)]
enum LedgerAction {
    /// Close a month (`YYYY-MM`) now, with the cluster's rate cards: its lines are stored and never
    /// change; what is learned about it later is a correction in the next month closed. Months
    /// close in order, once ended.
    Close {
        /// The month, `YYYY-MM`.
        period: String,
    },
    /// Rate every closed month (or one) again from the raw intervals as they were known when it
    /// closed, with the rate cards it closed with; fail, naming each line, unless all agree.
    Verify {
        /// Only this month.
        #[arg(long)]
        period: Option<String>,
    },
    /// List the closed months.
    Periods,
}

#[derive(Debug, Subcommand)]
enum ApikeyAction {
    /// Make a key and print it (once).
    Create {
        /// The organisation the key acts for (a Tenancy's spec.organisation.id).
        #[arg(long)]
        organisation: String,
        /// requester, finance, finance-central or platform-admin; what each may do is RBAC's
        /// (docs/api.md).
        #[arg(long)]
        role: String,
        /// How long the key lives: `90d`, `12h`, `30m`, `45s` (at most 366d).
        #[arg(long, default_value = "90d")]
        expires: String,
        /// What the key is for, shown in listings.
        #[arg(long, default_value = "")]
        description: String,
        /// Who makes it, for the record (default: the user running the command).
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
    },
    /// List every key: id, organisation, role, state (active, expired, revoked), never the key.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id: it is refused from then on.
    Revoke {
        /// The key's id (the part after `cmk_`, as `list` shows it).
        id: String,
        /// Who revokes it, for the record.
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
    },
}

/// Runs a one-shot command's future on a runtime of its own.
fn block_on<T>(
    future: impl std::future::Future<Output = commons_operator::Result<T>>,
) -> commons_operator::Result<T> {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(future),
        Err(source) => Err(commons_operator::Error::Io {
            action: "cannot start the async runtime",
            path: PathBuf::new(),
            source,
        }),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Crds { output_dir: Some(dir), .. } => crds_cmd::write(&dir).map(|files| {
            for f in files {
                println!("wrote {}", dir.join(f).display());
            }
        }),
        Command::Crds { check: Some(dir), .. } => {
            crds_cmd::check(&dir).map(|()| println!("{} is up to date", dir.display()))
        }
        Command::Crds { .. } => crds_cmd::print().map(|yaml| print!("{yaml}")),
        Command::Reachability { services, json } => {
            block_on(reachability_cmd::run(services, json)).map(|out| println!("{out}"))
        }
        Command::Catalogue { json } => block_on(catalogue_cmd::run(json)).map(|out| println!("{out}")),
        Command::Report { period, year, by, savings, format, ledger } => match (period, year) {
            (_, Some(year)) => block_on(commons_operator::annual_cmd::run(year, &by, &format, &ledger)),
            (Some(period), None) if savings => {
                block_on(commons_operator::savings_cmd::run(&period, &format, &ledger))
            }
            (Some(period), None) => {
                block_on(commons_operator::report_cmd::run(&period, &by, &format, &ledger))
            }
            (None, None) => Err(commons_operator::Error::Invalid("--period or --year is required".into())),
        }
        .map(|out| print!("{out}")),
        Command::Forecast { file, month, json } => {
            block_on(commons_operator::forecast_cmd::run(&file, month.as_deref(), json))
                .map(|out| print!("{out}"))
        }
        Command::Ledger { action, ledger } => {
            let out = match action {
                LedgerAction::Close { period } => {
                    block_on(commons_operator::ledger_cmd::close(&period, &ledger))
                }
                LedgerAction::Verify { period } => {
                    block_on(commons_operator::ledger_cmd::verify(period.as_deref(), &ledger))
                }
                LedgerAction::Periods => block_on(commons_operator::ledger_cmd::list(&ledger)),
            };
            out.map(|text| print!("{text}"))
        }
        Command::Apikey { action, ledger } => {
            use commons_operator::apikey_cmd;
            let out = match action {
                ApikeyAction::Create { organisation, role, expires, description, by } => {
                    let request = apikey_cmd::NewKeyRequest {
                        organisation: &organisation,
                        role: &role,
                        expires: &expires,
                        description: &description,
                        by: &by,
                    };
                    block_on(apikey_cmd::create(&request, &ledger))
                }
                ApikeyAction::List { json } => block_on(apikey_cmd::list(&ledger, json)),
                ApikeyAction::Revoke { id, by } => block_on(apikey_cmd::revoke(&id, &by, &ledger)),
            };
            out.map(|text| print!("{text}"))
        }
        Command::Meter { listen, ledger, log_json } => {
            init_tracing(log_json);
            match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt.block_on(commons_operator::meter_cmd::run(&ledger, listen)),
                Err(source) => Err(commons_operator::Error::Io {
                    action: "cannot start the async runtime",
                    path: PathBuf::new(),
                    source,
                }),
            }
        }
        Command::Run {
            listen,
            resync_seconds,
            log_json,
            webhook_listen,
            webhook_cert_dir,
            webhook_endpoint,
            webhook_client_ca,
            webhook_insecure_any_client,
            allowed_registries,
            cluster_networks,
            ledger,
            close_after_days,
            budget_seconds,
            leader_elect,
            leader_namespace,
            leader_identity,
            leader_lease_seconds,
            api,
        } => {
            init_tracing(log_json);
            let webhook = match webhook_settings(
                webhook_listen,
                webhook_cert_dir,
                webhook_endpoint.as_deref(),
                webhook_client_ca,
                webhook_insecure_any_client,
            ) {
                Ok(webhook) => webhook,
                Err(e) => {
                    eprintln!("commons: {e}");
                    return ExitCode::from(2);
                }
            };
            match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt.block_on(run::run(run::Settings {
                    listen,
                    resync: std::time::Duration::from_secs(resync_seconds.max(1)),
                    webhook,
                    policy: commons_operator::admission::Settings { default_registries: allowed_registries },
                    cluster_networks,
                    ledger,
                    close_after_days,
                    budget_every: std::time::Duration::from_secs(budget_seconds.max(1)),
                    api: *api,
                    leader: leader_elect.then(|| {
                        let identity = leader_identity.unwrap_or_else(|| {
                            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "commons".into());
                            format!("{host}-{}", std::process::id())
                        });
                        commons_operator::leadership::Settings::with_duration(
                            &leader_namespace,
                            LEADER_LEASE,
                            &identity,
                            std::time::Duration::from_secs(leader_lease_seconds),
                        )
                    }),
                })),
                Err(source) => Err(commons_operator::Error::Io {
                    action: "cannot start the async runtime",
                    path: PathBuf::new(),
                    source,
                }),
            }
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("commons: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The name of the coordination Lease the replicas of `commons run --leader-elect` share.
const LEADER_LEASE: &str = "commons-leader";

/// The webhook's settings from `commons run`'s flags: none without `--webhook-listen`; a client CA
/// (or the explicit `--webhook-insecure-any-client`) required with it.
fn webhook_settings(
    listen: Option<SocketAddr>,
    cert_dir: Option<PathBuf>,
    endpoint: Option<&str>,
    client_ca: Option<PathBuf>,
    any_client: bool,
) -> Result<Option<run::WebhookSettings>, String> {
    let (Some(listen), Some(cert_dir)) = (listen, cert_dir) else {
        return Ok(None);
    };
    if client_ca.is_none() && !any_client {
        return Err("--webhook-client-ca is required with --webhook-listen: the CA of the client certificate the apiserver presents to webhooks (or --webhook-insecure-any-client, see docs/tenancy.md)".into());
    }
    let endpoint =
        endpoint.map(parse_endpoint).transpose().map_err(|e| format!("--webhook-endpoint: {e}"))?;
    Ok(Some(run::WebhookSettings {
        listen,
        cert_dir,
        endpoint: endpoint.unwrap_or_else(|| Endpoint::Url(format!("https://{listen}"))),
        client_ca,
    }))
}

/// One `--allowed-registries` entry: a registry host, optionally with a port and a path.
fn registry(s: &str) -> Result<String, String> {
    commons_operator::policy::image::valid_registry(s.trim()).map(str::to_owned)
}

/// One `--cluster-networks` entry: a CIDR.
fn cluster_network(s: &str) -> Result<commons_operator::reachability::Cidr, String> {
    commons_operator::reachability::Cidr::parse(s.trim())
        .ok_or_else(|| format!("{s:?} is not a CIDR (for example 10.244.0.0/16)"))
}

/// `https://...` or `service:NAMESPACE/NAME:PORT`.
fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    if let Some(svc) = s.strip_prefix("service:") {
        let (namespace, rest) = svc.split_once('/').ok_or("expected service:NAMESPACE/NAME:PORT")?;
        let (name, port) = rest.split_once(':').ok_or("expected service:NAMESPACE/NAME:PORT")?;
        let port: i32 = port.parse().map_err(|_| format!("{port:?} is not a port number"))?;
        if namespace.is_empty() || name.is_empty() || !(1..=65535).contains(&port) {
            return Err("expected service:NAMESPACE/NAME:PORT with a port from 1 to 65535".into());
        }
        return Ok(Endpoint::Service { namespace: namespace.into(), name: name.into(), port });
    }
    if s.starts_with("https://") {
        Ok(Endpoint::Url(s.to_owned()))
    } else {
        Err(format!(
            "{s:?}: the apiserver calls webhooks over HTTPS only (https://...), or give service:NS/NAME:PORT"
        ))
    }
}

fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_webhook_serves_only_the_apiserver_unless_told_otherwise() {
        let listen: SocketAddr = "127.0.0.1:18443".parse().unwrap();
        let dir = || Some(PathBuf::from("/certs"));
        // Served with neither a client CA nor the explicit opt-out: refused, naming the flag.
        let refused = webhook_settings(Some(listen), dir(), None, None, false).unwrap_err();
        assert!(refused.contains("--webhook-client-ca is required"), "{refused}");
        let ca = webhook_settings(Some(listen), dir(), None, Some("/ca.crt".into()), false).unwrap().unwrap();
        assert_eq!(ca.client_ca, Some(PathBuf::from("/ca.crt")));
        assert_eq!(ca.endpoint, Endpoint::Url("https://127.0.0.1:18443".into()));
        let anyone = webhook_settings(Some(listen), dir(), None, None, true).unwrap().unwrap();
        assert_eq!(anyone.client_ca, None);
        // No webhook, no requirement.
        assert!(webhook_settings(None, None, None, None, false).unwrap().is_none());
        let bad = webhook_settings(Some(listen), dir(), Some("http://x"), Some("/ca.crt".into()), false);
        assert!(bad.unwrap_err().starts_with("--webhook-endpoint:"));
        // Both at once is a contradiction the command line refuses.
        let both = Cli::try_parse_from([
            "commons",
            "run",
            "--webhook-client-ca",
            "/ca.crt",
            "--webhook-insecure-any-client",
        ]);
        assert!(both.unwrap_err().to_string().contains("cannot be used with"));
    }
}
