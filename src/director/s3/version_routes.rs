//! The bucket side of S3 versioning: Put/GetBucketVersioning, ListObjectVersions and the
//! bucket's lifecycle configuration (Put/Get/DeleteBucketLifecycleConfiguration). The
//! object side is in object_versions.rs; the versions themselves live in
//! `meta::versions`.

use super::DirectorApi;
use super::object_routes::{parse_xml, read_small_body, refuse_unknown_params};
use super::target::xml;
use super::target::{owner_elem, owner_of};
use crate::director::error::{DirectorError, Result};
use crate::director::meta::index::Version;
use crate::director::meta::records::{LifecycleRule, Record};
use crate::director::meta::versions::{
    LIFECYCLE_RULES_MAX, LIST_VERSIONS_MAX, VersionEntry, VersionMarker, Versioning,
    parse_version_id,
};
use crate::http::{Request, Response, percent_encode};
use crate::s3::xml::{Doc, Element};
use crate::timefmt::iso8601;

/// Query parameters ListObjectVersions understands.
const LIST_VERSIONS_PARAMS: &[&str] = &[
    "versions",
    "prefix",
    "delimiter",
    "key-marker",
    "version-id-marker",
    "max-keys",
    "encoding-type",
];

fn malformed(why: &str) -> DirectorError {
    DirectorError::BadRequest("MalformedXML", format!("the XML body is malformed: {why}"))
}

/// `<VersioningConfiguration><Status>Enabled|Suspended</Status></VersioningConfiguration>`.
fn parse_versioning(text: &str) -> Result<Versioning> {
    let doc = parse_xml(text)?;
    if doc.name != "VersioningConfiguration" {
        return Err(malformed(&format!(
            "expected <VersioningConfiguration>, got <{}>",
            doc.name
        )));
    }
    if doc.child_text("MfaDelete") == Some("Enabled") {
        return Err(DirectorError::NotImplemented("MFA delete".into()));
    }
    let status = doc
        .one_text("Status")
        .ok_or_else(|| malformed("one <Status> is needed"))?;
    Versioning::parse(status).ok_or_else(|| {
        malformed(&format!(
            "<Status>{status}</Status>: use Enabled or Suspended"
        ))
    })
}

/// A whole number in a lifecycle rule (`NoncurrentDays`...), at least `min`.
fn rule_number(e: &Element, name: &str, min: u64) -> Result<Option<u64>> {
    let Some(t) = e.child_text(name) else {
        return Ok(None);
    };
    match t.parse::<u64>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(DirectorError::BadRequest(
            "InvalidArgument",
            format!("<{name}>{t}</{name}>: a whole number of at least {min} is needed"),
        )),
    }
}

/// Elements of a rule dpyfs reads; any other is refused (501), never ignored: a rule
/// half obeyed would keep or remove what its author did not expect.
const RULE_ELEMENTS: &[&str] = &[
    "ID",
    "Prefix",
    "Filter",
    "Status",
    "NoncurrentVersionExpiration",
    "Expiration",
];

