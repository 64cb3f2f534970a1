//! Host names to addresses, without the C library's resolver: `/etc/hosts`, unicast DNS
//! from `/etc/resolv.conf`, and mDNS for `.local` names. The ARM release binaries link
//! glibc statically, and a static glibc's `getaddrinfo` loads the NSS plugins a board's
//! nsswitch.conf names (nss-mdns for `.local`) from the board's own, different glibc, where
//! they fail or worse; this module is the one resolver every build uses (docs/ARCHITECTURE.md
//! says why not the system's first).
//!
//! `netloc` has the shape of ureq's `Resolver` trait, so every HTTP agent takes it with one
//! `.resolver(crate::resolve::netloc)`; this module itself knows nothing of HTTP.
//!
//! `DPYFS_HOSTS_FILE` and `DPYFS_RESOLV_CONF` name other files than `/etc/hosts` and
//! `/etc/resolv.conf`: for tests and unusual set-ups.

mod conf;
mod wire;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use conf::ResolvConf;
use wire::{TYPE_A, TYPE_AAAA};

pub const HOSTS_FILE_ENV: &str = "DPYFS_HOSTS_FILE";
pub const RESOLV_CONF_ENV: &str = "DPYFS_RESOLV_CONF";
const HOSTS_FILE_DEFAULT: &str = "/etc/hosts";
const RESOLV_CONF_DEFAULT: &str = "/etc/resolv.conf";

/// The mDNS group and port (RFC 6762).
const MDNS_GROUP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251)), 5353);
/// One mDNS try waits this long; a responder answers a unique name at once (RFC 6762 6).
const MDNS_TIMEOUT_MS: u64 = 500;
const MDNS_ATTEMPTS: u32 = 2;
/// Answers are kept at most this long whatever their TTL says: a board's DHCP address may
/// change, and the director reconnects to its stores often enough that a minute saves most
/// lookups.
const CACHE_TTL_SECS_MAX: u32 = 60;
const CACHE_ENTRIES_MAX: usize = 64;
/// A UDP reply larger than this is cut by the kernel and then fails to parse; a plain DNS
/// reply is at most 512 bytes, an mDNS one fits an Ethernet frame.
const REPLY_BYTES_MAX: usize = 1500;

/// The addresses of `netloc` ("host:port", "[v6]:port"), for ureq's `Resolver`.
pub fn netloc(netloc: &str) -> io::Result<Vec<SocketAddr>> {
    if let Ok(sa) = netloc.parse::<SocketAddr>() {
        return Ok(vec![sa]);
    }
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{netloc:?} is not HOST:PORT"),
        )
    };
    let (host, port) = netloc.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok(lookup(host)?
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// The addresses of `host` (a name or an IP literal), IPv4 first.
pub fn lookup(host: &str) -> io::Result<Vec<IpAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let name = host.to_ascii_lowercase();
    let bare = name.strip_suffix('.').unwrap_or(&name);
    let hosts_path = path_from_env(HOSTS_FILE_ENV, HOSTS_FILE_DEFAULT);
    // Read at each lookup (a few hundred bytes), so an edit takes effect at once.
    let hosts = std::fs::read_to_string(&hosts_path).unwrap_or_default();
    let listed = conf::hosts_lookup(&hosts, bare);
    if !listed.is_empty() {
        return Ok(ordered(listed));
    }
    // RFC 6761 6.3: localhost is loopback, whatever DNS says.
    if bare == "localhost" || bare.ends_with(".localhost") {
        return Ok(vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]);
    }
    if !wire::valid_name(bare) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a valid host name"),
        ));
    }
    if let Some(ips) = cache_get(&name) {
        return Ok(ips);
    }
    let found = if bare == "local" || bare.ends_with(".local") {
        // A router may serve .local names by DNS too; ask it when mDNS is silent.
        mdns(bare).or_else(|m| {
            dns(&name, &hosts_path).map_err(|d| io::Error::new(d.kind(), format!("{m}; {d}")))
        })
    } else {
        dns(&name, &hosts_path)
    }?;
    let ttl = found.iter().map(|&(_, ttl)| ttl).min().unwrap_or(0);
    let ips = ordered(found.into_iter().map(|(ip, _)| ip).collect());
    cache_put(&name, &ips, ttl);
    Ok(ips)
}

