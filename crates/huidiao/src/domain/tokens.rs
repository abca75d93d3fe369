//! Personal access tokens and the admin token: how they look, how they are hashed, and how they
//! are compared (always on hashes, always in constant time).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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

#[cfg(test)]
mod tests {
    use super::*;

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
