//! The object side of S3 versioning: which version a GET, HEAD or copy reads
//! (`?versionId=`, delete markers), what a DELETE journals (a delete marker, or one
//! version removed), and the `x-amz-version-id` header. Bucket settings and
//! ListObjectVersions are in version_routes.rs.

use super::DirectorApi;
use super::auth::Access;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::acl::Permission;
use crate::director::meta::index::{Index, ObjectMeta, Version, Versioning};
use crate::director::meta::records::Record;
use crate::director::meta::versions::{new_version_id, parse_version_id};
use crate::http::{Request, Response};
use crate::timefmt::now_ms;
use std::sync::Arc;

/// The `versionId` query parameter: absent (the current version), or `null` / an id
/// (`Some(None)` is the null version). A value of another shape is 400 InvalidArgument.
pub(super) fn requested_version(req: &Request<'_>) -> Result<Option<Option<String>>> {
    req.query_param("versionId")
        .map(|v| parse_version_id(&v))
        .transpose()
}

/// The object version a read (GET, HEAD, a copy's source) names: the current one, or
/// `version`. A delete marker where an object was asked for is `DeleteMarker`.
pub(super) fn object_to_read(
    idx: &Index,
    bucket: &str,
    key: &str,
    version: Option<Option<&str>>,
) -> Result<Arc<ObjectMeta>> {
    let b = idx.bucket(bucket)?;
    let found = match version {
        None => match b.objects.get(key) {
            Some(o) => return Ok(Arc::clone(o)),
            None => b
                .current_marker(key)
                .cloned()
                .ok_or_else(|| DirectorError::NoSuchKey {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })?,
        },
        Some(id) => idx.object_version(bucket, key, id)?,
    };
    match found {
        Version::Object(o) => Ok(o),
        marker @ Version::Marker { .. } => Err(DirectorError::DeleteMarker {
            key: key.to_string(),
            version: marker.id_text().to_string(),
            by_version: version.is_some(),
        }),
    }
}

/// A copy's source: as `object_to_read`, but naming a delete marker by its version id is
/// 400 InvalidRequest, as S3 answers. Where the source's bucket is not `access`'s own,
/// READ is checked again on the version read here: `authorize_buckets` checked the one
/// current then, which an overwrite by a private version may have replaced since.
pub(super) fn copy_source_object(
    idx: &Index,
    bucket: &str,
    key: &str,
    version: Option<Option<&str>>,
    access: &Access,
) -> Result<Arc<ObjectMeta>> {
    let m = copy_source_version(idx, bucket, key, version)?;
    let owner = idx.buckets.get(bucket).map(|b| b.owner.as_deref());
    if access.check_bucket(bucket, owner).is_err() {
        access.check_version_acl(&m, Permission::Read, "the copy source's")?;
    }
    Ok(m)
}

fn copy_source_version(
    idx: &Index,
    bucket: &str,
    key: &str,
    version: Option<Option<&str>>,
) -> Result<Arc<ObjectMeta>> {
    object_to_read(idx, bucket, key, version).map_err(|e| match e {
        DirectorError::DeleteMarker {
            by_version: true, ..
        } => DirectorError::BadRequest(
            "InvalidRequest",
            "the source of a copy may not be a delete marker".into(),
        ),
        other => other,
    })
}

/// Adds `x-amz-version-id` when the bucket has (or had) versioning: the version's id,
/// `null` for the null version. Unversioned buckets answer without it, as S3 does.
pub(super) fn with_version_id(r: Response, versioning: Versioning, m: &ObjectMeta) -> Response {
    if versioning == Versioning::Off && m.version.is_none() {
        return r;
    }
    r.with_header(
        "x-amz-version-id",
        m.version.clone().unwrap_or_else(|| "null".into()),
    )
}

/// What a DELETE did, for its answer.
pub(super) struct Deleted {
    /// The version removed, or the delete marker made (`null` included); None in an
    /// unversioned bucket.
    pub version: Option<String>,
    /// A delete marker was made, or the version removed was one.
    pub marker: bool,
}

impl Deleted {
    /// The headers of DeleteObject's answer.
    pub fn headers(&self, mut r: Response) -> Response {
        if let Some(v) = &self.version {
            r = r.with_header("x-amz-version-id", v.clone());
        }
        if self.marker {
            r = r.with_header("x-amz-delete-marker", "true");
        }
        r
    }
}

/// The record a DELETE of `key` journals (None: nothing to do, the version is gone
/// already), and what to answer. Without a version id: the object goes in an unversioned
/// bucket, a delete marker is made in a versioned one (a `null` one when suspended).
/// With one: that version goes for good.
pub(super) fn delete_record(
    idx: &Index,
    bucket: &str,
    key: &str,
    version: Option<Option<String>>,
) -> Result<(Option<Record>, Deleted)> {
    let b = idx.bucket(bucket)?;
    let (bucket, key) = (bucket.to_string(), key.to_string());
    let Some(id) = version else {
        let now = now_ms();
        let (version, text) = match b.versioning {
            Versioning::Off => {
                let rec = Record::ObjectDelete {
                    bucket,
                    key,
                    version: None,
                };
                let answer = Deleted {
                    version: None,
                    marker: false,
                };
                return Ok((Some(rec), answer));
            }
            Versioning::Enabled => {
                let id = new_version_id(&bucket, &key, now);
                (Some(id.clone()), id)
            }
            Versioning::Suspended => (None, "null".to_string()),
        };
        let rec = Record::DeleteMarker {
            bucket,
            key,
            version,
            mtime: now,
        };
        let answer = Deleted {
            version: Some(text),
            marker: true,
        };
        return Ok((Some(rec), answer));
    };
    // A version that does not exist is deleted already: 204, as S3 answers.
    let found = b.version(&key, id.as_deref());
    let answer = Deleted {
        version: Some(id.clone().unwrap_or_else(|| "null".into())),
        marker: matches!(found, Some(Version::Marker { .. })),
    };
    let rec = found.map(|_| Record::ObjectDelete {
        bucket,
        key,
        version: id,
    });
    Ok((rec, answer))
}

impl DirectorApi {
    /// The bucket's versioning status (Off for a bucket that does not exist).
    pub(super) fn versioning_of(&self, bucket: &str) -> Versioning {
        self.director
            .read_index()
            .bucket(bucket)
            .map(|b| b.versioning)
            .unwrap_or_default()
    }

    /// The object version a request on `bucket/key` names with `?versionId=` (the
    /// current one without it), for the reads of an object's sub-resources.
    pub(super) fn requested_object(
        &self,
        bucket: &str,
        key: &str,
        req: &Request<'_>,
    ) -> Result<Arc<ObjectMeta>> {
        let version = requested_version(req)?;
        let idx = self.director.read_index();
        object_to_read(&idx, bucket, key, version.as_ref().map(Option::as_deref))
    }
}
