//! The portal's sessions. The browser holds only a random key in an HttpOnly, Secure,
//! SameSite=Lax cookie; what the key opens (the person's tokens, their CSRF token, when it ends)
//! is kept server-side in the ledger's database under the key's SHA-256, sealed (AES-256-GCM)
//! with a second key derived from the cookie: every replica serves the same sessions, a sign-out
//! ends one everywhere, and a database reader can neither find a session's cookie nor read its
//! tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "commons_session";
/// The cookie of a sign-in in progress (from the redirect to the provider to its return).
pub const SIGN_IN_COOKIE: &str = "commons_sign_in";
/// How long a sign-in may take at the provider.
pub const SIGN_IN_MS: i64 = 10 * 60_000;

/// Where sessions are kept (the ledger, in the `commons` binary).
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Stores `body` under `key_hash` until `expires_at_ms` (replacing what was there).
    fn put(&self, key_hash: &str, expires_at_ms: i64, body: String) -> BoxFuture<'_, Result<(), String>>;
    /// Replaces what `key_hash` holds, only if it still holds something unexpired at `now_ms`
    /// (a session ended meanwhile stays ended); whether it did.
    fn update(&self, key_hash: &str, now_ms: i64, body: String) -> BoxFuture<'_, Result<bool, String>>;
    /// What `key_hash` holds, unless expired at `now_ms`.
    fn get(&self, key_hash: &str, now_ms: i64) -> BoxFuture<'_, Result<Option<String>, String>>;
    /// Forgets `key_hash` (and anything expired at `now_ms`).
    fn delete(&self, key_hash: &str, now_ms: i64) -> BoxFuture<'_, Result<(), String>>;
}

/// A signed-in person's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token the portal's calls to `/v1` carry.
    pub access_token: String,
    /// When it expires, milliseconds since the epoch.
    pub access_expires_ms: i64,
    /// Gets a new access token when that one nears its end.
    pub refresh_token: Option<String>,
    /// Sent back to the provider at sign-out, so it ends its own session without asking.
    pub id_token: Option<String>,
    /// Every form carries it; a POST without it is refused.
    pub csrf: String,
    /// The person's name, for the header.
    pub name: String,
    /// When the session ends whatever happens, milliseconds since the epoch.
    pub ends_ms: i64,
    /// A tenancy request being filled in.
    #[serde(default)]
    pub draft: Option<super::draft::Draft>,
}

/// A sign-in in progress: what the provider's answer must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    /// The `state` sent, which the answer must carry back.
    pub state: String,
    /// The PKCE verifier whose challenge was sent.
    pub verifier: String,
    /// The portal page to return to.
    pub next: String,
}

/// A random, URL-safe secret of 32 bytes.
pub fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| "no randomness available".to_owned())?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What a cookie value is stored under.
pub fn key_hash(cookie_value: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cookie_value.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The PKCE S256 challenge of `verifier` (RFC 7636).
pub fn pkce_challenge(verifier: &str) -> String {
    key_hash(verifier)
}

/// A cookie's value in the `Cookie` headers, if sent.
pub fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        // Only values this portal could have set: anything else is ignored.
        .filter(|v| v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// A `Set-Cookie` value: HttpOnly, Secure, SameSite=Lax (sent on the provider's redirect back,
/// a top-level navigation; never on another site's form posts), for the portal's paths only.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64) -> String {
    format!("{name}={value}; Path=/portal; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Lax")
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", 0)
}

/// The sealing key of a cookie value: SHA-256 of a label and the value, apart from its lookup
/// hash (which is stored).
fn sealing_key(cookie_value: &str) -> Result<ring::aead::LessSafeKey, String> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"commons portal session sealing key\0");
    context.update(cookie_value.as_bytes());
    let key = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, context.finish().as_ref())
        .map_err(|_| "the sealing key cannot be made".to_owned())?;
    Ok(ring::aead::LessSafeKey::new(key))
}

/// `body`, sealed with the key only the cookie's holder has: base64url of nonce and ciphertext.
pub fn seal(cookie_value: &str, body: &str) -> Result<String, String> {
    let key = sealing_key(cookie_value)?;
    let mut nonce = [0u8; 12];
    SystemRandom::new().fill(&mut nonce).map_err(|_| "no randomness available".to_owned())?;
    let mut sealed = body.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        ring::aead::Nonce::assume_unique_for_key(nonce),
        ring::aead::Aad::empty(),
        &mut sealed,
    )
    .map_err(|_| "the session cannot be sealed".to_owned())?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

