//! Text that came from outside (a receiver's answer, an error text that quotes it, a review's
//! reason and share link) made storable by both backends, in one place: PostgreSQL's `TEXT`
//! refuses NUL and invalid UTF-8, SQLite takes anything, and the delivery log must read the same
//! on either.

use std::borrow::Cow;

/// Stands in for each NUL and each invalid UTF-8 sequence.
pub const REPLACEMENT: char = char::REPLACEMENT_CHARACTER;

/// Bytes as storable text: invalid UTF-8 and NUL each become U+FFFD.
pub fn storable_bytes(bytes: &[u8]) -> String {
    storable(&String::from_utf8_lossy(bytes)).into_owned()
}

/// Text as storable text: each NUL becomes U+FFFD.
pub fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', &REPLACEMENT.to_string()))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_invalid_utf8_are_replaced() {
        assert_eq!(storable_bytes(b"A\0B\xff\xfeC"), "A\u{fffd}B\u{fffd}\u{fffd}C");
        assert_eq!(storable("a\0b"), "a\u{fffd}b");
        assert!(matches!(storable("回调 ok"), Cow::Borrowed("回调 ok")));
        assert_eq!(storable_bytes("回调".as_bytes()), "回调");
    }
}
