//! The index's side of multipart uploads: looking uploads up, listing them, and the
//! validation and apply of upload records. It lives apart from uploads.rs so that the
//! upload types do not depend on the index that holds them.

use super::acl::Acl;
use super::index::{Index, Prepared};
use super::records::Record;
use super::uploads::{
    Upload, UploadEntry, UploadKey, UploadPage, check_part_number, invalid_part, no_such_upload,
};
use crate::director::error::{DirectorError, Result};
use std::collections::BTreeMap;
use std::ops::Bound;

impl Index {
    pub fn upload(&self, bucket: &str, key: &str, id: &str) -> Result<&Upload> {
        self.bucket(bucket)?;
        self.uploads
            .get(&(bucket.to_string(), key.to_string(), id.to_string()))
            .ok_or_else(|| no_such_upload(id))
    }

    /// Uploads of `bucket` under `prefix`, after (key_marker, id_marker) as S3 means them:
    /// with only a key marker, keys after it; with both, also that key's later uploads.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        id_marker: &str,
        max: usize,
    ) -> Result<UploadPage> {
        self.bucket(bucket)?;
        let start: UploadKey = (
            bucket.to_string(),
            prefix.max(key_marker).to_string(),
            "".into(),
        );
        let mut page = UploadPage::default();
        for ((b, k, id), u) in self
            .uploads
            .range((Bound::Included(start), Bound::Unbounded))
        {
            if b != bucket || !k.starts_with(prefix) {
                break;
            }
            let after = !key_marker.is_empty() && k.as_str() == key_marker;
            if after && (id_marker.is_empty() || id.as_str() <= id_marker) {
                continue;
            }
            if page.entries.len() == max {
                page.truncated = true;
                break;
            }
            page.entries.push(UploadEntry {
                key: k.clone(),
                upload_id: id.clone(),
                initiated_ms: u.initiated_ms,
            });
        }
        Ok(page)
    }

    /// The validation half of `Index::validate` for upload records.
    pub(crate) fn validate_upload(&self, p: &Prepared<'_>) -> Result<()> {
        match p.record {
            Record::UploadCreate {
                bucket,
                key,
                upload_id,
                acl,
                ..
            } => {
                self.bucket(bucket)?;
                Acl::from_record(acl).map_err(DirectorError::Internal)?;
                let k = (bucket.clone(), key.clone(), upload_id.clone());
                if self.uploads.contains_key(&k) {
                    return Err(DirectorError::Internal(format!(
                        "upload id {upload_id} is already in use"
                    )));
                }
            }
            Record::UploadPart {
                bucket,
                key,
                upload_id,
                number,
                ..
            } => {
                self.upload(bucket, key, upload_id)?;
                check_part_number(*number)?;
            }
            Record::UploadComplete {
                bucket,
                key,
                upload_id,
                parts,
                ..
            } => {
                let up = self.upload(bucket, key, upload_id)?;
                let o = p.object_or_err().map_err(DirectorError::Internal)?;
                // The object must be exactly the listed parts, as they are now: a part
                // re-uploaded since Complete read it makes the record refused.
                let mut chunks = Vec::with_capacity(o.chunks.len());
                for (n, etag) in parts {
                    let p = up
                        .parts
                        .get(n)
                        .filter(|p| p.etag == *etag)
                        .ok_or_else(|| invalid_part(format!("part {n} changed or is gone")))?;
                    chunks.extend_from_slice(&p.chunks);
                }
                if chunks != o.chunks {
                    return Err(invalid_part(
                        "the object's chunks are not those of its parts".into(),
                    ));
                }
            }
            Record::UploadAbort {
                bucket,
                key,
                upload_id,
            } => {
                self.upload(bucket, key, upload_id)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The apply half of `Index::apply` for upload records (validated before).
    pub(crate) fn apply_upload(&mut self, p: &Prepared<'_>) -> std::result::Result<(), String> {
        match p.record {
            Record::UploadCreate {
                bucket,
                key,
                upload_id,
                initiated,
                content_type,
                meta,
                headers,
                checksum_algorithm,
                acl,
            } => {
                self.uploads.insert(
                    (bucket.clone(), key.clone(), upload_id.clone()),
                    Upload {
                        initiated_ms: *initiated,
                        content_type: content_type.clone(),
                        meta: meta.clone(),
                        headers: headers.clone(),
                        parts: BTreeMap::new(),
                        checksum_algorithm: checksum_algorithm.clone(),
                        acl: Acl::from_record(acl)?,
                    },
                );
            }
            Record::UploadPart {
                bucket,
                key,
                upload_id,
                number,
                ..
            } => {
                let part = p
                    .part()
                    .ok_or_else(|| "a part record without its part".to_string())?
                    .clone();
                let k = (bucket.clone(), key.clone(), upload_id.clone());
                let up = self
                    .uploads
                    .get_mut(&k)
                    .ok_or_else(|| format!("part of a missing upload {upload_id}"))?;
                up.parts.insert(*number, part);
            }
            Record::UploadComplete {
                bucket,
                key,
                upload_id,
                ..
            } => {
                let meta = p.object_or_err()?.clone();
                self.uploads
                    .remove(&(bucket.clone(), key.clone(), upload_id.clone()));
                let b = self
                    .buckets
                    .get_mut(bucket)
                    .ok_or_else(|| format!("object in missing bucket '{bucket}'"))?;
                b.put_version(key, meta);
            }
            Record::UploadAbort {
                bucket,
                key,
                upload_id,
            } => {
                self.uploads
                    .remove(&(bucket.clone(), key.clone(), upload_id.clone()));
            }
            _ => {}
        }
        Ok(())
    }
}