fn parse_rule(r: &Element) -> Result<LifecycleRule> {
    if let Some(other) = r
        .children
        .iter()
        .find(|c| !RULE_ELEMENTS.contains(&c.name.as_str()))
    {
        return Err(DirectorError::NotImplemented(format!(
            "the lifecycle rule element <{}> (dpyfs offers NoncurrentVersionExpiration and \
             Expiration/ExpiredObjectDeleteMarker)",
            other.name
        )));
    }
    let enabled = match r.one_text("Status") {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => {
            return Err(malformed(
                "a rule needs <Status>Enabled</Status> or Disabled",
            ));
        }
    };
    let prefix = match r.child("Filter") {
        Some(f) => {
            if let Some(other) = f.children.iter().find(|c| c.name != "Prefix") {
                return Err(DirectorError::NotImplemented(format!(
                    "the lifecycle filter <{}> (only <Prefix> is offered)",
                    other.name
                )));
            }
            f.child("Prefix")
                .map(|p| p.text.clone())
                .unwrap_or_default()
        }
        None => r
            .child("Prefix")
            .map(|p| p.text.clone())
            .unwrap_or_default(),
    };
    let (mut noncurrent_days, mut newer_noncurrent) = (None, None);
    if let Some(n) = r.child("NoncurrentVersionExpiration") {
        noncurrent_days = rule_number(n, "NoncurrentDays", 1)?;
        newer_noncurrent = rule_number(n, "NewerNoncurrentVersions", 1)?;
        if noncurrent_days.is_none() {
            return Err(malformed(
                "<NoncurrentVersionExpiration> needs <NoncurrentDays>",
            ));
        }
    }
    let mut expired_marker = false;
    if let Some(x) = r.child("Expiration") {
        if x.child("Days").is_some() || x.child("Date").is_some() {
            return Err(DirectorError::NotImplemented(
                "expiring current objects by <Days> or <Date> (dpyfs offers \
                 ExpiredObjectDeleteMarker and NoncurrentVersionExpiration)"
                    .into(),
            ));
        }
        expired_marker = match x.one_text("ExpiredObjectDeleteMarker") {
            Some("true") => true,
            Some("false") => false,
            _ => return Err(malformed("<Expiration> needs <ExpiredObjectDeleteMarker>")),
        };
    }
    if noncurrent_days.is_none() && !expired_marker {
        return Err(malformed("a rule needs an action"));
    }
    Ok(LifecycleRule {
        id: r.child_text("ID").unwrap_or_default().to_string(),
        prefix,
        enabled,
        noncurrent_days,
        newer_noncurrent,
        expired_marker,
    })
}

/// `<LifecycleConfiguration><Rule>...</Rule>...</LifecycleConfiguration>`.
fn parse_lifecycle(text: &str) -> Result<Vec<LifecycleRule>> {
    let doc = parse_xml(text)?;
    if doc.name != "LifecycleConfiguration" {
        return Err(malformed(&format!(
            "expected <LifecycleConfiguration>, got <{}>",
            doc.name
        )));
    }
    let rules: Vec<&Element> = doc.all("Rule").collect();
    if rules.is_empty() || rules.len() > LIFECYCLE_RULES_MAX {
        return Err(malformed(&format!(
            "a lifecycle configuration holds 1 to {LIFECYCLE_RULES_MAX} rules, not {}",
            rules.len()
        )));
    }
    rules.into_iter().map(parse_rule).collect()
}

fn lifecycle_document(rules: &[LifecycleRule]) -> String {
    let mut d = Doc::new("LifecycleConfiguration");
    for r in rules {
        d.open("Rule");
        if !r.id.is_empty() {
            d.elem("ID", &r.id);
        }
        d.open("Filter")
            .elem("Prefix", &r.prefix)
            .close("Filter")
            .elem("Status", if r.enabled { "Enabled" } else { "Disabled" });
        if r.expired_marker {
            d.open("Expiration")
                .elem("ExpiredObjectDeleteMarker", "true")
                .close("Expiration");
        }
        if let Some(days) = r.noncurrent_days {
            d.open("NoncurrentVersionExpiration")
                .elem("NoncurrentDays", &days.to_string());
            if let Some(n) = r.newer_noncurrent {
                d.elem("NewerNoncurrentVersions", &n.to_string());
            }
            d.close("NoncurrentVersionExpiration");
        }
        d.close("Rule");
    }
    d.finish("LifecycleConfiguration")
}

/// The parameters of ListObjectVersions.
struct ListVersionsParams {
    prefix: String,
    delimiter: String,
    key_marker: Option<String>,
    version_marker: Option<String>,
    max: usize,
    url_encode: bool,
}

