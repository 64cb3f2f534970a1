//! The DNS message format (RFC 1035 section 4), as far as an A/AAAA lookup needs it: one
//! question out, the answer section back. Everything here is a pure function of bytes, so
//! the hostile cases (short packets, pointer loops, wrong ids) are tested without a network.
//!
//! Nothing read from the network is trusted: every read is bounds-checked, a name may follow
//! at most `POINTER_JUMPS_MAX` compression pointers and a CNAME chain at most
//! `CNAME_CHAIN_MAX` links, and a reply is used only when its id and question are ours.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// The top bit of a question's class asks an mDNS responder for a unicast reply ("QU",
/// RFC 6762 section 5.4); in an answer's class the same bit is mDNS's cache-flush flag.
pub const CLASS_TOP_BIT: u16 = 0x8000;

/// A domain name is at most 255 bytes on the wire, hence 253 characters as text.
pub const NAME_CHARS_MAX: usize = 253;
const LABEL_BYTES_MAX: usize = 63;
/// Compression pointers a name may follow; real names need one or two, a loop never ends.
pub const POINTER_JUMPS_MAX: usize = 16;
/// CNAME links followed from the question to the addresses.
pub const CNAME_CHAIN_MAX: usize = 8;
/// Resource records looked at in one reply; a UDP reply this code reads holds far fewer.
const RECORDS_MAX: usize = 64;
const HEADER_BYTES: usize = 12;

/// Response codes that mean something to the caller.
pub const RCODE_NXDOMAIN: u8 = 3;

#[derive(Debug, PartialEq, Eq)]
pub enum WireError {
    /// The name cannot be asked for (empty label, label over 63 bytes, over 253 characters).
    BadName,
    /// The reply is not an answer to our question (other id, other question, not a reply).
    NotOurs,
    /// The reply is cut short or malformed (pointer loop, record past the end).
    Malformed,
}

/// What a reply says about the question.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub rcode: u8,
    /// TC: the server had more to say than fits in UDP.
    pub truncated: bool,
    /// Addresses of the asked name (after CNAMEs), each with its time to live in seconds.
    pub addrs: Vec<(IpAddr, u32)>,
}

/// A query for `name` (without a trailing dot) of type `qtype`. `recursion` sets RD (unicast
/// DNS); `unicast_reply` sets the QU bit (mDNS one-shot queries).
pub fn query(
    id: u16,
    name: &str,
    qtype: u16,
    recursion: bool,
    unicast_reply: bool,
) -> Result<Vec<u8>, WireError> {
    let mut m = Vec::with_capacity(HEADER_BYTES + name.len() + 6);
    m.extend_from_slice(&id.to_be_bytes());
    let flags: u16 = if recursion { 0x0100 } else { 0 };
    m.extend_from_slice(&flags.to_be_bytes());
    // QDCOUNT 1, ANCOUNT, NSCOUNT, ARCOUNT 0.
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(name, &mut m)?;
    m.extend_from_slice(&qtype.to_be_bytes());
    let class = if unicast_reply {
        CLASS_IN | CLASS_TOP_BIT
    } else {
        CLASS_IN
    };
    m.extend_from_slice(&class.to_be_bytes());
    Ok(m)
}

/// True when `name` can be asked for: dot-separated labels of 1 to 63 letters, digits, '-'
/// or '_', at most 253 characters.
pub fn valid_name(name: &str) -> bool {
    encode_name(name, &mut Vec::new()).is_ok()
}

fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), WireError> {
    if name.is_empty() || name.len() > NAME_CHARS_MAX {
        return Err(WireError::BadName);
    }
    for label in name.split('.') {
        let usual = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if label.is_empty() || label.len() > LABEL_BYTES_MAX || !label.bytes().all(usual) {
            return Err(WireError::BadName);
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// Reads the reply `msg` to the query (`id`, `name`, `qtype`): checks that it answers that
/// question and collects the addresses of `name`, following CNAMEs within the reply.
pub fn parse_reply(msg: &[u8], id: u16, name: &str, qtype: u16) -> Result<Reply, WireError> {
    let head = msg.get(..HEADER_BYTES).ok_or(WireError::Malformed)?;
    let word = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
    let flags = word(2);
    if word(0) != id || flags & 0x8000 == 0 {
        return Err(WireError::NotOurs);
    }
    // The question must be echoed: a reply to someone else's query is not ours.
    if word(4) != 1 {
        return Err(WireError::NotOurs);
    }
    let (qname, mut pos) = read_name(msg, HEADER_BYTES)?;
    let qtail = msg.get(pos..pos + 4).ok_or(WireError::Malformed)?;
    pos += 4;
    let (qt, qc) = (
        u16::from_be_bytes([qtail[0], qtail[1]]),
        u16::from_be_bytes([qtail[2], qtail[3]]),
    );
    if !qname.eq_ignore_ascii_case(name) || qt != qtype || qc & !CLASS_TOP_BIT != CLASS_IN {
        return Err(WireError::NotOurs);
    }
    let records = usize::from(word(6)).min(RECORDS_MAX);
    let mut rrs = Vec::with_capacity(records);
    for _ in 0..records {
        let (owner, next) = read_name(msg, pos)?;
        let fixed = msg.get(next..next + 10).ok_or(WireError::Malformed)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]) & !CLASS_TOP_BIT;
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let start = next + 10;
        let data = msg.get(start..start + len).ok_or(WireError::Malformed)?;
        pos = start + len;
        if class != CLASS_IN {
            continue;
        }
        let value = match (rtype, len) {
            (TYPE_A, 4) => Record::Addr(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))),
            (TYPE_AAAA, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(data);
                Record::Addr(IpAddr::V6(Ipv6Addr::from(b)))
            }
            // The target may be compressed, so it is read from the whole message.
            (TYPE_CNAME, _) => Record::Alias(read_name(msg, start)?.0),
            _ => continue,
        };
        rrs.push((owner, ttl, value));
    }
    Ok(Reply {
        rcode: (flags & 0x000f) as u8,
        truncated: flags & 0x0200 != 0,
        addrs: addresses_of(name, qtype, &rrs),
    })
}

enum Record {
    Addr(IpAddr),
    Alias(String),
}

/// The addresses of `name`: follows CNAME records from the name (at most `CNAME_CHAIN_MAX`
/// links, so a loop ends) and keeps the records of the asked type owned by the last name.
fn addresses_of(name: &str, qtype: u16, rrs: &[(String, u32, Record)]) -> Vec<(IpAddr, u32)> {
    let mut target = name.to_string();
    let mut ttl_cap = u32::MAX;
    for _ in 0..CNAME_CHAIN_MAX {
        let alias = rrs.iter().find_map(|(owner, ttl, r)| match r {
            Record::Alias(to) if owner.eq_ignore_ascii_case(&target) => Some((to, *ttl)),
            _ => None,
        });
        match alias {
            Some((to, ttl)) => {
                target = to.clone();
                ttl_cap = ttl_cap.min(ttl);
            }
            None => break,
        }
    }
    rrs.iter()
        .filter_map(|(owner, ttl, r)| match r {
            Record::Addr(ip)
                if owner.eq_ignore_ascii_case(&target) && ip.is_ipv4() == (qtype == TYPE_A) =>
            {
                Some((*ip, (*ttl).min(ttl_cap)))
            }
            _ => None,
        })
        .collect()
}

