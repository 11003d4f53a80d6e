//! Test fixtures: Subscriptions built step by step.

use commons_crds::subscription::{ServiceReference, Subscription, SubscriptionMode, SubscriptionSpec};

/// Builds a Subscription for tests: shared use.
#[derive(Debug)]
pub struct SubscriptionBuilder {
    sub: Subscription,
}

/// A Subscription `name` in `namespace` to the service `service_namespace/service`.
pub fn subscription(
    name: &str,
    namespace: &str,
    service_namespace: &str,
    service: &str,
) -> SubscriptionBuilder {
    let mut sub = Subscription::new(
        name,
        SubscriptionSpec {
            service: ServiceReference { namespace: service_namespace.into(), name: service.into() },
            mode: SubscriptionMode::Shared,
            instance: None,
        },
    );
    sub.metadata.namespace = Some(namespace.into());
    sub.metadata.uid = Some(format!("uid-{namespace}-{name}"));
    sub.metadata.generation = Some(1);
    SubscriptionBuilder { sub }
}

impl SubscriptionBuilder {
    pub fn instance(mut self) -> Self {
        self.sub.spec.mode = SubscriptionMode::Instance;
        self
    }

    pub fn build(self) -> Subscription {
        self.sub
    }
}
