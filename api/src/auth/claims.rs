//! What a verified token's claims must say, and who they say the caller is. Which claims name the
//! person, their groups and their organisation is configuration ([`ClaimMapping`]), not code.

use serde_json::{Map, Value};

/// Why a token whose signature verified is still not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// The payload is not a JSON object.
    #[error("the token's claims are not a JSON object")]
    NotObject,
    /// `iss` is not the configured issuer.
    #[error("the token is from another issuer")]
    Issuer,
    /// `aud` does not include the configured audience.
    #[error("the token is not meant for this API (audience)")]
    Audience,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still to come (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// A claim that must be present is not, or has the wrong type.
    #[error("the token has no usable {0} claim")]
    Missing(String),
}

/// Which claims give whom, and how they become Kubernetes user and group names for RBAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// The claim that names the person (Kubernetes' own default is `sub`).
    pub username_claim: String,
    /// Put before the name to make the Kubernetes user (for example `oidc:`), so a name from the
    /// identity provider can never be a `system:` user.
    pub username_prefix: String,
    /// The claim listing the person's groups.
    pub groups_claim: String,
    /// Put before each group to make the Kubernetes group.
    pub groups_prefix: String,
    /// The claim naming the person's organisation(s): a string or a list of strings.
    pub organisation_claim: String,
    /// Only values starting with this count, and it is taken off: with the groups claim and
    /// `/organisations/`, the group `/organisations/leeds-city-council` means the organisation
    /// `leeds-city-council`. Empty: every value is an organisation id.
    pub organisation_prefix: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            username_claim: "sub".into(),
            username_prefix: "oidc:".into(),
            groups_claim: "groups".into(),
            groups_prefix: "oidc:".into(),
            organisation_claim: "groups".into(),
            organisation_prefix: "/organisations/".into(),
        }
    }
}

/// What the token's claims say about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The Kubernetes user name (prefixed).
    pub user: String,
    /// The Kubernetes groups (prefixed).
    pub groups: Vec<String>,
    /// The organisation ids the person belongs to.
    pub organisations: Vec<String>,
    /// The person's name (`name`, else `preferred_username`), for records people read.
    pub display_name: Option<String>,
    /// The person's email address (`email`, unless `email_verified` is false).
    pub email: Option<String>,
    /// The token's `exp`, seconds since the epoch.
    pub expires_at: i64,
}

/// The time checks' parameters.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Now, seconds since the epoch.
    pub now: i64,
    /// Allowed clock difference with the issuer, seconds.
    pub leeway: i64,
}

/// Checks issuer, audience, expiry and not-before, then maps the claims to a [`Person`].
pub fn check(
    payload: &[u8],
    issuer: &str,
    audience: &str,
    clock: Clock,
    mapping: &ClaimMapping,
) -> Result<Person, ClaimsError> {
    let claims: Map<String, Value> = serde_json::from_slice(payload).map_err(|_| ClaimsError::NotObject)?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(ClaimsError::Issuer);
    }
    let audiences = strings(claims.get("aud"));
    if !audiences.iter().any(|a| a == audience) {
        return Err(ClaimsError::Audience);
    }
    let expires_at =
        claims.get("exp").and_then(Value::as_i64).ok_or_else(|| ClaimsError::Missing("exp".into()))?;
    if clock.now > expires_at.saturating_add(clock.leeway) {
        return Err(ClaimsError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_i64().ok_or_else(|| ClaimsError::Missing("nbf".into()))?;
        if clock.now < nbf.saturating_sub(clock.leeway) {
            return Err(ClaimsError::NotYetValid);
        }
    }
    let name = claims
        .get(&mapping.username_claim)
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ClaimsError::Missing(mapping.username_claim.clone()))?;
    let groups = strings(claims.get(&mapping.groups_claim))
        .into_iter()
        .map(|g| format!("{}{g}", mapping.groups_prefix))
        .collect();
    let mut organisations: Vec<String> = strings(claims.get(&mapping.organisation_claim))
        .into_iter()
        .filter_map(|v| v.strip_prefix(mapping.organisation_prefix.as_str()).map(str::to_owned))
        .filter(|o| !o.is_empty() && !o.contains('/'))
        .collect();
    organisations.sort();
    organisations.dedup();
    let text =
        |claim: &str| claims.get(claim).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
    let display_name = text("name").or_else(|| text("preferred_username"));
    let verified = claims.get("email_verified").and_then(Value::as_bool) != Some(false);
    let email = text("email").filter(|_| verified);
    Ok(Person {
        user: format!("{}{name}", mapping.username_prefix),
        groups,
        organisations,
        display_name,
        email,
        expires_at,
    })
}

