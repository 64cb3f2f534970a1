//! Uploading a file while it is still being written: once the spool holds a part's worth
//! of bytes past what is already sent, that part goes out as an S3 multipart part in a
//! background thread, so `close`/`fsync` of a large file only sends the tail and
//! completes the upload (the director joins the parts; no data moves again).
//!
//! The parts are read back from the spool file, so a part is right only if its bytes do
//! not change after it was sent: a write (or truncation) below `sent` ends the stream
//! (aborted), and that version of the file is uploaded whole at close, as before. Nothing
//! is visible in the bucket until the completion, so a failure or a killed mount leaves
//! no half-written object: an incomplete upload, which the director aborts after
//! `--multipart-max-age`.

use crate::client::{Client, ClientError, Payload, object_path};
use crate::s3::xml;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes of each part sent while writing: above the director's 5 MiB minimum, large
/// enough that a part's request overhead is small.
pub const PART_BYTES: u64 = 8 << 20;
/// Parts of one file in flight at once; a writer that gets this far ahead waits.
pub const PARTS_IN_FLIGHT_MAX: usize = 2;
/// S3's limit on the parts of one upload; past it the file is sent whole at close.
pub const PARTS_MAX: u32 = 10_000;

type PartResult = Result<(u32, String), ClientError>;

/// A multipart upload of the file being written.
pub struct Stream {
    client: Arc<Client>,
    bucket: String,
    key: String,
    id: String,
    /// Bytes `0..sent` are in parts sent or in flight.
    pub sent: u64,
    next_part: u32,
    done: Vec<(u32, String)>,
    in_flight: Vec<JoinHandle<PartResult>>,
    failed: Option<ClientError>,
}

impl Stream {
    /// Starts a multipart upload of `key` (CreateMultipartUpload).
    pub fn start(
        client: Arc<Client>,
        bucket: &str,
        key: &str,
        content_type: &str,
    ) -> Result<Stream, ClientError> {
        let path = object_path(bucket, key);
        let headers = vec![("content-type".to_string(), content_type.to_string())];
        let doc = client.retrying("start an upload", || {
            client
                .call("POST", &path, "uploads", &headers, Payload::None)?
                .text()
        })?;
        let id = tag_text(&doc, "UploadId").ok_or_else(|| ClientError::Status {
            status: 500,
            code: "MalformedXML".into(),
            message: "no UploadId in the answer to CreateMultipartUpload".into(),
        })?;
        Ok(Stream {
            client,
            bucket: bucket.to_string(),
            key: key.to_string(),
            id,
            sent: 0,
            next_part: 1,
            done: Vec::new(),
            in_flight: Vec::new(),
            failed: None,
        })
    }

    /// Whether another part may be started (S3's part count limit).
    pub fn has_room(&self) -> bool {
        self.next_part < PARTS_MAX
    }

    /// Sends `len` bytes of `file` from `sent` as the next part, in the background; first
    /// waits for the oldest part if PARTS_IN_FLIGHT_MAX are already out.
    pub fn send(&mut self, file: &std::fs::File, len: u64) -> std::io::Result<()> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT_MAX {
            let oldest = self.in_flight.remove(0);
            self.collect(oldest);
        }
        let file = file.try_clone()?;
        let (client, number, at) = (self.client.clone(), self.next_part, self.sent);
        let path = object_path(&self.bucket, &self.key);
        let query = format!("partNumber={number}&uploadId={}", self.id);
        let what = format!("upload part {number} of {}", self.key);
        self.in_flight.push(std::thread::spawn(move || {
            let etag = client.retrying(&what, || {
                let mut r = std::io::Read::take(PositionalReader { file: &file, at }, len);
                let a = client.call(
                    "PUT",
                    &path,
                    &query,
                    &[],
                    Payload::Reader(&mut r, Some(len)),
                )?;
                Ok(a.header("etag").unwrap_or("").trim_matches('"').to_string())
            })?;
            Ok((number, etag))
        }));
        self.next_part += 1;
        self.sent += len;
        Ok(())
    }

    fn collect(&mut self, h: JoinHandle<PartResult>) {
        match h.join() {
            Ok(Ok(p)) => self.done.push(p),
            Ok(Err(e)) => self.failed = Some(e),
            Err(_) => self.failed = Some(ClientError::Transport("a part upload panicked".into())),
        }
    }

    /// Sends the rest of the file (`sent..size`) as the last part, waits for every part
    /// and completes the upload: Ok once the object is committed. Aborts on failure.
    pub fn finish(mut self, file: &std::fs::File, size: u64) -> Result<(), ClientError> {
        let tail = size.saturating_sub(self.sent);
        if tail > 0 || self.next_part == 1 {
            if let Err(e) = self.send(file, tail) {
                self.failed = Some(ClientError::Transport(format!("spool: {e}")));
            }
        }
        for h in std::mem::take(&mut self.in_flight) {
            self.collect(h);
        }
        if let Some(e) = self.failed.take() {
            self.abort();
            return Err(e);
        }
        self.done.sort();
        let mut body = String::from("<CompleteMultipartUpload>");
        for (n, etag) in &self.done {
            body.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>\"{etag}\"</ETag></Part>"
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let path = object_path(&self.bucket, &self.key);
        let query = format!("uploadId={}", self.id);
        let r = self.client.retrying("complete an upload", || {
            self.client
                .call("POST", &path, &query, &[], Payload::Bytes(body.as_bytes()))?
                .text()
        });
        match r {
            // S3 may answer 200 and still report an error in the body.
            Ok(doc) if tag_text(&doc, "Code").is_some() => {
                self.abort();
                Err(ClientError::Status {
                    status: 500,
                    code: tag_text(&doc, "Code").unwrap_or_else(|| "InternalError".into()),
                    message: tag_text(&doc, "Message").unwrap_or_default(),
                })
            }
            Ok(_) => Ok(()),
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    /// Gives the upload up (AbortMultipartUpload) in the background, once the parts in
    /// flight have ended; its parts never become an object.
    pub fn abort(self) {
        let Stream {
            client,
            bucket,
            key,
            id,
            in_flight,
            ..
        } = self;
        std::thread::spawn(move || {
            for h in in_flight {
                let _ = h.join();
            }
            let path = object_path(&bucket, &key);
            let query = format!("uploadId={id}");
            if let Err(e) = client.call("DELETE", &path, &query, &[], Payload::None) {
                log::warn!("aborting the upload of {key}: {e}");
            }
        });
    }
}

/// The text of `<tag>` just under the root of an S3 answer.
fn tag_text(doc: &str, tag: &str) -> Option<String> {
    xml::parse(doc).ok()?.child_text(tag).map(str::to_string)
}

/// A `Read` over a file from offset `at`, by positional reads (a retry starts over).
pub(super) struct PositionalReader<'a> {
    pub file: &'a std::fs::File,
    pub at: u64,
}

impl std::io::Read for PositionalReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found() {
        let doc = "<InitiateMultipartUploadResult><Bucket>b</Bucket>\
                   <UploadId>abc-1</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(tag_text(doc, "UploadId").as_deref(), Some("abc-1"));
        assert_eq!(tag_text(doc, "Code"), None);
        assert_eq!(tag_text("<Code>x", "Code"), None);
    }
}
