//! Calling the REST API under test from the end-to-end tests: tokens from the OIDC provider the
//! scripts run (Keycloak, realm `commons`, password grant for its example users), and HTTP calls
//! with curl against the running `commons` (COMMONS_LISTEN).

use std::process::Command;

use serde_json::Value;

use crate::{E2eError, kubectl, repo_root};

/// The OIDC issuer (set by e2e/keycloak.sh).
pub fn issuer() -> String {
    std::env::var("COMMONS_E2E_OIDC_ISSUER")
        .unwrap_or_else(|_| "http://127.0.0.1:18180/realms/commons".into())
}

/// The API's base URL (COMMONS_LISTEN, set by e2e/commons.sh).
pub fn base() -> String {
    format!("http://{}", std::env::var("COMMONS_LISTEN").unwrap_or_else(|_| "127.0.0.1:18080".into()))
}

/// The running operator's ledger (COMMONS_LEDGER, set by e2e/commons.sh; else the scripts' own
/// in the cluster directory).
pub fn ledger() -> String {
    std::env::var("COMMONS_LEDGER")
        .unwrap_or_else(|_| format!("sqlite://{}", crate::measure::cluster_dir().join("ledger.db").display()))
}

/// An access token for an example `user` (password `<user>-password`) from `client`.
pub fn token_of(client: &str, user: &str) -> Result<String, E2eError> {
    let out = Command::new("curl")
        .args(["-sS", "-d", "grant_type=password", "-d", &format!("client_id={client}")])
        .args(["-d", &format!("username={user}"), "-d", &format!("password={user}-password")])
        .arg(format!("{}/protocol/openid-connect/token", issuer()))
        .output()
        .map_err(|source| E2eError::Spawn { cmd: "curl (token)".into(), source })?;
    let body: Value = serde_json::from_slice(&out.stdout)?;
    body["access_token"].as_str().map(str::to_owned).ok_or_else(|| E2eError::Command {
        cmd: format!("a token for {user} from {client}"),
        status: "no access_token".into(),
        stderr: body.to_string(),
    })
}

/// An access token for an example `user` from the tests' client.
pub fn token(user: &str) -> Result<String, E2eError> {
    token_of("commons-e2e", user)
}

/// One call's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The response headers, lower case, one per line.
    pub headers: String,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::trim)
    }
}

/// `method path` with `credential` (none when empty), extra headers and an optional JSON body.
pub fn exchange(
    method: &str,
    path: &str,
    credential: &str,
    headers: &[&str],
    body: Option<&Value>,
) -> Result<Answer, E2eError> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-D", "-", "-w", "\n%{http_code}", "-X", method]);
    if !credential.is_empty() {
        cmd.args(["-H", &format!("Authorization: Bearer {credential}")]);
    }
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", &b.to_string()]);
    }
    let out = cmd
        .arg(format!("{}{path}", base()))
        .output()
        .map_err(|source| E2eError::Spawn { cmd: "curl".into(), source })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, status) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    Ok(Answer {
        status: status.trim().parse().unwrap_or(0),
        headers: head.to_lowercase(),
        body: body.to_owned(),
    })
}

/// `method path` as `token`, with an optional JSON body: the status and the JSON answer.
pub fn call(method: &str, path: &str, token: &str, body: Option<&Value>) -> Result<(u16, Value), E2eError> {
    let a = exchange(method, path, token, &[], body)?;
    Ok((a.status, a.json()))
}

/// Grants the API's roles to the example identity provider's groups (docs/examples/api-access.yaml).
pub fn grant_api_roles() -> Result<(), E2eError> {
    let file = repo_root().join("docs/examples/api-access.yaml");
    kubectl(&["apply", "--server-side", "--field-manager=commons-examples", "-f", &file.to_string_lossy()])
        .map(|_| ())
}

/// A new API key for `organisation` with `role`, made by `by` with `commons apikey create` in the
/// running operator's ledger, valid for an hour: the key (printed once).
pub fn api_key(organisation: &str, role: &str, description: &str, by: &str) -> Result<String, E2eError> {
    let made = crate::commons(&[
        "apikey",
        "create",
        "--organisation",
        organisation,
        "--role",
        role,
        "--expires",
        "1h",
        "--description",
        description,
        "--by",
        by,
        "--ledger",
        &ledger(),
    ])?;
    Ok(made.lines().next().unwrap_or_default().trim().to_owned())
}
