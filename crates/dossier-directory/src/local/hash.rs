//! A fast, non-cryptographic hasher for the directory's indexes.
//!
//! The indexes hold millions of short string keys; SipHash (std's default,
//! built to resist hash flooding) costs a large share of load time there.
//! Flooding is not a concern: keys are only inserted from the directory's
//! own files at load time, and queries only look keys up. The algorithm is
//! FxHash, as used inside rustc.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash: rotate, xor, multiply per word.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_and_hashes_differ() {
        let mut map: FastMap<Box<str>, u32> = FastMap::default();
        for (i, k) in ["a", "b", "acme", "acme corp", "", "ab", "ba"]
            .iter()
            .enumerate()
        {
            map.insert((*k).into(), i as u32);
        }
        assert_eq!(map.get("acme corp"), Some(&3));
        assert_eq!(map.get(""), Some(&4));
        assert_eq!(map.get("ab"), Some(&5));
        assert_eq!(map.get("nope"), None);
        let hash = |s: &str| {
            let mut h = FxHasher::default();
            h.write(s.as_bytes());
            h.finish()
        };
        assert_ne!(hash("ab"), hash("ba"));
        assert_ne!(hash("12345678a"), hash("12345678b"));
    }
}
