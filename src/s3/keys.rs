//! The keys file: loading and validating it, re-reading it when it changes on disk
//! (checked at most once a second, and at once when an unknown key shows up, so
//! `dpyfs admin key create` needs no restart), atomic 0600 writes under a lock, and key
//! generation. The director's request verification (`director::s3::auth`) and
//! `dpyfs admin key` share it. The format is in docs/FORMAT.md. Secrets never reach a log
//! line or an error message.

use crate::s3::names::valid_bucket_name;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Version of the keys file format.
pub const KEYS_FORMAT: u32 = 1;
/// Largest keys file read (a key is about 150 bytes: thousands fit).
pub const KEYS_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// How often the keys file is checked for changes, at most.
pub const KEYS_RECHECK_MS: u64 = 1000;
/// Default keys file of `dpyfs admin key` (`--keys` or `DPYFS_KEYS` override it).
pub const KEYS_PATH_DEFAULT: &str = "/etc/dpyfs/keys.json";
/// Prefix of generated access key ids.
pub const ACCESS_KEY_PREFIX: &str = "DPYFS";

/// One key as the keys file holds it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyEntry {
    pub access_key: String,
    pub secret_key: String,
    /// The only buckets this key may touch (it creates no others and owns none); absent:
    /// the buckets it creates, and every bucket if it is an admin key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<String>>,
    /// An admin key sees every bucket and may use the cluster routes. Absent in keys
    /// written before buckets had owners: then a key without a bucket list is an admin
    /// key, as it was (see `is_admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
    /// Unix seconds when it was made (informational).
    #[serde(default)]
    pub created: u64,
}

impl KeyEntry {
    /// Whether the key sees every bucket and may use the cluster routes.
    pub fn is_admin(&self) -> bool {
        self.admin.unwrap_or(self.buckets.is_none())
    }
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyEntry({}, <secret>, {:?})",
            self.access_key, self.buckets
        )
    }
}

/// The keys file: `{"format": 1, "keys": [...]}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeysFile {
    pub format: u32,
    pub keys: Vec<KeyEntry>,
}

impl Default for KeysFile {
    fn default() -> Self {
        KeysFile {
            format: KEYS_FORMAT,
            keys: Vec::new(),
        }
    }
}

