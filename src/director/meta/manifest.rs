//! Manifest chunks: every object version is also written to the stores as one small chunk
//! describing it, so the namespace can be rebuilt from the stores alone.
//!
//! ```text
//! dpyfs-manifest 1
//! {"bucket":"photos","key":"2024/beach.jpg","object":{...the journal's object fields...}}
//! ```
//! The `object` fields are those of the journal's `object_put` record, except `manifest`
//! (a manifest cannot contain its own hash), which is written as an empty string.
//!
//! A small object's manifest also carries its body: `"object":{...,"inline":true}` and
//! `"data"`, the body in standard base64 (RFC 4648, with padding), so one chunk per copy
//! holds everything and `jq -r .data | base64 -d` gets the file back by hand.

use super::records::ObjectRecord;
use crate::checksum::{base64_decode, base64_encode};
use serde::{Deserialize, Serialize};

pub const MANIFEST_MAGIC: &str = "dpyfs-manifest 1";

/// Largest manifest of an inline object the director reads back: the base64 body
/// (4/3 of at most `scatter::INLINE_BYTES_MAX`) plus the object's metadata, with room.
pub const INLINE_MANIFEST_BYTES_MAX: u64 = 1024 * 1024;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub bucket: String,
    pub key: String,
    pub object: ObjectRecord,
    /// The body in base64 when `object.inline`; absent otherwise (and in every manifest
    /// written before inline objects existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Manifest {
    /// The manifest of an object; `body` is the object's bytes when they are inline.
    pub fn new(bucket: &str, key: &str, object: ObjectRecord, body: Option<&[u8]>) -> Manifest {
        Manifest {
            bucket: bucket.to_string(),
            key: key.to_string(),
            object,
            data: body.map(base64_encode),
        }
    }

    /// The inline body, checked against the object: Ok(None) for an object whose bytes
    /// are in chunks, Err when the two disagree (a missing or extra `data`, bad base64, a
    /// length other than `size`).
    pub fn body(&self) -> Result<Option<Vec<u8>>, String> {
        match (&self.data, self.object.inline) {
            (None, false) => Ok(None),
            (Some(_), false) => Err("a manifest with data whose object is not inline".into()),
            (None, true) => Err("an inline object's manifest without data".into()),
            (Some(d), true) => {
                let bytes =
                    base64_decode(d).ok_or("the manifest's data is not canonical base64")?;
                if bytes.len() as u64 != self.object.size {
                    return Err(format!(
                        "the manifest's data holds {} bytes, the object {}",
                        bytes.len(),
                        self.object.size
                    ));
                }
                Ok(Some(bytes))
            }
        }
    }
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

    fn object(size: u64, inline: bool) -> ObjectRecord {
        ObjectRecord {
            acl: Default::default(),
            size,
            mtime: 5,
            etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
            content_type: "text/plain".into(),
            meta: Default::default(),
            headers: Default::default(),
            chunks: vec![],
            manifest: String::new(),
            inline,
            checksum: Some(("crc64nvme".into(), "AAAAAAAAAAA=".into())),
            upload_id: None,
            parts: Vec::new(),
            version: None,
        }
    }

    #[test]
    fn round_trip() {
        let m = Manifest::new("b", "k/é", object(0, false), None);
        let bytes = encode(&m);
        assert!(bytes.starts_with(b"dpyfs-manifest 1\n{"));
        // Nothing inline: the line is as it was before inline objects existed.
        assert!(!String::from_utf8_lossy(&bytes).contains("inline"));
        assert!(!String::from_utf8_lossy(&bytes).contains("data"));
        assert_eq!(decode(&bytes), Some(m));
        assert_eq!(decode(b"not a manifest"), None);
    }

    #[test]
    fn inline_body_round_trip() {
        let body = b"hello\n\x00\xff binary";
        let m = Manifest::new("b", "k", object(body.len() as u64, true), Some(body));
        let bytes = encode(&m);
        let text = String::from_utf8(bytes.clone()).unwrap();
        // One line of JSON after the magic, as a person reads it with jq.
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains(r#""inline":true"#));
        assert!(text.contains(&format!(r#""data":"{}""#, base64_encode(body))));
        let back = decode(&bytes).unwrap();
        assert_eq!(back.body().unwrap().as_deref(), Some(&body[..]));
        assert_eq!(back, m);
    }

    #[test]
    fn old_manifest_reads_unchanged() {
        // Written by a director from before inline objects: no `inline`, no `data`.
        let old = concat!(
            "dpyfs-manifest 1\n",
            r#"{"bucket":"photos","key":"a.txt","object":{"size":5,"mtime":1,"#,
            r#""etag":"5d41402abc4b2a76b9719d911017c592","content_type":"text/plain","#,
            r#""meta":{},"chunks":[["2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",5]],"#,
            r#""manifest":""}}"#,
            "\n"
        );
        let m = decode(old.as_bytes()).unwrap();
        assert!(!m.object.inline);
        assert_eq!(m.data, None);
        assert_eq!(m.body(), Ok(None));
        assert_eq!(m.object.chunks.len(), 1);
    }

    #[test]
    fn inline_disagreements_are_refused() {
        let mut m = Manifest::new("b", "k", object(3, true), Some(b"abc"));
        m.data = None;
        assert!(m.body().is_err(), "inline without data");
        let mut m = Manifest::new("b", "k", object(3, false), Some(b"abc"));
        assert!(m.body().is_err(), "data on an object that is not inline");
        m.object.inline = true;
        m.object.size = 4;
        assert!(m.body().is_err(), "length other than size");
        m.object.size = 3;
        m.data = Some("YWJj!".into());
        assert!(m.body().is_err(), "bad base64");
        m.data = Some("YWJj".into());
        assert_eq!(m.body(), Ok(Some(b"abc".to_vec())));
        // An unknown field is still refused, as before.
        let text = String::from_utf8(encode(&m))
            .unwrap()
            .replace("\"data\"", "\"dat\"");
        assert_eq!(decode(text.as_bytes()), None);
    }
}