fn path_from_env(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// IPv4 first (a home network's boards all have one), duplicates dropped.
fn ordered(mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut seen = Vec::with_capacity(ips.len());
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.retain(|ip| {
        let new = !seen.contains(ip);
        seen.push(*ip);
        new
    });
    ips
}

/// Unicast DNS: each candidate name (search domains, ndots) in turn, each asked of the
/// nameservers in order, `attempts` rounds. NXDOMAIN or an empty answer moves on to the next
/// candidate; silence or a server failure moves on to the next server.
fn dns(name: &str, hosts_path: &str) -> io::Result<Vec<(IpAddr, u32)>> {
    let conf_path = path_from_env(RESOLV_CONF_ENV, RESOLV_CONF_DEFAULT);
    // No resolv.conf means the defaults (a nameserver on 127.0.0.1), as in glibc.
    let conf = ResolvConf::parse(&std::fs::read_to_string(&conf_path).unwrap_or_default());
    let servers: Vec<String> = conf
        .nameservers
        .iter()
        .map(|s| s.ip().to_string())
        .collect();
    let mut silent = false;
    for candidate in conf.candidates(name) {
        match ask_nameservers(&conf, &candidate) {
            Some(found) if !found.is_empty() => return Ok(found),
            Some(_) => {}
            None => silent = true,
        }
    }
    let (kind, what) = if silent {
        (io::ErrorKind::TimedOut, "got no usable answer from")
    } else {
        (io::ErrorKind::NotFound, "is not in")
    };
    Err(io::Error::new(
        kind,
        format!(
            "{name} is not in {hosts_path} and {what} DNS (nameservers {} from {conf_path})",
            servers.join(", ")
        ),
    ))
}

/// The addresses of `name` by the first nameserver that answers (empty when it says the
/// name or its addresses do not exist); None when none answered usefully.
fn ask_nameservers(conf: &ResolvConf, name: &str) -> Option<Vec<(IpAddr, u32)>> {
    for _ in 0..conf.attempts {
        for &server in &conf.nameservers {
            let replies = match exchange(server, name, &[TYPE_A, TYPE_AAAA], conf.timeout, false) {
                Ok(r) => r,
                Err(e) => {
                    log::debug!("resolve: {name}: nameserver {server}: {e}");
                    continue;
                }
            };
            // NOERROR (maybe with no address of one type) and NXDOMAIN are answers; SERVFAIL,
            // REFUSED and the like are this server's trouble.
            if replies
                .iter()
                .any(|r| r.rcode == 0 || r.rcode == wire::RCODE_NXDOMAIN)
            {
                if replies.iter().any(|r| r.truncated && r.addrs.is_empty()) {
                    log::debug!("resolve: {name}: truncated reply from {server} (no TCP retry)");
                }
                return Some(replies.into_iter().flat_map(|r| r.addrs).collect());
            }
        }
    }
    None
}

/// A one-shot mDNS query (RFC 6762 5.1) for the IPv4 address of `name`. IPv4 only: an mDNS
/// AAAA answer is most often a link-local address, unusable without its interface.
fn mdns(name: &str) -> io::Result<Vec<(IpAddr, u32)>> {
    for _ in 0..MDNS_ATTEMPTS {
        let timeout = Duration::from_millis(MDNS_TIMEOUT_MS);
        match exchange(MDNS_GROUP, name, &[TYPE_A], timeout, true) {
            Ok(replies) => {
                let found: Vec<(IpAddr, u32)> = replies.into_iter().flat_map(|r| r.addrs).collect();
                if !found.is_empty() {
                    return Ok(found);
                }
            }
            Err(e) => log::debug!("resolve: {name}: mDNS: {e}"),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{name}: no answer to mDNS queries ({MDNS_GROUP}, {MDNS_ATTEMPTS} x {MDNS_TIMEOUT_MS} ms)"
        ),
    ))
}

/// Sends one query per type in `qtypes` to `to` from one fresh socket (a random port) and
/// collects the replies until each query has one or `timeout` has passed. A datagram that is
/// not a reply to one of these queries (other id or question, malformed) is ignored.
fn exchange(
    to: SocketAddr,
    name: &str,
    qtypes: &[u16],
    timeout: Duration,
    mdns: bool,
) -> io::Result<Vec<wire::Reply>> {
    let any: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(any)?;
    if mdns {
        // RFC 6762 11: mDNS packets go out with IP TTL 255.
        sock.set_multicast_ttl_v4(255)?;
    } else {
        // Only datagrams from the server reach a connected socket.
        sock.connect(to)?;
    }
    let mut pending = Vec::with_capacity(qtypes.len());
    for &qtype in qtypes {
        let id = random_id();
        let q = wire::query(id, name, qtype, !mdns, mdns).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a valid host name"),
            )
        })?;
        if mdns {
            sock.send_to(&q, to)?
        } else {
            sock.send(&q)?
        };
        pending.push((id, qtype));
    }
    let deadline = Instant::now() + timeout;
    let mut replies = Vec::with_capacity(qtypes.len());
    let mut buf = [0u8; REPLY_BYTES_MAX];
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left))?;
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(e),
        };
        // A legacy unicast mDNS reply comes from the responder's port 5353.
        if mdns && from.port() != MDNS_GROUP.port() {
            continue;
        }
        let msg = &buf[..n];
        let matched = pending.iter().enumerate().find_map(|(i, &(id, qtype))| {
            wire::parse_reply(msg, id, name, qtype).ok().map(|r| (i, r))
        });
        if let Some((i, reply)) = matched {
            pending.swap_remove(i);
            replies.push(reply);
        }
    }
    if replies.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no reply from {to} within {} ms", timeout.as_millis()),
        ));
    }
    Ok(replies)
}

/// A query id nobody off the path can guess (with the random source port, the defence
/// against forged replies): std's RandomState is seeded from the OS's random source.
fn random_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    h.finish() as u16
}

