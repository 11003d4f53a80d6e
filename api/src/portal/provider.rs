//! The portal as an OpenID Connect client of the same provider the API trusts: the authorization
//! code flow with PKCE (S256) and `state`, the code exchanged on the back channel, access tokens
//! refreshed before they end, and the provider's session ended at sign-out. The tokens it gets are
//! the bearer tokens the portal's calls to `/v1` carry, so the API checks them like any other.

use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::auth::http::percent;
use crate::auth::oidc::Fetch;

/// How the portal signs people in.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The issuer (the API's `--oidc-issuer`).
    pub issuer: String,
    /// The portal's client id at the provider.
    pub client_id: String,
    /// Its secret, for a confidential client.
    pub client_secret: Option<String>,
    /// Where browsers reach Commons, e.g. `https://commons.example.gov.uk`; the provider sends
    /// them back to `<public_url>/portal/signed-in`.
    pub public_url: String,
}

impl ClientConfig {
    /// The redirect URI registered at the provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}/portal/signed-in", self.public_url.trim_end_matches('/'))
    }
}

/// Where the provider's endpoints are (from its discovery document).
#[derive(Debug, Clone, Deserialize)]
pub struct Endpoints {
    /// Its issuer, which must be the one configured.
    pub issuer: String,
    /// Where browsers sign in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens become tokens.
    pub token_endpoint: String,
    /// Where browsers sign out (RP-initiated logout), if offered.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// Tokens from the token endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    /// The bearer token for `/v1`.
    pub access_token: String,
    /// Seconds it lasts.
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// For a new access token later.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds the refresh token lasts.
    #[serde(default)]
    pub refresh_expires_in: Option<i64>,
    /// The ID token (sent back at sign-out).
    #[serde(default)]
    pub id_token: Option<String>,
}

/// Why the provider could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Unreachable, or answered nonsense.
    #[error("the identity provider cannot be reached: {0}")]
    Unavailable(String),
    /// It refused (a used or forged code, an expired refresh token).
    #[error("the identity provider refused: {0}")]
    Refused(String),
}

/// The portal's client of the provider.
#[derive(Debug)]
pub struct Provider {
    config: ClientConfig,
    fetch: Arc<dyn Fetch>,
    endpoints: OnceCell<Endpoints>,
}

