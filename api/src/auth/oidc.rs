//! OpenID Connect bearer tokens: the issuer's keys found by discovery, cached, and fetched again
//! when a token names a key the cache lacks (the issuer rotated its keys) — at most once per
//! `min_refresh`, so a stream of tokens with made-up key ids cannot make Commons hammer the issuer —
//! and in any case once the cache is older than `max_age`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::Deserialize;
use std::sync::RwLock;

use super::claims::{self, ClaimMapping, ClaimsError, Clock, Person};
use super::jws::{self, JwkSet, JwsError};

/// Fetches a JSON document over HTTP(S); the real one is [`super::http::HttpFetch`].
pub trait Fetch: Send + Sync + std::fmt::Debug {
    /// GET `url`, expecting 200 and JSON.
    fn get_json(&self, url: &str) -> BoxFuture<'_, Result<serde_json::Value, String>>;

    /// POST a form to `url`; the status and the JSON answered, whatever the status.
    fn post_form(
        &self,
        url: &str,
        form: Vec<(&'static str, String)>,
    ) -> BoxFuture<'_, Result<(u16, serde_json::Value), String>> {
        let _ = form;
        let url = url.to_owned();
        Box::pin(async move { Err(format!("{url}: this fetcher does not post")) })
    }
}

/// How tokens are checked.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL, exactly as tokens carry it in `iss`.
    pub issuer: String,
    /// The audience tokens must name in `aud`.
    pub audience: String,
    /// Which claims say who.
    pub mapping: ClaimMapping,
    /// Allowed clock difference with the issuer.
    pub leeway: Duration,
    /// The shortest time between two fetches of the keys prompted by an unknown key id.
    pub min_refresh: Duration,
    /// The keys are fetched again once this old.
    pub max_age: Duration,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The signature, its algorithm or its key.
    #[error(transparent)]
    Signature(#[from] JwsError),
    /// The claims.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// The issuer's keys could not be had (and none are cached): nothing can be verified now.
    #[error("the identity provider's keys cannot be fetched: {0}")]
    Unavailable(String),
}

#[derive(Debug, Default)]
struct Cache {
    jwks_uri: Option<String>,
    keys: JwkSet,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// Verifies bearer tokens from one issuer.
#[derive(Debug)]
pub struct Oidc {
    config: OidcConfig,
    fetch: Arc<dyn Fetch>,
    /// The keys: read by every verification, never held across a fetch.
    cache: RwLock<Cache>,
    /// Held by the one verification that fetches the keys, so that the issuer is asked once.
    refreshing: tokio::sync::Mutex<()>,
}

/// What the cache says of a key id.
struct Look {
    found: Option<jws::Jwk>,
    /// The cache is stale, or lacks the key, and may be refreshed now.
    refresh: bool,
    /// Keys were fetched at some time.
    ever: bool,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Oidc {
    /// A verifier; nothing is fetched until the first token.
    pub fn new(config: OidcConfig, fetch: Arc<dyn Fetch>) -> Self {
        Oidc { config, fetch, cache: RwLock::new(Cache::default()), refreshing: tokio::sync::Mutex::new(()) }
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Verifies `token` at `now` (seconds since the epoch) and says who it names.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Person, TokenError> {
        let unverified = jws::parse(token)?;
        let kid = unverified.header.kid.clone();
        let key = self.key(kid.as_deref()).await?;
        let payload = unverified.verify(&key)?;
        let clock = Clock { now, leeway: i64::try_from(self.config.leeway.as_secs()).unwrap_or(i64::MAX) };
        Ok(claims::check(&payload, &self.config.issuer, &self.config.audience, clock, &self.config.mapping)?)
    }

    fn look(&self, kid: Option<&str>) -> Look {
        let cache = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = cache.fetched.is_none_or(|at| at.elapsed() >= self.config.max_age);
        let found = cache.keys.find(kid).cloned();
        // Failed attempts count too: made-up key ids or a down issuer must not hammer it.
        let may_refresh = cache.attempted.is_none_or(|at| at.elapsed() >= self.config.min_refresh);
        Look { refresh: (stale || found.is_none()) && may_refresh, found, ever: cache.fetched.is_some() }
    }

    /// The key a token names, from the cache or, when missing or stale, from the issuer. One
    /// verification fetches at a time, holding no lock on the cache meanwhile: a token whose key
    /// is cached is never held up by another's fetch.
    async fn key(&self, kid: Option<&str>) -> Result<jws::Jwk, TokenError> {
        let look = self.look(kid);
        if !look.refresh {
            if look.found.is_none() {
                // Not to be fetched again yet, perhaps because another verification is fetching
                // right now (the first tokens after a start arrive together): what it brings.
                drop(self.refreshing.lock().await);
                return answer(self.look(kid));
            }
            return answer(look);
        }
        let _fetching = match (&look.found, self.refreshing.try_lock()) {
            (_, Ok(guard)) => guard,
            // Another is fetching: the (stale) key in hand does, or wait for what it brings.
            (Some(key), Err(_)) => return Ok(key.clone()),
            (None, Err(_)) => self.refreshing.lock().await,
        };
        // Fetched by another while this one waited?
        let look = self.look(kid);
        if !look.refresh {
            return answer(look);
        }
        let jwks_uri = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).jwks_uri.clone();
        let fetched = self.fetch_keys(jwks_uri).await;
        // Counted once the attempt has ended: an attempt cancelled midway (its caller went away)
        // counts for nothing, and the next waiter fetches at once instead of failing for the
        // minimum interval.
        self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).attempted =
            Some(Instant::now());
        match fetched {
            Ok((jwks_uri, keys)) => {
                let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                cache.jwks_uri = Some(jwks_uri);
                cache.keys = keys;
                cache.fetched = Some(Instant::now());
                tracing::info!(issuer = %self.config.issuer, keys = cache.keys.keys.len(), "fetched the identity provider's keys");
                cache.keys.find(kid).cloned().ok_or(TokenError::Signature(JwsError::UnknownKey))
            }
            // A stale cache still verifies what it can while the issuer is unreachable.
            Err(reason) if look.ever => {
                tracing::warn!(issuer = %self.config.issuer, %reason, "cannot refresh the identity provider's keys; using the cached ones");
                answer(look)
            }
            Err(reason) => Err(TokenError::Unavailable(reason)),
        }
    }

