//! The TLS interface when dpyfs is built without the `tls` feature
//! (`--no-default-features`): plain HTTP only, the same names, and a clear refusal of
//! every TLS flag and `https://` URL. For builds that must stay small (the rustls stack
//! costs about 0.7 MiB in a static ARM binary; see README, "On ARM boards").

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

const OFF: &str = "this dpyfs was built without TLS (cargo feature `tls`)";

/// `--tls-cert`, `--tls-key` and `--client-ca` (refused when used).
#[derive(Clone, Debug)]
pub struct ServerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// `--ca` and a client certificate (refused when given).
#[derive(Clone, Debug, Default)]
pub struct ClientFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

pub fn set_client(files: ClientFiles) -> Result<(), String> {
    match (files.ca, files.cert, files.key) {
        (None, None, None) => Ok(()),
        _ => Err(OFF.to_string()),
    }
}

/// A connector that refuses every `https://` URL with the reason.
pub struct NoTls;

impl ureq::TlsConnector for NoTls {
    fn connect(
        &self,
        _dns_name: &str,
        _io: Box<dyn ureq::ReadWrite>,
    ) -> Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        Err(io::Error::new(io::ErrorKind::Unsupported, OFF).into())
    }
}

pub fn connector() -> Arc<NoTls> {
    Arc::new(NoTls)
}

pub fn certificate_refused(_t: &ureq::Transport) -> bool {
    false
}

pub fn expiry_warnings(_now: u64) -> Vec<String> {
    Vec::new()
}

/// A listener's TLS settings: never, in this build.
pub fn refuse_server(_files: &ServerFiles) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, OFF)
}

pub mod ca {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    pub fn main(_args: &[String]) -> ExitCode {
        eprintln!("dpyfs ca: {}", crate::tls::off::OFF);
        ExitCode::FAILURE
    }

    /// `dpyfs dev --tls`: refused in this build.
    pub struct DevCerts {
        pub ca: PathBuf,
    }

    impl DevCerts {
        pub fn ensure(_data: &Path) -> Result<DevCerts, String> {
            Err(crate::tls::off::OFF.to_string())
        }

        pub fn store_args(&self) -> Vec<String> {
            Vec::new()
        }

        pub fn director_args(&self) -> Vec<String> {
            Vec::new()
        }
    }
}
