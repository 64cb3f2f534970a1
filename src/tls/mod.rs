//! HTTPS with the cluster's own certificate authority.
//!
//! - `ca`: `dpyfs ca init|issue|show`, certificates made with rcgen.
//! - `cert`: names and validity read from a certificate (for `ca show` and warnings).
//! - Serving: [`ServerFiles`] (`--tls-cert`, `--tls-key`, `--client-ca`) become a
//!   [`ServerTls`], which the HTTP edge asks for its rustls settings at each new
//!   connection; files changed on disk are read again (rotation without a restart).
//! - Calling: every ureq agent takes [`connector()`]; the process's CA and client
//!   certificate are set once at start with [`set_client`] (`--ca`, `DPYFS_CA`,
//!   `AWS_CA_BUNDLE`, and a daemon's own certificate as its client certificate).
//!
//! rustls runs on the *ring* provider only: ring's C and assembly build with the same
//! cross gcc as the rest for armv7 and aarch64, where aws-lc-rs would need cmake and
//! clang (docs/ARCHITECTURE.md).
//!
//! The cargo feature `tls` (on by default; the ARM release has it) brings all this;
//! without it `off.rs` keeps the same names and refuses every TLS flag.

#[cfg(feature = "tls")]
pub mod ca;
pub mod cert;
#[cfg(feature = "tls")]
mod client;
#[cfg(feature = "tls")]
mod files;
#[cfg(not(feature = "tls"))]
mod off;
#[cfg(feature = "tls")]
mod server;

#[cfg(feature = "tls")]
pub use client::{ClientFiles, certificate_refused, connector, set_client};
#[cfg(feature = "tls")]
pub use files::{
    EXPIRY_WARNING_DAYS, RELOAD_CHECK_MS, SYSTEM_CA_BUNDLE, expiry_warnings, read_certs, read_key,
    read_roots,
};
#[cfg(not(feature = "tls"))]
pub use off::{
    ClientFiles, ServerFiles, ca, certificate_refused, connector, expiry_warnings, refuse_server,
    set_client,
};
#[cfg(feature = "tls")]
pub use server::{ServerFiles, ServerTls};

/// What follows `http://` or `https://` in `url`; None for any other scheme.
pub fn strip_scheme(url: &str) -> Option<&str> {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
}
