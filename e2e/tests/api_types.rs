//! The commons.dev CRDs install on the real apiserver, explain themselves, accept valid objects
//! with their defaults, and reject invalid ones with a message that names the field.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use commons_crds::{HostedService, NetworkSegment, RateCard, Tenancy, TenancyRequest};
use commons_e2e::{client, create_raw, dynamic_api, install_crds, kubectl};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

async fn ready_client() -> Client {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    client
}

async fn ensure_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    if api.get_opt(name).await.unwrap().is_none() {
        let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.unwrap();
    }
}

fn tenancy(name: &str, spec_patch: Value) -> Value {
    let mut spec = json!({
        "organisation": {
            "id": "example-borough-council",
            "displayName": "Example Borough Council",
            "sector": "local-government",
            "costCentre": "LG-001",
            "contactEmail": "it@example.gov.uk"
        },
        "owners": [{"kind": "Group", "name": "example-admins"}],
        "deletionProtection": false,
        "namespaces": [{"name": "prod"}]
    });
    merge(&mut spec, spec_patch);
    json!({"apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy", "metadata": {"name": name}, "spec": spec})
}

fn rate_card(name: &str, prices_patch: Value) -> Value {
    let mut prices = json!({
        "cpuCoreHour": "0.0345",
        "memoryGibHour": "0.0046",
        "storageGibHour": "0.00014",
        "loadBalancerHour": "0.025"
    });
    merge(&mut prices, prices_patch);
    json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "RateCard", "metadata": {"name": name},
        "spec": {"currency": "GBP", "effectiveFrom": "2026-04-01T00:00:00Z", "prices": prices, "platformOverheadPercent": "12.5"}
    })
}

fn hosted_service(name: &str, spec_patch: Value) -> Value {
    let mut spec = json!({
        "image": "registry.example.gov.uk/payroll:2.4.1",
        "ports": [{"name": "http", "port": 8080}]
    });
    merge(&mut spec, spec_patch);
    json!({"apiVersion": "commons.dev/v1alpha1", "kind": "HostedService", "metadata": {"name": name}, "spec": spec})
}