/// Reads the name at `pos`; returns it (labels joined by dots, no trailing dot, "" for the
/// root) and the position after it in the record (after the first pointer if any).
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), WireError> {
    let mut name = String::new();
    let mut after = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos).ok_or(WireError::Malformed)?;
        match len & 0xc0 {
            0x00 if len == 0 => break,
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(WireError::Malformed)?;
                if !name.is_empty() {
                    name.push('.');
                }
                // Names are compared as ASCII; any other byte cannot match ours.
                name.extend(label.iter().map(|&b| {
                    if b.is_ascii_graphic() {
                        char::from(b)
                    } else {
                        '?'
                    }
                }));
                if name.len() > NAME_CHARS_MAX {
                    return Err(WireError::Malformed);
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(WireError::Malformed)?;
                jumps += 1;
                if jumps > POINTER_JUMPS_MAX {
                    return Err(WireError::Malformed);
                }
                after.get_or_insert(pos + 2);
                pos = usize::from(u16::from_be_bytes([len & 0x3f, low]));
            }
            // 0x40 and 0x80 are the obsolete extended label types.
            _ => return Err(WireError::Malformed),
        }
    }
    Ok((name, after.unwrap_or(pos + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply header: id, flags, counts.
    fn header(id: u16, flags: u16, qd: u16, an: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&qd.to_be_bytes());
        m.extend_from_slice(&an.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m
    }

    fn question(m: &mut Vec<u8>, name: &str, qtype: u16) {
        encode_name(name, m).unwrap();
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
    }

    /// A record whose owner is the compression pointer `owner` (an offset), with `data`.
    fn record(m: &mut Vec<u8>, owner: u16, rtype: u16, ttl: u32, data: &[u8]) {
        m.extend_from_slice(&(0xc000 | owner).to_be_bytes());
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(data);
    }

    #[test]
    fn a_query_is_encoded_as_rfc_1035_says() {
        let q = query(0x1234, "pi-store1.home", TYPE_A, true, false).unwrap();
        let mut want = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x09pi-store1\x04home\x00\x00\x01\x00\x01");
        assert_eq!(q, want);
        let q = query(7, "nas.local", TYPE_AAAA, false, true).unwrap();
        assert_eq!(&q[2..4], &[0, 0]);
        assert_eq!(&q[q.len() - 4..], &[0x00, 0x1c, 0x80, 0x01]);
    }

    #[test]
    fn names_that_cannot_be_asked_are_refused() {
        for bad in [
            "",
            "a..b",
            ".a",
            "a b",
            "[fe80::1%eth0]",
            "é.home",
            &"x".repeat(64),
            &format!("{}.b", "a.".repeat(127)),
        ] {
            assert_eq!(
                query(1, bad, TYPE_A, true, false),
                Err(WireError::BadName),
                "{bad:?}"
            );
        }
        assert!(query(1, &"x".repeat(63), TYPE_A, true, false).is_ok());
    }

    #[test]
    fn answers_with_compression_pointers_are_read() {
        let mut m = header(9, 0x8180, 1, 2);
        question(&mut m, "pi-store1.home", TYPE_A);
        record(&mut m, 12, TYPE_A, 300, &[192, 168, 1, 20]);
        record(&mut m, 12, TYPE_A, 60, &[192, 168, 1, 21]);
        let r = parse_reply(&m, 9, "PI-STORE1.home", TYPE_A).unwrap();
        assert_eq!(r.rcode, 0);
        assert!(!r.truncated);
        let want: Vec<(IpAddr, u32)> = vec![
            ([192, 168, 1, 20].into(), 300),
            ([192, 168, 1, 21].into(), 60),
        ];
        assert_eq!(r.addrs, want);
    }

    #[test]
    fn cname_chains_are_followed_and_foreign_records_ignored() {
        // pi.home CNAME board.home (a label, then a pointer to "home"); board.home A;
        // other.home A (not ours).
        let mut m = header(1, 0x8180, 1, 3);
        question(&mut m, "pi.home", TYPE_A);
        // "home" of the question sits after "\x02pi" at 12 + 3.
        let cname = b"\x05board\xc0\x0f";
        let cname_at = m.len() + 12;
        record(&mut m, 12, TYPE_CNAME, 30, cname);
        record(&mut m, cname_at as u16, TYPE_A, 300, &[10, 0, 0, 5]);
        m.extend_from_slice(b"\x05other\xc0\x0f");
        m.extend_from_slice(&TYPE_A.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m.extend_from_slice(&100u32.to_be_bytes());
        m.extend_from_slice(&[0, 4, 10, 0, 0, 6]);
        let r = parse_reply(&m, 1, "pi.home", TYPE_A).unwrap();
        // The TTL is the shortest along the chain.
        assert_eq!(r.addrs, vec![(IpAddr::from([10, 0, 0, 5]), 30)]);
        // AAAA records in an A reply, or A records in an AAAA reply, are not taken.
        let mut m = header(2, 0x8180, 1, 2);
        question(&mut m, "v6.home", TYPE_AAAA);
        record(&mut m, 12, TYPE_A, 5, &[1, 2, 3, 4]);
        let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
        record(&mut m, 12, TYPE_AAAA, 5, &v6.octets());
        let r = parse_reply(&m, 2, "v6.home", TYPE_AAAA).unwrap();
        assert_eq!(r.addrs, vec![(IpAddr::V6(v6), 5)]);
    }

    #[test]
    fn replies_to_another_question_are_not_ours() {
        let mut m = header(5, 0x8180, 1, 1);
        question(&mut m, "a.home", TYPE_A);
        record(&mut m, 12, TYPE_A, 5, &[1, 2, 3, 4]);
        assert_eq!(
            parse_reply(&m, 6, "a.home", TYPE_A),
            Err(WireError::NotOurs)
        );
        assert_eq!(
            parse_reply(&m, 5, "b.home", TYPE_A),
            Err(WireError::NotOurs)
        );
        assert_eq!(
            parse_reply(&m, 5, "a.home", TYPE_AAAA),
            Err(WireError::NotOurs)
        );
        // A query (QR clear) echoed back is not a reply.
        let mut q = m.clone();
        q[2] &= 0x7f;
        assert_eq!(
            parse_reply(&q, 5, "a.home", TYPE_A),
            Err(WireError::NotOurs)
        );
        // No question echoed.
        let mut none = header(5, 0x8180, 0, 0);
        none.extend_from_slice(&[0; 4]);
        assert_eq!(
            parse_reply(&none, 5, "a.home", TYPE_A),
            Err(WireError::NotOurs)
        );
    }

    #[test]
    fn nxdomain_and_truncation_are_reported() {
        let mut m = header(3, 0x8383, 1, 0);
        question(&mut m, "gone.home", TYPE_A);
        let r = parse_reply(&m, 3, "gone.home", TYPE_A).unwrap();
        assert_eq!(r.rcode, RCODE_NXDOMAIN);
        assert!(r.truncated);
        assert!(r.addrs.is_empty());
    }

    #[test]
    fn hostile_replies_are_errors_not_panics() {
        let mut good = header(4, 0x8180, 1, 1);
        question(&mut good, "x.home", TYPE_A);
        record(&mut good, 12, TYPE_A, 5, &[1, 2, 3, 4]);
        // Every prefix of a good reply is either an error or has fewer records.
        for cut in 0..good.len() {
            assert!(
                parse_reply(&good[..cut], 4, "x.home", TYPE_A).is_err(),
                "cut at {cut}"
            );
        }
        // A pointer to itself, and two pointers to each other.
        let mut l = header(4, 0x8180, 1, 0);
        l.extend_from_slice(&[0xc0, 12]);
        assert_eq!(
            parse_reply(&l, 4, "x.home", TYPE_A),
            Err(WireError::Malformed)
        );
        let mut l = header(4, 0x8180, 1, 0);
        l.extend_from_slice(&[0xc0, 14, 0xc0, 12]);
        assert_eq!(
            parse_reply(&l, 4, "x.home", TYPE_A),
            Err(WireError::Malformed)
        );
        // A pointer past the end, an extended label type, a record length past the end.
        let mut l = header(4, 0x8180, 1, 0);
        l.extend_from_slice(&[0xc3, 0xff]);
        assert_eq!(
            parse_reply(&l, 4, "x.home", TYPE_A),
            Err(WireError::Malformed)
        );
        let mut l = header(4, 0x8180, 1, 0);
        l.extend_from_slice(&[0x41, 0]);
        assert_eq!(
            parse_reply(&l, 4, "x.home", TYPE_A),
            Err(WireError::Malformed)
        );
        let mut l = good.clone();
        let n = l.len();
        l[n - 5] = 0xff;
        assert_eq!(
            parse_reply(&l, 4, "x.home", TYPE_A),
            Err(WireError::Malformed)
        );
        // A CNAME loop within the reply ends; no address comes out of it.
        let mut m = header(8, 0x8180, 1, 2);
        question(&mut m, "a.home", TYPE_A);
        let b_at = m.len() + 12;
        record(&mut m, 12, TYPE_CNAME, 5, b"\x01b\xc0\x0e");
        record(&mut m, b_at as u16, TYPE_CNAME, 5, &[0xc0, 12]);
        assert_eq!(parse_reply(&m, 8, "a.home", TYPE_A).unwrap().addrs, vec![]);
        // An A record of the wrong length is skipped.
        let mut m = header(8, 0x8180, 1, 1);
        question(&mut m, "a.home", TYPE_A);
        record(&mut m, 12, TYPE_A, 5, &[1, 2, 3]);
        assert_eq!(parse_reply(&m, 8, "a.home", TYPE_A).unwrap().addrs, vec![]);
    }

    #[test]
    fn mdns_cache_flush_bit_is_ignored_in_answers() {
        let mut m = header(0, 0x8400, 1, 1);
        question(&mut m, "nas.local", TYPE_A);
        m.extend_from_slice(&[0xc0, 12]);
        m.extend_from_slice(&TYPE_A.to_be_bytes());
        m.extend_from_slice(&(CLASS_IN | CLASS_TOP_BIT).to_be_bytes());
        m.extend_from_slice(&120u32.to_be_bytes());
        m.extend_from_slice(&[0, 4, 192, 168, 1, 9]);
        let r = parse_reply(&m, 0, "nas.local", TYPE_A).unwrap();
        assert_eq!(r.addrs, vec![(IpAddr::from([192, 168, 1, 9]), 120)]);
    }
}