/// What `seal` sealed, if `cookie_value` is the cookie it was sealed for and nothing changed it.
pub fn open(cookie_value: &str, sealed: &str) -> Option<String> {
    let key = sealing_key(cookie_value).ok()?;
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() < 12 + 16 {
        return None;
    }
    let (nonce, rest) = bytes.split_at(12);
    let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut rest = rest.to_vec();
    let plain = key.open_in_place(nonce, ring::aead::Aad::empty(), &mut rest).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// Whether a form's CSRF token is the session's (compared in constant time).
pub fn csrf_matches(session: &Session, sent: &str) -> bool {
    same(&session.csrf, sent)
}

/// Whether two secrets are equal, in a time that depends on their length alone.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// A store in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryStore(std::sync::Mutex<std::collections::BTreeMap<String, (i64, String)>>);

impl SessionStore for MemoryStore {
    fn put(&self, key_hash: &str, expires_at_ms: i64, body: String) -> BoxFuture<'_, Result<(), String>> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(key_hash.to_owned(), (expires_at_ms, body));
        Box::pin(async { Ok(()) })
    }

    fn update(&self, key_hash: &str, now_ms: i64, body: String) -> BoxFuture<'_, Result<bool, String>> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let done = match map.get_mut(key_hash) {
            Some(entry) if entry.0 > now_ms => {
                entry.1 = body;
                true
            }
            _ => false,
        };
        Box::pin(async move { Ok(done) })
    }

    fn get(&self, key_hash: &str, now_ms: i64) -> BoxFuture<'_, Result<Option<String>, String>> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = map.get(key_hash).filter(|(expires, _)| *expires > now_ms).map(|(_, b)| b.clone());
        Box::pin(async move { Ok(found) })
    }

    fn delete(&self, key_hash: &str, now_ms: i64) -> BoxFuture<'_, Result<(), String>> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(key_hash);
        map.retain(|_, (expires, _)| *expires > now_ms);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn only_a_cookie_this_portal_could_have_set_is_read() {
        let token = random_token().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::COOKIE, format!("other=1; {SESSION_COOKIE}={token}").parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some(token));
        let mut forged = http::HeaderMap::new();
        forged.append(http::header::COOKIE, format!("{SESSION_COOKIE}=../../x").parse().unwrap());
        assert_eq!(cookie(&forged, SESSION_COOKIE), None);
        assert_eq!(cookie(&http::HeaderMap::new(), SESSION_COOKIE), None);
    }

    #[test]
    fn cookies_are_http_only_secure_and_same_site() {
        let c = set_cookie(SESSION_COOKIE, "abc", 60);
        for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/portal", "Max-Age=60"] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(clear_cookie(SESSION_COOKIE).contains("Max-Age=0"));
    }

    #[test]
    fn a_csrf_token_must_be_the_sessions_own() {
        let session = Session {
            access_token: "t".into(),
            access_expires_ms: 0,
            refresh_token: None,
            id_token: None,
            csrf: "right".into(),
            name: "n".into(),
            ends_ms: 0,
            draft: None,
        };
        assert!(csrf_matches(&session, "right"));
        assert!(!csrf_matches(&session, "wrong"));
        assert!(!csrf_matches(&session, ""));
    }

    #[test]
    fn a_sealed_session_opens_only_with_its_own_cookie_and_unchanged() {
        let (cookie, other) = (random_token().unwrap(), random_token().unwrap());
        let sealed = seal(&cookie, "{\"accessToken\":\"secret\"}").unwrap();
        assert!(!sealed.contains("secret"));
        assert_eq!(open(&cookie, &sealed).as_deref(), Some("{\"accessToken\":\"secret\"}"));
        assert_eq!(open(&other, &sealed), None, "another cookie opens nothing");
        let mut tampered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(open(&cookie, &URL_SAFE_NO_PAD.encode(tampered)), None, "a changed row opens nothing");
        assert_eq!(open(&cookie, "short"), None);
    }

    #[tokio::test]
    async fn an_ended_session_is_never_brought_back_by_an_update() {
        let store = MemoryStore::default();
        store.put("a", 100, "x".into()).await.unwrap();
        assert!(store.update("a", 50, "y".into()).await.unwrap());
        store.delete("a", 50).await.unwrap();
        assert!(!store.update("a", 50, "z".into()).await.unwrap());
        assert_eq!(store.get("a", 50).await.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_entries_are_not_found_and_are_swept() {
        let store = MemoryStore::default();
        store.put("a", 100, "x".into()).await.unwrap();
        store.put("b", 300, "y".into()).await.unwrap();
        assert_eq!(store.get("a", 50).await.unwrap().as_deref(), Some("x"));
        assert_eq!(store.get("a", 100).await.unwrap(), None);
        store.delete("b", 200).await.unwrap();
        assert_eq!(store.get("b", 150).await.unwrap(), None);
        assert!(store.0.lock().unwrap().is_empty(), "the expired entry was swept");
    }
}