fn segment(name: &str, spec_patch: Value) -> Value {
    let mut spec = json!({"description": "Inter-government network"});
    merge(&mut spec, spec_patch);
    json!({"apiVersion": "commons.dev/v1alpha1", "kind": "NetworkSegment", "metadata": {"name": name}, "spec": spec})
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// Asserts the apiserver refuses the object and that its message names `field` and says `why`.
fn assert_rejected(result: Result<kube::api::DynamicObject, String>, field: &str, why: &str) {
    match result {
        Ok(obj) => panic!("expected rejection naming {field}, but {:?} was stored", obj.metadata.name),
        Err(message) => {
            assert!(message.contains(field), "message does not name {field}: {message}");
            assert!(message.contains(why), "message does not say {why:?}: {message}");
        }
    }
}

#[tokio::test]
async fn kubectl_explain_shows_the_field_docs() {
    ready_client().await;
    let out = kubectl(&["explain", "tenancy.spec.organisation"]).unwrap();
    assert!(out.contains("The organisation this tenancy belongs to."), "{out}");
    for field in ["displayName", "sector", "costCentre", "contactEmail"] {
        assert!(out.contains(field), "{field} missing from:\n{out}");
    }
    let sector = kubectl(&["explain", "tenancy.spec.organisation.sector"]).unwrap();
    assert!(sector.contains("local-government") && sector.contains("criminal-justice"), "{sector}");
    let resources = kubectl(&["api-resources", "--api-group=commons.dev", "-o", "name"]).unwrap();
    for plural in [
        "tenancies",
        "tenancyrequests",
        "networksegments",
        "hostedservices",
        "subscriptions",
        "ratecards",
        "vatrates",
    ] {
        assert!(resources.contains(&format!("{plural}.commons.dev")), "{plural} missing: {resources}");
    }
    // The category lists every kind.
    let all = kubectl(&["get", "commons", "-A", "--ignore-not-found"]);
    assert!(all.is_ok(), "{all:?}");
}

#[tokio::test]
async fn a_valid_tenancy_is_stored_with_its_defaults() {
    let client = ready_client().await;
    let api = dynamic_api::<Tenancy>(&client, None);
    let _ = api.delete("e2e-valid", &DeleteParams::default()).await;
    let stored = create_raw::<Tenancy>(
        &client,
        None,
        tenancy(
            "e2e-valid",
            json!({
                "owners": [
                    {"kind": "Group", "name": "example-admins"},
                    {"kind": "ServiceAccount", "name": "deployer", "namespace": "example-ci"}
                ],
                "namespaces": [{"name": "prod", "labels": {"team": "revenues"}}, {"name": "dev"}],
                "quota": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": 200, "loadBalancers": 2},
                "defaults": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
                "networkSegments": ["psn"],
                "budget": {"monthlyAmount": "2500.00"},
                "expiresAt": "2027-03-31T23:59:59Z"
            }),
        ),
    )
    .await
    .unwrap();
    let spec = &stored.data["spec"];
    assert_eq!(spec["classification"], "official");
    assert_eq!(spec["podSecurity"], "restricted");
    assert_eq!(spec["suspended"], false);
    assert_eq!(spec["budget"]["currency"], "GBP");
    assert_eq!(spec["budget"]["alertThresholds"], json!([80, 100]));
    // The typed client reads it back.
    let typed: Api<Tenancy> = Api::all(client.clone());
    let t = typed.get("e2e-valid").await.unwrap();
    assert_eq!(t.spec.namespaces.len(), 2);
    assert_eq!(t.spec.budget.unwrap().monthly_amount.to_string(), "2500.00");
    let printed = kubectl(&["get", "tenancy", "e2e-valid"]).unwrap();
    assert!(printed.contains("Example Borough Council") && printed.contains("local-government"), "{printed}");
    api.delete("e2e-valid", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn an_organisations_id_is_required_and_cannot_be_changed() {
    let client = ready_client().await;
    let mut without = tenancy("e2e-no-org-id", json!({}));
    without["spec"]["organisation"].as_object_mut().unwrap().remove("id");
    assert_rejected(
        create_raw::<Tenancy>(&client, None, without).await,
        "spec.organisation.id",
        "Required value",
    );

    let api = dynamic_api::<Tenancy>(&client, None);
    let _ = api.delete("e2e-org-id", &DeleteParams::default()).await;
    create_raw::<Tenancy>(&client, None, tenancy("e2e-org-id", json!({}))).await.unwrap();
    let edit = Patch::Merge(json!({"spec": {"organisation": {"id": "another-council"}}}));
    match api.patch("e2e-org-id", &PatchParams::default(), &edit).await {
        Err(kube::Error::Api(status)) => {
            assert!(status.message.contains("spec.organisation.id"), "{}", status.message);
            assert!(status.message.contains("cannot be changed"), "{}", status.message);
        }
        other => panic!("changing the organisation's id should be refused, got {other:?}"),
    }
    // Everything else about the organisation may change.
    let rename =
        Patch::Merge(json!({"spec": {"organisation": {"displayName": "Example Borough Council (renamed)"}}}));
    api.patch("e2e-org-id", &PatchParams::default(), &rename).await.unwrap();
    api.delete("e2e-org-id", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn invalid_tenancies_are_rejected_naming_the_field() {
    let client = ready_client().await;
    let cases = [
        (
            tenancy("e2e-bad-sector", json!({"organisation": {"sector": "space"}})),
            "spec.organisation.sector",
            "Unsupported value",
        ),
        (
            tenancy("e2e-bad-ns", json!({"namespaces": [{"name": "Prod_1"}]})),
            "spec.namespaces[0].name",
            "should match",
        ),
        (tenancy("e2e-no-ns", json!({"namespaces": []})), "spec.namespaces", "should have at least 1 items"),
        (
            tenancy("e2e-dup-ns", json!({"namespaces": [{"name": "a"}, {"name": "a"}]})),
            "spec.namespaces[1]",
            "Duplicate value",
        ),
        (
            tenancy("e2e-sa-owner", json!({"owners": [{"kind": "ServiceAccount", "name": "ci"}]})),
            "spec.owners[0].namespace",
            "namespace is required",
        ),
        (
            tenancy(
                "e2e-system-owner",
                json!({"owners": [{"kind": "Group", "name": "system:authenticated"}]}),
            ),
            "spec.owners[0].name",
            "system: users and groups are the cluster's own identities",
        ),
        (
            tenancy(
                "e2e-system-user",
                json!({"owners": [{"kind": "User", "name": "system:kube-scheduler"}]}),
            ),
            "spec.owners[0].name",
            "cannot own a tenancy",
        ),
        (
            tenancy("e2e-bad-quota", json!({"quota": {"cpu": "lots"}})),
            "spec.quota.cpu",
            "must be a non-negative Kubernetes quantity",
        ),
        (
            tenancy(
                "e2e-bad-defaults",
                json!({"defaults": {"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}}),
            ),
            "spec.defaults.limits.cpu",
            "limits.cpu must not be below requests.cpu",
        ),
        (
            tenancy(
                "e2e-bad-label",
                json!({"namespaces": [{"name": "a", "labels": {"commons.dev/tenancy": "other"}}]}),
            ),
            "spec.namespaces[0].labels",
            "managed by Commons",
        ),
        (
            tenancy("e2e-bad-budget", json!({"budget": {"monthlyAmount": 2500}})),
            "spec.budget.monthlyAmount",
            "must be of type string",
        ),
        (
            tenancy("a-tenancy-name-that-is-far-too-long-for-namespaces", json!({})),
            "metadata.name",
            "at most 40 characters",
        ),
        (
            tenancy("e2e-bad-org-name", json!({"organisation": {"displayName": "=HYPERLINK(\"x\")"}})),
            "spec.organisation.displayName",
            "should match",
        ),
        (
            tenancy("e2e-bad-org-id", json!({"organisation": {"id": "Example Council"}})),
            "spec.organisation.id",
            "should match",
        ),
        (
            tenancy("e2e-bad-email", json!({"organisation": {"contactEmail": "not-an-email"}})),
            "spec.organisation.contactEmail",
            "should match",
        ),
        (
            tenancy("e2e-bad-registry", json!({"allowed": {"registries": ["https://ghcr.io"]}})),
            "spec.allowed.registries[0]",
            "should match",
        ),
        (
            tenancy("e2e-bad-toleration", json!({"allowed": {"tolerations": [{"key": ""}]}})),
            "spec.allowed.tolerations[0].key",
            "should be at least 1 chars long",
        ),
        (
            tenancy("e2e-bad-effect", json!({"allowed": {"tolerations": [{"key": "k", "effect": "Evict"}]}})),
            "spec.allowed.tolerations[0].effect",
            "Unsupported value",
        ),
    ];
    for (manifest, field, why) in cases {
        assert_rejected(create_raw::<Tenancy>(&client, None, manifest).await, field, why);
    }
}

#[tokio::test]
async fn rate_cards_take_exact_decimal_prices_only() {
    let client = ready_client().await;
    let api = dynamic_api::<RateCard>(&client, None);
    let _ = api.delete("e2e-valid-card", &DeleteParams::default()).await;
    let stored = create_raw::<RateCard>(&client, None, rate_card("e2e-valid-card", json!({}))).await.unwrap();
    assert_eq!(stored.data["spec"]["prices"]["storageGibHour"], "0.00014");
    let typed: Api<RateCard> = Api::all(client.clone());
    let card = typed.get("e2e-valid-card").await.unwrap();
    assert_eq!(card.spec.prices.cpu_core_hour.to_string(), "0.0345");
    api.delete("e2e-valid-card", &DeleteParams::default()).await.unwrap();

    let cases = [
        (
            rate_card("e2e-negative", json!({"cpuCoreHour": "-0.01"})),
            "spec.prices.cpuCoreHour",
            "should match",
        ),
        (
            rate_card("e2e-float", json!({"memoryGibHour": 0.05})),
            "spec.prices.memoryGibHour",
            "must be of type string",
        ),
        (
            rate_card("e2e-exponent", json!({"storageGibHour": "1e-3"})),
            "spec.prices.storageGibHour",
            "should match",
        ),
    ];
    for (manifest, field, why) in cases {
        assert_rejected(create_raw::<RateCard>(&client, None, manifest).await, field, why);
    }
    let mut over = rate_card("e2e-overhead", json!({}));
    over["spec"]["platformOverheadPercent"] = json!("150");
    assert_rejected(
        create_raw::<RateCard>(&client, None, over).await,
        "spec.platformOverheadPercent",
        "percentage from 0 to 100",
    );
    let mut currency = rate_card("e2e-currency", json!({}));
    currency["spec"]["currency"] = json!("pounds");
    assert_rejected(create_raw::<RateCard>(&client, None, currency).await, "spec.currency", "should match");
}

#[tokio::test]
async fn hosted_services_check_sharing_weights_and_catalogue_entries() {
    let client = ready_client().await;
    ensure_namespace(&client, "e2e-services").await;
    let ns = Some("e2e-services");
    let api = dynamic_api::<HostedService>(&client, ns);
    let _ = api.delete("payroll", &DeleteParams::default()).await;
    let stored = create_raw::<HostedService>(
        &client,
        ns,
        hosted_service(
            "payroll",
            json!({
                "exposure": "segment",
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "env": [{"name": "MODE", "value": "production"}],
                "probes": {"readiness": {"httpGet": {"path": "/healthz", "port": 8080}}},
                "sharing": {"consumers": ["council-a", "council-b"], "costSplit": "weighted", "weights": {"council-a": 3, "council-b": 1}},
                "catalogue": {"publish": true, "title": "Payroll", "description": "Monthly payroll for councils.", "category": "payroll"}
            }),
        ),
    )
    .await
    .unwrap();
    assert_eq!(stored.data["spec"]["replicas"], 1);
    assert_eq!(stored.data["spec"]["ports"][0]["protocol"], "TCP");
    let scaled = kubectl(&["scale", "-n", "e2e-services", "hostedservice/payroll", "--replicas=3"]).unwrap();
    assert!(scaled.contains("scaled"), "{scaled}");
    let typed: Api<HostedService> = Api::namespaced(client.clone(), "e2e-services");
    assert_eq!(typed.get("payroll").await.unwrap().spec.replicas, 3);
    api.delete("payroll", &DeleteParams::default()).await.unwrap();

    let cases = [
        (
            hosted_service(
                "mismatch",
                json!({"sharing": {"consumers": ["council-a", "council-b"], "costSplit": "weighted", "weights": {"council-a": 1}}}),
            ),
            "spec.sharing.weights",
            "exactly one weight for each consumer",
        ),
        (
            hosted_service(
                "wrong-names",
                json!({"sharing": {"consumers": ["council-a"], "costSplit": "weighted", "weights": {"council-z": 1}}}),
            ),
            "spec.sharing.weights",
            "exactly one weight for each consumer",
        ),
        (
            hosted_service(
                "equal-with-weights",
                json!({"sharing": {"consumers": ["council-a"], "weights": {"council-a": 1}}}),
            ),
            "spec.sharing.weights",
            "only allowed with costSplit weighted",
        ),
        (
            hosted_service("unlisted", json!({"catalogue": {"publish": true}})),
            "spec.catalogue.title",
            "needs a title and a description",
        ),
        (
            hosted_service("bad-exposure", json!({"exposure": "everyone"})),
            "spec.exposure",
            "Unsupported value",
        ),
        (
            hosted_service("bad-port", json!({"ports": [{"name": "http", "port": 70000}]})),
            "spec.ports[0].port",
            "should be less than or equal to 65535",
        ),
        (hosted_service("bad-image", json!({"image": "a b"})), "spec.image", "no spaces"),
        (
            hosted_service(
                "two-handlers",
                json!({"probes": {"readiness": {"httpGet": {"port": 8080}, "tcpSocket": {"port": 8080}}}}),
            ),
            "spec.probes.readiness",
            "a probe has one handler",
        ),
    ];
    for (manifest, field, why) in cases {
        assert_rejected(create_raw::<HostedService>(&client, ns, manifest).await, field, why);
    }
}

#[tokio::test]
async fn network_segments_validate_cidrs_ports_and_peers() {
    let client = ready_client().await;
    let api = dynamic_api::<NetworkSegment>(&client, None);
    let _ = api.delete("e2e-psn", &DeleteParams::default()).await;
    create_raw::<NetworkSegment>(
        &client,
        None,
        segment(
            "e2e-psn",
            json!({
                "admission": {"sectors": ["local-government", "health"], "tenancies": ["police-a"]},
                "peers": ["e2e-internet"],
                "egress": [{"cidr": "51.0.0.0/8", "except": ["51.1.0.0/16"], "ports": [{"port": 443}, {"port": 8000, "endPort": 8100}]}],
                "ingress": [{"cidr": "2001:db8::/32"}]
            }),
        ),
    )
    .await
    .unwrap();
    api.delete("e2e-psn", &DeleteParams::default()).await.unwrap();

    let cases = [
        (
            segment("e2e-bad-cidr", json!({"egress": [{"cidr": "51.0.0.0/33"}]})),
            "spec.egress[0].cidr",
            "must be a CIDR",
        ),
        (
            segment("e2e-bad-except", json!({"egress": [{"cidr": "51.0.0.0/8", "except": ["10.0.0.0/8"]}]})),
            "spec.egress[0].except",
            "inside cidr",
        ),
        (
            segment(
                "e2e-bad-range",
                json!({"ingress": [{"cidr": "10.0.0.0/8", "ports": [{"port": 9000, "endPort": 8000}]}]}),
            ),
            "spec.ingress[0].ports[0].endPort",
            "must not be below port",
        ),
        (
            segment("e2e-self", json!({"peers": ["e2e-self"]})),
            "spec.peers",
            "must not name the segment itself",
        ),
        (
            segment("e2e-bad-sector", json!({"admission": {"sectors": ["space"]}})),
            "spec.admission.sectors[0]",
            "Unsupported value",
        ),
    ];
    for (manifest, field, why) in cases {
        assert_rejected(create_raw::<NetworkSegment>(&client, None, manifest).await, field, why);
    }
}

#[tokio::test]
async fn tenancy_requests_are_immutable_and_decided_once_through_status() {
    let client = ready_client().await;
    ensure_namespace(&client, "commons-system").await;
    let ns = Some("commons-system");
    let api = dynamic_api::<TenancyRequest>(&client, ns);
    let _ = api.delete("e2e-request", &DeleteParams::default()).await;
    let request = json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "TenancyRequest", "metadata": {"name": "e2e-request"},
        "spec": {
            "requester": {"organisation": "Example Borough Council", "name": "Sam Jones", "email": "sam.jones@example.gov.uk"},
            "tenancyName": "example-council",
            "tenancy": tenancy("unused", json!({}))["spec"],
            "justification": "Moving our revenues and benefits system off its own servers."
        }
    });
    create_raw::<TenancyRequest>(&client, ns, request).await.unwrap();

    let params = PatchParams::default();
    let spec_edit = api
        .patch(
            "e2e-request",
            &params,
            &Patch::Merge(json!({"spec": {"justification": "Something else entirely."}})),
        )
        .await;
    let message = match spec_edit {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("spec edit should be refused, got {other:?}"),
    };
    assert!(message.contains("spec is immutable"), "{message}");

    let decision = |outcome: &str| {
        json!({"status": {
            "conditions": [{"type": outcome, "status": "True", "reason": "PlatformTeamDecision", "message": "Checked with the council", "lastTransitionTime": "2026-11-23T10:00:00Z"}],
            "decision": {"outcome": outcome, "decidedBy": "platform-admin", "decidedAt": "2026-11-23T10:00:00Z", "reason": "Checked with the council"}
        }})
    };
    let both = json!({"status": {"conditions": [
        {"type": "Approved", "status": "True", "reason": "A", "message": "a", "lastTransitionTime": "2026-11-23T10:00:00Z"},
        {"type": "Denied", "status": "True", "reason": "B", "message": "b", "lastTransitionTime": "2026-11-23T10:00:00Z"}
    ]}});
    match api.patch_status("e2e-request", &params, &Patch::Merge(both)).await {
        Err(kube::Error::Api(status)) => {
            assert!(status.message.contains("both Approved and Denied"), "{}", status.message)
        }
        other => panic!("both conditions should be refused, got {other:?}"),
    }
    api.patch_status("e2e-request", &params, &Patch::Merge(decision("Approved"))).await.unwrap();
    let typed: Api<TenancyRequest> = Api::namespaced(client.clone(), "commons-system");
    let stored = typed.get("e2e-request").await.unwrap();
    let d = stored.status.unwrap().decision.unwrap();
    assert_eq!(d.decided_by, "platform-admin");

    match api.patch_status("e2e-request", &params, &Patch::Merge(decision("Denied"))).await {
        Err(kube::Error::Api(status)) => {
            assert!(status.message.contains("status.decision"), "{}", status.message);
            assert!(status.message.contains("cannot be changed"), "{}", status.message);
        }
        other => panic!("changing the decision should be refused, got {other:?}"),
    }
    api.delete("e2e-request", &DeleteParams::default()).await.unwrap();
}
