//! The outbound notification transport ([`NotifyTransport`]) on reqwest:
//! one POST per attempt, a total timeout (10 s by default), redirects not
//! followed (a 3xx is the target's answer), at most [`MAX_ANSWER_BYTES`] of
//! the response body read.
//!
//! **Where it may connect.** A target must be `https://` with a host and no
//! credentials in the URL ([`check_target_url`], also used when a rule is
//! created), and every address its host resolves to must be public
//! ([`check_ip`]). Loopback, private (10/8, 172.16/12, 192.168/16,
//! 100.64/10), unique-local (fc00::/7) addresses and plain `http://` are
//! admitted only when private targets are allowed
//! (`OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1`, passed in as a bool); link-local
//! (169.254/16, fe80::/10), the cloud metadata addresses (169.254.169.254,
//! fd00:ec2::254, 100.100.100.200), unspecified, multicast, broadcast,
//! reserved and documentation ranges never are — nor any of these inside an
//! IPv4-mapped, NAT64 or 6to4 IPv6 address.
//!
//! **DNS rebinding.** The addresses are checked in the client's own DNS
//! resolver ([`reqwest::dns::Resolve`]): reqwest connects only to the
//! addresses that resolver returns, so the address connected is one that was
//! checked, in the same lookup — a name that resolves to a public address
//! when the rule is created and to 127.0.0.1 when the notification is sent is
//! refused at send time. A literal IP host never reaches a resolver (the
//! connector parses it), so it is checked before the request is made. The
//! client uses no proxy (a proxy would be the address connected).
//!
//! The configured GitHub API base (where `repository_dispatch` goes) is the
//! one destination exempt from the address check: it is the operator's own
//! configuration, not a rule's, and may be a local GitHub Enterprise or a
//! test fake. Requests to it go through a second client without the check.
//!
//! Header values (signatures, `Authorization`) are never logged, and neither
//! is a target's path or query (a Slack webhook URL's path is its secret):
//! errors name the host only.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use url::Host;

use crate::ports::{Answer, NotifyTransport, Outbound, SendError};

/// How long one attempt may take, connecting to the last byte read.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a response body is kept (the log shows at most 200 characters of it).
pub const MAX_ANSWER_BYTES: usize = 4096;
/// The variable that admits private and loopback targets and plain `http://`.
pub const ALLOW_PRIVATE_VAR: &str = "OCTOSCOPE_NOTIFY_ALLOW_PRIVATE";

const HINT: &str = "private, loopback and http:// targets need OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1";

/// Check a target URL without resolving it: `https://` (or `http://` when
/// private targets are allowed), a host, no user name or password, and a
/// literal IP host that [`check_ip`] admits. A host name's addresses are
/// checked when it is resolved ([`check_target`] at creation, the
/// transport's resolver at send time).
pub fn check_target_url(url: &str, allow_private: bool) -> Result<Url, SendError> {
    let parsed = Url::parse(url).map_err(|e| SendError::Refused(format!("the target is not a URL: {e}")))?;
    let host = match parsed.host() {
        Some(h) => h,
        None => return Err(SendError::Refused("the target URL has no host".into())),
    };
    let shown = host.to_string();
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err(SendError::Refused(format!(
                "http://{shown}: plain http:// is not allowed, use https:// ({HINT})"
            )));
        }
        other => return Err(SendError::Refused(format!("{other}://{shown}: only https:// targets are allowed"))),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(SendError::Refused(format!("{shown}: a user name or password in the target URL is not allowed")));
    }
    match host {
        Host::Ipv4(ip) => check_ip(IpAddr::V4(ip), allow_private).map_err(SendError::Refused)?,
        Host::Ipv6(ip) => check_ip(IpAddr::V6(ip), allow_private).map_err(SendError::Refused)?,
        Host::Domain("") => return Err(SendError::Refused("the target URL has no host".into())),
        Host::Domain(_) => {}
    }
    Ok(parsed)
}