impl Provider {
    /// A client; the provider is asked nothing until the first sign-in.
    pub fn new(config: ClientConfig, fetch: Arc<dyn Fetch>) -> Self {
        Provider { config, fetch, endpoints: OnceCell::new() }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The provider's endpoints, discovered once.
    pub async fn endpoints(&self) -> Result<&Endpoints, ProviderError> {
        self.endpoints
            .get_or_try_init(|| async {
                let url =
                    format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                let doc = self.fetch.get_json(&url).await.map_err(ProviderError::Unavailable)?;
                let found: Endpoints = serde_json::from_value(doc).map_err(|e| {
                    ProviderError::Unavailable(format!("{url}: not a discovery document: {e}"))
                })?;
                if found.issuer != self.config.issuer {
                    return Err(ProviderError::Unavailable(format!(
                        "{url} names the issuer {:?}, not {:?}",
                        found.issuer, self.config.issuer
                    )));
                }
                Ok(found)
            })
            .await
    }

    /// Where to send the browser to sign in.
    pub async fn authorization_url(&self, state: &str, challenge: &str) -> Result<String, ProviderError> {
        let endpoints = self.endpoints().await?;
        Ok(authorization_url(&endpoints.authorization_endpoint, &self.config, state, challenge))
    }

    /// Exchanges the code the browser brought back.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<Tokens, ProviderError> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", self.config.redirect_uri()),
            ("code_verifier", verifier.to_owned()),
        ];
        self.credentials(&mut form);
        self.token_call(form).await
    }

    /// A new access token for a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, ProviderError> {
        let mut form =
            vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token.to_owned())];
        self.credentials(&mut form);
        self.token_call(form).await
    }

    /// Where to send the browser at sign-out so the provider ends its session too, returning to
    /// `after`; `None` when the provider offers no such endpoint.
    pub async fn end_session_url(&self, id_token: Option<&str>, after: &str) -> Option<String> {
        let endpoint = self.endpoints().await.ok()?.end_session_endpoint.clone()?;
        let mut url = format!(
            "{endpoint}{}client_id={}&post_logout_redirect_uri={}",
            if endpoint.contains('?') { '&' } else { '?' },
            percent(&self.config.client_id),
            percent(after)
        );
        if let Some(hint) = id_token {
            url.push_str(&format!("&id_token_hint={}", percent(hint)));
        }
        Some(url)
    }

    fn credentials(&self, form: &mut Vec<(&'static str, String)>) {
        form.push(("client_id", self.config.client_id.clone()));
        if let Some(secret) = &self.config.client_secret {
            form.push(("client_secret", secret.clone()));
        }
    }

    async fn token_call(&self, form: Vec<(&'static str, String)>) -> Result<Tokens, ProviderError> {
        let endpoint = self.endpoints().await?.token_endpoint.clone();
        let (status, json) =
            self.fetch.post_form(&endpoint, form).await.map_err(ProviderError::Unavailable)?;
        match status {
            200 => serde_json::from_value(json)
                .map_err(|e| ProviderError::Unavailable(format!("{endpoint}: not a token answer: {e}"))),
            400 | 401 => Err(ProviderError::Refused(
                json.get("error").and_then(|e| e.as_str()).unwrap_or("refused").to_owned(),
            )),
            other => Err(ProviderError::Unavailable(format!("{endpoint} answered {other}"))),
        }
    }
}

/// The authorization request (RFC 6749 §4.1.1 with RFC 7636's challenge).
pub fn authorization_url(endpoint: &str, config: &ClientConfig, state: &str, challenge: &str) -> String {
    format!(
        "{endpoint}{}response_type=code&client_id={}&redirect_uri={}&scope=openid&state={}&code_challenge={}&code_challenge_method=S256",
        if endpoint.contains('?') { '&' } else { '?' },
        percent(&config.client_id),
        percent(&config.redirect_uri()),
        percent(state),
        percent(challenge)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use serde_json::{Value, json};
    use std::sync::Mutex;

    const ISS: &str = "https://id.example/realms/commons";

    fn config() -> ClientConfig {
        ClientConfig {
            issuer: ISS.into(),
            client_id: "commons-portal".into(),
            client_secret: Some("s3cret".into()),
            public_url: "https://commons.example/".into(),
        }
    }

    #[derive(Debug, Default)]
    struct Issuer {
        posts: Mutex<Vec<Vec<(&'static str, String)>>>,
        answer: Mutex<Option<(u16, Value)>>,
        discovered_issuer: Mutex<Option<String>>,
    }

    impl Fetch for Issuer {
        fn get_json(&self, _url: &str) -> BoxFuture<'_, Result<Value, String>> {
            let iss = self.discovered_issuer.lock().unwrap().clone().unwrap_or(ISS.into());
            Box::pin(async move {
                Ok(json!({"issuer": iss, "authorization_endpoint": format!("{ISS}/auth"),
                          "token_endpoint": format!("{ISS}/token"), "jwks_uri": format!("{ISS}/certs"),
                          "end_session_endpoint": format!("{ISS}/logout")}))
            })
        }
        fn post_form(
            &self,
            _url: &str,
            form: Vec<(&'static str, String)>,
        ) -> BoxFuture<'_, Result<(u16, Value), String>> {
            self.posts.lock().unwrap().push(form);
            let answer = self.answer.lock().unwrap().clone().unwrap_or((200, json!({"access_token": "at"})));
            Box::pin(async move { Ok(answer) })
        }
    }

    #[tokio::test]
    async fn the_authorization_request_carries_state_and_an_s256_challenge() {
        let provider = Provider::new(config(), Arc::new(Issuer::default()));
        let url = provider.authorization_url("st", "ch").await.unwrap();
        assert_eq!(
            url,
            "https://id.example/realms/commons/auth?response_type=code&client_id=commons-portal\
             &redirect_uri=https%3A%2F%2Fcommons.example%2Fportal%2Fsigned-in&scope=openid&state=st\
             &code_challenge=ch&code_challenge_method=S256"
        );
    }

    #[tokio::test]
    async fn a_code_is_exchanged_with_its_verifier_and_the_clients_secret() {
        let issuer = Arc::new(Issuer::default());
        let provider = Provider::new(config(), issuer.clone());
        let tokens = provider.exchange("the-code", "the-verifier").await.unwrap();
        assert_eq!(tokens.access_token, "at");
        let posts = issuer.posts.lock().unwrap();
        let form: std::collections::BTreeMap<_, _> = posts[0].iter().cloned().collect();
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "the-code");
        assert_eq!(form["code_verifier"], "the-verifier");
        assert_eq!(form["redirect_uri"], "https://commons.example/portal/signed-in");
        assert_eq!(form["client_secret"], "s3cret");
    }

    #[tokio::test]
    async fn a_refused_code_or_refresh_is_refused_and_an_unreachable_provider_is_not() {
        let issuer = Arc::new(Issuer::default());
        let provider = Provider::new(config(), issuer.clone());
        *issuer.answer.lock().unwrap() = Some((400, json!({"error": "invalid_grant"})));
        assert_eq!(
            provider.refresh("old").await.unwrap_err(),
            ProviderError::Refused("invalid_grant".into())
        );
        *issuer.answer.lock().unwrap() = Some((503, json!({})));
        assert!(matches!(provider.exchange("c", "v").await.unwrap_err(), ProviderError::Unavailable(_)));
    }

    #[tokio::test]
    async fn a_discovery_document_naming_another_issuer_is_not_used() {
        let issuer = Arc::new(Issuer::default());
        *issuer.discovered_issuer.lock().unwrap() = Some("https://evil.example".into());
        let provider = Provider::new(config(), issuer);
        assert!(matches!(
            provider.authorization_url("s", "c").await.unwrap_err(),
            ProviderError::Unavailable(_)
        ));
    }

    #[tokio::test]
    async fn sign_out_returns_through_the_providers_end_session_endpoint() {
        let provider = Provider::new(config(), Arc::new(Issuer::default()));
        let url =
            provider.end_session_url(Some("idt"), "https://commons.example/portal/signed-out").await.unwrap();
        assert_eq!(
            url,
            "https://id.example/realms/commons/logout?client_id=commons-portal\
             &post_logout_redirect_uri=https%3A%2F%2Fcommons.example%2Fportal%2Fsigned-out&id_token_hint=idt"
        );
    }
}
