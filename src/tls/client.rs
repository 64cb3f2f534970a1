//! HTTPS for every ureq agent of the process: which CA it trusts and which certificate it
//! presents, set once at start, and a ureq `TlsConnector` over rustls.
//!
//! ureq's own `tls` feature is not used: it would bring the public web's root
//! certificates (webpki-roots) into every binary, while a dpyfs cluster trusts its own CA.

use super::cert;
use super::files::{Stamp, note_expiry, provider, read_certs, read_key, read_roots};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The CA a client trusts when no `--ca` flag is given.
pub const CA_ENV: &str = "DPYFS_CA";
/// Honoured after `DPYFS_CA`: the variable the AWS tools read for the same purpose.
pub const AWS_CA_ENV: &str = "AWS_CA_BUNDLE";

/// What the process's HTTPS connections trust and present.
#[derive(Clone, Debug, Default)]
pub struct ClientFiles {
    /// CA certificates (PEM); None: `DPYFS_CA`, `AWS_CA_BUNDLE`, else the system's bundle.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key, for stores that require one (`--client-ca`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientFiles {
    /// `ca`, or the CA the environment names.
    fn with_env(mut self) -> ClientFiles {
        if self.ca.is_none() {
            self.ca = [CA_ENV, AWS_CA_ENV]
                .iter()
                .filter_map(std::env::var_os)
                .find(|v| !v.is_empty())
                .map(PathBuf::from);
        }
        self
    }

    fn paths(&self) -> Vec<&Path> {
        [&self.ca, &self.cert, &self.key]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect()
    }
}

struct Loaded {
    stamp: Stamp,
    checked: Instant,
    config: Result<Arc<ClientConfig>, String>,
}

/// The process's client settings: a ureq `TlsConnector`.
pub struct ClientTls {
    files: ClientFiles,
    loaded: Mutex<Loaded>,
}

static CLIENT: Mutex<Option<Arc<ClientTls>>> = Mutex::new(None);

/// Sets the process's client files, reading them now so that a wrong path stops the
/// program at start. Agents built afterwards use them (`dpyfs dev --tls` sets its own CA
/// after the command line's).
pub fn set_client(files: ClientFiles) -> Result<(), String> {
    let tls = ClientTls::new(files.with_env());
    if let Err(e) = &tls.loaded.lock().unwrap_or_else(|p| p.into_inner()).config {
        return Err(e.clone());
    }
    *CLIENT.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(tls));
    Ok(())
}

/// The connector every ureq agent takes (`.tls_connector(crate::tls::connector())`): the
/// one `set_client` made last, else one from the environment.
pub fn connector() -> Arc<ClientTls> {
    let mut c = CLIENT.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(c.get_or_insert_with(|| Arc::new(ClientTls::new(ClientFiles::default().with_env()))))
}

impl ClientTls {
    fn new(files: ClientFiles) -> ClientTls {
        let stamp = Stamp::of(&files.paths());
        let config = build(&files);
        ClientTls {
            files,
            loaded: Mutex::new(Loaded {
                stamp,
                checked: Instant::now(),
                config,
            }),
        }
    }

    /// The settings for a new connection, read again when the files changed.
    fn config(&self) -> Result<Arc<ClientConfig>, String> {
        let mut l = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if l.checked.elapsed() >= Duration::from_millis(super::files::RELOAD_CHECK_MS) {
            l.checked = Instant::now();
            let stamp = Stamp::of(&self.files.paths());
            if stamp != l.stamp {
                l.stamp = stamp;
                match build(&self.files) {
                    Ok(c) => l.config = Ok(c),
                    Err(e) if l.config.is_ok() => {
                        log::warn!("TLS: kept the previous client settings: {e}")
                    }
                    Err(e) => l.config = Err(e),
                }
            }
        }
        l.config.clone()
    }
}

fn build(files: &ClientFiles) -> Result<Arc<ClientConfig>, String> {
    let roots = match &files.ca {
        Some(ca) => read_roots(ca)?,
        // No CA given: the system's public CAs, for a director behind a public name.
        None => read_roots(Path::new(super::files::SYSTEM_CA_BUNDLE))
            .unwrap_or_else(|_| rustls::RootCertStore::empty()),
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(c), Some(k)) => {
            let chain = read_certs(c)?;
            let info = cert::parse(&chain[0]).map_err(|e| format!("{}: {e}", c.display()))?;
            note_expiry(c, info.not_after);
            builder
                .with_client_auth_cert(chain, read_key(k)?)
                .map_err(|e| format!("{} and {}: {e}", c.display(), k.display()))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a client certificate needs both its certificate and its key".into()),
    };
    Ok(Arc::new(config))
}

impl ureq::TlsConnector for ClientTls {
    fn connect(
        &self,
        dns_name: &str,
        mut io: Box<dyn ureq::ReadWrite>,
    ) -> Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        let config = self.config().map_err(io::Error::other)?;
        // ureq gives an IPv6 literal in brackets; rustls wants the bare address.
        let host = dns_name.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{host:?} is not a host name for TLS: {e}"),
            )
        })?;
        let mut conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| io::Error::other(format!("TLS with {host}: {e}")))?;
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut io) {
                return Err(handshake_error(host, &self.files, e).into());
            }
        }
        Ok(Box::new(TlsStream(rustls::StreamOwned::new(conn, io))))
    }
}

/// Marks a handshake that failed on a certificate (ours or the server's): retrying it
/// cannot help, unlike a reset or a timeout.
pub const CERTIFICATE_REFUSED: &str = "TLS certificate refused";

/// Whether a ureq transport error is a refused certificate (see `CERTIFICATE_REFUSED`).
pub fn certificate_refused(t: &ureq::Transport) -> bool {
    t.to_string().contains(CERTIFICATE_REFUSED)
}

fn handshake_error(host: &str, files: &ClientFiles, e: io::Error) -> io::Error {
    use rustls::AlertDescription as A;
    let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let (certificate, hint) = match tls {
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        )) => (
            true,
            " (the URL's host must be a name or address the certificate carries: \
             `dpyfs ca show` lists them)"
                .to_string(),
        ),
        Some(rustls::Error::InvalidCertificate(_)) => {
            let trusted = files
                .ca
                .as_ref()
                .map_or("the system's CAs".to_string(), |p| p.display().to_string());
            (
                true,
                format!(
                    " (trusted: {trusted}; give the cluster's CA with --ca FILE or {CA_ENV}=FILE)"
                ),
            )
        }
        Some(rustls::Error::AlertReceived(
            A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::DecryptError
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::AccessDenied,
        )) => (
            true,
            " (the server wants a client certificate of its CA: --tls-cert and --tls-key)"
                .to_string(),
        ),
        _ => (false, String::new()),
    };
    let what = if certificate {
        CERTIFICATE_REFUSED
    } else {
        "TLS handshake failed"
    };
    io::Error::new(e.kind(), format!("{what} by or for {host}: {e}{hint}"))
}

struct TlsStream(rustls::StreamOwned<rustls::ClientConnection, Box<dyn ureq::ReadWrite>>);

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsStream")
    }
}

impl ureq::ReadWrite for TlsStream {
    fn socket(&self) -> Option<&TcpStream> {
        self.0.get_ref().socket()
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