/// A claim that is a string or a list of strings, as a list.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://id.example/realms/commons";
    const CLOCK: Clock = Clock { now: 1_000, leeway: 5 };

    fn claims(changes: Value) -> Vec<u8> {
        let mut base = json!({
            "iss": ISS, "aud": ["account", "commons-api"], "exp": 1_100, "nbf": 900, "sub": "f00d",
            "preferred_username": "nora",
            "groups": ["/organisations/northshire-county-council", "/roles/requester", "/organisations/a/b"]
        });
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        serde_json::to_vec(&base).unwrap()
    }

    fn run(changes: Value, clock: Clock) -> Result<Person, ClaimsError> {
        check(&claims(changes), ISS, "commons-api", clock, &ClaimMapping::default())
    }

    #[test]
    fn each_claim_check_refuses_what_it_should() {
        let table: Vec<(&str, Value, Clock, Result<(), ClaimsError>)> = vec![
            ("accepted", json!({}), CLOCK, Ok(())),
            ("other issuer", json!({"iss": "https://evil.example"}), CLOCK, Err(ClaimsError::Issuer)),
            ("issuer missing", json!({"iss": null}), CLOCK, Err(ClaimsError::Issuer)),
            ("audience a string", json!({"aud": "commons-api"}), CLOCK, Ok(())),
            ("other audience", json!({"aud": ["account"]}), CLOCK, Err(ClaimsError::Audience)),
            ("no audience", json!({"aud": null}), CLOCK, Err(ClaimsError::Audience)),
            ("expired beyond leeway", json!({"exp": 994}), CLOCK, Err(ClaimsError::Expired)),
            ("expired within leeway", json!({"exp": 996}), CLOCK, Ok(())),
            ("no expiry", json!({"exp": null}), CLOCK, Err(ClaimsError::Missing("exp".into()))),
            ("not yet valid", json!({"nbf": 1_006}), CLOCK, Err(ClaimsError::NotYetValid)),
            ("nbf within leeway", json!({"nbf": 1_004}), CLOCK, Ok(())),
            ("no subject", json!({"sub": null}), CLOCK, Err(ClaimsError::Missing("sub".into()))),
            ("empty subject", json!({"sub": ""}), CLOCK, Err(ClaimsError::Missing("sub".into()))),
        ];
        for (name, changes, clock, want) in table {
            assert_eq!(run(changes, clock).map(|_| ()), want, "{name}");
        }
        assert_eq!(
            check(b"[1]", ISS, "commons-api", CLOCK, &ClaimMapping::default()),
            Err(ClaimsError::NotObject)
        );
    }

    #[test]
    fn the_mapping_prefixes_names_and_reads_organisations_from_group_paths() {
        let person = run(json!({}), CLOCK).unwrap();
        assert_eq!(person.user, "oidc:f00d");
        assert_eq!(
            person.groups,
            [
                "oidc:/organisations/northshire-county-council",
                "oidc:/roles/requester",
                "oidc:/organisations/a/b"
            ]
        );
        // A nested group is not an organisation.
        assert_eq!(person.organisations, ["northshire-county-council"]);
        assert_eq!(person.expires_at, 1_100);
    }

    #[test]
    fn a_dedicated_organisation_claim_and_username_claim_are_configuration() {
        let mapping = ClaimMapping {
            username_claim: "preferred_username".into(),
            username_prefix: "council:".into(),
            organisation_claim: "org".into(),
            organisation_prefix: String::new(),
            ..ClaimMapping::default()
        };
        let payload = claims(json!({"org": "westshire-borough-council"}));
        let person = check(&payload, ISS, "commons-api", CLOCK, &mapping).unwrap();
        assert_eq!(person.user, "council:nora");
        assert_eq!(person.organisations, ["westshire-borough-council"]);
    }
}
