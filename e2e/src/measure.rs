//! What the benchmarks read of the running processes: the operator's metrics, its memory, and the
//! CPU each process of the local control plane has used.

use std::path::PathBuf;
use std::process::Command;

use crate::E2eError;

/// The operator's metrics page (`COMMONS_LISTEN`, default 127.0.0.1:18080), as text.
fn metrics_page() -> Result<String, E2eError> {
    let listen = std::env::var("COMMONS_LISTEN").unwrap_or_else(|_| "127.0.0.1:18080".into());
    let url = format!("http://{listen}/metrics");
    let out = Command::new("curl")
        .args(["-fsS", &url])
        .output()
        .map_err(|source| E2eError::Spawn { cmd: format!("curl {url}"), source })?;
    if !out.status.success() {
        return Err(E2eError::Command {
            cmd: format!("curl {url}"),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fetches the operator's metrics page (`COMMONS_LISTEN`, default 127.0.0.1:18080) and returns the
/// value of the first sample whose line starts with `prefix`, or 0 when there is none.
pub fn operator_metric(prefix: &str) -> Result<f64, E2eError> {
    let text = metrics_page()?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
        .sum())
}

/// Every sample of the operator's metrics whose line starts with `prefix`, by its labels (the text
/// between the braces).
pub fn operator_samples(prefix: &str) -> Result<std::collections::BTreeMap<String, f64>, E2eError> {
    let text = metrics_page()?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let labels =
                l.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map_or("", |(inner, _)| inner);
            let value = l.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((labels.to_owned(), value))
        })
        .collect())
}

/// CPU seconds (user and system) each process of the local control plane and `commons` has used
/// since it started, by name (`etcd`, `kube-apiserver`, `commons`, ...; from /proc, as the pid
/// files of the local scripts name them).
pub fn cpu_seconds() -> Result<std::collections::BTreeMap<String, f64>, E2eError> {
    let pids = cluster_dir().join("pids");
    let entries = std::fs::read_dir(&pids)
        .map_err(|source| E2eError::Spawn { cmd: format!("read {}", pids.display()), source })?;
    // Clock ticks per second: 100 on every Linux this runs on (USER_HZ).
    const TICKS: f64 = 100.0;
    let mut out = std::collections::BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".pid"))
        else {
            continue;
        };
        let Ok(pid) = std::fs::read_to_string(&path) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) else { continue };
        // Fields after the command (which may hold spaces) closing with ')': utime and stime are
        // the 12th and 13th of them.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.insert(name.to_owned(), (tick(11) + tick(12)) / TICKS);
    }
    Ok(out)
}

/// The CPU seconds each process used between two [`cpu_seconds`] readings, as `name 1.2s, ...`.
pub fn cpu_used(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) -> String {
    after
        .iter()
        .map(|(name, t)| format!("{name} {:.1}s", t - before.get(name).copied().unwrap_or(0.0)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The local control plane's state directory (COMMONS_CLUSTER_DIR).
pub fn cluster_dir() -> PathBuf {
    std::env::var("COMMONS_CLUSTER_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/commons/cluster")
    })
}

/// The operator's memory, in MiB, from /proc.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub resident: f64,
    /// Resident at the peak since it started (`VmHWM`).
    pub peak: f64,
    /// Of `resident`, the process's own memory (`RssAnon`: its heap, stacks and allocator).
    pub anonymous: f64,
    /// Of `resident`, pages of files it maps (`RssFile`: mostly its own code, clean and shared
    /// with the page cache).
    pub file: f64,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} MiB resident ({:.1} MiB its own, {:.1} MiB mapped from files: its code), {:.1} MiB peak since it started",
            self.resident, self.anonymous, self.file, self.peak
        )
    }
}

fn read(path: PathBuf) -> Result<String, E2eError> {
    std::fs::read_to_string(&path)
        .map_err(|source| E2eError::Spawn { cmd: format!("read {}", path.display()), source })
}

/// The pid of the `commons` process the local scripts run.
fn operator_pid() -> Result<String, E2eError> {
    Ok(read(cluster_dir().join("pids/commons.pid"))?.trim().to_owned())
}

/// The memory of the `commons` process the local scripts run, from /proc.
pub fn operator_memory_mib() -> Result<Memory, E2eError> {
    let status = read(PathBuf::from(format!("/proc/{}/status", operator_pid()?)))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    Ok(Memory {
        resident: field("VmRSS:"),
        peak: field("VmHWM:"),
        anonymous: field("RssAnon:"),
        file: field("RssFile:"),
    })
}

