//! Callback URLs and the address classifier: the URL rules with an arbitrary string (both
//! settings of `--allow-private-callback-urls`), and `is_public` with arbitrary addresses,
//! checking that every IPv6 form embedding an IPv4 address is judged by that address.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use huidiao::domain::callback_url::{is_public, validate_callback_url, MAX_URL_LEN};
use huidiao::error::ErrorCode;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use url::Host;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    url: &'a str,
    v4: [u8; 4],
    v6: [u8; 16],
}

fn check_url(raw: &str) {
    let lenient = validate_callback_url(raw, true);
    match validate_callback_url(raw, false) {
        Ok(url) => {
            assert!(!raw.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\'), "{raw:?}");
            assert!(url.as_str().len() <= MAX_URL_LEN, "the normalised URL is bounded too");
            assert!(matches!(url.scheme(), "http" | "https"));
            assert!(url.username().is_empty() && url.password().is_none() && url.fragment().is_none());
            match url.host().expect("a host") {
                Host::Ipv4(ip) => assert!(is_public(IpAddr::V4(ip))),
                Host::Ipv6(ip) => assert!(is_public(IpAddr::V6(ip))),
                Host::Domain(_) => {}
            }
            assert_eq!(lenient.expect("allowed when private targets are too"), url);
        }
        Err(err) => {
            assert_eq!(err.code, ErrorCode::BadRequest);
            if let Ok(url) = lenient {
                let private = match url.host() {
                    Some(Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
                    Some(Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
                    _ => false,
                };
                assert!(private, "only a private address tells the two settings apart: {err}");
            }
        }
    }
}

fn check_v4(v4: Ipv4Addr) {
    let public = is_public(IpAddr::V4(v4));
    if public {
        assert!(
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()),
            "{v4}"
        );
    }
    let [a, b, c, d] = v4.octets();
    let embedding = [
        v4.to_ipv6_mapped(),
        v4.to_ipv6_compatible(),
        Ipv6Addr::from([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, a, b, c, d]),
        Ipv6Addr::from([0x20, 0x02, a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        Ipv6Addr::from([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, a, b, c, d]),
    ];
    for v6 in embedding {
        assert_eq!(is_public(IpAddr::V6(v6)), public, "{v6} embeds {v4}");
    }
}

fn check_v6(v6: Ipv6Addr) {
    if is_public(IpAddr::V6(v6)) {
        assert!(
            !(v6.is_unspecified()
                || v6.segments()[..3] == [0x64, 0xff9b, 1]
                || (v6.segments()[0] & 0xfff0) == 0x3ff0
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()),
            "{v6}"
        );
    }
}

fuzz_target!(|input: Input<'_>| {
    check_url(input.url);
    check_v4(Ipv4Addr::from(input.v4));
    check_v6(Ipv6Addr::from(input.v6));
});
