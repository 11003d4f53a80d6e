//! What a caller may do is Kubernetes RBAC's to say, asked with a SubjectAccessReview as the
//! apiserver itself and kube-rbac-proxy ask it: the caller's [`Identity`] is the user and groups,
//! every API action a verb on a `commons.dev` resource (docs/api.md lists them). So a platform team
//! grants API rights with the ClusterRoleBindings it already writes, and `kubectl auth can-i --as`
//! answers what the API will. Answers are cached for a few seconds (a revoked binding takes effect
//! within `ttl`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::auth::Identity;

/// The API group every action is checked in: one no apiserver serves, so a grant of an API
/// right is never also a right to the cluster's own `commons.dev` objects (where the API's
/// organisation scoping would not apply).
pub const GROUP: &str = "api.commons.dev";

/// An action: a verb on a resource of [`GROUP`], cluster-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Action {
    /// The verb (`get`, `list`, `create`, `delete`, or one of Commons' own: `approve`, `deny`).
    pub verb: &'static str,
    /// The resource (`tenancies`, `tenancyrequests`, `usage`, `organisations`, ...).
    pub resource: &'static str,
}

/// Acting for every organisation, not only one's own: `list organisations`.
pub const ALL_ORGANISATIONS: Action = Action { verb: "list", resource: "organisations" };

/// Decides whether an identity may take an action.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// Whether `who` may take `action`; an error when it cannot be decided.
    fn allowed<'a>(&'a self, who: &'a Identity, action: Action) -> BoxFuture<'a, Result<bool, String>>;
}

type Key = (String, Vec<String>, Action);

/// The apiserver's RBAC, asked with SubjectAccessReviews.
#[derive(Clone)]
pub struct Rbac {
    client: Client,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<Key, (bool, Instant)>>>,
}

impl std::fmt::Debug for Rbac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rbac").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// At most this many answers are cached; when full, the cache starts again empty.
const CACHE_LIMIT: usize = 10_000;

impl Rbac {
    /// Asks the apiserver `client` reaches, caching answers for `ttl`.
    pub fn new(client: Client, ttl: Duration) -> Self {
        Rbac { client, ttl, cache: Arc::new(Mutex::new(HashMap::new())) }
    }

    fn cached(&self, key: &Key) -> Option<bool> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(allowed, _)| *allowed)
    }

    fn remember(&self, key: Key, allowed: bool) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, (allowed, Instant::now()));
        }
    }
}

/// The review the apiserver is asked.
pub fn review(who: &Identity, action: Action) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(who.user.clone()),
            groups: Some(who.groups.clone()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.to_owned()),
                resource: Some(action.resource.to_owned()),
                verb: Some(action.verb.to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

impl Authorizer for Rbac {
    fn allowed<'a>(&'a self, who: &'a Identity, action: Action) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let key = (who.user.clone(), who.groups.clone(), action);
            if let Some(allowed) = self.cached(&key) {
                return Ok(allowed);
            }
            let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
            let answer = api
                .create(&PostParams::default(), &review(who, action))
                .await
                .map_err(|e| format!("SubjectAccessReview: {e}"))?;
            let allowed = answer.status.is_some_and(|s| s.allowed && s.denied != Some(true));
            self.remember(key, allowed);
            Ok(allowed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credential;

    #[test]
    fn the_review_carries_the_identity_and_the_action_in_the_commons_group() {
        let who = Identity {
            user: "oidc:nora".into(),
            groups: vec!["oidc:/roles/requester".into()],
            organisations: vec!["northshire-county-council".into()],
            credential: Credential::Token,
            display_name: None,
            email: None,
        };
        let sar = review(&who, Action { verb: "create", resource: "tenancyrequests" });
        assert_eq!(sar.spec.user.as_deref(), Some("oidc:nora"));
        assert_eq!(sar.spec.groups.as_deref(), Some(&["oidc:/roles/requester".to_owned()][..]));
        let attrs = sar.spec.resource_attributes.unwrap();
        assert_eq!(
            (attrs.group.as_deref(), attrs.resource.as_deref(), attrs.verb.as_deref(), attrs.namespace),
            (Some("api.commons.dev"), Some("tenancyrequests"), Some("create"), None)
        );
    }
}
