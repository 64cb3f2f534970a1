//! `dpyfs-put`: files, folders (`-r`) and stdin (`-`) into a bucket.
//!
//! Names: a single file to `bucket/key` takes that key; to `bucket`, `bucket/prefix/`, or
//! with several sources, each file keeps its name under the prefix, and a folder `dir`
//! (with `-r`) becomes `prefix/dir/...`. A file body is re-read from the start when an
//! upload is retried; stdin cannot be re-read, so an upload from stdin is retried only if
//! the failure came before any of its bytes were sent.

use super::progress::Progress;
use super::{Counted, EXIT_FAILED, EXIT_OK, Remote, Throttled, TransferConfig, Verbosity};
use crate::client::{Client, ClientError, Payload};
use md5::{Digest, Md5};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

const PROGRAM: &str = "dpyfs-put";

#[derive(Clone, Debug)]
pub struct PutConfig {
    pub transfer: TransferConfig,
    pub mkbucket: bool,
    /// Local paths; `-` is stdin.
    pub sources: Vec<String>,
    pub dest: String,
}

/// One upload to do.
#[derive(Debug)]
enum Source {
    File(PathBuf),
    Stdin,
}

struct Job {
    source: Source,
    key: String,
}

/// Runs the uploads; Err(message) is a usage error (exit status 2).
pub fn run(cfg: &PutConfig) -> Result<u8, String> {
    let dest = Remote::parse(&cfg.dest)?;
    if cfg.sources.is_empty() {
        return Err("give the files to upload, then the destination bucket[/prefix]".into());
    }
    let stdin = cfg.sources.iter().any(|s| s == "-");
    if stdin && (cfg.sources.len() > 1 || dest.is_folder()) {
        return Err("'-' (stdin) must be the only source, and the destination must name a key: dpyfs-put - bucket/key".into());
    }
    let client = cfg.transfer.client(PROGRAM)?;
    let mut failed = 0usize;
    let jobs = plan(cfg, &dest, &mut failed);
    if !jobs.is_empty() && !ensure_bucket(&client, cfg, &dest.bucket, jobs.len(), &mut failed) {
        return Ok(EXIT_FAILED);
    }
    for job in &jobs {
        let what = match &job.source {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "stdin".to_string(),
        };
        let r = match &job.source {
            Source::File(p) => put_file(&client, &cfg.transfer, p, &dest.bucket, &job.key),
            Source::Stdin => put_stdin(&client, &cfg.transfer, &dest.bucket, &job.key),
        };
        match r {
            Ok(size) => {
                if cfg.transfer.verbosity == Verbosity::Verbose {
                    eprintln!("{what} -> {}/{} ({size} bytes)", dest.bucket, job.key);
                }
            }
            Err(e) => {
                failed += 1;
                super::report_failure(PROGRAM, &what, &e);
            }
        }
    }
    Ok(if failed == 0 { EXIT_OK } else { EXIT_FAILED })
}

/// Checks the bucket once (creating it with `--mkbucket`); false when nothing can go.
fn ensure_bucket(
    client: &Client,
    cfg: &PutConfig,
    bucket: &str,
    jobs: usize,
    failed: &mut usize,
) -> bool {
    let exists = client.retrying(&format!("bucket {bucket}"), || client.bucket_exists(bucket));
    let r = match exists {
        Ok(true) => Ok(()),
        Ok(false) if cfg.mkbucket => client
            .retrying(&format!("create bucket {bucket}"), || {
                client.create_bucket(bucket)
            })
            .map(|created| {
                if created && cfg.transfer.verbosity == Verbosity::Verbose {
                    eprintln!("created bucket {bucket}");
                }
            })
            .map_err(|e| e.to_string()),
        Ok(false) => Err(format!(
            "NoSuchBucket: the bucket '{bucket}' does not exist (--mkbucket creates it)"
        )),
        Err(e) => Err(e.to_string()),
    };
    match r {
        Ok(()) => true,
        Err(e) => {
            *failed += jobs;
            super::report_failure(PROGRAM, &format!("{jobs} file(s) not uploaded"), &e);
            false
        }
    }
}

/// Turns the sources into (source, key) jobs; sources that cannot go are reported.
fn plan(cfg: &PutConfig, dest: &Remote, failed: &mut usize) -> Vec<Job> {
    let single = cfg.sources.len() == 1;
    let mut jobs = Vec::new();
    for s in &cfg.sources {
        if s == "-" {
            jobs.push(Job {
                source: Source::Stdin,
                key: dest.key.clone(),
            });
            continue;
        }
        let path = PathBuf::from(s);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                *failed += 1;
                super::report_failure(PROGRAM, s, &format!("cannot read: {e}"));
                continue;
            }
        };
        if meta.is_dir() {
            if !cfg.transfer.recursive {
                *failed += 1;
                super::report_failure(PROGRAM, s, &"is a directory (use -r)");
                continue;
            }
            let Some(name) = dir_name(&path) else {
                *failed += 1;
                super::report_failure(PROGRAM, s, &"cannot tell the folder's name");
                continue;
            };
            let prefix = format!("{}{name}/", dest.folder_prefix());
            walk(&path, &prefix, &mut jobs, failed);
            continue;
        }
        let key = if single && !dest.is_folder() {
            dest.key.clone()
        } else {
            match path.file_name().and_then(|n| n.to_str()) {
                Some(n) => format!("{}{n}", dest.folder_prefix()),
                None => {
                    *failed += 1;
                    super::report_failure(PROGRAM, s, &"the name is not UTF-8");
                    continue;
                }
            }
        };
        jobs.push(Job {
            source: Source::File(path),
            key,
        });
    }
    jobs
}