    /// The issuer's keys (discovering where they are the first time), and where they were.
    async fn fetch_keys(&self, jwks_uri: Option<String>) -> Result<(String, JwkSet), String> {
        let jwks_uri = match jwks_uri {
            Some(uri) => uri,
            None => {
                let url =
                    format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                let doc = self.fetch.get_json(&url).await?;
                let discovery: Discovery = serde_json::from_value(doc)
                    .map_err(|e| format!("{url}: not an OpenID discovery document: {e}"))?;
                if discovery.issuer != self.config.issuer {
                    return Err(format!(
                        "{url} names the issuer {:?}, not {:?}; tokens could not be trusted",
                        discovery.issuer, self.config.issuer
                    ));
                }
                discovery.jwks_uri
            }
        };
        let doc = self.fetch.get_json(&jwks_uri).await?;
        let keys: JwkSet =
            serde_json::from_value(doc).map_err(|e| format!("{jwks_uri}: not a JWK set: {e}"))?;
        Ok((jwks_uri, keys))
    }
}

/// The key found, or why there is none.
fn answer(look: Look) -> Result<jws::Jwk, TokenError> {
    match look.found {
        Some(key) => Ok(key),
        None if !look.ever => {
            Err(TokenError::Unavailable("the keys could not be fetched lately; trying again shortly".into()))
        }
        None => Err(TokenError::Signature(JwsError::UnknownKey)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::{Value, json};
    use std::sync::Mutex as StdMutex;

    const ISS: &str = "https://id.example/realms/commons";

    struct Signer {
        kid: String,
        pair: EcdsaKeyPair,
    }

    impl Signer {
        fn new(kid: &str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
            Signer { kid: kid.into(), pair }
        }
        fn jwk(&self) -> Value {
            let p = self.pair.public_key().as_ref();
            json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", "use": "sig",
                   "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])})
        }
        fn token(&self, claims: Value) -> String {
            let header = json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"}).to_string();
            let signed =
                format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()));
            let sig = self.pair.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
    }

    /// An issuer in memory: serves discovery and whatever keys it is given, and counts fetches.
    #[derive(Debug, Default)]
    struct Issuer {
        keys: StdMutex<Vec<Value>>,
        fetches: StdMutex<Vec<String>>,
        down: StdMutex<bool>,
        discovery_issuer: StdMutex<Option<String>>,
        /// When set, a keys fetch waits until it is opened.
        gate: StdMutex<Option<Arc<tokio::sync::Notify>>>,
    }

    impl Fetch for Issuer {
        fn get_json(&self, url: &str) -> BoxFuture<'_, Result<Value, String>> {
            self.fetches.lock().unwrap().push(url.to_owned());
            let out = if *self.down.lock().unwrap() {
                Err("connection refused".to_owned())
            } else if url.ends_with("/.well-known/openid-configuration") {
                let iss = self.discovery_issuer.lock().unwrap().clone().unwrap_or(ISS.into());
                Ok(json!({"issuer": iss, "jwks_uri": format!("{ISS}/certs")}))
            } else {
                Ok(json!({"keys": *self.keys.lock().unwrap()}))
            };
            let gate = self.gate.lock().unwrap().clone().filter(|_| url.ends_with("/certs"));
            Box::pin(async move {
                if let Some(gate) = gate {
                    gate.notified().await;
                }
                out
            })
        }
    }

    fn config(min_refresh: u64) -> OidcConfig {
        OidcConfig {
            issuer: ISS.into(),
            audience: "commons-api".into(),
            mapping: ClaimMapping::default(),
            leeway: Duration::from_secs(5),
            min_refresh: Duration::from_secs(min_refresh),
            max_age: Duration::from_secs(600),
        }
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": "commons-api", "exp": 2_000, "sub": "nora", "groups": ["/organisations/x"]})
    }

    #[tokio::test]
    async fn keys_are_discovered_once_and_cached() {
        let signer = Signer::new("k1");
        let issuer = Arc::new(Issuer::default());
        issuer.keys.lock().unwrap().push(signer.jwk());
        let oidc = Oidc::new(config(30), issuer.clone());
        for _ in 0..3 {
            let person = oidc.verify(&signer.token(claims()), 1_000).await.unwrap();
            assert_eq!(person.organisations, ["x"]);
        }
        assert_eq!(issuer.fetches.lock().unwrap().len(), 2, "discovery and keys, once");
    }

    #[tokio::test]
    async fn a_cached_key_verifies_while_another_token_waits_for_the_issuer() {
        let known = Signer::new("known");
        let issuer = Arc::new(Issuer::default());
        issuer.keys.lock().unwrap().push(known.jwk());
        let oidc = Arc::new(Oidc::new(config(0), issuer.clone()));
        oidc.verify(&known.token(claims()), 1_000).await.unwrap();
        // A token with a key id the cache lacks sends for the keys, and the issuer is slow.
        let gate = Arc::new(tokio::sync::Notify::new());
        *issuer.gate.lock().unwrap() = Some(gate.clone());
        let unknown = Signer::new("rotated");
        let waiting = {
            let (oidc, token) = (oidc.clone(), unknown.token(claims()));
            tokio::spawn(async move { oidc.verify(&token, 1_000).await })
        };
        while issuer.fetches.lock().unwrap().len() < 3 {
            tokio::task::yield_now().await;
        }
        // Meanwhile a token whose key is cached is verified at once.
        let at_once =
            tokio::time::timeout(Duration::from_secs(5), oidc.verify(&known.token(claims()), 1_000)).await;
        assert!(at_once.is_ok_and(|r| r.is_ok()), "held up by another token's fetch");
        gate.notify_one();
        assert!(waiting.await.unwrap().is_err(), "the issuer does not have that key");
    }

    /// A verifier whose first token is fetching the keys from an issuer that holds its answer
    /// until the gate opens: the verifier, the issuer, the signer, the gate and the first call.
    async fn first_fetch_held() -> (
        Arc<Oidc>,
        Arc<Issuer>,
        Signer,
        Arc<tokio::sync::Notify>,
        tokio::task::JoinHandle<Result<Person, TokenError>>,
    ) {
        let signer = Signer::new("k1");
        let issuer = Arc::new(Issuer::default());
        issuer.keys.lock().unwrap().push(signer.jwk());
        let gate = Arc::new(tokio::sync::Notify::new());
        *issuer.gate.lock().unwrap() = Some(gate.clone());
        let oidc = Arc::new(Oidc::new(config(30), issuer.clone()));
        let first = {
            let (oidc, token) = (oidc.clone(), signer.token(claims()));
            tokio::spawn(async move { oidc.verify(&token, 1_000).await })
        };
        while issuer.fetches.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
        (oidc, issuer, signer, gate, first)
    }

    #[tokio::test]
    async fn tokens_that_arrive_while_the_first_fetch_runs_wait_for_its_keys() {
        let (oidc, issuer, signer, gate, first) = first_fetch_held().await;
        // The first verification is fetching the keys; a second token meanwhile waits for them
        // rather than being told the issuer cannot be reached.
        let second = {
            let (oidc, token) = (oidc.clone(), signer.token(claims()));
            tokio::spawn(async move { oidc.verify(&token, 1_000).await })
        };
        tokio::task::yield_now().await;
        gate.notify_one();
        assert!(first.await.unwrap().is_ok());
        let second = second.await.unwrap();
        assert!(second.is_ok(), "{second:?}");
        assert_eq!(issuer.fetches.lock().unwrap().len(), 2, "discovery and keys, once");
    }

    #[tokio::test]
    async fn a_fetch_whose_caller_went_away_is_made_again_by_the_next_token() {
        let (oidc, issuer, signer, _gate, first) = first_fetch_held().await;
        // Its caller goes away (a client disconnecting, a deadline) while the issuer is slow.
        first.abort();
        assert!(first.await.is_err());
        *issuer.gate.lock().unwrap() = None;
        // The next token fetches the keys itself rather than failing for the minimum interval.
        let next = oidc.verify(&signer.token(claims()), 1_000).await;
        assert!(next.is_ok(), "{next:?}");
    }

    #[tokio::test]
    async fn a_rotated_key_is_fetched_and_made_up_key_ids_do_not_hammer_the_issuer() {
        let old = Signer::new("old");
        let issuer = Arc::new(Issuer::default());
        issuer.keys.lock().unwrap().push(old.jwk());
        // min_refresh 0: a token with a new kid fetches the keys again at once.
        let oidc = Oidc::new(config(0), issuer.clone());
        oidc.verify(&old.token(claims()), 1_000).await.unwrap();
        let new = Signer::new("new");
        issuer.keys.lock().unwrap().push(new.jwk());
        oidc.verify(&new.token(claims()), 1_000).await.unwrap();
        assert_eq!(issuer.fetches.lock().unwrap().len(), 3);

        // With min_refresh 30 s, unknown key ids after a fetch cost nothing more.
        let issuer = Arc::new(Issuer::default());
        issuer.keys.lock().unwrap().push(old.jwk());
        let oidc = Oidc::new(config(30), issuer.clone());
        oidc.verify(&old.token(claims()), 1_000).await.unwrap();
        for i in 0..20 {
            let stranger = Signer::new(&format!("made-up-{i}"));
            let refused = oidc.verify(&stranger.token(claims()), 1_000).await;
            assert_eq!(refused.unwrap_err(), TokenError::Signature(JwsError::UnknownKey));
        }
        assert_eq!(issuer.fetches.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_token_signed_by_a_key_with_the_issuers_key_id_is_refused() {
        let real = Signer::new("k1");
        let forger = Signer::new("k1");
        let issuer = Arc::new(Issuer::default());
        issuer.keys.lock().unwrap().push(real.jwk());
        let oidc = Oidc::new(config(30), issuer);
        let refused = oidc.verify(&forger.token(claims()), 1_000).await;
        assert_eq!(refused.unwrap_err(), TokenError::Signature(JwsError::BadSignature));
    }

    #[tokio::test]
    async fn an_unreachable_issuer_or_one_naming_another_issuer_verifies_nothing() {
        let signer = Signer::new("k1");
        let issuer = Arc::new(Issuer::default());
        issuer.keys.lock().unwrap().push(signer.jwk());
        *issuer.down.lock().unwrap() = true;
        let oidc = Oidc::new(config(0), issuer.clone());
        assert!(matches!(oidc.verify(&signer.token(claims()), 1_000).await, Err(TokenError::Unavailable(_))));

        *issuer.down.lock().unwrap() = false;
        *issuer.discovery_issuer.lock().unwrap() = Some("https://evil.example".into());
        let refused = oidc.verify(&signer.token(claims()), 1_000).await.unwrap_err();
        assert!(matches!(&refused, TokenError::Unavailable(r) if r.contains("evil.example")), "{refused}");
    }

    #[tokio::test]
    async fn cached_keys_keep_verifying_while_the_issuer_is_down() {
        let signer = Signer::new("k1");
        let issuer = Arc::new(Issuer::default());
        issuer.keys.lock().unwrap().push(signer.jwk());
        let mut cfg = config(0);
        cfg.max_age = Duration::ZERO;
        let oidc = Oidc::new(cfg, issuer.clone());
        oidc.verify(&signer.token(claims()), 1_000).await.unwrap();
        *issuer.down.lock().unwrap() = true;
        oidc.verify(&signer.token(claims()), 1_000).await.unwrap();
    }

    #[tokio::test]
    async fn claims_are_checked_after_the_signature() {
        let signer = Signer::new("k1");
        let issuer = Arc::new(Issuer::default());
        issuer.keys.lock().unwrap().push(signer.jwk());
        let oidc = Oidc::new(config(30), issuer);
        let refused = oidc.verify(&signer.token(claims()), 3_000).await.unwrap_err();
        assert_eq!(refused, TokenError::Claims(ClaimsError::Expired));
    }
}