/// [`check_target_url`], then resolve the host with the system's resolver
/// and check every address: for a rule being created, so that a target that
/// can never be sent to is refused at once (the send-time check is still the
/// one that counts: DNS answers change).
pub async fn check_target(url: &str, allow_private: bool) -> Result<Url, SendError> {
    let parsed = check_target_url(url, allow_private)?;
    if let Some(Host::Domain(name)) = parsed.host() {
        let ips =
            SystemLookup.lookup(name).await.map_err(|e| SendError::Unreachable(anyhow!("resolving {name}: {e}")))?;
        check_resolved(name, &ips, allow_private).map_err(|r| SendError::Refused(r.0))?;
    }
    Ok(parsed)
}

/// Whether a target may be sent to at `ip`: `Err` says why not, naming the
/// address and its range.
pub fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), String> {
    ip_refusal(ip, allow_private).map_err(|(subject, why)| format!("{subject} is {why}"))
}

/// Why `ip` is refused: the address as shown, and what it is.
fn ip_refusal(ip: IpAddr, allow_private: bool) -> Result<(), (String, String)> {
    let (kind, what, via) = match ip {
        IpAddr::V4(v4) => {
            let (k, w) = classify_v4(v4);
            (k, w, None)
        }
        IpAddr::V6(v6) => classify_v6(v6),
    };
    let subject = match via {
        Some(inner) => format!("{ip} (which carries {inner})"),
        None => ip.to_string(),
    };
    match kind {
        Kind::Public => Ok(()),
        Kind::Private if allow_private => Ok(()),
        Kind::Private => Err((subject, format!("{what}; {HINT}"))),
        Kind::Never => Err((subject, format!("{what}, never allowed"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Public,
    /// Admitted when private targets are allowed.
    Private,
    /// Never admitted.
    Never,
}

fn classify_v4(ip: Ipv4Addr) -> (Kind, &'static str) {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        (Kind::Never, "the cloud metadata address (link-local)")
    } else if ip == Ipv4Addr::new(100, 100, 100, 200) {
        (Kind::Never, "a cloud metadata address")
    } else if ip.is_link_local() {
        (Kind::Never, "link-local (169.254.0.0/16)")
    } else if o[0] == 0 {
        (Kind::Never, "unspecified (0.0.0.0/8)")
    } else if ip.is_broadcast() {
        (Kind::Never, "the broadcast address")
    } else if ip.is_multicast() {
        (Kind::Never, "multicast (224.0.0.0/4)")
    } else if o[0] >= 240 {
        (Kind::Never, "reserved (240.0.0.0/4)")
    } else if ip.is_documentation() {
        (Kind::Never, "a documentation range")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        (Kind::Never, "the benchmarking range (198.18.0.0/15)")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        (Kind::Never, "IETF protocol assignments (192.0.0.0/24)")
    } else if ip.is_loopback() {
        (Kind::Private, "loopback (127.0.0.0/8)")
    } else if ip.is_private() {
        (Kind::Private, "private (10/8, 172.16/12, 192.168/16)")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        (Kind::Private, "shared address space (100.64.0.0/10, CGNAT)")
    } else {
        (Kind::Public, "public")
    }
}

/// An IPv6 address's class, and the IPv4 address it carries when it is an
/// IPv4-mapped, NAT64 or 6to4 one (classified as that IPv4 address).
fn classify_v6(ip: Ipv6Addr) -> (Kind, &'static str, Option<Ipv4Addr>) {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    let carried = if let Some(inner) = ip.to_ipv4_mapped() {
        Some(inner)
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        Some(v4(s[6], s[7])) // NAT64 (64:ff9b::/96)
    } else if s[0] == 0x2002 {
        Some(v4(s[1], s[2])) // 6to4 (2002::/16)
    } else {
        None
    };
    if let Some(inner) = carried {
        let (k, w) = classify_v4(inner);
        return (k, w, Some(inner));
    }
    let (k, w) = if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        (Kind::Never, "the AWS metadata address (fd00:ec2::254)")
    } else if ip.is_unspecified() {
        (Kind::Never, "unspecified (::)")
    } else if ip.is_loopback() {
        (Kind::Private, "loopback (::1)")
    } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
        (Kind::Never, "IPv4-compatible (::/96, deprecated)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        (Kind::Never, "link-local (fe80::/10)")
    } else if (s[0] & 0xff00) == 0xff00 {
        (Kind::Never, "multicast (ff00::/8)")
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        (Kind::Never, "a documentation range (2001:db8::/32, 3fff::/20)")
    } else if s[0] == 0x2001 && s[1] == 0 {
        (Kind::Never, "Teredo (2001::/32)")
    } else if s[0] == 0x100 && s[1..4] == [0, 0, 0] {
        (Kind::Never, "discard-only (100::/64)")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        (Kind::Private, "unique-local (fc00::/7)")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        (Kind::Private, "site-local (fec0::/10, deprecated)")
    } else {
        (Kind::Public, "public")
    };
    (k, w, None)
}

/// Resolves host names to addresses: the system's resolver, or in tests a
/// fixed table (to show that the address connected is the one resolved).
#[async_trait]
pub trait Lookup: Send + Sync {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemLookup;

#[async_trait]
impl Lookup for SystemLookup {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0)).await?.map(|a| a.ip()).collect())
    }
}

