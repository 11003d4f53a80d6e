//! Who is calling: a bearer token from the OpenID Connect provider, or an API key. Either becomes an
//! [`Identity`]: a Kubernetes user and groups (what RBAC decides on, in [`crate::authz`]) and the
//! organisations the caller acts for. Every refusal is the same 401, whatever the reason (the
//! reason is logged and counted, never told): a caller learns nothing about which keys, users or
//! organisations exist.

pub mod apikey;
pub mod claims;
pub mod http;
pub mod jws;
pub mod oidc;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;
use apikey::{KeyRefusal, KeyStore};
use oidc::{Oidc, TokenError};

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bearer token from the identity provider.
    Token,
    /// An API key, by its id.
    ApiKey(String),
}

/// The caller, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The Kubernetes user name RBAC sees.
    pub user: String,
    /// The Kubernetes groups RBAC sees.
    pub groups: Vec<String>,
    /// The organisation ids the caller acts for.
    pub organisations: Vec<String>,
    /// How it authenticated.
    pub credential: Credential,
    /// A name for records people read (the person's name; for a key, its description).
    pub display_name: Option<String>,
    /// The person's email address, when the token carries a verified one.
    pub email: Option<String>,
}

impl Identity {
    /// Whether the caller acts for `organisation`.
    pub fn acts_for(&self, organisation: &str) -> bool {
        self.organisations.iter().any(|o| o == organisation)
    }
}

/// Why a request was not authenticated; the label of `commons_api_authentication_failures_total`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    #[error("no credential")]
    Missing,
    /// A token was refused.
    #[error(transparent)]
    Token(TokenError),
    /// An API key was refused.
    #[error(transparent)]
    Key(KeyRefusal),
    /// API keys or tokens are not configured on this server.
    #[error("this kind of credential is not accepted here")]
    NotAccepted,
    /// The key store or the identity provider could not be reached: nothing can be decided.
    #[error("credentials cannot be checked now: {0}")]
    Unavailable(String),
}

impl AuthFailure {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Token(TokenError::Signature(_)) => "signature",
            AuthFailure::Token(TokenError::Claims(claims::ClaimsError::Expired)) => "expired",
            AuthFailure::Token(TokenError::Claims(claims::ClaimsError::Audience)) => "audience",
            AuthFailure::Token(TokenError::Claims(_)) => "claims",
            AuthFailure::Token(TokenError::Unavailable(_)) | AuthFailure::Unavailable(_) => "unavailable",
            AuthFailure::Key(KeyRefusal::Unknown) => "key-unknown",
            AuthFailure::Key(KeyRefusal::Revoked) => "key-revoked",
            AuthFailure::Key(KeyRefusal::Expired) => "key-expired",
            AuthFailure::NotAccepted => "not-accepted",
        }
    }
}

impl IntoResponse for AuthFailure {
    fn into_response(self) -> Response {
        let unavailable =
            matches!(self, AuthFailure::Unavailable(_) | AuthFailure::Token(TokenError::Unavailable(_)));
        let mut response = if unavailable {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "authentication-unavailable",
                "Credentials cannot be checked now",
            )
            .with_detail("the identity provider or the key store cannot be reached; try again shortly")
            .into_response()
        } else {
            Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Not authenticated")
                .with_detail("send a valid bearer token or API key in the Authorization header")
                .into_response()
        };
        if !unavailable {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"commons\""));
        }
        response
    }
}

/// Checks credentials.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    /// Tokens from this provider, when configured.
    pub oidc: Option<Arc<Oidc>>,
    /// API keys from this store, when configured.
    pub keys: Option<Arc<dyn KeyStore>>,
}

