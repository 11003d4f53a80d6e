//! Running a controller the way every Commons controller runs: triggered by its own objects'
//! changes (a predicate has already dropped Commons' own status writes) and by the changes mapped
//! to it, at most [`CONCURRENCY`] reconciles at once, retried quickly, stopping gracefully.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::Resource;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::watch::{CONCURRENCY, QuickBackoff};

/// What drives one controller.
pub struct Triggers<K: Resource<DynamicType = ()> + 'static> {
    /// Its objects whose spec changed.
    pub changed: BoxStream<'static, Arc<K>>,
    /// Its objects a change elsewhere concerns.
    pub concerned: BoxStream<'static, ObjectRef<K>>,
    /// Changes that concern every object.
    pub all: Option<BoxStream<'static, ()>>,
}

impl<K: Resource<DynamicType = ()> + 'static> std::fmt::Debug for Triggers<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triggers").field("kind", &K::kind(&())).finish_non_exhaustive()
    }
}

/// Runs the controller of `K` over `store` until `shutdown` resolves.
pub async fn run<K, Ctx, Fut>(
    store: Store<K>,
    triggers: Triggers<K>,
    reconcile: fn(Arc<K>, Arc<Ctx>) -> Fut,
    error_policy: fn(Arc<K>, &Error, Arc<Ctx>) -> Action,
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    Ctx: Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Action>> + Send + 'static,
{
    let kind = K::kind(&()).into_owned();
    let all = triggers.all.unwrap_or_else(|| futures::stream::pending().boxed());
    Controller::for_shared_stream(triggers.changed, store)
        .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY))
        .reconcile_on(triggers.concerned)
        .reconcile_all_on(all)
        .trigger_backoff(QuickBackoff::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(kind = %kind, error = %e, "reconcile request failed");
            }
            std::future::ready(())
        })
        .await;
}