/// Why the resolver refused a name: found in a failed request's error chain
/// and turned into [`SendError::Refused`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

fn check_resolved(host: &str, ips: &[IpAddr], allow_private: bool) -> Result<(), Refusal> {
    if ips.is_empty() {
        return Err(Refusal(format!("{host} resolves to no address")));
    }
    // Any one address refused refuses the name: the connector may try any of them.
    for ip in ips {
        ip_refusal(*ip, allow_private)
            .map_err(|(subject, why)| Refusal(format!("{host} resolves to {subject}, which is {why}")))?;
    }
    Ok(())
}

/// The client's resolver: resolve, then refuse the name unless every
/// address is admitted. reqwest connects only to what this returns.
struct CheckingResolver {
    lookup: Arc<dyn Lookup>,
    allow_private: bool,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (lookup, allow_private) = (self.lookup.clone(), self.allow_private);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = lookup.lookup(&host).await?;
            check_resolved(&host, &ips, allow_private)?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// How the transport is set up.
#[derive(Debug, Clone)]
pub struct HttpTransportConfig {
    /// Admit private and loopback addresses and plain `http://` (never link-local or metadata).
    pub allow_private: bool,
    /// One attempt's total time.
    pub timeout: Duration,
    /// The GitHub API base URL that `repository_dispatch` posts to: exempt
    /// from the address check (the operator's configuration, not a rule's).
    pub github_api: Option<String>,
}

impl HttpTransportConfig {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private, timeout: DEFAULT_TIMEOUT, github_api: None }
    }
}

/// [`NotifyTransport`] over HTTPS with reqwest.
pub struct HttpNotifyTransport {
    checked: reqwest::Client,
    /// The GitHub API base and a client without the address check.
    github: Option<(Url, reqwest::Client)>,
    allow_private: bool,
    timeout: Duration,
}

impl std::fmt::Debug for HttpNotifyTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpNotifyTransport")
            .field("allow_private", &self.allow_private)
            .field("timeout", &self.timeout)
            .field("github_api", &self.github.as_ref().map(|(u, _)| u.as_str()))
            .finish()
    }
}

impl HttpNotifyTransport {
    /// With the system's resolver.
    pub fn new(config: HttpTransportConfig) -> anyhow::Result<Self> {
        Self::with_lookup(config, Arc::new(SystemLookup))
    }

    /// With `lookup` resolving host names (tests: a name that resolves to
    /// an address no DNS would give it).
    pub fn with_lookup(config: HttpTransportConfig, lookup: Arc<dyn Lookup>) -> anyhow::Result<Self> {
        // reqwest's rustls without a built-in provider: ring, as the rest of
        // the product uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(config.timeout)
                .connect_timeout(config.timeout)
                .pool_idle_timeout(Duration::from_secs(30))
        };
        let checked = builder()
            .dns_resolver(Arc::new(CheckingResolver { lookup, allow_private: config.allow_private }))
            .build()?;
        let github = match &config.github_api {
            Some(base) => {
                let mut url = Url::parse(base).map_err(|e| anyhow!("the GitHub API base URL: {e}"))?;
                if !url.path().ends_with('/') {
                    url.set_path(&format!("{}/", url.path()));
                }
                Some((url, builder().build()?))
            }
            None => None,
        };
        Ok(Self { checked, github, allow_private: config.allow_private, timeout: config.timeout })
    }

    /// The client for `url`: the unchecked one for the configured GitHub API
    /// base only, otherwise the URL checked and the checking client.
    fn client_for(&self, url: &str) -> Result<(Url, &reqwest::Client), SendError> {
        if let Some((base, client)) = &self.github
            && let Ok(parsed) = Url::parse(url)
            && parsed.origin() == base.origin()
            && parsed.username().is_empty()
            && parsed.password().is_none()
            && parsed.path().starts_with(base.path())
        {
            return Ok((parsed, client));
        }
        Ok((check_target_url(url, self.allow_private)?, &self.checked))
    }
}

