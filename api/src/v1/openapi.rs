//! The `/v1` API's OpenAPI 3.1 document, generated from the handlers and types that serve it (each
//! route is registered and documented by the same `routes!` call, so the two cannot drift), with
//! the Tenancy spec a request carries taken whole from the CRD's own schema. Served, without
//! authentication, at `/v1/openapi.json`.

use commons_crds::TenancyRequest;
use kube::CustomResourceExt;
use serde_json::Value;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Where the document is served.
pub const PATH: &str = "/v1/openapi.json";

/// What the document says of itself, before the routes add their paths.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Commons API",
        version = "v1",
        description = "Councils request and run tenancies; finance teams pull usage. Signed in with an OpenID Connect bearer token or an API key; authorised by Kubernetes RBAC (docs/api.md)."
    ),
    // Schemas only parameters name (routes collect those of bodies themselves).
    components(schemas(super::requests::DryRun)),
    modifiers(&Bearer)
)]
#[derive(Debug)]
pub struct Base;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An access token from the identity provider, or a `cmk_` API key"))
                    .build(),
            ),
        );
    }
}

/// The CRD's schema of a TenancyRequest's `spec.tenancy` (a Tenancy's spec).
fn tenancy_schema() -> Option<Value> {
    let crd = TenancyRequest::crd();
    let schema = crd.spec.versions.first()?.schema.as_ref()?.open_api_v3_schema.as_ref()?;
    let mut value =
        serde_json::to_value(schema).ok()?.pointer("/properties/spec/properties/tenancy")?.clone();
    strip_kubernetes_extensions(&mut value);
    Some(value)
}

/// `x-kubernetes-*` members mean nothing outside the apiserver (the rules they carry are
/// enforced there, and their errors come back named): the document keeps plain JSON Schema.
fn strip_kubernetes_extensions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with("x-kubernetes-"));
            map.values_mut().for_each(strip_kubernetes_extensions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_kubernetes_extensions),
        _ => {}
    }
}

/// The document as served: the generated one, with the Tenancy spec's schema put in.
pub fn document(api: &OpenApi) -> Vec<u8> {
    let mut doc = serde_json::to_value(api).unwrap_or(Value::Null);
    if let (Some(tenancy), Some(slot)) =
        (tenancy_schema(), doc.pointer_mut("/components/schemas/NewTenancyRequest/properties/tenancy"))
    {
        let description = slot.get("description").cloned();
        *slot = tenancy;
        if let (Some(d), Value::Object(map)) = (description, slot) {
            map.insert("description".into(), d);
        }
    }
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenancy_schema_is_the_crds_without_kubernetes_extensions() {
        let schema = tenancy_schema().unwrap();
        assert!(schema.pointer("/properties/organisation/properties/id").is_some(), "{schema}");
        assert!(!schema.to_string().contains("x-kubernetes-"), "{schema}");
        let required = schema["required"].as_array().unwrap();
        assert!(required.iter().any(|r| r == "namespaces"), "{schema}");
    }
}
