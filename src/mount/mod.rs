//! `dpyfs mount`: a bucket (or a prefix in it) as a folder, through FUSE (the `fuser`
//! crate: pure Rust, /dev/fuse and the `fusermount3` helper, no libfuse). Every call to
//! the cluster goes through `crate::client` over HTTP; this module knows nothing of the
//! director's insides. `fs` maps file operations to object calls; this file parses the
//! target, mounts, and unmounts on SIGINT/SIGTERM or when `fusermount3 -u` ends the session.
//! `daemon` runs the same in a detached process and returns once the mount is up.

mod daemon;
mod fs;
mod stream;

use crate::client::Client;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Attributes and listings are trusted this long; another client's change shows within it.
pub const CACHE_TTL_DEFAULT_MS: u64 = 1_000;
/// Bytes the spool (files being written, before upload) may hold in all, by default.
pub const SPOOL_MAX_DEFAULT_BYTES: u64 = 2 << 30;
/// Retries of a failed call before the program sees EIO: short, so a program is told of
/// a missing director within seconds (0.5 + 1 + 2 s of back-off), not after minutes.
pub const RETRIES_DEFAULT: u32 = 3;
/// Threads answering the kernel: a slow upload does not stop `ls` in another folder.
pub const THREADS: usize = 4;
/// How often the foreground loop looks for a stop signal or an ended session.
const POLL_MS: u64 = 100;

pub struct MountConfig {
    pub url: String,
    pub bucket: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
    pub mountpoint: PathBuf,
    /// The folder under which this mount makes its private spool folder.
    pub spool_parent: PathBuf,
    pub spool_max_bytes: u64,
    pub cache_ttl: Duration,
    pub retries: u32,
    /// Let other users in (`allow_other`; non-root mounts need `user_allow_other` in
    /// /etc/fuse.conf): a Samba or media server running as its own user needs it.
    pub allow_other: bool,
    /// Detach once mounted (see `daemon`); the command then prints the daemon's PID.
    pub daemon: bool,
    /// Where a daemon's messages go once detached (appended); none: nowhere.
    pub log: Option<PathBuf>,
}

/// `BUCKET[/PREFIX]` to (bucket, prefix ending in `/` or empty).
pub fn parse_target(t: &str) -> Result<(String, String), String> {
    let (bucket, prefix) = t.split_once('/').unwrap_or((t, ""));
    if bucket.is_empty() {
        return Err(format!("{t:?}: give BUCKET or BUCKET/PREFIX"));
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_string(), prefix))
}

/// The default spool parent: `$XDG_RUNTIME_DIR`, else `/tmp`.
pub fn default_spool_parent() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Mounts and serves until a stop signal or an unmount; Err says why it could not mount.
/// With `--daemon`, returns as soon as a detached process has mounted, with its PID.
pub fn run(cfg: MountConfig) -> Result<String, String> {
    let detached = if cfg.daemon {
        match daemon::role() {
            daemon::Role::Parent => return daemon::start(),
            daemon::Role::Child(log) => Some(log),
        }
    } else {
        None
    };
    let mp = &cfg.mountpoint;
    if !mp.is_dir() {
        return Err(format!(
            "{}: not a folder (the mount point must exist)",
            mp.display()
        ));
    }
    if !Path::new("/dev/fuse").exists() {
        return Err(
            "no /dev/fuse: load the module (modprobe fuse); in a container, pass \
                    --device /dev/fuse --cap-add SYS_ADMIN"
                .into(),
        );
    }
    // Absolute: a daemon leaves its working folder, and the unmount names the path again.
    let mp = &mp
        .canonicalize()
        .map_err(|e| format!("{}: {e}", mp.display()))?;
    let log = match (&detached, &cfg.log) {
        (Some(_), Some(p)) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("--log {}: {e}", p.display()))?,
        ),
        _ => None,
    };
    let mut client = Client::new(&cfg.url)?;
    client.retries = cfg.retries;
    client.notice = std::sync::Arc::new(|m| log::warn!("{m}"));
    match client.bucket_exists(&cfg.bucket) {
        Ok(true) => {}
        Ok(false) => return Err(format!("no bucket '{}' at {}", cfg.bucket, cfg.url)),
        Err(e) => return Err(e.to_string()),
    }
    let spool = cfg
        .spool_parent
        .join(format!("dpyfs-spool-{}", std::process::id()));
    std::fs::create_dir_all(&spool)
        .map_err(|e| format!("spool folder {}: {e}", spool.display()))?;
    let spool = spool
        .canonicalize()
        .map_err(|e| format!("spool folder {}: {e}", spool.display()))?;
    let owner = std::fs::metadata(mp).map_err(|e| format!("{}: {e}", mp.display()))?;
    let fs = fs::Fs::new(fs::FsConfig {
        client,
        bucket: cfg.bucket.clone(),
        prefix: cfg.prefix.clone(),
        ttl: cfg.cache_ttl,
        owner: std::os::unix::fs::MetadataExt::uid(&owner),
        group: std::os::unix::fs::MetadataExt::gid(&owner),
        spool: spool.clone(),
        spool_max_bytes: cfg.spool_max_bytes,
    });
    let mut options = fuser::Config::default();
    options.mount_options = vec![
        fuser::MountOption::FSName(format!("dpyfs:{}/{}", cfg.bucket, cfg.prefix)),
        fuser::MountOption::Subtype("dpyfs".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    options.n_threads = Some(THREADS);
    if cfg.allow_other {
        options.acl = fuser::SessionACL::All;
    }
    crate::sys::catch_stop_signals();
    let result = serve(fs, mp, &options, detached.map(|ready| (ready, log)));
    let _ = std::fs::remove_dir_all(&spool);
    result.map(|()| String::new())
}

/// Mounts, then serves until stopped. A daemon (`detached`) tells its parent the mount is
/// up only now, so the parent's exit means the folder is usable.
fn serve(
    fs: fs::Fs,
    mp: &Path,
    options: &fuser::Config,
    detached: Option<(daemon::Ready, Option<std::fs::File>)>,
) -> Result<(), String> {
    let session =
        fuser::spawn_mount(fs, mp, options).map_err(|e| format!("mount {}: {e}", mp.display()))?;
    let how = if detached.is_some() {
        "SIGTERM"
    } else {
        "Ctrl-C"
    };
    eprintln!(
        "dpyfs mount: mounted at {}; {how} or `fusermount3 -u {}` unmounts",
        mp.display(),
        mp.display()
    );
    if let Some((ready, log)) = detached {
        ready.mounted(log.as_ref());
    }
    while !crate::sys::stop_requested() && !session.guard.is_finished() {
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
    let ended = if crate::sys::stop_requested() {
        session.umount_and_join()
    } else {
        session.join()
    };
    ended.map_err(|e| format!("unmount {}: {e}", mp.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(parse_target("b").unwrap(), ("b".into(), "".into()));
        assert_eq!(parse_target("b/").unwrap(), ("b".into(), "".into()));
        assert_eq!(parse_target("b/x/y/").unwrap(), ("b".into(), "x/y/".into()));
        assert!(parse_target("/x").is_err());
        assert!(parse_target("").is_err());
    }
}