impl ListVersionsParams {
    fn parse(req: &Request<'_>) -> Result<ListVersionsParams> {
        refuse_unknown_params(req, LIST_VERSIONS_PARAMS)?;
        let max = match req.query_param("max-keys") {
            None => LIST_VERSIONS_MAX,
            Some(m) => m.parse::<usize>().map_err(|_| {
                DirectorError::BadRequest(
                    "InvalidArgument",
                    format!("max-keys {m:?} is not a number"),
                )
            })?,
        }
        .min(LIST_VERSIONS_MAX);
        let key_marker = req.query_param("key-marker").filter(|k| !k.is_empty());
        let version_marker = req
            .query_param("version-id-marker")
            .filter(|v| !v.is_empty());
        if let Some(v) = &version_marker {
            parse_version_id(v)?;
            if key_marker.is_none() {
                return Err(DirectorError::BadRequest(
                    "InvalidArgument",
                    "a version-id-marker cannot be given without a key-marker".into(),
                ));
            }
        }
        Ok(ListVersionsParams {
            prefix: req.query_param("prefix").unwrap_or_default(),
            delimiter: req.query_param("delimiter").unwrap_or_default(),
            key_marker,
            version_marker,
            max,
            url_encode: req.query_param("encoding-type").as_deref() == Some("url"),
        })
    }

    fn enc(&self, s: &str) -> String {
        if self.url_encode {
            percent_encode(s, true)
        } else {
            s.to_string()
        }
    }
}

impl DirectorApi {
    /// GET/PUT `?versioning`.
    pub(super) fn versioning(
        &self,
        method: &str,
        bucket: &str,
        req: &mut Request<'_>,
    ) -> Result<Response> {
        let status = self.director.read_index().bucket(bucket)?.versioning;
        match method {
            "GET" => {
                let mut d = Doc::new("VersioningConfiguration");
                if let Some(s) = status.as_str() {
                    d.elem("Status", s);
                }
                Ok(xml(200, d.finish("VersioningConfiguration")))
            }
            "PUT" => {
                let text = read_small_body(req)?;
                let v = parse_versioning(&text)?;
                self.director.commit(&Record::BucketVersioning {
                    bucket: bucket.to_string(),
                    status: v.as_str().unwrap_or("Suspended").to_string(),
                })?;
                Ok(Response::empty(200))
            }
            _ => Err(DirectorError::MethodNotAllowed(format!(
                "{method} on ?versioning"
            ))),
        }
    }

    /// GET/PUT/DELETE `?lifecycle`.
    pub(super) fn lifecycle(
        &self,
        method: &str,
        bucket: &str,
        req: &mut Request<'_>,
    ) -> Result<Response> {
        let rules = self.director.read_index().bucket(bucket)?.lifecycle.clone();
        let set = |rules: Vec<LifecycleRule>| {
            self.director.commit(&Record::BucketLifecycle {
                bucket: bucket.to_string(),
                rules,
            })
        };
        match method {
            "GET" if rules.is_empty() => Err(DirectorError::S3(
                404,
                "NoSuchLifecycleConfiguration",
                "the bucket has no lifecycle configuration".into(),
            )),
            "GET" => Ok(xml(200, lifecycle_document(&rules))),
            "PUT" => {
                let text = read_small_body(req)?;
                set(parse_lifecycle(&text)?)?;
                Ok(Response::empty(200))
            }
            "DELETE" => {
                if !rules.is_empty() {
                    set(Vec::new())?;
                }
                Ok(Response::empty(204))
            }
            _ => Err(DirectorError::MethodNotAllowed(format!(
                "{method} on ?lifecycle"
            ))),
        }
    }

