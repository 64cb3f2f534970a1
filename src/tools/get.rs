//! `dpyfs-get`: an object to a file or stdout, or (`-r`) everything under a prefix to a
//! folder.
//!
//! A download is written to a hidden temporary file in the destination folder
//! (`.NAME.<pid>.<n>.<t>.tmp`) and renamed to its name only when the byte count matches
//! Content-Length and, for a single-part ETag (32 hex digits, the MD5 of the object), the
//! MD5 of the bytes matches; then the file and its folder are fsynced. A multipart ETag
//! (`<hex>-<parts>`) is not an MD5 of the object, so such downloads are checked by size
//! only. A failed, retried-out or interrupted (SIGINT/SIGTERM) download removes its
//! temporary file: nothing that looks like a finished file is left behind. (Only SIGKILL
//! can leave the hidden `.tmp` file.)

use super::progress::Progress;
use super::{EXIT_FAILED, EXIT_OK, IO_BUFFER_BYTES, Remote, Throttled, TransferConfig, Verbosity};
use crate::client::{Client, ClientError, Download, Listed};
use crate::fsutil::AtomicFile;
use md5::{Digest, Md5};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const PROGRAM: &str = "dpyfs-get";

#[derive(Clone, Debug)]
pub struct GetConfig {
    pub transfer: TransferConfig,
    /// `bucket/key`, or `bucket/prefix/` with `-r`.
    pub source: String,
    /// A file, a folder, or `-` for stdout; default: the current folder.
    pub dest: Option<String>,
}

/// Runs the downloads; Err(message) is a usage error (exit status 2).
pub fn run(cfg: &GetConfig) -> Result<u8, String> {
    let src = Remote::parse(&cfg.source)?;
    let client = cfg.transfer.client(PROGRAM)?;
    // Ctrl-C or SIGTERM stops the copy loop, which removes its temporary file.
    crate::sys::catch_stop_signals();
    if cfg.transfer.recursive {
        let dest = cfg.dest.clone().unwrap_or_else(|| ".".into());
        if dest == "-" {
            return Err("-r writes files into a folder, not to stdout".into());
        }
        return Ok(get_tree(&client, &cfg.transfer, &src, Path::new(&dest)));
    }
    if src.is_folder() {
        return Err(format!(
            "{src} names a folder: use -r to fetch everything under it"
        ));
    }
    let base = src.key.rsplit('/').next().unwrap_or(&src.key).to_string();
    let r = match cfg.dest.as_deref() {
        Some("-") => to_stdout(&client, &cfg.transfer, &src),
        other => {
            let d = PathBuf::from(other.unwrap_or("."));
            let path = if d.is_dir() || other.is_some_and(|o| o.ends_with('/')) {
                d.join(&base)
            } else {
                d
            };
            to_file(&client, &cfg.transfer, &src.bucket, &src.key, &path)
        }
    };
    Ok(match r {
        Ok(_) => EXIT_OK,
        Err(e) => {
            super::report_failure(PROGRAM, &src.to_string(), &e);
            EXIT_FAILED
        }
    })
}

fn get_tree(client: &Client, t: &TransferConfig, src: &Remote, dest: &Path) -> u8 {
    let prefix = src.folder_prefix();
    let listed = match client.list(&src.bucket, &prefix, None) {
        Ok(l) => l,
        Err(e) => {
            super::report_failure(PROGRAM, &src.to_string(), &e);
            return EXIT_FAILED;
        }
    };
    let keys: Vec<String> = listed
        .into_iter()
        .filter_map(|l| match l {
            Listed::Object { key, .. } => Some(key),
            Listed::Prefix(_) => None,
        })
        .collect();
    if keys.is_empty() {
        super::report_failure(
            PROGRAM,
            &format!("{}/{prefix}", src.bucket),
            &"no objects under this prefix",
        );
        return EXIT_FAILED;
    }
    let mut failed = 0usize;
    for key in keys {
        if crate::sys::stop_requested() {
            super::report_failure(
                PROGRAM,
                &format!("{}/{key}", src.bucket),
                &"not fetched: interrupted",
            );
            failed += 1;
            continue;
        }
        let what = format!("{}/{key}", src.bucket);
        let rel = match key.strip_prefix(&prefix) {
            // A folder marker named like the prefix itself: the destination folder.
            Some("") => continue,
            Some(r) => r,
            None => {
                failed += 1;
                super::report_failure(PROGRAM, &what, &"listed, but not under the prefix");
                continue;
            }
        };
        let r = match local_path(rel) {
            None => Err(ClientError::Final(
                "the key cannot be a safe local path (empty, '.' or '..' parts)".into(),
            )),
            // A folder marker (`dir/`, as some tools write) becomes a folder.
            Some(p) if rel.ends_with('/') => fs::create_dir_all(dest.join(p))
                .map(|_| 0)
                .map_err(|e| ClientError::Final(format!("cannot create the folder: {e}"))),
            Some(p) => {
                let path = dest.join(p);
                match path.parent().map(fs::create_dir_all).transpose() {
                    Err(e) => Err(ClientError::Final(format!("cannot create the folder: {e}"))),
                    Ok(_) => to_file(client, t, &src.bucket, &key, &path),
                }
            }
        };
        if let Err(e) = r {
            failed += 1;
            super::report_failure(PROGRAM, &what, &e);
        }
    }
    if failed == 0 { EXIT_OK } else { EXIT_FAILED }
}

