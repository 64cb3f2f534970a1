//! What the TLS code reads from disk and keeps about it: PEM certificates and keys, the
//! stamp that tells a file changed, the provider, and the expiry of every certificate in
//! use.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A certificate that expires within this many days is warned about on the status page,
/// in `dpyfs status` and in the log.
pub const EXPIRY_WARNING_DAYS: u64 = 30;
/// Files are checked for changes at most this often (a `stat` each), not at every
/// connection.
pub const RELOAD_CHECK_MS: u64 = 1_000;
/// Where Debian and most distributions keep the public CAs; used by clients given no CA.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The ring provider. rustls marks it deprecated because ring has no post-quantum key
/// exchange (aws-lc-rs has); the classic X25519 it uses is what every client here speaks.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates in a PEM file, in order (a leaf first, then its chain).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&text)
        .map_err(|e| format!("{}: not a PEM private key: {e}", path.display()))
}

/// The trust anchors in a PEM file of CA certificates.
pub fn read_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(read_certs(path)?);
    if added == 0 {
        return Err(format!(
            "{}: no usable CA certificate in it",
            path.display()
        ));
    }
    Ok(roots)
}

/// What identifies a set of files on disk at one moment: a change of any makes the
/// settings built from them be built again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp(Vec<Option<(SystemTime, u64)>>);

impl Stamp {
    pub(crate) fn of(paths: &[&Path]) -> Stamp {
        Stamp(
            paths
                .iter()
                .map(|p| {
                    let m = std::fs::metadata(p).ok()?;
                    Some((m.modified().ok()?, m.len()))
                })
                .collect(),
        )
    }
}

/// The expiry of every certificate this process serves or presents, by file.
static EXPIRIES: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());

pub(crate) fn note_expiry(path: &Path, not_after: u64) {
    let mut all = EXPIRIES.lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|(p, _)| p != path);
    all.push((path.to_path_buf(), not_after));
}

/// One line for every certificate in use that expires within `EXPIRY_WARNING_DAYS`
/// (or has expired), at unix time `now`.
pub fn expiry_warnings(now: u64) -> Vec<String> {
    let all = EXPIRIES.lock().unwrap_or_else(|p| p.into_inner());
    all.iter()
        .filter_map(|(path, not_after)| expiry_warning(path, *not_after, now))
        .collect()
}

pub(crate) fn expiry_warning(path: &Path, not_after: u64, now: u64) -> Option<String> {
    let date = crate::timefmt::iso8601(not_after.saturating_mul(1000));
    if not_after <= now {
        return Some(format!(
            "certificate {} expired on {date}: renew it with `dpyfs ca issue`",
            path.display()
        ));
    }
    let days = (not_after - now) / 86_400;
    (days < EXPIRY_WARNING_DAYS).then(|| {
        format!(
            "certificate {} expires in {days} days ({date}): renew it with `dpyfs ca issue` \
             (the daemon reads the new files without a restart)",
            path.display()
        )
    })
}

/// Unix seconds now.
pub(crate) fn now_secs() -> u64 {
    crate::timefmt::now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_warnings_start_thirty_days_ahead() {
        let p = Path::new("/etc/dpyfs/store.crt");
        let now = 1_800_000_000;
        assert_eq!(expiry_warning(p, now + 31 * 86_400, now), None);
        let w = expiry_warning(p, now + 29 * 86_400 + 5, now).unwrap();
        assert!(w.contains("expires in 29 days"), "{w}");
        let w = expiry_warning(p, now - 1, now).unwrap();
        assert!(w.contains("expired on"), "{w}");
    }
}
