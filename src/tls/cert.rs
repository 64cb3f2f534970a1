//! What a certificate says about itself: its common name, its host names and addresses,
//! its validity and whether it is a CA. Read straight from the DER (RFC 5280 §4.1), as far
//! as `dpyfs ca show`, the expiry warnings and `dpyfs ca issue` need; the signature is
//! checked by rustls, never here. A general X.509 parser would add more code to every
//! daemon than this whole module.

use std::net::IpAddr;

/// What `parse` found in a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's common name (empty when there is none).
    pub common_name: String,
    /// The issuer's common name.
    pub issuer_common_name: String,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// Validity, unix seconds.
    pub not_before: u64,
    pub not_after: u64,
    pub is_ca: bool,
}

const TAG_BOOLEAN: u8 = 0x01;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
/// `[0] EXPLICIT` (the version) and `[3] EXPLICIT` (the extensions) of a TBSCertificate.
const TAG_VERSION: u8 = 0xa0;
const TAG_EXTENSIONS: u8 = 0xa3;
/// GeneralName choices of subjectAltName: dNSName `[2]` and iPAddress `[7]`.
const TAG_SAN_DNS: u8 = 0x82;
const TAG_SAN_IP: u8 = 0x87;

/// 2.5.4.3 (id-at-commonName), 2.5.29.17 (subjectAltName), 2.5.29.19 (basicConstraints).
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

/// A DER reader over a byte slice: each call takes one element off the front.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next element: its tag and contents.
    fn next(&mut self) -> Result<(u8, &'a [u8]), String> {
        let bad = || "a certificate field is cut short".to_string();
        let (&tag, rest) = self.0.split_first().ok_or_else(bad)?;
        let (&first, rest) = rest.split_first().ok_or_else(bad)?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err("a certificate field has a bad length".into());
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(bad());
        }
        let (contents, rest) = rest.split_at(len);
        self.0 = rest;
        Ok((tag, contents))
    }

    /// The next element, which must have tag `want`.
    fn expect(&mut self, want: u8, what: &str) -> Result<&'a [u8], String> {
        match self.next()? {
            (tag, c) if tag == want => Ok(c),
            (tag, _) => Err(format!(
                "not a certificate: {what} has tag {tag:#04x}, not {want:#04x}"
            )),
        }
    }
}

/// Reads the fields of `CertInfo` from a DER certificate.
pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
    let mut outer = Der(der);
    let mut cert = Der(outer.expect(TAG_SEQUENCE, "the certificate")?);
    let mut tbs = Der(cert.expect(TAG_SEQUENCE, "the signed part")?);
    if tbs.peek_tag() == Some(TAG_VERSION) {
        tbs.next()?;
    }
    tbs.next()?; // serial number
    tbs.next()?; // signature algorithm
    let issuer = tbs.expect(TAG_SEQUENCE, "the issuer")?;
    let mut validity = Der(tbs.expect(TAG_SEQUENCE, "the validity")?);
    let not_before = time(validity.next()?)?;
    let not_after = time(validity.next()?)?;
    let subject = tbs.expect(TAG_SEQUENCE, "the subject")?;
    tbs.next()?; // public key
    let mut info = CertInfo {
        common_name: common_name(subject)?,
        issuer_common_name: common_name(issuer)?,
        dns_names: Vec::new(),
        ips: Vec::new(),
        not_before,
        not_after,
        is_ca: false,
    };
    while !tbs.is_empty() {
        let (tag, contents) = tbs.next()?;
        if tag == TAG_EXTENSIONS {
            extensions(contents, &mut info)?;
        }
    }
    Ok(info)
}

fn extensions(contents: &[u8], info: &mut CertInfo) -> Result<(), String> {
    let mut list = Der(Der(contents).expect(TAG_SEQUENCE, "the extensions")?);
    while !list.is_empty() {
        let mut ext = Der(list.expect(TAG_SEQUENCE, "an extension")?);
        let oid = ext.expect(TAG_OID, "an extension's name")?;
        if ext.peek_tag() == Some(TAG_BOOLEAN) {
            ext.next()?;
        }
        let value = ext.expect(TAG_OCTET_STRING, "an extension's value")?;
        if oid == OID_SUBJECT_ALT_NAME {
            let mut names = Der(Der(value).expect(TAG_SEQUENCE, "the alternative names")?);
            while !names.is_empty() {
                match names.next()? {
                    (TAG_SAN_DNS, n) => info.dns_names.push(String::from_utf8_lossy(n).into()),
                    (TAG_SAN_IP, a) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(a) {
                            info.ips.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(a) {
                            info.ips.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        } else if oid == OID_BASIC_CONSTRAINTS {
            let mut bc = Der(Der(value).expect(TAG_SEQUENCE, "the basic constraints")?);
            if bc.peek_tag() == Some(TAG_BOOLEAN) {
                info.is_ca = bc.next()?.1.first().is_some_and(|b| *b != 0);
            }
        }
    }
    Ok(())
}

/// The first common name in a Name (a SEQUENCE of SETs of attribute SEQUENCEs).
fn common_name(name: &[u8]) -> Result<String, String> {
    let mut rdns = Der(name);
    while !rdns.is_empty() {
        let mut set = Der(rdns.expect(TAG_SET, "a name part")?);
        while !set.is_empty() {
            let mut attr = Der(set.expect(TAG_SEQUENCE, "a name attribute")?);
            let oid = attr.expect(TAG_OID, "a name attribute's type")?;
            let (_, value) = attr.next()?;
            if oid == OID_COMMON_NAME {
                return Ok(String::from_utf8_lossy(value).into());
            }
        }
    }
    Ok(String::new())
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) to
/// unix seconds.
fn time((tag, v): (u8, &[u8])) -> Result<u64, String> {
    let s = std::str::from_utf8(v).map_err(|_| "a certificate time is not text".to_string())?;
    let full = match tag {
        TAG_UTC_TIME if s.len() == 13 => {
            let century = if s < "50" { "20" } else { "19" };
            format!("{century}{s}")
        }
        TAG_GENERALIZED_TIME if s.len() == 15 => s.to_string(),
        _ => return Err(format!("unsupported certificate time {s:?}")),
    };
    // As `20260101T000000Z`, the form the S3 date parser reads.
    let amz = format!("{}T{}", &full[..8], &full[8..]);
    crate::timefmt::parse_amz_date(&amz)
        .map(|ms| ms / 1000)
        .ok_or_else(|| format!("unreadable certificate time {s:?}"))
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use crate::tls::cert::*;

    #[test]
    fn reads_names_validity_and_ca_flag() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p =
            rcgen::CertificateParams::new(vec!["nas.local".to_string(), "10.0.0.7".to_string()])
                .unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "store-1");
        p.not_before = rcgen::date_time_ymd(2026, 1, 2);
        p.not_after = rcgen::date_time_ymd(2051, 3, 4);
        let cert = p.self_signed(&key).unwrap();
        let info = parse(cert.der()).unwrap();
        assert_eq!(info.common_name, "store-1");
        assert_eq!(info.issuer_common_name, "store-1");
        assert_eq!(info.dns_names, vec!["nas.local".to_string()]);
        assert_eq!(info.ips, vec!["10.0.0.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(info.not_before, 1_767_312_000);
        assert_eq!(
            crate::timefmt::iso8601(info.not_after * 1000),
            "2051-03-04T00:00:00.000Z"
        );
        assert!(!info.is_ca);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x30\x01",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
