//! Where a REST redirect may lead: the API's own origin only.

/// The path and query to request for a redirect to `location`, when it stays
/// on `base`'s scheme, host and port (a relative `location` does); why not otherwise.
pub(crate) fn same_origin(base: &http::Uri, location: &str) -> Result<String, String> {
    let to: http::Uri = location.trim().parse().map_err(|e| format!("not a URL ({e})"))?;
    let path = to.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".to_owned());
    if !path.starts_with('/') || path.starts_with("//") {
        return Err("not a path on the API's host".into());
    }
    let Some(authority) = to.authority() else {
        return if to.scheme().is_some() { Err("a URL without a host".into()) } else { Ok(path) };
    };
    if authority.as_str().contains('@') {
        return Err("a URL with credentials".into());
    }
    let default_port = |scheme: Option<&http::uri::Scheme>| match scheme.map(|s| s.as_str()) {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    };
    let same = to.scheme() == base.scheme()
        && base.host().is_some_and(|h| h.eq_ignore_ascii_case(authority.host()))
        && authority.port_u16().or(default_port(to.scheme())) == base.port_u16().or(default_port(base.scheme()));
    if !same {
        return Err(format!("another host than {}", base.authority().map_or("the API's", |a| a.as_str())));
    }
    Ok(path)
}
