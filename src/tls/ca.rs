//! `dpyfs ca`: the cluster's own certificate authority, in a folder.
//!
//! - `init DIR` writes `DIR/ca.crt` and `DIR/ca.key` (0600): an ECDSA P-256 CA valid for
//!   `CA_DAYS_DEFAULT` days.
//! - `issue DIR NAME --ip A --dns H ...` writes `DIR/NAME.crt` and `DIR/NAME.key` (0600),
//!   signed by that CA, usable both as a server and as a client certificate. Issuing
//!   again for the same NAME renews the certificate and keeps its key, so a running
//!   daemon picks the new one up without a key/certificate mismatch in between.
//! - `show FILE` prints the names and validity of every certificate in FILE.
//!
//! The CA's own certificate is not parsed back into rcgen (that needs a full X.509
//! parser): the issuer is rebuilt from its common name and key, which gives the same
//! subject bytes and key identifier as `init` wrote.

use super::cert::{self, CertInfo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A CA certificate's lifetime: long, since replacing it means re-issuing every
/// certificate of the cluster.
pub const CA_DAYS_DEFAULT: u64 = 3650;
/// A daemon's or client's certificate lifetime: two years, renewed with `issue` again.
pub const CERT_DAYS_DEFAULT: u64 = 730;
pub const DAYS_MAX: u64 = 36_500;
/// Certificates start this long before now, for boards whose clocks lag a little.
const BACKDATE_SECS: u64 = 3600;
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
const DEFAULT_CA_NAME: &str = "dpyfs cluster CA";

const SYNOPSIS: &str = "Usage: dpyfs ca init DIR [--name CN] [--days N]
       dpyfs ca issue DIR NAME [--ip ADDR]... [--dns HOST]... [--days N]
       dpyfs ca show FILE

The cluster's own certificate authority. 'init' makes DIR/ca.crt and DIR/ca.key (keep
the key on one machine, mode 0600). 'issue' makes DIR/NAME.crt and DIR/NAME.key for a
daemon or a client, valid for the given addresses and host names, as server and client
certificate; issuing again renews it (same key). 'show' prints names and expiry.
--days 0 makes an already expired certificate (to test that it is refused).";

