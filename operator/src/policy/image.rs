//! Where a container image comes from, as a registry allowlist compares it.

/// The image's full reference with its registry spelled out: `nginx:1` is
/// `docker.io/library/nginx:1`, `team/app` is `docker.io/team/app`, `ghcr.io/x/y` stays as it is.
/// The registry host is lowercased (host names are case-insensitive).
pub fn qualified(image: &str) -> String {
    match image.split_once('/') {
        None => format!("docker.io/library/{image}"),
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            format!("{}/{rest}", first.to_ascii_lowercase())
        }
        Some(_) => format!("docker.io/{image}"),
    }
}

/// Whether `image` comes from `registry` (a host, optionally with a port and a path): the
/// qualified reference starts with it and the next character ends that path segment.
pub fn from_registry(image: &str, registry: &str) -> bool {
    let image = qualified(image);
    let registry = registry.trim_end_matches('/');
    let Some(rest) = image.strip_prefix(registry) else {
        return false;
    };
    // `ghcr.io/team` must not admit `ghcr.io/teamster/app`; `docker.io/library/nginx` admits
    // `...nginx:1` and `...nginx@sha256:..`.
    rest.is_empty() || rest.starts_with('/') || (registry.contains('/') && rest.starts_with([':', '@']))
}

/// `registry` if it is a registry host (lowercase), optionally with a port and a path, as
/// `spec.allowed.registries` takes it.
pub fn valid_registry(registry: &str) -> Result<&str, String> {
    let (host, path) = registry.split_once('/').unwrap_or((registry, ""));
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    let label = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || extra.contains(&c))
    };
    if !label(name, &['.']) || name.starts_with(['-', '.']) || name.ends_with(['-', '.']) {
        return Err(format!("{registry:?}: expected a lowercase registry host, for example registry.k8s.io"));
    }
    if host.contains(':') && (port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("{registry:?}: the port must be a number"));
    }
    if registry.contains('/') && (!label(path, &['.', '_', '/']) || path.ends_with('/')) {
        return Err(format!("{registry:?}: the path must be lowercase letters, digits and . _ - /"));
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_qualified_as_a_runtime_pulls_them() {
        for (image, want) in [
            ("nginx", "docker.io/library/nginx"),
            ("nginx:1.27", "docker.io/library/nginx:1.27"),
            ("team/app:2", "docker.io/team/app:2"),
            ("ghcr.io/team/app", "ghcr.io/team/app"),
            ("GHCR.io/team/app", "ghcr.io/team/app"),
            ("localhost/app", "localhost/app"),
            ("registry.example:5000/app@sha256:ab", "registry.example:5000/app@sha256:ab"),
        ] {
            assert_eq!(qualified(image), want, "{image}");
        }
    }

    #[test]
    fn registries_are_hosts_with_an_optional_port_and_path() {
        for ok in
            ["registry.k8s.io", "ghcr.io/leeds-city", "localhost:5000", "registry.example:5000/team/app"]
        {
            assert_eq!(valid_registry(ok), Ok(ok));
        }
        for bad in ["", "GHCR.io", "ghcr.io/", "-x.io", "x.io:port", "x.io/Team", "https://x.io", "x io"] {
            assert!(valid_registry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_registry_admits_its_own_images_only() {
        for (image, registry, want) in [
            ("registry.k8s.io/pause:3.10", "registry.k8s.io", true),
            ("registry.k8s.io.evil.example/pause", "registry.k8s.io", false),
            ("ghcr.io/team/app:1", "ghcr.io/team", true),
            ("ghcr.io/teamster/app:1", "ghcr.io/team", false),
            ("ghcr.io/team", "ghcr.io/team", true),
            ("nginx", "docker.io", true),
            ("nginx:1", "docker.io/library/nginx", true),
            ("nginx@sha256:ab", "docker.io/library/nginx", true),
            ("nginxx:1", "docker.io/library/nginx", false),
            ("team/app", "docker.io/library", false),
            ("registry.example:5000/app", "registry.example", false),
            ("registry.example:5000/app", "registry.example:5000", true),
            ("evil.example/registry.k8s.io/x", "registry.k8s.io", false),
        ] {
            assert_eq!(from_registry(image, registry), want, "{image} from {registry}");
        }
    }
}