/// The name a folder is uploaded under (`.` and `dir/` resolved).
fn dir_name(p: &Path) -> Option<String> {
    let canon = std::fs::canonicalize(p).ok()?;
    canon.file_name()?.to_str().map(String::from)
}

/// Every file under `dir` (sorted; symbolic links to folders are not followed, so a loop
/// cannot run forever), keyed `prefix` + relative path.
fn walk(dir: &Path, prefix: &str, jobs: &mut Vec<Job>, failed: &mut usize) {
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).collect(),
        Err(e) => {
            *failed += 1;
            super::report_failure(
                PROGRAM,
                &dir.display().to_string(),
                &format!("cannot list: {e}"),
            );
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(String::from) else {
            *failed += 1;
            super::report_failure(
                PROGRAM,
                &path.display().to_string(),
                &"the name is not UTF-8",
            );
            continue;
        };
        let is_link = e.file_type().is_ok_and(|t| t.is_symlink());
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() && is_link => {
                super::report_failure(
                    PROGRAM,
                    &path.display().to_string(),
                    &"skipped: a link to a folder",
                );
            }
            Ok(m) if m.is_dir() => walk(&path, &format!("{prefix}{name}/"), jobs, failed),
            Ok(_) => jobs.push(Job {
                source: Source::File(path),
                key: format!("{prefix}{name}"),
            }),
            Err(err) => {
                *failed += 1;
                super::report_failure(
                    PROGRAM,
                    &path.display().to_string(),
                    &format!("cannot read: {err}"),
                );
            }
        }
    }
}

/// MD5 of what passes through, to check the director's ETag against what was sent.
struct Md5Reader<R> {
    inner: R,
    md5: Md5,
}

impl<R: Read> Read for Md5Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
}

/// A single-part ETag is the MD5 of the body: a mismatch means the bytes were changed
/// on the way (or the file changed while it was read).
fn check_etag(etag: &str, md5: Md5) -> Result<(), ClientError> {
    let sent = crate::hash::to_hex(&md5.finalize());
    if etag.len() == 32 && !etag.eq_ignore_ascii_case(&sent) {
        return Err(ClientError::Final(format!(
            "the director's ETag {etag} is not the MD5 of the bytes sent ({sent}); the file may have changed while it was read"
        )));
    }
    Ok(())
}

fn put_file(
    client: &Client,
    t: &TransferConfig,
    path: &Path,
    bucket: &str,
    key: &str,
) -> Result<u64, ClientError> {
    let name = path.display().to_string();
    let ctype = super::content_type_of(key);
    let mut progress = Progress::new(t.progress, &name, None);
    let r = client.retrying(&name, || {
        let f = File::open(path).map_err(|e| ClientError::Final(format!("cannot read: {e}")))?;
        let len = f
            .metadata()
            .map_err(|e| ClientError::Final(format!("cannot read: {e}")))?
            .len();
        progress = Progress::new(t.progress, &name, Some(len));
        // take(len): a file that grows while it is sent must not overrun Content-Length.
        let mut body = Md5Reader {
            inner: Counted {
                inner: Throttled::new(f.take(len), t.limit_rate),
                count: 0,
                progress: &mut progress,
            },
            md5: Md5::new(),
        };
        let etag = client.put_object(bucket, key, ctype, Payload::Reader(&mut body, Some(len)))?;
        check_etag(&etag, body.md5)?;
        Ok(len)
    });
    progress.finish(r.is_ok());
    r
}

fn put_stdin(
    client: &Client,
    t: &TransferConfig,
    bucket: &str,
    key: &str,
) -> Result<u64, ClientError> {
    let mut stdin = io::stdin().lock();
    let mut progress = Progress::new(t.progress, "stdin", None);
    let r = client.retrying("stdin", || {
        let mut body = Md5Reader {
            inner: Counted {
                inner: Throttled::new(&mut stdin, t.limit_rate),
                count: 0,
                progress: &mut progress,
            },
            md5: Md5::new(),
        };
        // No length: sent chunked, so it may be any size.
        match client.put_object(
            bucket,
            key,
            super::content_type_of(key),
            Payload::Reader(&mut body, None),
        ) {
            Ok(etag) => {
                check_etag(&etag, body.md5)?;
                Ok(body.inner.count)
            }
            Err(e) if body.inner.count > 0 => Err(ClientError::Final(format!(
                "{e} (not retried: {} bytes of stdin were already sent and cannot be read again)",
                body.inner.count
            ))),
            Err(e) => Err(e),
        }
    });
    progress.finish(r.is_ok());
    r
}
