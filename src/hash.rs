//! The SHA-256 name of a chunk: parsing, formatting and hashing.
//!
//! A chunk's name is the lowercase hex SHA-256 of its bytes. Parsing is strict (exactly 64
//! lowercase hex digits) because the name becomes a path on disk: anything else, `../`
//! included, is refused before it reaches the file system.

use sha2::{Digest, Sha256};
use std::fmt;

/// Length of a chunk name in hex digits.
pub const HASH_HEX_LEN: usize = 64;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Parses exactly 64 lowercase hex digits; returns None for anything else.
    pub fn parse(s: &str) -> Option<Hash> {
        let b = s.as_bytes();
        if b.len() != HASH_HEX_LEN {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(Hash(out))
    }

    /// The hash of `data`.
    pub fn of(data: &[u8]) -> Hash {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

/// Lowercase hex of any byte string.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &x in bytes {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// Incremental SHA-256, so bytes can be hashed as they stream past.
#[derive(Clone, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher(Sha256::new())
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Hash {
        let digest = self.0.finalize();
        let mut out = [0u8; 32];
        out.copy_from_slice(&digest);
        Hash(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_has_the_known_name() {
        assert_eq!(
            Hash::of(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_round_trips_and_is_strict() {
        let h = Hash::of(b"abc");
        assert_eq!(Hash::parse(&h.to_hex()), Some(h));
        assert_eq!(Hash::parse(&h.to_hex().to_uppercase()), None);
        assert_eq!(Hash::parse(&h.to_hex()[1..]), None);
        assert_eq!(Hash::parse("../etc/passwd"), None);
        let mut bad = h.to_hex();
        bad.replace_range(0..1, "g");
        assert_eq!(Hash::parse(&bad), None);
    }
}