/// A key's relative part as a path inside the destination, or None if it would leave it
/// (`..`), name the folder itself (`.`, empty parts) or is absolute.
pub fn local_path(rel: &str) -> Option<PathBuf> {
    let trimmed = rel.strip_suffix('/').unwrap_or(rel);
    if trimmed.is_empty() {
        return None;
    }
    let mut p = PathBuf::new();
    for part in trimmed.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return None;
        }
        p.push(part);
    }
    Some(p)
}

/// What a finished copy saw.
struct Copied {
    bytes: u64,
    md5: Md5,
}

/// Copies the body to `out`, feeding the progress line; stops on SIGINT/SIGTERM.
fn copy(
    d: &mut Download,
    out: &mut dyn Write,
    progress: &mut Progress,
    rate: Option<u64>,
) -> Result<Copied, ClientError> {
    let mut body = Throttled::new(&mut d.body, rate);
    let mut buf = vec![0u8; IO_BUFFER_BYTES];
    let mut c = Copied {
        bytes: 0,
        md5: Md5::new(),
    };
    loop {
        if crate::sys::stop_requested() {
            return Err(ClientError::Final("interrupted".into()));
        }
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(c),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ClientError::Transport(format!(
                    "the download broke off after {} bytes: {e}",
                    c.bytes
                )));
            }
        };
        out.write_all(&buf[..n])
            .map_err(|e| ClientError::Final(format!("cannot write: {e}")))?;
        c.md5.update(&buf[..n]);
        c.bytes += n as u64;
        progress.add(n as u64);
    }
}

/// Size against Content-Length; MD5 against a single-part ETag (a multipart ETag
/// `<hex>-<n>` is no MD5 of the whole: size only). A mismatch is worth another try.
fn verify(d: &Download, c: Copied) -> Result<(), ClientError> {
    if let Some(len) = d.len {
        if c.bytes != len {
            return Err(ClientError::Transport(format!(
                "got {} bytes of {len}",
                c.bytes
            )));
        }
    }
    if let Some(etag) = d
        .etag
        .as_deref()
        .filter(|e| e.len() == 32 && !e.contains('-'))
    {
        let got = crate::hash::to_hex(&c.md5.finalize());
        if !got.eq_ignore_ascii_case(etag) {
            return Err(ClientError::Transport(format!(
                "the bytes received have MD5 {got}, not the ETag {etag}"
            )));
        }
    }
    Ok(())
}

fn to_file(
    client: &Client,
    t: &TransferConfig,
    bucket: &str,
    key: &str,
    path: &Path,
) -> Result<u64, ClientError> {
    if path.file_name().is_none() {
        return Err(ClientError::Final(format!(
            "{} is not a file name",
            path.display()
        )));
    }
    let shown = path.display().to_string();
    let mut progress = Progress::new(t.progress, &shown, None);
    let r = client.retrying(&format!("{bucket}/{key}"), || {
        let mut d = client.get_object(bucket, key)?;
        // Removed on every way out but the commit below.
        let mut f = AtomicFile::create(path, 0o666)
            .map_err(|e| ClientError::Final(format!("cannot create a file beside {shown}: {e}")))?;
        progress = Progress::new(t.progress, &shown, d.len);
        let c = copy(&mut d, &mut f, &mut progress, t.limit_rate)?;
        let n = c.bytes;
        verify(&d, c)?;
        f.commit(path)
            .map_err(|e| ClientError::Final(format!("cannot write {shown}: {e}")))?;
        Ok(n)
    });
    progress.finish(r.is_ok());
    if let (Ok(n), Verbosity::Verbose) = (&r, t.verbosity) {
        eprintln!("{bucket}/{key} -> {} ({n} bytes)", path.display());
    }
    r
}

/// To stdout: a failure after the first byte cannot be taken back, so it is not retried,
/// and a verification failure is reported (exit status 1) after the bytes went out.
fn to_stdout(client: &Client, t: &TransferConfig, src: &Remote) -> Result<u64, ClientError> {
    let mut out = io::stdout().lock();
    let mut progress = Progress::new(t.progress, &src.key, None);
    let r = client.retrying(&src.to_string(), || {
        let mut d = client.get_object(&src.bucket, &src.key)?;
        progress = Progress::new(t.progress, &src.key, d.len);
        let mut counted = CountingWriter {
            inner: &mut out,
            count: 0,
        };
        let c = match copy(&mut d, &mut counted, &mut progress, t.limit_rate) {
            Ok(c) => c,
            Err(e) if counted.count > 0 => {
                return Err(ClientError::Final(format!(
                    "{e} (not retried: {} bytes were already written to stdout)",
                    counted.count
                )));
            }
            Err(e) => return Err(e),
        };
        let n = c.bytes;
        verify(&d, c)
            .map_err(|e| ClientError::Final(format!("{e} (the bytes were written to stdout)")))?;
        out.flush()
            .map_err(|e| ClientError::Final(format!("cannot write: {e}")))?;
        Ok(n)
    });
    progress.finish(r.is_ok());
    r
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_paths_only_inside_the_destination() {
        assert_eq!(local_path("a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(local_path("dir/"), Some(PathBuf::from("dir")));
        assert_eq!(local_path("a b/é"), Some(PathBuf::from("a b/é")));
        assert_eq!(local_path("../etc/passwd"), None);
        assert_eq!(local_path("a/../../x"), None);
        assert_eq!(local_path("a//b"), None);
        assert_eq!(local_path("/abs"), None);
        assert_eq!(local_path("./x"), None);
        assert_eq!(local_path(""), None);
    }
}
