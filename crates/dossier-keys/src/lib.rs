//! API keys: their format (`dk_` and 32 random bytes, base64url), how they
//! are generated and hashed (hex SHA-256, the only form ever stored), the
//! keys-file entry that names a hash, and the constant-time lookup of a
//! presented key's hash among the configured ones.
//!
//! The gateway authenticates with it and `cargo xtask keygen` writes keys
//! with it, so neither depends on the other.
#![forbid(unsafe_code)]

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};

/// The prefix of every generated key (it makes leaked keys easy to scan for).
pub const KEY_PREFIX: &str = "dk_";

/// The SHA-256 of an API key.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The hex SHA-256 of an API key, as stored in the keys file.
pub fn hash_key(key: &str) -> String {
    hex::encode(digest(key))
}

/// The SHA-256 a keys-file `sha256` value names: `None` unless it is 64 hex
/// digits (surrounding whitespace is ignored).
pub fn decode_hash(sha256: &str) -> Option<[u8; 32]> {
    let mut hash = [0_u8; 32];
    hex::decode_to_slice(sha256.trim(), &mut hash).ok()?;
    Some(hash)
}

/// A new random API key (`dk_` and 32 random bytes, base64url) and its hex
/// SHA-256 for the keys file.
pub fn generate_key() -> (String, String) {
    let mut bytes = [0_u8; 32];
    rand::fill(&mut bytes);
    let key = format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash_key(&key);
    (key, hash)
}

/// Whether `s` is a valid tenant or key id: 1-64 of `[A-Za-z0-9_-]`.
pub fn is_valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The keys-file entry (one `[[keys]]` TOML table) of a key of `tenant`
/// with id `id` and hex SHA-256 `sha256`.
pub fn keys_file_entry(tenant: &str, id: &str, sha256: &str) -> String {
    format!("[[keys]]\ntenant = \"{tenant}\"\nid = \"{id}\"\nsha256 = \"{sha256}\"\n")
}

/// The position of `presented` among `stored` hashes. Every hash is
/// compared in constant time and without an early exit, so neither the
/// position of a match nor how many leading bytes matched shows in the time
/// it takes.
pub fn find_constant_time<'a>(
    stored: impl IntoIterator<Item = &'a [u8; 32]>,
    presented: &[u8; 32],
) -> Option<usize> {
    let mut found = u64::MAX;
    for (index, hash) in stored.into_iter().enumerate() {
        let index = u64::try_from(index).unwrap_or(u64::MAX);
        found.conditional_assign(&index, hash.ct_eq(presented));
    }
    usize::try_from(found).ok().filter(|_| found != u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_key_is_sha256_hex() {
        assert_eq!(
            hash_key("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn hashes_decode_from_64_hex_digits_only() {
        assert_eq!(decode_hash(&hash_key("a")), Some(digest("a")));
        assert_eq!(
            decode_hash(&format!(" {} ", hash_key("a"))),
            Some(digest("a"))
        );
        assert_eq!(decode_hash("abc"), None);
        assert_eq!(decode_hash(&"g".repeat(64)), None);
    }

    #[test]
    fn generated_keys_have_the_format_and_hash_to_their_entry() {
        let (key, hash) = generate_key();
        assert!(key.starts_with("dk_") && key.len() == 3 + 43, "{key}");
        assert_eq!(hash, hash_key(&key));
        assert_eq!(hash.len(), 64);
        let (other, _) = generate_key();
        assert_ne!(key, other);
        assert_eq!(
            keys_file_entry("acme", "k1", &hash),
            format!("[[keys]]\ntenant = \"acme\"\nid = \"k1\"\nsha256 = \"{hash}\"\n")
        );
    }

    #[test]
    fn names_are_1_to_64_of_the_alphabet() {
        assert!(is_valid_name("acme_1-a"));
        assert!(is_valid_name(&"a".repeat(64)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(65)));
        assert!(!is_valid_name("ac me"));
    }

    #[test]
    fn the_lookup_finds_the_matching_hash_only() {
        let stored = [digest("a"), digest("b"), digest("c")];
        assert_eq!(find_constant_time(&stored, &digest("b")), Some(1));
        assert_eq!(find_constant_time(&stored, &digest("c")), Some(2));
        assert_eq!(find_constant_time(&stored, &digest("d")), None);
        assert_eq!(find_constant_time(&[], &digest("a")), None);
    }
}
