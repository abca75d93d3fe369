//! Where outbound requests may connect (coze-callbacks.md §5.4), enforced at connect time.
//!
//! Host names are resolved by [`GuardedResolver`], which drops every non-public address before
//! the HTTP client sees it, so a name that resolves to 127.0.0.1 or 169.254.169.254 is refused
//! no matter what it resolved to when the URL was saved. IP-literal hosts never reach a resolver,
//! so [`check_literal_host`] covers them. Redirects are never followed.

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

/// The one HTTP client for pushes: guarded resolver, no redirects, pooled connections per host.
/// Every connection a push used is kept for reuse (there are at most as many as pushes ran at
/// once, `--max-in-flight`) until it has been idle a minute: capping the idle pool below the
/// concurrency closes and reopens connections on every burst.
pub fn build_client(allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("huidiao/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is static and valid")
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
