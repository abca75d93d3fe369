//! Where outbound requests may connect (coze-callbacks.md §5.4), enforced at connect time.
//!
//! Host names are resolved by [`GuardedResolver`], which drops every non-public address before
//! the HTTP client sees it, so a name that resolves to 127.0.0.1 or 169.254.169.254 is refused
//! no matter what it resolved to when the URL was saved. IP-literal hosts never reach a resolver,
//! so [`check_literal_host`] covers them. Redirects are never followed.
//!
//! Proxy settings of the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) are never used:
//! a proxy resolves the name itself, past the resolver. An outbound proxy is only the operator's
//! explicit `--outbound-proxy`, and then [`Outbound::check`] resolves the target's name and
//! refuses it unless every address is public before anything is sent through the proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::domain::callback_url::is_public;

/// The error a refused connection carries, found again in the error chain by the sender.
#[derive(Debug, thiserror::Error)]
#[error("refused: private address")]
pub struct PrivateAddressRefused;

/// Resolves host names and keeps only the addresses callbacks may reach.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> =
                resolved.filter(|addr| allow_private || is_public(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(PrivateAddressRefused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Refuses an IP-literal host that is not public, unless private targets are allowed.
pub fn check_literal_host(url: &Url, allow_private: bool) -> Result<(), PrivateAddressRefused> {
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(PrivateAddressRefused)
    }
}

/// The one HTTP client for pushes and challenges, with the guard's settings.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub client: reqwest::Client,
    allow_private: bool,
    proxied: bool,
}

impl Outbound {
    /// Guarded resolver, no redirects, no proxy but `proxy`, pooled connections per host. Every
    /// connection a push used is kept for reuse (there are at most as many as pushes ran at
    /// once, `--max-in-flight`) until it has been idle a minute: capping the idle pool below the
    /// concurrency closes and reopens connections on every burst.
    pub fn new(allow_private: bool, proxy: Option<&str>) -> Result<Outbound, String> {
        let builder = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("huidiao/", env!("CARGO_PKG_VERSION")));
        let builder = match proxy {
            Some(url) => builder.proxy(
                reqwest::Proxy::all(url)
                    .map_err(|e| format!("--outbound-proxy is not a usable proxy: {e}"))?,
            ),
            None => builder.no_proxy(),
        };
        let client = builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Outbound { client, allow_private, proxied: proxy.is_some() })
    }

    /// Refuses a target the guard would not connect to. Without a proxy the resolver judges host
    /// names at connect time; through one, the name is resolved here and refused unless every
    /// address it has is public (the proxy resolves it again: see docs/security.md).
    pub async fn check(&self, url: &Url) -> Result<(), Refusal> {
        check_literal_host(url, self.allow_private).map_err(|_| Refusal::Private)?;
        match url.host() {
            Some(Host::Domain(name)) if self.proxied && !self.allow_private => {
                let port = url.port_or_known_default().unwrap_or(0);
                let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|e| Refusal::Unresolvable(format!("cannot resolve {name}: {e}")))?
                    .collect();
                all_public(&resolved).then_some(()).ok_or(Refusal::Private)
            }
            _ => Ok(()),
        }
    }
}

/// Why [`Outbound::check`] refused a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It is, or its name resolves to, a non-public address.
    Private,
    /// Its name could not be resolved before handing it to the proxy.
    Unresolvable(String),
}

/// Whether a name's addresses may be handed to a proxy: at least one, and none private.
fn all_public(addrs: &[SocketAddr]) -> bool {
    !addrs.is_empty() && addrs.iter().all(|a| is_public(a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_hosts() {
        let loopback = Url::parse("http://127.0.0.1:1/").unwrap();
        assert!(check_literal_host(&loopback, false).is_err());
        assert!(check_literal_host(&loopback, true).is_ok());
        let named = Url::parse("http://localhost:1/").unwrap();
        assert!(check_literal_host(&named, false).is_ok(), "names are left to the resolver");
    }

    #[test]
    fn a_proxy_gets_only_names_whose_every_address_is_public() {
        let addr = |s: &str| SocketAddr::new(s.parse().unwrap(), 80);
        assert!(all_public(&[addr("93.184.216.34"), addr("2606:4700:4700::1111")]));
        assert!(!all_public(&[addr("93.184.216.34"), addr("127.0.0.1")]));
        assert!(!all_public(&[]));
    }

    #[tokio::test]
    async fn a_proxied_name_on_loopback_is_refused_before_sending() {
        let proxy = "http://127.0.0.1:9/";
        let named = Url::parse("http://localhost:1/").unwrap();
        assert!(Outbound::new(false, Some(proxy)).unwrap().check(&named).await.is_err());
        assert!(Outbound::new(true, Some(proxy)).unwrap().check(&named).await.is_ok());
        assert!(Outbound::new(false, None).unwrap().check(&named).await.is_ok(), "the resolver judges it");
    }

    #[tokio::test]
    async fn resolver_drops_loopback_unless_allowed() {
        let name: Name = "localhost".parse().unwrap();
        let refused = GuardedResolver { allow_private: false }.resolve(name).await;
        assert!(refused.is_err());
        let name: Name = "localhost".parse().unwrap();
        let allowed: Vec<_> = GuardedResolver { allow_private: true }.resolve(name).await.unwrap().collect();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()) && !allowed.is_empty());
    }
}
