//! Manifest chunks: every object version is also written to the stores as one small chunk
//! describing it, so the namespace can be rebuilt from the stores alone.
//!
//! ```text
//! dpyfs-manifest 1
//! {"bucket":"photos","key":"2024/beach.jpg","object":{...the journal's object fields...}}
//! ```
//! The `object` fields are those of the journal's `object_put` record, except `manifest`
//! (a manifest cannot contain its own hash), which is written as an empty string.

use super::records::ObjectRecord;
use serde::{Deserialize, Serialize};

pub const MANIFEST_MAGIC: &str = "dpyfs-manifest 1";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub bucket: String,
    pub key: String,
    pub object: ObjectRecord,
}

pub fn encode(m: &Manifest) -> Vec<u8> {
    let json = serde_json::to_string(m).unwrap_or_default();
    format!("{MANIFEST_MAGIC}\n{json}\n").into_bytes()
}

/// Reads a chunk as a manifest; None if it is not one.
pub fn decode(bytes: &[u8]) -> Option<Manifest> {
    let text = std::str::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix(MANIFEST_MAGIC)?.strip_prefix('\n')?;
    serde_json::from_str(rest.trim_end()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Manifest {
            bucket: "b".into(),
            key: "k/é".into(),
            object: ObjectRecord {
                size: 0,
                mtime: 5,
                etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
                content_type: "text/plain".into(),
                meta: Default::default(),
                headers: Default::default(),
                chunks: vec![],
                manifest: String::new(),
                checksum: Some(("crc64nvme".into(), "AAAAAAAAAAA=".into())),
                version: None,
                upload_id: None,
                parts: Vec::new(),
            },
        };
        let bytes = encode(&m);
        assert!(bytes.starts_with(b"dpyfs-manifest 1\n{"));
        assert_eq!(decode(&bytes), Some(m));
        assert_eq!(decode(b"not a manifest"), None);
    }
}
