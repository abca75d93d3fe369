//! Personal access tokens and the admin token: how they look, how they are hashed, and how they
//! are compared (always on hashes, always in constant time).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::tenancy::{Edition, Permission, User};
use crate::ids::random_alphanumeric;

pub const PAT_PREFIX: &str = "pat_";
const PAT_RANDOM_LEN: usize = 64;
/// The leading random characters that find a token's row; the rest is a secret only hashed.
const LOOKUP_KEY_LEN: usize = 16;

/// A newly issued personal access token: the token is shown to the operator once, and only the
/// lookup key and hash are stored.
pub struct NewPat {
    pub token: String,
    pub lookup_key: String,
    pub hash: Vec<u8>,
}

pub fn issue_pat() -> NewPat {
    let token = format!("{PAT_PREFIX}{}", random_alphanumeric(PAT_RANDOM_LEN));
    let lookup_key = pat_lookup_key(&token).expect("a fresh token has the PAT shape").to_owned();
    NewPat { hash: hash_token(&token), lookup_key, token }
}

/// The lookup key of a string shaped like a PAT, or `None` when it cannot be one.
pub fn pat_lookup_key(token: &str) -> Option<&str> {
    let random = token.strip_prefix(PAT_PREFIX)?;
    if random.len() == PAT_RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Some(&random[..LOOKUP_KEY_LEN])
    } else {
        None
    }
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `presented` hashes to `stored_hash`, compared in constant time.
pub fn token_matches(presented: &str, stored_hash: &[u8]) -> bool {
    hash_token(presented).as_slice().ct_eq(stored_hash).into()
}

/// A generated admin token: long, random, and recognisably not a PAT.
pub fn generate_admin_token() -> String {
    format!("hdadm_{}", random_alphanumeric(48))
}

/// The least entropy an admin token may have, in bits.
pub const MIN_ADMIN_TOKEN_BITS: f64 = 128.0;

/// A kind of character, for estimating the alphabet a token was drawn from.
type CharClass = fn(&char) -> bool;

/// The fewest different characters an admin token may have: a long repetition of a few
/// characters is long, not strong.
const MIN_DISTINCT_CHARS: usize = 8;

/// Refuses an admin token that could be guessed: one whose length and kinds of characters (lower
/// case, upper case, digits, other ASCII, anything else) give less than 128 bits if each
/// character were random, or that has fewer than 8 different characters. 32 hex digits
/// (`openssl rand -hex 32` gives 64) or 22 random letters and digits are enough.
pub fn check_admin_token_strength(token: &str) -> Result<(), String> {
    let classes: [(CharClass, u32); 5] = [
        (char::is_ascii_lowercase, 26),
        (char::is_ascii_uppercase, 26),
        (char::is_ascii_digit, 10),
        (|c| c.is_ascii() && !c.is_ascii_alphanumeric(), 33),
        (|c| !c.is_ascii(), 100),
    ];
    let pool: u32 = classes.iter().filter(|(is, _)| token.chars().any(|c| is(&c))).map(|(_, n)| n).sum();
    let bits = token.chars().count() as f64 * f64::from(pool.max(1)).log2();
    let distinct = token.chars().collect::<std::collections::HashSet<_>>().len();
    if bits < MIN_ADMIN_TOKEN_BITS || distinct < MIN_DISTINCT_CHARS {
        return Err(format!(
            "the admin token is too weak: about {bits:.0} bits with {distinct} different characters, and at \
             least {MIN_ADMIN_TOKEN_BITS} bits with {MIN_DISTINCT_CHARS} different characters are needed \
             (e.g. `openssl rand -hex 32`); or leave it unset and huidiao generates one into \
             <data dir>/admin-token"
        ));
    }
    Ok(())
}

/// A personal access token as stored: never the token itself, only its lookup key and a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: Option<String>,
    /// The public part of the token that finds the row; the secret part is only hashed.
    pub lookup_key: String,
    pub secret_hash: Vec<u8>,
    pub permissions: Vec<Permission>,
    /// Milliseconds since the epoch; `None` never expires.
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub created_at: i64,
}

/// A token with the user and account edition it acts for, as authentication needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthToken {
    pub token: TokenRecord,
    pub user: User,
    pub edition: Edition,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_tokens_need_128_bits() {
        for weak in [
            "change-me",
            "",
            "0123456789abcdef",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababab",
        ] {
            assert!(check_admin_token_strength(weak).is_err(), "{weak:?}");
        }
        let err = check_admin_token_strength("change-me").unwrap_err();
        assert!(err.contains("about 53 bits") && err.contains("openssl rand -hex 32"), "{err}");
        for strong in [
            "3f9c2a1be07d4c58a6e1f0b2c9d84e71",
            "Xq7Lm2Rt9Wv4Zb8Nc1Kp5J",
            "test-admin-token-0123456789",
            &generate_admin_token(),
        ] {
            assert!(check_admin_token_strength(strong).is_ok(), "{strong:?}");
        }
    }

    #[test]
    fn issued_tokens_match_only_themselves() {
        let pat = issue_pat();
        assert!(pat.token.starts_with("pat_") && pat.token.len() == 68);
        assert_eq!(pat_lookup_key(&pat.token), Some(pat.lookup_key.as_str()));
        assert!(token_matches(&pat.token, &pat.hash));
        let mut forged = pat.token.clone();
        forged.pop();
        forged.push(if pat.token.ends_with('a') { 'b' } else { 'a' });
        assert!(!token_matches(&forged, &pat.hash));
        assert_ne!(pat.hash, pat.token.as_bytes());
    }

    #[test]
    fn lookup_key_needs_the_pat_shape() {
        assert_eq!(pat_lookup_key("pat_short"), None);
        assert_eq!(pat_lookup_key(&format!("sk_{}", "a".repeat(64))), None);
        assert_eq!(pat_lookup_key(&format!("pat_{}", "é".repeat(32))), None);
    }
}