/// The connections the `commons` process the local scripts run holds open to the apiserver
/// (`APISERVER_PORT`, default 16443): its sockets (from /proc/PID/fd) that /proc/PID/net/tcp
/// shows established to that port.
pub fn operator_connections() -> Result<usize, E2eError> {
    let port: u16 = std::env::var("APISERVER_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(16443);
    let pid = operator_pid()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|source| E2eError::Spawn { cmd: format!("read /proc/{pid}/fd"), source })?;
    let sockets: std::collections::HashSet<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut count = 0;
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else { continue };
        count += established_to(&text, port, &sockets);
    }
    Ok(count)
}

/// Of the sockets in a /proc/net/tcp table, those in `inodes` established to remote `port`.
fn established_to(table: &str, port: u16, inodes: &std::collections::HashSet<String>) -> usize {
    const ESTABLISHED: &str = "01";
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields.get(2).and_then(|r| r.rsplit_once(':')).map(|(_, p)| p);
            remote_port.and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port)
                && fields.get(3) == Some(&ESTABLISHED)
                && fields.get(9).is_some_and(|inode| inodes.contains(*inode))
        })
        .count()
}

/// The requests the apiserver has answered so far from every client (`apiserver_request_total`
/// on its own metrics page), by verb and resource: `POST namespaces`, `PATCH tenancies/status`.
pub fn apiserver_requests() -> Result<std::collections::BTreeMap<String, f64>, E2eError> {
    let text = crate::kubectl(&["get", "--raw", "/metrics"])?;
    Ok(requests_by_verb(&text))
}

/// [`apiserver_requests`] from the text of a metrics page.
fn requests_by_verb(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let Some((labels, value)) = line.split_once('{').and_then(|(_, rest)| rest.rsplit_once("} ")) else {
            continue;
        };
        let label = |key: &str| {
            labels.split(',').find_map(|kv| kv.strip_prefix(key)?.strip_prefix("=\"")?.strip_suffix('"'))
        };
        let resource = match label("subresource").filter(|s| !s.is_empty()) {
            Some(sub) => format!("{}/{sub}", label("resource").unwrap_or_default()),
            None => label("resource").unwrap_or_default().to_owned(),
        };
        let key = format!("{} {resource}", label("verb").unwrap_or_default());
        *out.entry(key).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    out
}

/// What changed between two [`apiserver_requests`] readings, per `per` (a tenancy), most first,
/// leaving out what came to fewer than 0.05 each: `12.00 in all: POST namespaces 2.00, ...`.
pub fn requests_between(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
    per: usize,
) -> String {
    let mut changed: Vec<(&String, f64)> = after
        .iter()
        .map(|(k, n)| (k, (n - before.get(k).copied().unwrap_or(0.0)) / per.max(1) as f64))
        .filter(|(_, n)| *n >= 0.05)
        .collect();
    changed.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let total: f64 = changed.iter().map(|(_, n)| n).sum();
    let listed: Vec<String> = changed.iter().map(|(k, n)| format!("{k} {n:.2}")).collect();
    format!("{total:.2} in all: {}", listed.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_the_processs_own_established_to_the_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:C350 0100007F:403B 01 00000000:00000000 00:00000000 00000000     0        0 111 1 0 20 4 30 10 -1
   1: 0100007F:C351 0100007F:403B 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1
   2: 0100007F:C352 0100007F:403B 06 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1
   3: 0100007F:C353 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 444 1 0 20 4 30 10 -1
   4: 0100007F:C354 0100007F:403B 01 00000000:00000000 00:00000000 00000000     0        0 555 1 0 20 4 30 10 -1
";
        let ours: std::collections::HashSet<String> =
            ["111", "333", "444", "555"].iter().map(|s| (*s).to_owned()).collect();
        // 111 and 555: ours, established, to 16443 (0x403B); 222 someone else's; 333 closing;
        // 444 to another port.
        assert_eq!(established_to(table, 16443, &ours), 2);
    }

    #[test]
    fn requests_are_counted_by_verb_and_resource_and_compared_per_tenancy() {
        let page = r#"# HELP apiserver_request_total Counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="namespaces",scope="resource",subresource="",verb="POST",version="v1"} 4
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="namespaces",scope="resource",subresource="",verb="POST",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="commons.dev",resource="tenancies",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 2
apiserver_request_total_other{verb="POST"} 9
"#;
        let before = requests_by_verb(page);
        assert_eq!(before["POST namespaces"], 5.0);
        assert_eq!(before["PATCH tenancies/status"], 2.0);
        assert_eq!(before.len(), 2);
        let mut after = before.clone();
        after.insert("POST namespaces".into(), 9.0);
        after.insert("LIST resourcequotas".into(), 0.08);
        assert_eq!(requests_between(&before, &after, 2), "2.00 in all: POST namespaces 2.00");
    }
}
