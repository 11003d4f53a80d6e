//! `GET /v1/whoami`: who the API takes the caller to be, and whether it acts for every
//! organisation. Any authenticated caller may ask.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{Caller, V1};
use crate::auth::Credential;
use crate::authz::ALL_ORGANISATIONS;
use crate::problem::Problem;

/// The answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// The Kubernetes user RBAC sees.
    pub user: String,
    /// The person's name (a key's description), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Kubernetes groups RBAC sees.
    pub groups: Vec<String>,
    /// The organisations the caller acts for.
    pub organisations: Vec<String>,
    /// `token` or `api-key`.
    pub credential: &'static str,
    /// The API key's id, for a key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Whether RBAC grants acting for every organisation (`list organisations`).
    pub all_organisations: bool,
}

/// The handler.
#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who the API takes the caller to be", body = WhoAmI),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "Credentials cannot be checked now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn whoami(State(v1): State<Arc<V1>>, Caller(who): Caller) -> Result<Json<WhoAmI>, Problem> {
    let all_organisations = v1.authz.allowed(&who, ALL_ORGANISATIONS).await.unwrap_or(false);
    let (credential, api_key) = match &who.credential {
        Credential::Token => ("token", None),
        Credential::ApiKey(id) => ("api-key", Some(id.clone())),
    };
    Ok(Json(WhoAmI {
        user: who.user,
        name: who.display_name,
        groups: who.groups,
        organisations: who.organisations,
        credential,
        api_key,
        all_organisations,
    }))
}
