//! What every page shares: the header's navigation and sign-out form, the answer's headers (a
//! strict Content-Security-Policy: scripts, styles and fonts from the portal alone, forms posted
//! to the portal or, at sign-out, the identity provider; nothing framed; no caching of pages that
//! show an organisation's data), and rendering a template into an answer.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::Served;

/// The header's state.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The signed-in person's name; `None` before sign-in.
    pub name: Option<String>,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: String,
    /// The navigation item of the current page (its path).
    pub current: &'static str,
}

/// An item of the service navigation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavItem {
    /// Where it goes.
    pub href: &'static str,
    /// What it says.
    pub label: &'static str,
    /// Whether it is the current section.
    pub active: bool,
}

impl Chrome {
    /// The header of a signed-in page in section `current`.
    pub fn signed_in(name: &str, csrf: &str, current: &'static str) -> Self {
        Chrome { name: Some(name.to_owned()), csrf: csrf.to_owned(), current }
    }

    /// The sections, each shown to everyone signed in (the API decides what each may see there).
    pub fn nav(&self) -> Vec<NavItem> {
        if self.name.is_none() {
            return Vec::new();
        }
        [
            ("/portal/tenancies", "Tenancies"),
            ("/portal/requests", "Requests"),
            ("/portal/applications", "Applications"),
            ("/portal/spend", "Spend"),
        ]
        .into_iter()
        .map(|(href, label)| NavItem { href, label, active: self.current == href })
        .collect()
    }
}

/// Renders `page` with `status`.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a portal page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// The origin (scheme, host and port) of a URL, for the policy.
fn origin(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// The policy pages are served with.
pub fn content_security_policy(issuer: &str) -> String {
    let provider = origin(issuer).map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; \
         connect-src 'self'; manifest-src 'self'; form-action 'self'{provider}; frame-ancestors 'none'; \
         base-uri 'none'"
    )
}

/// Headers on every page.
pub async fn page_headers(State(served): State<Served>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let csp = content_security_policy(&served.portal.provider.config().issuer);
    let headers = response.headers_mut();
    // A response with a stricter policy of its own (the chart image) keeps it.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(csp) = HeaderValue::from_str(&csp)
    {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    shared_headers(headers);
    response
}

/// Headers on the portal's files (which may be cached: they change only with a new release).
pub async fn asset_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    shared_headers(headers);
    response
}

fn shared_headers(headers: &mut http::HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_only_the_portal_and_the_providers_sign_out() {
        let csp = content_security_policy("https://id.example:8443/realms/commons");
        assert!(csp.contains("form-action 'self' https://id.example:8443;"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
    }

    #[test]
    fn the_navigation_marks_the_current_section_and_is_empty_before_sign_in() {
        assert!(Chrome::default().nav().is_empty());
        let nav = Chrome::signed_in("Nora", "t", "/portal/requests").nav();
        assert_eq!(nav.iter().filter(|i| i.active).map(|i| i.label).collect::<Vec<_>>(), ["Requests"]);
    }
}
