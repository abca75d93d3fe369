//! Where a callback URL may point (coze-callbacks.md §5.4): the syntax rules checked when a URL
//! is saved, and the address classifier the connect-time guard uses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::domain::error::DomainError;

/// Longest callback URL accepted, in characters.
pub const MAX_URL_LEN: usize = 2048;

/// Parses a callback URL and applies the rules that need no network: no control characters,
/// whitespace, invisible formatting characters or `\` anywhere (a URL parser drops or rewrites
/// them, so the URL would go somewhere other than it reads), `http`/`https` only, at most 2048
/// characters before and after normalising, a host, no credentials, no fragment. When private
/// targets are not allowed, an IP-literal host must be public; host names are checked on their
/// resolved addresses at connect time by the dispatcher's guard. The answer's `as_str()` is the
/// normalised URL, which is what is verified, stored and shown.
pub fn validate_callback_url(raw: &str, allow_private: bool) -> Result<Url, DomainError> {
    let bad = |why: &str| DomainError::invalid(format!("callback_url {why}"));
    if raw.chars().count() > MAX_URL_LEN {
        return Err(bad(&format!("is longer than {MAX_URL_LEN} characters")));
    }
    if let Some(c) = raw.chars().find(|&c| refused_char(c)) {
        return Err(bad(&format!(
            "must not contain {c:?} (U+{:04X}): control characters, whitespace, invisible formatting \
             characters and backslashes are refused anywhere in it; percent-encode them (e.g. %20)",
            c as u32
        )));
    }
    let url = Url::parse(raw).map_err(|e| bad(&format!("is not a valid URL: {e}")))?;
    if url.as_str().len() > MAX_URL_LEN {
        return Err(bad(&format!("is longer than {MAX_URL_LEN} characters once normalised ({url})")));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!("must use http or https, not {:?}", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain credentials (user:password@)"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not contain a fragment (#...)"));
    }
    let ip = match url.host() {
        None => return Err(bad("must name a host")),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = ip {
        if !allow_private && !is_public(ip) {
            return Err(bad(&format!(
                "points at {ip}, a private or reserved address; callbacks go to public addresses only \
                 (the operator can allow private targets with --allow-private-callback-urls)"
            )));
        }
    }
    Ok(url)
}

/// Characters a URL parser strips, skips or reads differently from a person: controls (NUL, tab,
/// newline), Unicode whitespace (U+00A0, U+3000), the invisible formatting characters that
/// reorder or hide text, and `\`, which parsers take for `/`.
fn refused_char(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || c == '\\'
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Whether an address is a public unicast address that callbacks may reach. Everything else is
/// refused: loopback, RFC 1918, carrier-grade NAT, link-local (including cloud metadata at
/// 169.254.169.254), multicast, broadcast, unspecified, documentation and benchmarking ranges,
/// reserved space, IPv6 unique-local, link-local, site-local and local-use NAT64
/// (64:ff9b:1::/48), and every IPv6 form that embeds an IPv4 address (mapped, compatible,
/// translated, NAT64, 6to4), judged by the embedded address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240; // reserved 240.0.0.0/4
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let first = ip.segments()[0];
    let refused = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation 2001:db8::/32
        || (first & 0xfff0) == 0x3ff0 // documentation 3fff::/20 (RFC 9637)
        || (first == 0x64 && ip.segments()[1..3] == [0xff9b, 1]) // local-use NAT64 64:ff9b:1::/48 (RFC 8215)
        || (first == 0x2001 && ip.segments()[1] == 0) // Teredo 2001::/32
        || first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]; // discard-only 100::/64
    !refused
}

/// The IPv4 address carried inside an IPv6 one, for the forms a connection can reach it through.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0, 0, 0, 0, 0]
        && (s[5] == 0xffff || (s[5] == 0 && !ip.is_loopback() && !ip.is_unspecified()))
    {
        return Some(low); // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(low); // IPv4-translated (SIIT) ::ffff:0:a.b.c.d
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low); // NAT64 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
        // 6to4
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn refuses_non_public_ipv4() {
        for addr in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "240.0.0.1",
        ] {
            assert!(!public(addr), "{addr} must be refused");
        }
    }

    #[test]
    fn accepts_public_ipv4() {
        for addr in ["1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "93.184.216.34", "192.0.1.1"] {
            assert!(public(addr), "{addr} must be accepted");
        }
    }

    #[test]
    fn refuses_non_public_ipv6_and_embedded_ipv4() {
        for addr in [
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001::1",
            "100::1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:ffff::808:808",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.1.2.3",
            "3fff::1",
            "3fff:fff:ffff::1",
        ] {
            assert!(!public(addr), "{addr} must be refused");
        }
    }

    #[test]
    fn accepts_public_ipv6() {
        for addr in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "2002:0808:0808::",
            "::ffff:0:8.8.8.8",
            "4000::1",
        ] {
            assert!(public(addr), "{addr} must be accepted");
        }
    }

    #[test]
    fn url_syntax_rules() {
        assert!(validate_callback_url("https://example.com/cb", false).is_ok());
        assert!(validate_callback_url("http://example.com:8080/cb?x=1", false).is_ok());
        for bad in [
            "ftp://example.com/",
            "example.com/cb",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "https://example.com/#frag",
            "file:///etc/passwd",
            "",
        ] {
            assert!(validate_callback_url(bad, false).is_err(), "{bad} must be refused");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(validate_callback_url(&long, false).unwrap_err().msg.contains("2048"));
    }

    #[test]
    fn raw_strings_that_read_otherwise_are_refused() {
        for bad in [
            "\u{3000}https://example.com/cb",
            "\u{a0}https://example.com/cb",
            " https://example.com/cb",
            "https://example.com/cb ",
            "https://example.com:80\n80/cb",
            "https://example.com/a\tb",
            "https://example.com\\@evil.example/",
            "https://example.com/cb\0",
            "https://example.com/\u{202E}bc",
            "https://exa\u{200B}mple.com/",
        ] {
            let err = validate_callback_url(bad, true).unwrap_err();
            assert!(err.msg.contains("must not contain"), "{bad:?}: {}", err.msg);
        }
    }

    #[test]
    fn the_normalised_url_is_the_one_kept() {
        let url = validate_callback_url("HTTPS://ＥＸＡＭＰＬＥ.com:443/a/../cb?q=回", false).unwrap();
        assert_eq!(url.as_str(), "https://example.com/cb?q=%E5%9B%9E");
        let long = format!("https://example.com/{}", "回".repeat(MAX_URL_LEN / 2));
        assert!(validate_callback_url(&long, false).unwrap_err().msg.contains("once normalised"));
    }

    #[test]
    fn ip_literals_follow_the_switch() {
        for url in
            ["http://127.0.0.1:9/", "http://[::1]:9/", "http://169.254.169.254/", "http://[::ffff:10.0.0.1]/"]
        {
            assert!(validate_callback_url(url, false).unwrap_err().msg.contains("private"));
            assert!(validate_callback_url(url, true).is_ok());
        }
    }
}