struct CacheEntry {
    name: String,
    ips: Vec<IpAddr>,
    until: Instant,
}

/// Answers from the network, by name, each until its TTL (at most `CACHE_TTL_SECS_MAX`).
static CACHE: Mutex<Vec<CacheEntry>> = Mutex::new(Vec::new());

fn cache_get(name: &str) -> Option<Vec<IpAddr>> {
    let now = Instant::now();
    let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    c.retain(|e| e.until > now);
    c.iter().find(|e| e.name == name).map(|e| e.ips.clone())
}

fn cache_put(name: &str, ips: &[IpAddr], ttl_secs: u32) {
    let ttl = ttl_secs.min(CACHE_TTL_SECS_MAX);
    if ttl == 0 || ips.is_empty() {
        return;
    }
    let now = Instant::now();
    let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    c.retain(|e| e.until > now && e.name != name);
    if c.len() >= CACHE_ENTRIES_MAX {
        // Full of live entries: the one that would expire first goes.
        if let Some(i) = c
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.until)
            .map(|(i, _)| i)
        {
            c.swap_remove(i);
        }
    }
    c.push(CacheEntry {
        name: name.to_string(),
        ips: ips.to_vec(),
        until: now + Duration::from_secs(u64::from(ttl)),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost_need_no_lookup() {
        assert_eq!(
            netloc("192.168.1.20:7071").unwrap(),
            vec!["192.168.1.20:7071".parse().unwrap()]
        );
        assert_eq!(
            netloc("[fd00::1]:80").unwrap(),
            vec!["[fd00::1]:80".parse().unwrap()]
        );
        assert_eq!(
            lookup("10.0.0.1").unwrap(),
            vec![IpAddr::from([10, 0, 0, 1])]
        );
        assert!(
            lookup("x.localhost")
                .unwrap()
                .contains(&IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(
            netloc("nohost").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            netloc("h:99999").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let bad = netloc("[fe80::1%eth0]:80").unwrap_err();
        assert_eq!(bad.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            lookup("a b").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn ipv4_comes_first_and_duplicates_go() {
        let v6: IpAddr = "fd00::1".parse().unwrap();
        let v4: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(ordered(vec![v6, v4, v6, v4]), vec![v4, v6]);
    }

    #[test]
    fn the_cache_honours_ttls_and_its_bound() {
        let ip: IpAddr = [10, 9, 8, 7].into();
        cache_put("zero-ttl.test", &[ip], 0);
        assert_eq!(cache_get("zero-ttl.test"), None);
        cache_put("kept.test", &[ip], 3600);
        assert_eq!(cache_get("kept.test"), Some(vec![ip]));
        for i in 0..CACHE_ENTRIES_MAX + 10 {
            cache_put(&format!("n{i}.test"), &[ip], 30);
        }
        let c = CACHE.lock().unwrap();
        assert!(c.len() <= CACHE_ENTRIES_MAX);
        // TTLs are capped at a minute.
        assert!(c.iter().all(
            |e| e.until <= Instant::now() + Duration::from_secs(u64::from(CACHE_TTL_SECS_MAX))
        ));
    }

    /// A "server" on a loopback UDP port that answers first with a stranger's reply, then
    /// garbage, then the right answer: only the right one is taken.
    #[test]
    fn an_exchange_ignores_replies_that_are_not_ours() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                let q = buf[..n].to_vec();
                let mut wrong = q.clone();
                wrong[0] ^= 0xff;
                wrong[2] |= 0x80;
                server.send_to(&wrong, from).unwrap();
                server.send_to(&[0xde, 0xad], from).unwrap();
                let mut r = q.clone();
                r[2] |= 0x80;
                r[7] = 1; // ANCOUNT 1
                r.extend_from_slice(&[0xc0, 12]);
                r.extend_from_slice(&q[n - 4..n - 2]); // the asked type
                r.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
                if q[n - 3] == TYPE_A as u8 {
                    r.extend_from_slice(&[0, 4, 10, 1, 2, 3]);
                } else {
                    r.extend_from_slice(&[0, 16]);
                    r.extend_from_slice(&"fd00::3".parse::<Ipv6Addr>().unwrap().octets());
                }
                server.send_to(&r, from).unwrap();
            }
        });
        let replies = exchange(
            addr,
            "pi.home",
            &[TYPE_A, TYPE_AAAA],
            Duration::from_secs(10),
            false,
        )
        .unwrap();
        t.join().unwrap();
        let mut ips: Vec<IpAddr> = replies
            .into_iter()
            .flat_map(|r| r.addrs)
            .map(|(ip, _)| ip)
            .collect();
        ips = ordered(ips);
        assert_eq!(
            ips,
            vec![IpAddr::from([10, 1, 2, 3]), "fd00::3".parse().unwrap()]
        );
    }

    #[test]
    fn a_silent_server_is_a_timeout() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = exchange(
            server.local_addr().unwrap(),
            "pi.home",
            &[TYPE_A],
            Duration::from_millis(50),
            false,
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
