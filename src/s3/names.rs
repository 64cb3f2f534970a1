//! S3's naming rules and defaults, shared by the director, the tools and `dpyfs admin`.

/// Longest key, in bytes of UTF-8 (as S3).
pub const KEY_BYTES_MAX: usize = 1024;
/// Content type of objects uploaded without one (as S3).
pub const CONTENT_TYPE_DEFAULT: &str = "binary/octet-stream";

/// S3's bucket naming rules (the DNS-compatible subset).
pub fn valid_bucket_name(b: &str) -> bool {
    let bytes = b.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !b.contains("..")
        && !b.contains(".-")
        && !b.contains("-.")
        && b.parse::<std::net::Ipv4Addr>().is_err()
        // `GET /metrics` is the director's Prometheus endpoint.
        && b != "metrics"
}

/// Why S3 would refuse `k` as a key, if it would.
pub fn key_problem(k: &str) -> Option<String> {
    if k.is_empty() {
        return Some("the key is empty".into());
    }
    if k.len() > KEY_BYTES_MAX {
        return Some(format!(
            "the key is {} bytes long; at most {KEY_BYTES_MAX} are allowed",
            k.len()
        ));
    }
    if k.contains('\0') {
        return Some("the key contains a NUL character".into());
    }
    None
}
