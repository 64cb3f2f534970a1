//! The whole-object checksums S3 clients send (`x-amz-checksum-<algorithm>`): CRC32,
//! CRC32C, CRC64NVME, SHA-1 and SHA-256, a streaming [`Checksummer`] for one of them, and
//! the base64 their values travel in.
//!
//! CRC32 comes from `crc32fast`, SHA-1 and SHA-256 from RustCrypto, base64 from `base64`.
//! CRC32C and CRC64NVME are written here: table-driven, eight bytes per step ("slicing by
//! 8"), tables built at compile time, and tested against the published check values of
//! "123456789".

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A checksum algorithm S3 knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64Nvme,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    /// From S3's names, in any case: `CRC32`, `crc32c`, `CRC64NVME`, `SHA1`, `SHA256`.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        let n = name.trim();
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(n))
    }

    /// From a header name `x-amz-checksum-<algorithm>` (lowercase).
    pub fn from_header(header: &str) -> Option<Algorithm> {
        Algorithm::from_name(header.strip_prefix("x-amz-checksum-")?)
    }

    /// Lowercase name, as in the header: `crc32`, `crc32c`, `crc64nvme`, `sha1`, `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "crc32",
            Algorithm::Crc32c => "crc32c",
            Algorithm::Crc64Nvme => "crc64nvme",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
        }
    }

    /// The XML element that carries it in S3's documents: `ChecksumCRC32` ...
    pub fn element(name: &str) -> String {
        format!("Checksum{}", name.to_ascii_uppercase())
    }

    /// The header that carries it: `x-amz-checksum-crc32` ...
    pub fn header(self) -> String {
        format!("x-amz-checksum-{}", self.name())
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }
}

enum State {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(u64),
    Sha1(Box<Sha1>),
    Sha256(Box<Sha256>),
}

/// A running checksum of one algorithm.
pub struct Checksummer {
    state: State,
}

