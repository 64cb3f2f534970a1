//! The client tools: `dpyfs-put`, `dpyfs-get` and the `dpyfs ls/rm/stat/status` commands.
//! The binaries parse flags into a config and call `put::run`, `get::run` or a `cluster`
//! function; everything here talks to the director through `crate::client`.
//!
//! Exit status, for every tool: 0 all done, 1 something failed (each failure reported on
//! stderr as `PROGRAM: WHAT: why`), 2 usage error.

pub mod cluster;
pub mod get;
pub mod progress;
pub mod put;

use crate::client::Client;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
/// Copy buffer of a transfer.
pub const IO_BUFFER_BYTES: usize = 256 * 1024;

/// What a tool prints besides errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// `-q`: errors only (no progress, no retry notices).
    Quiet,
    Normal,
    /// `-v`: also one line per file transferred.
    Verbose,
}

/// Settings shared by `dpyfs-put` and `dpyfs-get`.
#[derive(Clone, Debug)]
pub struct TransferConfig {
    pub url: String,
    pub recursive: bool,
    pub verbosity: Verbosity,
    /// Show the progress line (stderr is a terminal and not `-q`).
    pub progress: bool,
    pub retries: u32,
    /// Bytes per second, at most (`--limit-rate`).
    pub limit_rate: Option<u64>,
}

impl TransferConfig {
    /// A client with the retry count and a notice printer (silent with `-q`).
    pub fn client(&self, program: &'static str) -> Result<Client, String> {
        let mut c = Client::new(&self.url)?;
        c.retries = self.retries;
        if self.verbosity != Verbosity::Quiet {
            c.notice = Arc::new(move |m: &str| eprintln!("{program}: {m}"));
        }
        Ok(c)
    }
}

/// A remote name: `bucket`, `bucket/`, `bucket/key` or `bucket/prefix/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub bucket: String,
    /// What follows the first `/` (may be empty).
    pub key: String,
}

impl Remote {
    pub fn parse(s: &str) -> Result<Remote, String> {
        let s = s.strip_prefix("s3://").unwrap_or(s);
        let (b, k) = s.split_once('/').unwrap_or((s, ""));
        if !crate::s3::names::valid_bucket_name(b) {
            return Err(format!(
                "{b:?} is not a bucket name (3-63 characters: a-z, 0-9, '.', '-'); write bucket/key"
            ));
        }
        Ok(Remote {
            bucket: b.to_string(),
            key: k.to_string(),
        })
    }

    /// The key part names a folder (empty or ending with `/`).
    pub fn is_folder(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }

    /// The key part as a folder prefix: `""`, or ending with exactly one `/`.
    pub fn folder_prefix(&self) -> String {
        if self.key.is_empty() || self.key.ends_with('/') {
            self.key.clone()
        } else {
            format!("{}/", self.key)
        }
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.bucket, self.key)
    }
}

/// A reader that holds the average rate to `bytes_per_sec` (`--limit-rate`).
pub struct Throttled<R> {
    inner: R,
    rate: Option<u64>,
    started: Instant,
    done: u64,
}

impl<R: Read> Throttled<R> {
    pub fn new(inner: R, rate: Option<u64>) -> Throttled<R> {
        Throttled {
            inner,
            rate: rate.filter(|r| *r > 0),
            started: Instant::now(),
            done: 0,
        }
    }
}

impl<R: Read> Read for Throttled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(rate) = self.rate else {
            return self.inner.read(buf);
        };
        // Small reads keep the pace even: about 20 per second.
        let slice = ((rate / 20).max(1) as usize).min(buf.len());
        let n = self.inner.read(&mut buf[..slice])?;
        self.done += n as u64;
        let due = Duration::from_secs_f64(self.done as f64 / rate as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
        Ok(n)
    }
}

/// A reader that counts what passed through it and feeds a progress line.
pub struct Counted<'a, R> {
    pub inner: R,
    pub count: u64,
    pub progress: &'a mut progress::Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// Content type from a file name's extension (a small table; S3's default otherwise).
pub fn content_type_of(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "md" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "json" => "application/json",
        "js" => "text/javascript",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        "mkv" => "video/x-matroska",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "zip" => "application/zip",
        _ => crate::s3::names::CONTENT_TYPE_DEFAULT,
    }
}

/// Prints `PROGRAM: what: why` on stderr.
pub fn report_failure(program: &str, what: &str, why: &dyn std::fmt::Display) {
    let _ = writeln!(io::stderr(), "{program}: {what}: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_parse() {
        let r = Remote::parse("photos/2024/a.jpg").unwrap();
        assert_eq!(
            (r.bucket.as_str(), r.key.as_str()),
            ("photos", "2024/a.jpg")
        );
        assert!(!r.is_folder());
        assert_eq!(r.folder_prefix(), "2024/a.jpg/");
        let r = Remote::parse("s3://photos").unwrap();
        assert!(r.is_folder());
        assert_eq!(r.folder_prefix(), "");
        assert_eq!(Remote::parse("photos/x/").unwrap().folder_prefix(), "x/");
        assert!(Remote::parse("Bad_Bucket/x").is_err());
        assert!(Remote::parse("./local").is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type_of("a/b.JPG"), "image/jpeg");
        assert_eq!(content_type_of("noext"), "binary/octet-stream");
    }
}