fn headers(req: &Outbound) -> Result<HeaderMap, SendError> {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    map.insert(USER_AGENT, HeaderValue::from_static("Octoscope-Notifications"));
    for (name, value) in &req.headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SendError::Refused(format!("{name:?} is not a header name")))?;
        // The value is not shown: it may be a secret.
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| SendError::Refused(format!("the value of header {name} is not a header value")))?;
        v.set_sensitive(true);
        map.insert(n, v);
    }
    Ok(map)
}

/// A failed request as a [`SendError`], without the URL (its path may be a secret).
fn send_error(e: reqwest::Error, timeout: Duration) -> SendError {
    let e = e.without_url();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut words = Vec::new();
    while let Some(err) = source {
        if let Some(refusal) = err.downcast_ref::<Refusal>() {
            return SendError::Refused(refusal.0.clone());
        }
        let text = err.to_string();
        if !text.is_empty() && words.last() != Some(&text) {
            words.push(text);
        }
        source = err.source();
    }
    if e.is_timeout() {
        return SendError::Timeout(timeout);
    }
    SendError::Unreachable(anyhow!(words.join(": ")))
}

#[async_trait]
impl NotifyTransport for HttpNotifyTransport {
    async fn post(&self, req: &Outbound) -> Result<Answer, SendError> {
        let (url, client) = self.client_for(&req.url)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let request = client.post(url).headers(headers(req)?).body(req.body.clone());
        let attempt = async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while body.len() < MAX_ANSWER_BYTES {
                match response.chunk().await? {
                    Some(chunk) => body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - body.len())]),
                    None => break,
                }
            }
            Ok::<_, reqwest::Error>(Answer { status, body })
        };
        let result = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(send_error(e, self.timeout)),
            Err(_) => Err(SendError::Timeout(self.timeout)),
        };
        match &result {
            Ok(a) => tracing::debug!(host, status = a.status, "notification posted"),
            Err(e) => tracing::debug!(host, error = %e, "notification not posted"),
        }
        result
    }
}