impl Authenticator {
    /// Who the request's `Authorization` header says is calling, at `now_ms`.
    pub async fn authenticate(&self, headers: &HeaderMap, now_ms: i64) -> Result<Identity, AuthFailure> {
        let value = headers.get(header::AUTHORIZATION).ok_or(AuthFailure::Missing)?;
        let value = value.to_str().map_err(|_| AuthFailure::Missing)?;
        let (scheme, credential) = value.split_once(' ').ok_or(AuthFailure::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthFailure::Missing);
        }
        let credential = credential.trim();
        if credential.starts_with(apikey::PREFIX) {
            self.api_key(credential, now_ms).await
        } else {
            let oidc = self.oidc.as_ref().ok_or(AuthFailure::NotAccepted)?;
            let person =
                oidc.verify(credential, now_ms.div_euclid(1000)).await.map_err(AuthFailure::Token)?;
            Ok(Identity {
                user: person.user,
                groups: person.groups,
                organisations: person.organisations,
                credential: Credential::Token,
                display_name: person.display_name,
                email: person.email,
            })
        }
    }

    async fn api_key(&self, presented: &str, now_ms: i64) -> Result<Identity, AuthFailure> {
        let store = self.keys.as_ref().ok_or(AuthFailure::NotAccepted)?;
        let id = apikey::id_of(presented).ok_or(AuthFailure::Key(KeyRefusal::Unknown))?;
        let stored = store.find(id).await.map_err(AuthFailure::Unavailable)?;
        let stored = stored.ok_or(AuthFailure::Key(KeyRefusal::Unknown))?;
        apikey::check(presented, &stored, now_ms).map_err(AuthFailure::Key)?;
        Ok(Identity {
            user: format!("commons:apikey:{}", stored.id),
            groups: vec![format!("commons:apikey:{}", stored.role), "commons:apikeys".to_owned()],
            organisations: vec![stored.organisation],
            display_name: Some(if stored.description.is_empty() {
                format!("API key {}", stored.id)
            } else {
                format!("API key {} ({})", stored.id, stored.description)
            }),
            credential: Credential::ApiKey(stored.id),
            email: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikey::StoredKey;
    use futures::future::BoxFuture;

    #[derive(Debug)]
    struct OneKey(StoredKey);

    impl KeyStore for OneKey {
        fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<StoredKey>, String>> {
            let found = (id == self.0.id).then(|| self.0.clone());
            Box::pin(async move { Ok(found) })
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[tokio::test]
    async fn an_api_key_becomes_an_identity_of_its_organisation_and_role() {
        let new = apikey::generate().unwrap();
        let store = OneKey(StoredKey {
            id: new.id.clone(),
            hash: new.hash.clone(),
            organisation: "northshire-county-council".into(),
            role: "finance".into(),
            description: String::new(),
            created_by: "pat".into(),
            created_at_ms: 0,
            expires_at_ms: 10_000,
            revoked_at_ms: None,
        });
        let auth = Authenticator { oidc: None, keys: Some(Arc::new(store)) };
        let who = auth.authenticate(&headers(&format!("Bearer {}", new.key)), 5).await.unwrap();
        assert_eq!(who.user, format!("commons:apikey:{}", new.id));
        assert_eq!(who.groups, ["commons:apikey:finance", "commons:apikeys"]);
        assert!(who.acts_for("northshire-county-council"));
        assert_eq!(
            auth.authenticate(&headers(&format!("Bearer {}", new.key)), 10_000).await,
            Err(AuthFailure::Key(KeyRefusal::Expired))
        );
        let other = apikey::generate().unwrap();
        assert_eq!(
            auth.authenticate(&headers(&format!("Bearer {}", other.key)), 5).await,
            Err(AuthFailure::Key(KeyRefusal::Unknown))
        );
    }

    #[tokio::test]
    async fn missing_or_unsupported_credentials_are_refused() {
        let auth = Authenticator::default();
        assert_eq!(auth.authenticate(&HeaderMap::new(), 0).await, Err(AuthFailure::Missing));
        assert_eq!(auth.authenticate(&headers("Basic bm9yYTpwdw=="), 0).await, Err(AuthFailure::Missing));
        assert_eq!(auth.authenticate(&headers("Bearer eyJ.x.y"), 0).await, Err(AuthFailure::NotAccepted));
    }

    #[test]
    fn refusals_are_one_401_that_names_no_reason() {
        for failure in [AuthFailure::Missing, AuthFailure::Key(KeyRefusal::Revoked), AuthFailure::NotAccepted]
        {
            let response = failure.into_response();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        }
        let response = AuthFailure::Unavailable("db down".into()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