    /// ListObjectVersions (`GET /bucket?versions`).
    pub(super) fn list_object_versions(&self, bucket: &str, req: &Request<'_>) -> Result<Response> {
        let p = ListVersionsParams::parse(req)?;
        let marker = VersionMarker {
            key: p.key_marker.as_deref(),
            version: p.version_marker.as_deref(),
        };
        let (page, owner) = {
            let idx = self.director.read_index();
            let page = idx.list_versions(bucket, &p.prefix, &p.delimiter, &marker, p.max)?;
            (page, owner_of(&idx, bucket)?)
        };
        let mut d = Doc::new("ListVersionsResult");
        d.elem("Name", bucket)
            .elem("Prefix", &p.enc(&p.prefix))
            .elem(
                "KeyMarker",
                &p.enc(p.key_marker.as_deref().unwrap_or_default()),
            )
            .elem(
                "VersionIdMarker",
                p.version_marker.as_deref().unwrap_or_default(),
            )
            .elem("MaxKeys", &p.max.to_string())
            .elem("IsTruncated", if page.truncated { "true" } else { "false" });
        if !p.delimiter.is_empty() {
            d.elem("Delimiter", &p.enc(&p.delimiter));
        }
        if p.url_encode {
            d.elem("EncodingType", "url");
        }
        if let Some(k) = &page.next_key {
            d.elem("NextKeyMarker", &p.enc(k));
        }
        if let Some(v) = &page.next_version {
            d.elem("NextVersionIdMarker", v);
        }
        for e in &page.entries {
            match e {
                VersionEntry::Version {
                    key,
                    version,
                    latest,
                } => {
                    let tag = match version {
                        Version::Object(_) => "Version",
                        Version::Marker { .. } => "DeleteMarker",
                    };
                    d.open(tag)
                        .elem("Key", &p.enc(key))
                        .elem("VersionId", version.id_text())
                        .elem("IsLatest", if *latest { "true" } else { "false" })
                        .elem("LastModified", &iso8601(version.mtime_ms()));
                    if let Version::Object(o) = version {
                        d.elem("ETag", &format!("\"{}\"", o.etag))
                            .elem("Size", &o.size.to_string())
                            .elem("StorageClass", "STANDARD");
                    }
                    owner_elem(&mut d, "Owner", &owner);
                    d.close(tag);
                }
                VersionEntry::CommonPrefix(cp) => {
                    d.open("CommonPrefixes")
                        .elem("Prefix", &p.enc(cp))
                        .close("CommonPrefixes");
                }
            }
        }
        Ok(xml(200, d.finish("ListVersionsResult")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioning_documents() {
        let ok = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
        assert_eq!(parse_versioning(ok).unwrap(), Versioning::Enabled);
        for bad in [
            "",
            "<VersioningConfiguration/>",
            "<VersioningConfiguration><Status>On</Status></VersioningConfiguration>",
            "<Other><Status>Enabled</Status></Other>",
            "<VersioningConfiguration><Status>Enabled",
        ] {
            let e = parse_versioning(bad).unwrap_err();
            assert_eq!(e.status_and_code(), (400, "MalformedXML"), "{bad}");
        }
    }

    #[test]
    fn lifecycle_documents() {
        let doc = "<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix>logs/</Prefix>\
                   </Filter><Status>Enabled</Status><NoncurrentVersionExpiration>\
                   <NoncurrentDays>3</NoncurrentDays><NewerNoncurrentVersions>2\
                   </NewerNoncurrentVersions></NoncurrentVersionExpiration><Expiration>\
                   <ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>\
                   </Rule></LifecycleConfiguration>";
        let rules = parse_lifecycle(doc).unwrap();
        assert_eq!(rules.len(), 1);
        let r = &rules[0];
        assert_eq!(
            (
                r.prefix.as_str(),
                r.noncurrent_days,
                r.newer_noncurrent,
                r.expired_marker
            ),
            ("logs/", Some(3), Some(2), true)
        );
        assert_eq!(parse_lifecycle(&lifecycle_document(&rules)).unwrap(), rules);
        let transition = "<LifecycleConfiguration><Rule><Status>Enabled</Status><Transition>\
                          <Days>1</Days></Transition></Rule></LifecycleConfiguration>";
        assert_eq!(
            parse_lifecycle(transition).unwrap_err().status_and_code().0,
            501
        );
        let no_action = "<LifecycleConfiguration><Rule><Status>Enabled</Status></Rule>\
                         </LifecycleConfiguration>";
        assert_eq!(
            parse_lifecycle(no_action).unwrap_err().status_and_code(),
            (400, "MalformedXML")
        );
    }
}