/// The sender of notifications as `serve` and the notifier build it: this
/// transport (private targets only with `OCTOSCOPE_NOTIFY_ALLOW_PRIVATE`), the
/// retry policy and dashboard link from `notify`, and the GitHub credential
/// for `repository_dispatch` targets when configured: the token, or as a
/// GitHub App the installation token of the target repository's owner.
#[cfg(feature = "github")]
pub fn sender(
    log: Arc<dyn crate::ports::NotificationLog>,
    rules: Arc<dyn crate::ports::RuleStore>,
    notify: &crate::config::NotifyConfig,
    github: Option<&crate::config::GitHubSettings>,
) -> anyhow::Result<crate::services::notify::send::Sender> {
    use crate::config::GitHubCredentials;
    use crate::services::notify::send::{DispatchTokens, RetryPolicy, Sender, StaticToken};
    use anyhow::Context as _;
    let mut transport = HttpTransportConfig::new(notify.allow_private);
    transport.github_api = github.map(|g| g.api_url.clone());
    let transport = Arc::new(HttpNotifyTransport::new(transport).context("building the notification transport")?);
    let mut sender = Sender::new(log, rules, transport, Arc::new(crate::adapters::clock::SystemClock))
        .with_retry(RetryPolicy::from_config(notify))
        .with_dashboard(notify.public_url.clone());
    if let Some(g) = github {
        let tokens: Arc<dyn DispatchTokens> = match &g.credentials {
            GitHubCredentials::Token(token) => Arc::new(StaticToken(token.clone())),
            GitHubCredentials::App { app_id, private_key_pem, installation_id } => Arc::new(
                crate::adapters::github::AppDispatchTokens::new(&g.api_url, *app_id, private_key_pem, *installation_id)
                    .context("the GitHub App's credentials for repository_dispatch")?,
            ),
        };
        sender = sender.with_github(g.api_url.clone(), tokens);
    }
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str, allow_private: bool) -> String {
        match check_target_url(url, allow_private) {
            Err(SendError::Refused(why)) => why,
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn target_urls_are_https_with_a_host_and_no_credentials() {
        assert!(check_target_url("https://example.com/hook", false).is_ok());
        assert!(refused("http://example.com/hook", false).contains("plain http://"));
        assert!(check_target_url("http://example.com/hook", true).is_ok());
        assert!(refused("ftp://example.com/", true).contains("only https://"));
        assert!(refused("https://user:pw@example.com/", false).contains("user name or password"));
        assert!(refused("https://user@example.com/", true).contains("user name or password"));
        assert!(refused("not a url", false).contains("not a URL"));
        assert!(refused("file:///etc/passwd", true).contains("no host"));
    }

    #[test]
    fn literal_addresses_are_classified_and_private_ones_admitted_only_when_allowed() {
        for (url, why) in [
            ("https://127.0.0.1/", "loopback"),
            ("https://[::1]/", "loopback"),
            ("https://10.0.0.1/", "private"),
            ("https://172.16.5.4/", "private"),
            ("https://192.168.1.1/", "private"),
            ("https://100.64.0.1/", "CGNAT"),
            ("https://[fd12::1]/", "unique-local"),
            ("https://[::ffff:127.0.0.1]/", "loopback"),
            ("https://[::ffff:10.1.2.3]/", "private"),
            ("https://[64:ff9b::a00:1]/", "private"),
            // WHATWG host parsing: these are 127.0.0.1 too.
            ("https://2130706433/", "loopback"),
            ("https://0x7f.1/", "loopback"),
        ] {
            let r = refused(url, false);
            assert!(r.contains(why) && r.contains("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1"), "{url}: {r}");
            assert!(check_target_url(url, true).is_ok(), "{url} with private allowed");
        }
        for (url, why) in [
            ("https://169.254.169.254/latest/meta-data/", "metadata"),
            ("https://169.254.1.1/", "link-local"),
            ("https://[fe80::1]/", "link-local"),
            ("https://[fd00:ec2::254]/", "AWS metadata"),
            ("https://[::ffff:169.254.169.254]/", "metadata"),
            ("https://[2002:a9fe:a9fe::1]/", "metadata"),
            ("https://100.100.100.200/", "metadata"),
            ("https://0.0.0.0/", "unspecified"),
            ("https://[::]/", "unspecified"),
            ("https://255.255.255.255/", "broadcast"),
            ("https://224.0.0.1/", "multicast"),
            ("https://[ff02::1]/", "multicast"),
            ("https://192.0.2.1/", "documentation"),
            ("https://198.51.100.7/", "documentation"),
            ("https://203.0.113.9/", "documentation"),
            ("https://[2001:db8::1]/", "documentation"),
            ("https://[::7f00:1]/", "IPv4-compatible"),
        ] {
            for allow in [false, true] {
                let r = refused(url, allow);
                assert!(r.contains(why) && r.contains("never allowed"), "{url} (allow {allow}): {r}");
            }
        }
        for url in ["https://8.8.8.8/", "https://[2606:4700:4700::1111]/", "https://[::ffff:8.8.8.8]/"] {
            assert!(check_target_url(url, false).is_ok(), "{url}");
        }
    }

    #[test]
    fn a_name_is_refused_when_any_of_its_addresses_is() {
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(check_resolved("h", &[public], false).is_ok());
        let r = check_resolved("h", &[public, lo], false).unwrap_err();
        assert!(r.0.contains("h resolves to 127.0.0.1, which is loopback"), "{}", r.0);
        assert!(check_resolved("h", &[public, lo], true).is_ok());
        assert!(check_resolved("h", &[], true).is_err());
    }
}
