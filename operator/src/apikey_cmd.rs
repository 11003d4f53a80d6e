//! `commons apikey create|list|revoke`: API keys for machine clients, kept in the ledger's
//! database as hashes. The key itself is printed once, at creation.

use std::fmt::Write as _;

use commons_api::auth::apikey::{self, StoredKey};
use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::ledger::Ledger;

/// The longest a key may live: a key that never expires is a key nobody remembers to rotate.
const MAX_DAYS: i64 = 366;

/// A lifetime like `90d`, `12h`, `30m` or `45s`, in milliseconds.
pub fn lifetime(text: &str) -> Result<i64> {
    let bad = |why: &str| Error::Invalid(format!("--expires {text}: {why}"));
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number.parse().map_err(|_| bad("a whole number and a unit, for example 90d"))?;
    let ms = match unit {
        "d" => n.checked_mul(86_400_000),
        "h" => n.checked_mul(3_600_000),
        "m" => n.checked_mul(60_000),
        "s" => n.checked_mul(1_000),
        _ => return Err(bad("the unit is d, h, m or s")),
    }
    .ok_or_else(|| bad("too long"))?;
    if ms <= 0 {
        return Err(bad("a key must live for some time"));
    }
    if ms > MAX_DAYS * 86_400_000 {
        return Err(bad("at most 366d; make a new key before this one expires"));
    }
    Ok(ms)
}

/// What `create` is given.
#[derive(Debug)]
pub struct NewKeyRequest<'a> {
    /// The organisation the key acts for.
    pub organisation: &'a str,
    /// Its role.
    pub role: &'a str,
    /// `90d` and the like.
    pub expires: &'a str,
    /// What it is for.
    pub description: &'a str,
    /// Who makes it.
    pub by: &'a str,
}

fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `commons apikey create`: stores the key's hash and returns the text to print, the key in it.
pub async fn create(request: &NewKeyRequest<'_>, ledger_url: &str) -> Result<String> {
    if !dns_label(request.organisation) {
        return Err(Error::Invalid(format!(
            "--organisation {}: an organisation id (a DNS label, as in a Tenancy's spec.organisation.id)",
            request.organisation
        )));
    }
    if !apikey::ROLES.contains(&request.role) {
        return Err(Error::Invalid(format!("--role {}: one of {}", request.role, apikey::ROLES.join(", "))));
    }
    let ttl = lifetime(request.expires)?;
    let now = Timestamp::now().as_millisecond();
    let new = apikey::generate().map_err(Error::Invalid)?;
    let stored = StoredKey {
        id: new.id.clone(),
        hash: new.hash,
        organisation: request.organisation.to_owned(),
        role: request.role.to_owned(),
        description: request.description.to_owned(),
        created_by: request.by.to_owned(),
        created_at_ms: now,
        expires_at_ms: now.saturating_add(ttl),
        revoked_at_ms: None,
    };
    let ledger = Ledger::open(ledger_url)?;
    ledger.migrate().await?;
    let added = ledger.add_api_key(&stored).await;
    ledger.close().await;
    added?;
    Ok(format!(
        "{}\n\nid {} for {} as {}, expires {}.\nThe key is shown only now: store it where the client keeps secrets. \
         Send it as `Authorization: Bearer <key>`.\n",
        new.key,
        stored.id,
        stored.organisation,
        stored.role,
        instant(stored.expires_at_ms)
    ))
}

fn instant(ms: i64) -> String {
    Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_else(|_| ms.to_string())
}

/// `commons apikey list`: every key, without secrets, with its state now.
pub async fn list(ledger_url: &str, json: bool) -> Result<String> {
    let ledger = Ledger::open_to_read(ledger_url)?;
    let keys = ledger.api_keys().await;
    ledger.close().await;
    let keys = keys?;
    let now = Timestamp::now().as_millisecond();
    let state = |k: &StoredKey| match (k.revoked_at_ms, now >= k.expires_at_ms) {
        (Some(_), _) => "revoked",
        (None, true) => "expired",
        (None, false) => "active",
    };
    if json {
        let items: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "id": k.id, "organisation": k.organisation, "role": k.role,
                    "description": k.description, "createdBy": k.created_by,
                    "createdAt": instant(k.created_at_ms), "expiresAt": instant(k.expires_at_ms),
                    "revokedAt": k.revoked_at_ms.map(instant), "state": state(k),
                })
            })
            .collect();
        return serde_json::to_string_pretty(&items)
            .map(|s| s + "\n")
            .map_err(|e| Error::Invalid(e.to_string()));
    }
    let mut out = String::from(
        "ID            ORGANISATION                    ROLE             STATE    EXPIRES                   CREATED BY  DESCRIPTION\n",
    );
    for k in &keys {
        let _ = writeln!(
            out,
            "{:<13} {:<31} {:<16} {:<8} {:<25} {:<11} {}",
            k.id,
            k.organisation,
            k.role,
            state(k),
            instant(k.expires_at_ms),
            k.created_by,
            k.description
        );
    }
    Ok(out)
}

/// `commons apikey revoke ID`.
pub async fn revoke(id: &str, by: &str, ledger_url: &str) -> Result<String> {
    let ledger = Ledger::open(ledger_url)?;
    ledger.migrate().await?;
    let done = ledger.revoke_api_key(id, Timestamp::now().as_millisecond(), by).await;
    let found = ledger.api_key(id).await;
    ledger.close().await;
    match (done?, found?) {
        (true, _) => Ok(format!("revoked {id}: it is refused from now on\n")),
        (false, Some(_)) => Err(Error::Invalid(format!("{id} was revoked already"))),
        (false, None) => Err(Error::Invalid(format!("{id}: no such API key (commons apikey list)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_bounded_and_name_the_flag() {
        assert_eq!(lifetime("90d").unwrap(), 90 * 86_400_000);
        assert_eq!(lifetime("2s").unwrap(), 2_000);
        assert_eq!(lifetime("12h").unwrap(), 12 * 3_600_000);
        for bad in ["", "d", "0d", "90", "90w", "367d", "-1d", "99999999999999999999d"] {
            let e = lifetime(bad).unwrap_err().to_string();
            assert!(e.contains("--expires"), "{bad}: {e}");
        }
    }

    #[test]
    fn organisations_are_dns_labels() {
        assert!(dns_label("northshire-county-council"));
        assert!(!dns_label("North"));
        assert!(!dns_label("-x"));
        assert!(!dns_label(""));
    }
}
