//! Paging of lists (coze-callbacks.md §1): `page_size` 1..50, opaque `page_token`, newest first.
//!
//! Lists are keyset-paged on the ids, which increase with time, so a page never repeats or skips
//! an item when others are inserted meanwhile. A page token carries the last id of the page it
//! follows plus an HMAC over that id and the list it belongs to, so a forged or foreign token is
//! refused (4000) instead of being trusted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::error::DomainError;

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 50;
const TAG_LEN: usize = 12;

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub size: usize,
    /// Only items with ids below this one; `None` for the first page.
    pub before: Option<i64>,
}

/// A page of a list, as the `data` of a list answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
    pub next_page_token: String,
}

impl<T> Page<T> {
    /// The same page with each item converted, e.g. from a stored row to its API shape.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_more: self.has_more,
            next_page_token: self.next_page_token,
        }
    }
}

/// Parses `page_size`: absent means 50; anything but an integer in 1..=50 is refused, not clamped.
pub fn parse_page_size(raw: Option<&str>) -> Result<usize, DomainError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        _ => Err(DomainError::invalid(format!(
            "page_size must be an integer from 1 to {MAX_PAGE_SIZE}, got {raw:?}"
        ))),
    }
}

/// Signs and checks page tokens with a key kept in storage, so tokens stay valid across
/// restarts and on every node sharing the database.
#[derive(Clone)]
pub struct PageTokens {
    key: Vec<u8>,
}

impl PageTokens {
    pub fn new(key: Vec<u8>) -> Self {
        PageTokens { key }
    }

    fn tag(&self, list: &str, last_id: i64) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(list.as_bytes());
        mac.update(&last_id.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// The token of the page after the item `last_id` in the list named `list`.
    pub fn encode(&self, list: &str, last_id: i64) -> String {
        let mut raw = last_id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.tag(list, last_id));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Reads `page_size` and `page_token` of a request on the list named `list`.
    pub fn request(
        &self,
        list: &str,
        page_size: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<PageRequest, DomainError> {
        let size = parse_page_size(page_size)?;
        let before = match page_token.map(str::trim) {
            None | Some("") => None,
            Some(token) => Some(self.decode(list, token)?),
        };
        Ok(PageRequest { size, before })
    }

    fn decode(&self, list: &str, token: &str) -> Result<i64, DomainError> {
        let invalid = || {
            DomainError::invalid(
                "page_token is not valid for this list; pass the next_page_token of the previous page, or \"\" for the first page",
            )
        };
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if raw.len() != 8 + TAG_LEN {
            return Err(invalid());
        }
        let last_id = i64::from_be_bytes(raw[..8].try_into().map_err(|_| invalid())?);
        if bool::from(self.tag(list, last_id).ct_eq(&raw[8..])) {
            Ok(last_id)
        } else {
            Err(invalid())
        }
    }

    /// Builds the page from rows fetched with `limit = size + 1` (newest first): the extra row
    /// only tells whether there is more.
    pub fn page<T>(
        &self,
        list: &str,
        request: PageRequest,
        mut rows: Vec<T>,
        id_of: impl Fn(&T) -> i64,
    ) -> Page<T> {
        let has_more = rows.len() > request.size;
        rows.truncate(request.size);
        let next_page_token = match rows.last() {
            Some(last) if has_more => self.encode(list, id_of(last)),
            _ => String::new(),
        };
        Page { items: rows, has_more, next_page_token }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_rules() {
        assert_eq!(parse_page_size(None).unwrap(), 50);
        assert_eq!(parse_page_size(Some("1")).unwrap(), 1);
        assert_eq!(parse_page_size(Some("50")).unwrap(), 50);
        for bad in ["0", "51", "-1", "abc", "", "1.5"] {
            assert!(parse_page_size(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let tokens = PageTokens::new(b"k".to_vec());
        let token = tokens.encode("apps", 7512045450401153075);
        let req = tokens.request("apps", Some("10"), Some(&token)).unwrap();
        assert_eq!(req, PageRequest { size: 10, before: Some(7512045450401153075) });
        assert!(tokens.request("events:1", None, Some(&token)).is_err(), "token of another list");
        assert!(PageTokens::new(b"other".to_vec()).request("apps", None, Some(&token)).is_err());
        for forged in ["x", "!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAA", &token[1..]] {
            assert!(tokens.request("apps", None, Some(forged)).is_err(), "{forged}");
        }
        assert_eq!(tokens.request("apps", None, Some("")).unwrap().before, None);
    }

    #[test]
    fn page_building() {
        let tokens = PageTokens::new(b"k".to_vec());
        let req = PageRequest { size: 2, before: None };
        let page = tokens.page("l", req, vec![30, 20, 10], |x| *x);
        assert_eq!(page.items, vec![30, 20]);
        assert!(page.has_more);
        let next = tokens.request("l", Some("2"), Some(&page.next_page_token)).unwrap();
        assert_eq!(next.before, Some(20));
        let last = tokens.page("l", req, vec![10], |x| *x);
        assert!(!last.has_more);
        assert_eq!(last.next_page_token, "");
    }
}