/// `dpyfs ca ...`; `args` after `ca`.
pub fn main(args: &[String]) -> ExitCode {
    let program = "dpyfs ca";
    let mut o = getopts::Options::new();
    o.optopt("", "name", "the CA's common name (init)", "CN");
    o.optopt("", "days", "validity in days", "N");
    o.optmulti(
        "",
        "ip",
        "an IP address the certificate is valid for",
        "ADDR",
    );
    o.optmulti(
        "",
        "dns",
        "a host name the certificate is valid for",
        "HOST",
    );
    crate::cli::standard_flags(&mut o);
    let m = match crate::cli::parse(&o, args, program, SYNOPSIS) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let days = match crate::cli::opt_value(&m, "days", |s| {
        s.parse::<u64>().ok().filter(|d| *d <= DAYS_MAX)
    }) {
        Ok(d) => d,
        Err(e) => return crate::cli::usage_error(program, &e),
    };
    let free: Vec<&str> = m.free.iter().map(String::as_str).collect();
    let result = match free.as_slice() {
        ["init", dir] => init(
            Path::new(dir),
            m.opt_str("name").as_deref().unwrap_or(DEFAULT_CA_NAME),
            days.unwrap_or(CA_DAYS_DEFAULT),
        )
        .map(|()| {
            format!(
                "made {dir}/{CA_CERT_FILE} (give it to every daemon and client) and \
                 {dir}/{CA_KEY_FILE} (keep it here, private)"
            )
        }),
        ["issue", dir, name] => {
            let ips = m.opt_strs("ip");
            let ips = match ips
                .iter()
                .map(|s| s.parse::<IpAddr>().map_err(|_| s.clone()))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(v) => v,
                Err(s) => {
                    return crate::cli::usage_error(
                        program,
                        &format!("--ip {s:?} is not an IP address"),
                    );
                }
            };
            let req = IssueRequest {
                name: name.to_string(),
                ips,
                dns: m.opt_strs("dns"),
                days: days.unwrap_or(CERT_DAYS_DEFAULT),
            };
            issue(Path::new(dir), &req)
                .map(|(c, k)| format!("made {} and {} (mode 0600)", c.display(), k.display()))
        }
        ["show", file] => show(Path::new(file)),
        _ => return crate::cli::usage_error(program, "give init DIR, issue DIR NAME or show FILE"),
    };
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn validity(params: &mut CertificateParams, days: u64) -> Result<(), String> {
    let now = super::files::now_secs();
    let start = now.saturating_sub(BACKDATE_SECS);
    // Zero days: valid for the hour before now only, so already expired.
    let end = if days == 0 {
        now.saturating_sub(1)
    } else {
        now + days * 86_400
    };
    let t = |s: u64| {
        i64::try_from(s)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or_else(|| format!("time {s} out of range"))
    };
    params.not_before = t(start)?;
    params.not_after = t(end)?;
    Ok(())
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    crate::fsutil::write_atomic_mode(path, text.as_bytes(), 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn write_public(path: &Path, text: &str) -> Result<(), String> {
    crate::fsutil::write_atomic(path, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Makes a new CA in `dir`; refuses to replace one.
pub fn init(dir: &Path, common_name: &str, days: u64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key_path = dir.join(CA_KEY_FILE);
    if key_path.exists() {
        return Err(format!(
            "{} exists already: a CA is made once (every certificate it signed depends on it)",
            key_path.display()
        ));
    }
    let key = KeyPair::generate().map_err(|e| format!("key generation: {e}"))?;
    // A few hex digits of the key's hash make each CA's name its own, so a certificate
    // of another cluster is refused as "unknown issuer", not as a bad signature.
    let tag = crate::hash::Hash::of(key.public_key_raw()).to_string();
    let common_name = format!("{common_name} {}", &tag[..8]);
    let mut params = ca_params(&common_name);
    validity(&mut params, days)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("CA certificate: {e}"))?;
    write_private(&key_path, &key.serialize_pem())?;
    write_public(&dir.join(CA_CERT_FILE), &cert.pem())
}

/// What `issue` is asked for.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    pub name: String,
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
    pub days: u64,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "ca"
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Issues (or renews) `dir/NAME.crt` and `dir/NAME.key`; returns their paths.
pub fn issue(dir: &Path, req: &IssueRequest) -> Result<(PathBuf, PathBuf), String> {
    if !valid_name(&req.name) {
        return Err(format!(
            "NAME {:?}: letters, digits, '.', '_' and '-' only (and not 'ca')",
            req.name
        ));
    }
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let ca_certs = super::files::read_certs(&ca_cert_path)?;
    let ca_info =
        cert::parse(&ca_certs[0]).map_err(|e| format!("{}: {e}", ca_cert_path.display()))?;
    if !ca_info.is_ca {
        return Err(format!(
            "{} is not a CA certificate",
            ca_cert_path.display()
        ));
    }
    let ca_key_path = dir.join(CA_KEY_FILE);
    let ca_key_text = std::fs::read_to_string(&ca_key_path).map_err(|e| {
        format!(
            "{}: {e} (issue runs where the CA key is)",
            ca_key_path.display()
        )
    })?;
    let ca_key =
        KeyPair::from_pem(&ca_key_text).map_err(|e| format!("{}: {e}", ca_key_path.display()))?;
    let issuer = Issuer::new(ca_params(&ca_info.common_name), ca_key);

    let mut names: Vec<String> = req.ips.iter().map(IpAddr::to_string).collect();
    names.extend(req.dns.iter().cloned());
    let mut params = CertificateParams::new(names).map_err(|e| format!("a --dns name: {e}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, req.name.as_str());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, req.days)?;

    let cert_path = dir.join(format!("{}.crt", req.name));
    let key_path = dir.join(format!("{}.key", req.name));
    let key = match std::fs::read_to_string(&key_path) {
        Ok(text) => KeyPair::from_pem(&text).map_err(|e| format!("{}: {e}", key_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let k = KeyPair::generate().map_err(|e| format!("key generation: {e}"))?;
            write_private(&key_path, &k.serialize_pem())?;
            k
        }
        Err(e) => return Err(format!("{}: {e}", key_path.display())),
    };
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| format!("certificate: {e}"))?;
    write_public(&cert_path, &cert.pem())?;
    Ok((cert_path, key_path))
}

/// One paragraph per certificate in `file`.
pub fn show(file: &Path) -> Result<String, String> {
    let now = super::files::now_secs();
    let mut out = Vec::new();
    for der in super::files::read_certs(file)? {
        let info = cert::parse(&der).map_err(|e| format!("{}: {e}", file.display()))?;
        out.push(describe(&info, now));
    }
    Ok(out.join("\n"))
}

fn describe(info: &CertInfo, now: u64) -> String {
    let date = |s: u64| crate::timefmt::iso8601(s.saturating_mul(1000));
    let left = if info.not_after <= now {
        "EXPIRED".to_string()
    } else {
        format!("{} days left", (info.not_after - now) / 86_400)
    };
    let mut names: Vec<String> = info.dns_names.clone();
    names.extend(info.ips.iter().map(IpAddr::to_string));
    format!(
        "subject:    {}{}\nissuer:     {}\nnames:      {}\nvalid from: {}\nvalid to:   {} ({left})\n",
        info.common_name,
        if info.is_ca { " (CA)" } else { "" },
        info.issuer_common_name,
        if names.is_empty() {
            "(none: a client certificate only)".to_string()
        } else {
            names.join(", ")
        },
        date(info.not_before),
        date(info.not_after),
    )
}

/// The certificates of `dpyfs dev --tls`, under `data/tls/`: a CA made at the first
/// start and one certificate for `127.0.0.1` and `localhost` that every daemon serves
/// and presents (a local cluster has one host).
#[derive(Clone, Debug)]
pub struct DevCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DevCerts {
    /// Makes what is missing (a second start keeps the CA, so trust set up once stays).
    pub fn ensure(data: &Path) -> Result<DevCerts, String> {
        let dir = data.join("tls");
        if !dir.join(CA_KEY_FILE).exists() {
            init(&dir, "dpyfs dev CA", CA_DAYS_DEFAULT)?;
        }
        let (cert, key) = issue(
            &dir,
            &IssueRequest {
                name: "localhost".into(),
                ips: vec![IpAddr::from([127, 0, 0, 1])],
                dns: vec!["localhost".into()],
                days: CERT_DAYS_DEFAULT,
            },
        )?;
        let dev = DevCerts {
            ca: dir.join(CA_CERT_FILE),
            cert,
            key,
        };
        super::set_client(super::ClientFiles {
            ca: Some(dev.ca.clone()),
            cert: Some(dev.cert.clone()),
            key: Some(dev.key.clone()),
        })?;
        Ok(dev)
    }

    /// A store's flags: HTTPS, and only clients with a certificate of this CA.
    pub fn store_args(&self) -> Vec<String> {
        let mut a = self.serve_args();
        a.extend(["--client-ca".to_string(), self.ca.display().to_string()]);
        a
    }

    /// The director's flags: HTTPS, the CA that signed the stores (its certificate is
    /// also its client certificate).
    pub fn director_args(&self) -> Vec<String> {
        let mut a = self.serve_args();
        a.extend(["--ca".to_string(), self.ca.display().to_string()]);
        a
    }

    fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(crate::fsutil::unique_tmp_name(name));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn issued_certificates_chain_to_the_ca_and_carry_their_names() {
        let dir = tmp("ca-unit");
        init(&dir, "test CA", 10).unwrap();
        assert!(
            init(&dir, "test CA", 10)
                .unwrap_err()
                .contains("exists already")
        );
        let req = IssueRequest {
            name: "store-1".into(),
            ips: vec!["127.0.0.1".parse().unwrap()],
            dns: vec!["nas.local".into()],
            days: 5,
        };
        let (c, k) = issue(&dir, &req).unwrap();
        let info = cert::parse(&super::super::files::read_certs(&c).unwrap()[0]).unwrap();
        assert!(info.issuer_common_name.starts_with("test CA "));
        assert_eq!(info.dns_names, vec!["nas.local".to_string()]);
        assert!(!info.is_ca);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = std::fs::metadata(dir.join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A renewal keeps the key.
        let key_before = std::fs::read(&k).unwrap();
        issue(&dir, &req).unwrap();
        assert_eq!(std::fs::read(&k).unwrap(), key_before);
        // rustls accepts the chain for the names given, and refuses another name.
        let roots = Arc::new(super::super::files::read_roots(&dir.join(CA_CERT_FILE)).unwrap());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots,
            super::super::files::provider(),
        )
        .build()
        .unwrap();
        let leaf = super::super::files::read_certs(&c).unwrap().remove(0);
        let now = rustls::pki_types::UnixTime::now();
        let ok = |name: &str| {
            use rustls::client::danger::ServerCertVerifier;
            let n = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
            verifier
                .verify_server_cert(&leaf, &[], &n, &[], now)
                .is_ok()
        };
        assert!(ok("nas.local"));
        assert!(ok("127.0.0.1"));
        assert!(!ok("other.local"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_names_are_refused() {
        for n in ["", "ca", "../x", "a b", ".hidden"] {
            assert!(!valid_name(n), "{n:?}");
        }
        assert!(valid_name("store-1.nas"));
    }

    use std::sync::Arc;
}
