//! A daemon's TLS settings, read from its files and read again when they change.

use super::cert;
use super::files::{Stamp, note_expiry, provider, read_certs, read_key, read_roots};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `--tls-cert`, `--tls-key` and `--client-ca` of a daemon.
#[derive(Clone, Debug)]
pub struct ServerFiles {
    /// The certificate (PEM), optionally followed by its chain.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, every client must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl ServerFiles {
    fn paths(&self) -> Vec<&std::path::Path> {
        let mut v = vec![self.cert.as_path(), self.key.as_path()];
        v.extend(self.client_ca.as_deref());
        v
    }
}

struct Loaded {
    stamp: Stamp,
    checked: Instant,
    config: Arc<ServerConfig>,
}

/// The rustls settings of one listener, kept current with the files.
pub struct ServerTls {
    files: ServerFiles,
    loaded: Mutex<Loaded>,
}

impl ServerTls {
    /// Reads the files; an error here stops the daemon at start with the reason.
    pub fn load(files: ServerFiles) -> Result<Arc<ServerTls>, String> {
        let stamp = Stamp::of(&files.paths());
        let config = build(&files)?;
        Ok(Arc::new(ServerTls {
            files,
            loaded: Mutex::new(Loaded {
                stamp,
                checked: Instant::now(),
                config,
            }),
        }))
    }

    /// The settings for a new connection. At most every `RELOAD_CHECK_MS` the files are
    /// looked at; when one changed they are read again. New files that do not make a
    /// valid setting (say a key written before its certificate) are logged and the old
    /// settings stay, until the next change.
    pub fn config(&self) -> Arc<ServerConfig> {
        let mut l = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if l.checked.elapsed() < Duration::from_millis(super::files::RELOAD_CHECK_MS) {
            return Arc::clone(&l.config);
        }
        l.checked = Instant::now();
        let stamp = Stamp::of(&self.files.paths());
        if stamp != l.stamp {
            l.stamp = stamp;
            match build(&self.files) {
                Ok(c) => {
                    log::info!(
                        "TLS: read {} again (changed on disk); new connections use it",
                        self.files.cert.display()
                    );
                    l.config = c;
                }
                Err(e) => log::warn!("TLS: kept the previous certificate: {e}"),
            }
        }
        Arc::clone(&l.config)
    }
}

fn build(files: &ServerFiles) -> Result<Arc<ServerConfig>, String> {
    let chain = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let info = cert::parse(&chain[0]).map_err(|e| format!("{}: {e}", files.cert.display()))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let roots = read_roots(ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "{} and {}: {e} (is the key the certificate's own?)",
            files.cert.display(),
            files.key.display()
        )
    })?;
    note_expiry(&files.cert, info.not_after);
    if let Some(w) =
        super::files::expiry_warning(&files.cert, info.not_after, super::files::now_secs())
    {
        log::warn!("TLS: {w}");
    }
    Ok(Arc::new(config))
}