fn valid_access_key(k: &str) -> bool {
    (3..=128).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl KeysFile {
    /// Checks what the director relies on; the messages name keys, never secrets.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.format != KEYS_FORMAT {
            return Err(format!(
                "format {} is not {KEYS_FORMAT}, the only one this build knows",
                self.format
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for k in &self.keys {
            if !valid_access_key(&k.access_key) {
                return Err(format!(
                    "access key id {:?} is not 3-128 letters, digits, '-', '_' or '.'",
                    k.access_key
                ));
            }
            if !seen.insert(&k.access_key) {
                return Err(format!("access key id {} appears twice", k.access_key));
            }
            if k.secret_key.is_empty() || k.secret_key.len() > 256 {
                return Err(format!(
                    "the secret of {} must be 1-256 characters",
                    k.access_key
                ));
            }
            if k.admin == Some(true) && k.buckets.is_some() {
                return Err(format!(
                    "key {} is an admin key with a bucket list: an admin key sees every bucket",
                    k.access_key
                ));
            }
            for b in k.buckets.iter().flatten() {
                if !valid_bucket_name(b) {
                    return Err(format!(
                        "key {}: {b:?} is not a valid bucket name",
                        k.access_key
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads and validates a keys file.
    pub fn load(path: &Path) -> std::result::Result<KeysFile, String> {
        let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut text = String::new();
        f.take(KEYS_FILE_BYTES_MAX + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if text.len() as u64 > KEYS_FILE_BYTES_MAX {
            return Err(format!(
                "{}: larger than {KEYS_FILE_BYTES_MAX} bytes",
                path.display()
            ));
        }
        // serde_json's messages give a line and column, never the text around them.
        let kf: KeysFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a keys file: {e}", path.display()))?;
        kf.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(kf)
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self, path: &Path) -> std::result::Result<(), String> {
        self.validate()?;
        let mut text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        text.push('\n');
        crate::fsutil::write_atomic_mode(path, text.as_bytes(), 0o600)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// `n` characters from `alphabet`, from /dev/urandom (rejection sampling: no bias).
fn random_string(alphabet: &[u8], n: usize) -> std::result::Result<String, String> {
    assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    let limit = 256 - 256 % alphabet.len();
    let mut f = std::fs::File::open("/dev/urandom")
        .map_err(|e| format!("cannot open /dev/urandom: {e}"))?;
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        f.read_exact(&mut buf)
            .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < n {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

/// A new key: `DPYFS` + 15 capitals and digits (20 characters, as AWS ids), and a
/// 40-character secret of letters and digits (about 238 bits).
pub fn generate_key(
    buckets: Option<Vec<String>>,
    admin: bool,
) -> std::result::Result<KeyEntry, String> {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    Ok(KeyEntry {
        access_key: format!("{ACCESS_KEY_PREFIX}{}", random_string(UPPER, 15)?),
        secret_key: random_string(ALNUM, 40)?,
        buckets,
        admin: Some(admin),
        created: crate::timefmt::now_ms() / 1000,
    })
}

/// Runs a read-modify-write of the keys file under a lock file next to it (`FILE.lock`),
/// so two `dpyfs admin key` commands at once do not lose a key.
pub fn update_keys_file<T>(
    path: &Path,
    f: impl FnOnce(&mut KeysFile) -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::sys::try_lock_exclusive(&lock).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "{} is held by another dpyfs command",
                lock_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut kf = if path.exists() {
        KeysFile::load(path)?
    } else {
        KeysFile::default()
    };
    let out = f(&mut kf)?;
    kf.save(path)?;
    Ok(out)
}

/// What identifies one version of the keys file on disk. A rewrite by rename always
/// changes the inode, so two writes within one mtime tick are still told apart.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    ino: u64,
    dev: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        mtime: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
        dev: m.dev(),
    })
}

struct KeysState {
    keys: HashMap<String, KeyEntry>,
    stamp: Option<Stamp>,
    checked: Instant,
}

/// The keys the director knows, re-read from their file when it changes.
pub struct Keys {
    path: PathBuf,
    state: Mutex<KeysState>,
}

impl Keys {
    /// Loads the keys file; an unreadable or invalid file is an error (the director does
    /// not start).
    pub fn load(path: &Path) -> std::result::Result<Keys, String> {
        let st = stamp(path);
        let kf = KeysFile::load(path)?;
        Ok(Keys {
            path: path.to_path_buf(),
            state: Mutex::new(KeysState {
                keys: by_id(kf),
                stamp: st,
                checked: Instant::now(),
            }),
        })
    }

    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeysState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key with this id. The file is checked for changes when the last check is older
    /// than `KEYS_RECHECK_MS`, or at once when the id is unknown (a key just created).
    pub fn get(&self, access_key: &str) -> Option<KeyEntry> {
        let mut st = self.lock();
        let stale = st.checked.elapsed() >= Duration::from_millis(KEYS_RECHECK_MS);
        if stale || !st.keys.contains_key(access_key) {
            self.refresh(&mut st);
        }
        st.keys.get(access_key).cloned()
    }

    fn refresh(&self, st: &mut KeysState) {
        st.checked = Instant::now();
        let now = stamp(&self.path);
        if now == st.stamp {
            return;
        }
        // A file that is missing or bad keeps the last good keys: a half-edited file must
        // not open the director, nor lock every client out.
        match KeysFile::load(&self.path) {
            Ok(kf) => {
                st.keys = by_id(kf);
                st.stamp = now;
                log::info!(
                    "keys file {} re-read: {} key(s)",
                    self.path.display(),
                    st.keys.len()
                );
            }
            Err(e) => {
                st.stamp = now;
                log::warn!("keeping the previous keys: {e}");
            }
        }
    }
}

fn by_id(kf: KeysFile) -> HashMap<String, KeyEntry> {
    kf.keys
        .into_iter()
        .map(|k| (k.access_key.clone(), k))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn keys_file(dir: &Path, keys: Vec<KeyEntry>) -> PathBuf {
        let p = dir.join("keys.json");
        KeysFile {
            format: KEYS_FORMAT,
            keys,
        }
        .save(&p)
        .unwrap();
        p
    }

    pub(crate) fn entry(id: &str, secret: &str, buckets: Option<&[&str]>) -> KeyEntry {
        KeyEntry {
            access_key: id.into(),
            secret_key: secret.into(),
            buckets: buckets.map(|b| b.iter().map(|s| s.to_string()).collect()),
            admin: None,
            created: 0,
        }
    }

    pub(crate) fn scratch(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(crate::fsutil::unique_tmp_name(&format!("dpyfs-auth-{tag}")));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_keys_file_is_reread_when_it_changes() {
        let d = scratch("reload");
        let p = keys_file(&d, vec![entry("FIRSTKEY", "s1", None)]);
        let keys = Keys::load(&p).unwrap();
        assert!(keys.get("FIRSTKEY").is_some());
        // A new key is seen at once (an unknown id forces a check).
        update_keys_file(&p, |kf| {
            kf.keys.push(entry("SECONDKEY", "s2", None));
            Ok(())
        })
        .unwrap();
        assert!(keys.get("SECONDKEY").is_some());
        // A broken file keeps the last good keys.
        std::fs::write(&p, "{ not json").unwrap();
        assert!(keys.get("THIRDKEY").is_none());
        assert!(keys.get("SECONDKEY").is_some());
        // A deleted key goes once the file is checked again.
        keys_file(&d, vec![entry("FIRSTKEY", "s1", None)]);
        keys.lock().checked -= Duration::from_millis(KEYS_RECHECK_MS);
        assert!(keys.get("SECONDKEY").is_none());
        assert!(keys.get("FIRSTKEY").is_some());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn keys_files_are_validated_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = scratch("validate");
        let p = keys_file(&d, vec![entry("GOODKEY", "s", Some(&["photos"]))]);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"buckets\""), "{text}");
        for bad in [
            r#"{"format": 2, "keys": []}"#,
            r#"{"format": 1, "keys": [{"access_key": "a/b", "secret_key": "s"}]}"#,
            r#"{"format": 1, "keys": [{"access_key": "AKEY", "secret_key": ""}]}"#,
            r#"{"format": 1, "keys": [{"access_key": "AKEY", "secret_key": "s", "buckets": ["Bad_Name"]}]}"#,
            r#"{"format": 1, "keys": [{"access_key": "AKEY", "secret_key": "s"}, {"access_key": "AKEY", "secret_key": "t"}]}"#,
        ] {
            std::fs::write(&p, bad).unwrap();
            let e = KeysFile::load(&p).unwrap_err();
            assert!(!e.contains("\"s\""), "{e}");
        }
        std::fs::write(&p, r#"{"format": 1, "keys": [{"access_key": "AKEY", "secret_key": "supersecret", "extra": 1}]}"#).unwrap();
        let e = format!("{:?}", KeysFile::load(&p).unwrap());
        assert!(!e.contains("supersecret"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn generated_keys_look_like_aws_keys() {
        let k = generate_key(None, true).unwrap();
        assert_eq!(k.access_key.len(), 20);
        assert!(k.access_key.starts_with(ACCESS_KEY_PREFIX));
        assert!(
            k.access_key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_eq!(k.secret_key.len(), 40);
        assert!(k.secret_key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(generate_key(None, true).unwrap().secret_key, k.secret_key);
    }
}
