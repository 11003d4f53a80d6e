//! `commons run`'s flags for the portal: its OpenID Connect client at the API's issuer, where
//! browsers reach Commons, where GOV.UK Frontend's files are, and how long a session lasts. The
//! portal is served when `--portal-client-id` is given; every flag is checked at start, naming
//! the flag.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use commons_api::auth::http::{HttpFetch, allowed_url};
use commons_api::portal::Portal;
use commons_api::portal::provider::{ClientConfig, Provider};
use commons_api::portal::session::SessionStore;

use crate::error::{Error, Result};

/// The flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PortalFlags {
    /// The portal's client id at the OpenID Connect provider (`--oidc-issuer`); the portal is
    /// served under /portal when it is set. The client uses the authorization code flow with
    /// PKCE; register `<public URL>/portal/signed-in` as its redirect URI and
    /// `<public URL>/portal/signed-out` as its post-logout redirect URI.
    #[arg(long, env = "COMMONS_PORTAL_CLIENT_ID")]
    pub portal_client_id: Option<String>,
    /// A file holding the client's secret (a confidential client); none for a public client.
    #[arg(long, env = "COMMONS_PORTAL_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub portal_client_secret_file: Option<PathBuf>,
    /// Where browsers reach Commons, e.g. `https://commons.example.gov.uk` (https, or http to a
    /// loopback address).
    #[arg(long, env = "COMMONS_PORTAL_PUBLIC_URL")]
    pub portal_public_url: Option<String>,
    /// GOV.UK Frontend's `dist/govuk` directory, from the `govuk-frontend` npm package.
    #[arg(long, env = "COMMONS_PORTAL_ASSETS", default_value = "/usr/share/commons/govuk-frontend")]
    pub portal_assets: PathBuf,
    /// Hours a portal session lasts at most (1 to 24); the provider may end it sooner.
    #[arg(long, env = "COMMONS_PORTAL_SESSION_HOURS", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=24))]
    pub portal_session_hours: u64,
}

impl PortalFlags {
    /// The portal, when a client id is set.
    pub fn portal(
        &self,
        issuer: Option<&str>,
        sessions: Arc<dyn SessionStore>,
    ) -> Result<Option<Arc<Portal>>> {
        let Some(client_id) = &self.portal_client_id else { return Ok(None) };
        let invalid = |flag: &str, why: String| Error::Invalid(format!("{flag}: {why}"));
        let issuer = issuer.ok_or_else(|| {
            invalid(
                "--portal-client-id",
                "the portal signs people in at --oidc-issuer, which is not set".into(),
            )
        })?;
        let public_url = self
            .portal_public_url
            .as_deref()
            .ok_or_else(|| invalid("--portal-public-url", "must be set when the portal is served".into()))?;
        let uri = allowed_url(public_url).map_err(|e| invalid("--portal-public-url", e))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid(
                "--portal-public-url",
                format!("{public_url}: only a scheme, host and port"),
            ));
        }
        let client_secret = match &self.portal_client_secret_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                    action: "cannot read --portal-client-secret-file",
                    path: path.clone(),
                    source,
                })?;
                Some(text.trim().to_owned()).filter(|s| !s.is_empty())
            }
        };
        let css = self.portal_assets.join("govuk-frontend.min.css");
        if !css.is_file() {
            return Err(invalid(
                "--portal-assets",
                format!(
                    "{} lacks govuk-frontend.min.css: give the dist/govuk directory of the govuk-frontend npm package",
                    self.portal_assets.display()
                ),
            ));
        }
        let fetch = HttpFetch::new(Duration::from_secs(10)).map_err(|e| invalid("--portal-client-id", e))?;
        let config = ClientConfig {
            issuer: issuer.to_owned(),
            client_id: client_id.clone(),
            client_secret,
            public_url: public_url.trim_end_matches('/').to_owned(),
        };
        Ok(Some(Arc::new(Portal {
            provider: Provider::new(config, Arc::new(fetch)),
            sessions,
            assets: self.portal_assets.clone(),
            session_ms: i64::try_from(self.portal_session_hours).unwrap_or(8) * 3_600_000,
            // A person starts one now and then; a page left open and reloaded a few more.
            sign_ins: commons_api::v1::limits::RateLimiter::new(1, 30),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commons_api::portal::session::MemoryStore;

    fn flags(assets: &std::path::Path) -> PortalFlags {
        PortalFlags {
            portal_client_id: Some("commons-portal".into()),
            portal_client_secret_file: None,
            portal_public_url: Some("https://commons.example".into()),
            portal_assets: assets.to_owned(),
            portal_session_hours: 8,
        }
    }

    #[test]
    fn each_wrong_flag_is_named() {
        let dir = std::env::temp_dir().join(format!("commons-portal-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = || Arc::new(MemoryStore::default()) as Arc<dyn SessionStore>;
        let issuer = Some("https://id.example/realms/commons");
        let error = |f: &PortalFlags, iss: Option<&str>| f.portal(iss, store()).unwrap_err().to_string();
        assert!(error(&flags(&dir), issuer).contains("--portal-assets"));
        std::fs::write(dir.join("govuk-frontend.min.css"), "").unwrap();
        assert!(flags(&dir).portal(issuer, store()).unwrap().is_some());
        assert!(error(&flags(&dir), None).contains("--oidc-issuer"));
        let mut f = flags(&dir);
        f.portal_public_url = Some("http://commons.example".into());
        assert!(error(&f, issuer).contains("--portal-public-url"));
        f.portal_public_url = Some("https://commons.example/portal".into());
        assert!(error(&f, issuer).contains("--portal-public-url"));
        f.portal_public_url = None;
        assert!(error(&f, issuer).contains("--portal-public-url"));
        let mut off = flags(&dir);
        off.portal_client_id = None;
        assert!(off.portal(None, store()).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