impl Checksummer {
    pub fn new(alg: Algorithm) -> Checksummer {
        let state = match alg {
            Algorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            Algorithm::Crc32c => State::Crc32c(0),
            Algorithm::Crc64Nvme => State::Crc64Nvme(0),
            Algorithm::Sha1 => State::Sha1(Box::new(Sha1::new())),
            Algorithm::Sha256 => State::Sha256(Box::new(Sha256::new())),
        };
        Checksummer { state }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Crc32(_) => Algorithm::Crc32,
            State::Crc32c(_) => Algorithm::Crc32c,
            State::Crc64Nvme(_) => Algorithm::Crc64Nvme,
            State::Sha1(_) => Algorithm::Sha1,
            State::Sha256(_) => Algorithm::Sha256,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(h) => h.update(data),
            State::Crc32c(c) => *c = crc32c_update(*c, data),
            State::Crc64Nvme(c) => *c = crc64nvme_update(*c, data),
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
        }
    }

    /// The digest, big-endian for the CRCs (as S3 sends them).
    pub fn finish(self) -> Vec<u8> {
        match self.state {
            State::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            State::Crc32c(c) => c.to_be_bytes().to_vec(),
            State::Crc64Nvme(c) => c.to_be_bytes().to_vec(),
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// The digest of `data` in one call.
pub fn digest(alg: Algorithm, data: &[u8]) -> Vec<u8> {
    let mut c = Checksummer::new(alg);
    c.update(data);
    c.finish()
}

/// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and final xor all ones.
const CRC32C_POLY: u32 = 0x82F6_3B78;
/// CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5 (0xAD93D23594C93659 unreflected),
/// init and final xor all ones.
const CRC64NVME_POLY: u64 = 0x9A6C_9329_AC4B_C9B5;

/// Slicing-by-8 tables of a reflected CRC of up to 64 bits. A 32-bit CRC uses the same
/// tables: its register never holds more than 32 bits, so the values fit and match.
const fn tables(poly: u64) -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static CRC32C_TABLES: [[u64; 256]; 8] = tables(CRC32C_POLY as u64);
static CRC64NVME_TABLES: [[u64; 256]; 8] = tables(CRC64NVME_POLY);

/// Runs the (already inverted) register `c` of a reflected CRC over `data`, 8 bytes a step.
/// For a 32-bit CRC the upper half of the register stays zero, so bytes 4..8 of each step
/// are pure data, exactly as in 32-bit slicing-by-8.
fn reflected_update(t: &[[u64; 256]; 8], mut c: u64, data: &[u8]) -> u64 {
    let mut blocks = data.chunks_exact(8);
    for b in &mut blocks {
        let x = c ^ u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        c = t[7][(x & 0xff) as usize]
            ^ t[6][((x >> 8) & 0xff) as usize]
            ^ t[5][((x >> 16) & 0xff) as usize]
            ^ t[4][((x >> 24) & 0xff) as usize]
            ^ t[3][((x >> 32) & 0xff) as usize]
            ^ t[2][((x >> 40) & 0xff) as usize]
            ^ t[1][((x >> 48) & 0xff) as usize]
            ^ t[0][(x >> 56) as usize];
    }
    for &x in blocks.remainder() {
        c = (c >> 8) ^ t[0][((c ^ u64::from(x)) & 0xff) as usize];
    }
    c
}

/// Continues a CRC-32C: `crc` is a previous result (0 to start).
pub fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    // The register stays below 2^32 (see `tables`), so the cast loses nothing.
    !(reflected_update(&CRC32C_TABLES, u64::from(!crc), data) as u32)
}

/// Continues a CRC-64/NVME: `crc` is a previous result (0 to start).
pub fn crc64nvme_update(crc: u64, data: &[u8]) -> u64 {
    !reflected_update(&CRC64NVME_TABLES, !crc, data)
}

/// Standard base64 (RFC 4648 section 4) with `=` padding.
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Strict standard base64: padded to a multiple of 4, no whitespace, no other alphabet,
/// and the unused bits of the last group zero (so every value has one spelling). The
/// `base64` crate's standard engine is configured exactly so (canonical padding required,
/// trailing bits refused); `base64_refuses_what_is_not_canonical` pins it.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECK: &[u8] = b"123456789";

    #[test]
    fn crc32c_check_values() {
        // The catalogued check value, and RFC 3720 B.4's 32 zero and 32 0xFF bytes.
        assert_eq!(crc32c_update(0, CHECK), 0xE306_9283);
        assert_eq!(crc32c_update(0, &[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c_update(0, &[0xFFu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c_update(0, b""), 0);
    }

    #[test]
    fn crc64nvme_check_value() {
        assert_eq!(crc64nvme_update(0, CHECK), 0xAE8B_1486_0A79_9888);
        assert_eq!(crc64nvme_update(0, b""), 0);
    }

    /// Slicing by 8 gives the same result as one byte at a time, at every split.
    #[test]
    fn crcs_continue_across_splits() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole32 = crc32c_update(0, &data);
        let whole64 = crc64nvme_update(0, &data);
        for split in [0, 1, 3, 7, 8, 9, 500, 999, 1000] {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32c_update(crc32c_update(0, a), b), whole32);
            assert_eq!(crc64nvme_update(crc64nvme_update(0, a), b), whole64);
        }
        let bytewise32 = data.iter().fold(0, |c, &x| crc32c_update(c, &[x]));
        assert_eq!(bytewise32, whole32);
        let bytewise64 = data.iter().fold(0, |c, &x| crc64nvme_update(c, &[x]));
        assert_eq!(bytewise64, whole64);
    }

    #[test]
    fn digests_as_s3_sends_them() {
        // CRC32 of the check string is 0xCBF43926, sent big-endian.
        assert_eq!(
            base64_encode(&digest(Algorithm::Crc32, CHECK)),
            base64_encode(&0xCBF4_3926u32.to_be_bytes())
        );
        // The AWS streaming-trailer example: 66560 bytes of 'a' have CRC32C sOO8/Q==.
        assert_eq!(
            base64_encode(&digest(Algorithm::Crc32c, &[b'a'; 66560])),
            "sOO8/Q=="
        );
        assert_eq!(
            crate::hash::to_hex(&digest(Algorithm::Sha1, b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            crate::hash::to_hex(&digest(Algorithm::Sha256, b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for a in Algorithm::ALL {
            assert_eq!(digest(a, CHECK).len(), a.digest_len());
            assert_eq!(Algorithm::from_name(&a.name().to_uppercase()), Some(a));
            assert_eq!(Algorithm::from_header(&a.header()), Some(a));
        }
        assert_eq!(Algorithm::from_name("md5"), None);
    }

    #[test]
    fn base64_rfc4648_vectors() {
        let v = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in v {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
    }

    #[test]
    fn base64_refuses_what_is_not_canonical() {
        for bad in [
            "Zg", "Zg=", "Z===", "Zm9v=", "Zg==Zg==", "Zh==", "Zm9 ", "Zm9-", "Zm9_", "====",
        ] {
            assert!(base64_decode(bad).is_none(), "{bad:?} decoded");
        }
    }
}
