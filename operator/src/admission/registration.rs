//! The ValidatingWebhookConfiguration that sends tenancy objects to the quota check.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use commons_crds::labels;

use crate::apply::{FIELD_MANAGER, count_write};
use crate::error::{Error, Result};

/// The name of the ValidatingWebhookConfiguration (and of its one webhook).
pub const NAME: &str = "quota.commons.dev";
/// The path the quota check is served on.
pub const PATH: &str = "/validate/quota";

/// Where the apiserver reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A URL (`https://host:port`), for a Commons running outside the cluster.
    Url(String),
    /// A Service in the cluster.
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port.
        port: i32,
    },
}

/// The configuration: pods, PersistentVolumeClaims and Services created or updated (and pods
/// resized or given ephemeral containers), in namespaces that belong to a tenancy, are checked
/// against the tenancy's quota and policy, and Subscriptions against what they name; if Commons cannot be reached the
/// request is refused (`failurePolicy: Fail`), since admitting it unchecked could break the limit.
pub fn desired(endpoint: &Endpoint, ca_bundle: &[u8]) -> ValidatingWebhookConfiguration {
    let client_config = match endpoint {
        Endpoint::Url(base) => WebhookClientConfig {
            url: Some(format!("{}{PATH}", base.trim_end_matches('/'))),
            ca_bundle: Some(ByteString(ca_bundle.to_vec())),
            service: None,
        },
        Endpoint::Service { namespace, name, port } => WebhookClientConfig {
            url: None,
            ca_bundle: Some(ByteString(ca_bundle.to_vec())),
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(PATH.into()),
                port: Some(*port),
            }),
        },
    };
    let rule = |operations: &[&str], resources: &[&str]| RuleWithOperations {
        api_groups: Some(vec![String::new()]),
        api_versions: Some(vec!["v1".into()]),
        operations: Some(operations.iter().map(|s| (*s).to_owned()).collect()),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        scope: Some("Namespaced".into()),
    };
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            labels: Some([(labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned())].into()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: NAME.into(),
            admission_review_versions: vec!["v1".into()],
            client_config,
            failure_policy: Some("Fail".into()),
            match_policy: Some("Equivalent".into()),
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: labels::TENANCY.into(),
                    operator: "Exists".into(),
                    values: None,
                }]),
                match_labels: Some([(labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned())].into()),
            }),
            rules: Some(vec![
                rule(&["CREATE", "UPDATE"], &["pods"]),
                rule(&["UPDATE"], &["pods/resize", "pods/ephemeralcontainers"]),
                rule(&["CREATE", "UPDATE"], &["persistentvolumeclaims", "services"]),
                RuleWithOperations {
                    api_groups: Some(vec![commons_crds::GROUP.into()]),
                    api_versions: Some(vec![commons_crds::VERSION.into()]),
                    operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
                    resources: Some(vec!["subscriptions".into()]),
                    scope: Some("Namespaced".into()),
                },
            ]),
            // Reservations are kept only for requests that are not dry runs.
            side_effects: "NoneOnDryRun".into(),
            timeout_seconds: Some(10),
            ..ValidatingWebhook::default()
        }]),
    }
}

/// The part of a stored configuration Commons keeps: its labels and its own webhook (another
/// party's webhook added to the same object is left alone, and not compared).
pub fn ours(found: &ValidatingWebhookConfiguration) -> ValidatingWebhookConfiguration {
    let mut view = found.clone();
    if let Some(hooks) = view.webhooks.as_mut() {
        hooks.retain(|h| h.name == NAME);
    }
    view
}

/// The webhook's registration: where the apiserver reaches it and the CAs it trusts it with now.
pub struct Registration {
    client: Client,
    endpoint: Endpoint,
    ca_bundle: std::sync::Mutex<Vec<u8>>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl Registration {
    /// A registration not yet installed.
    pub fn new(client: Client, endpoint: Endpoint) -> std::sync::Arc<Registration> {
        std::sync::Arc::new(Registration { client, endpoint, ca_bundle: std::sync::Mutex::default() })
    }

    /// The configuration as it must be now.
    pub fn desired(&self) -> ValidatingWebhookConfiguration {
        let bundle = self.ca_bundle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        desired(&self.endpoint, &bundle)
    }

    /// Trusts the webhook with `ca_bundle` from now on, and applies the configuration
    /// (server-side apply, field manager `commons`) unless it is already so.
    pub async fn install(&self, ca_bundle: &[u8]) -> Result<()> {
        *self.ca_bundle.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = ca_bundle.to_vec();
        let api: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
        let desired = self.desired();
        let found = api.get_opt(NAME).await.map_err(|source| Error::Kube {
            context: format!("reading ValidatingWebhookConfiguration {NAME}"),
            source,
        })?;
        if crate::compare::up_to_date(&desired, found.as_ref().map(ours).as_ref()) {
            return Ok(());
        }
        count_write("ValidatingWebhookConfiguration", "apply");
        api.patch(NAME, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired)).await.map_err(
            |source| Error::Kube {
                context: format!("applying ValidatingWebhookConfiguration {NAME}"),
                source,
            },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenancy_namespaces_only_fail_closed_with_the_ca_bundle() {
        let cfg = desired(&Endpoint::Url("https://127.0.0.1:18443/".into()), b"PEM");
        let hook = &cfg.webhooks.as_ref().unwrap()[0];
        assert_eq!(hook.client_config.url.as_deref(), Some("https://127.0.0.1:18443/validate/quota"));
        assert_eq!(hook.client_config.ca_bundle.as_ref().unwrap().0, b"PEM");
        assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(hook.side_effects, "NoneOnDryRun");
        let sel = hook.namespace_selector.as_ref().unwrap();
        assert_eq!(sel.match_expressions.as_ref().unwrap()[0].key, labels::TENANCY);
        assert_eq!(sel.match_labels.as_ref().unwrap()[labels::MANAGED_BY], labels::MANAGER);
        let rules: Vec<(Vec<String>, Vec<String>)> = hook
            .rules
            .iter()
            .flatten()
            .map(|r| (r.operations.clone().unwrap(), r.resources.clone().unwrap()))
            .collect();
        assert_eq!(rules[0], (vec!["CREATE".to_owned(), "UPDATE".to_owned()], vec!["pods".to_owned()]));
        assert_eq!(
            rules[1],
            (
                vec!["UPDATE".to_owned()],
                vec!["pods/resize".to_owned(), "pods/ephemeralcontainers".to_owned()]
            )
        );
        assert!(rules[2].1.contains(&"persistentvolumeclaims".to_owned()));
        assert_eq!(rules[3].1, ["subscriptions"]);

        let svc = desired(
            &Endpoint::Service { namespace: "commons".into(), name: "commons".into(), port: 443 },
            b"x",
        );
        let cc = &svc.webhooks.as_ref().unwrap()[0].client_config;
        assert!(cc.url.is_none());
        assert_eq!(cc.service.as_ref().unwrap().path.as_deref(), Some(PATH));
    }
}
