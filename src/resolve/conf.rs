//! The two files a resolver reads: `/etc/hosts` and `/etc/resolv.conf` (the formats of
//! hosts(5) and resolv.conf(5), the parts a board's DHCP client and its owner write).
//! Parsing is pure; lines that cannot be understood are skipped, as glibc does.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// resolv.conf(5) limits: glibc uses at most 3 nameservers (MAXNS) and 6 search domains.
const NAMESERVERS_MAX: usize = 3;
const SEARCH_DOMAINS_MAX: usize = 6;
/// Caps on the options, so a typo cannot make a lookup wait for minutes.
const NDOTS_MAX: usize = 15;
const TIMEOUT_SECS_MAX: u64 = 30;
const ATTEMPTS_MAX: u32 = 5;
/// glibc's defaults.
const TIMEOUT_SECS_DEFAULT: u64 = 5;
const ATTEMPTS_DEFAULT: u32 = 2;

/// Addresses given for `name` (any case) in a hosts file's text, in file order.
pub fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let ip: IpAddr = words.next()?.parse().ok()?;
            words.any(|w| w.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

/// What resolv.conf says.
#[derive(Debug, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    pub timeout: Duration,
    pub attempts: u32,
}

impl ResolvConf {
    pub fn parse(text: &str) -> ResolvConf {
        let mut c = ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(TIMEOUT_SECS_DEFAULT),
            attempts: ATTEMPTS_DEFAULT,
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                // A scoped IPv6 address (fe80::1%eth0) does not parse and is skipped: the
                // interface index it needs is not known here.
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                        if c.nameservers.len() < NAMESERVERS_MAX {
                            c.nameservers.push(SocketAddr::new(ip, 53));
                        }
                    }
                }
                // The last of `domain` and `search` wins, as in glibc.
                Some("domain") | Some("search") => {
                    c.search = words
                        .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
                        .filter(|w| !w.is_empty())
                        .take(SEARCH_DOMAINS_MAX)
                        .collect();
                }
                Some("options") => {
                    for opt in words {
                        let (key, value) = opt.split_once(':').unwrap_or((opt, ""));
                        let Ok(n) = value.parse::<u64>() else {
                            continue;
                        };
                        match key {
                            "ndots" => c.ndots = n.min(NDOTS_MAX as u64) as usize,
                            "timeout" => {
                                c.timeout = Duration::from_secs(n.clamp(1, TIMEOUT_SECS_MAX))
                            }
                            "attempts" => c.attempts = (n as u32).clamp(1, ATTEMPTS_MAX),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        // No nameserver line means the local one, as in glibc.
        if c.nameservers.is_empty() {
            c.nameservers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        c
    }

    /// The names to ask for, in order (resolv.conf(5) on ndots): a name with at least
    /// `ndots` dots is tried as given first, then with each search domain; a shorter one the
    /// other way round. A name ending in a dot is absolute and never extended.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let searched = self.search.iter().map(|d| format!("{name}.{d}"));
        let dots = name.matches('.').count();
        if dots >= self.ndots {
            std::iter::once(name.to_string()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_string())).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_with_aliases_comments_and_junk() {
        let text = "127.0.0.1 localhost\n\
                    # 10.0.0.9 pi-store1\n\
                    192.168.1.20\tpi-store1 pi-store1.home   # the first board\n\
                    not-an-ip pi-store1\n\
                    fd00::20 PI-STORE1\n\
                    192.168.1.21 pi-store10\n";
        let want: Vec<IpAddr> = vec!["192.168.1.20".parse().unwrap(), "fd00::20".parse().unwrap()];
        assert_eq!(hosts_lookup(text, "pi-store1"), want);
        assert_eq!(hosts_lookup(text, "pi-store1.home"), want[..1].to_vec());
        assert!(hosts_lookup(text, "pi-store2").is_empty());
        assert!(hosts_lookup("", "x").is_empty());
    }

    #[test]
    fn resolv_conf_with_search_options_and_limits() {
        let c = ResolvConf::parse(
            "# from DHCP\nnameserver 192.168.1.1\nnameserver fe80::1%eth0\nnameserver fd00::1\n\
             nameserver 10.0.0.1\nnameserver 10.0.0.2\ndomain lan\nsearch home. fritz.box\n\
             options ndots:2 timeout:99 attempts:0 rotate edns0\n",
        );
        let ns: Vec<SocketAddr> = vec![
            "192.168.1.1:53".parse().unwrap(),
            "[fd00::1]:53".parse().unwrap(),
            "10.0.0.1:53".parse().unwrap(),
        ];
        assert_eq!(c.nameservers, ns);
        assert_eq!(c.search, vec!["home", "fritz.box"]);
        assert_eq!(c.ndots, 2);
        assert_eq!(c.timeout, Duration::from_secs(TIMEOUT_SECS_MAX));
        assert_eq!(c.attempts, 1);
        let empty = ResolvConf::parse("");
        assert_eq!(
            empty.nameservers,
            vec!["127.0.0.1:53".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!((empty.ndots, empty.attempts), (1, ATTEMPTS_DEFAULT));
    }

    #[test]
    fn search_order_follows_ndots() {
        let c = ResolvConf::parse("search home lan\n");
        assert_eq!(
            c.candidates("pi-store1"),
            vec!["pi-store1.home", "pi-store1.lan", "pi-store1"]
        );
        assert_eq!(c.candidates("a.b"), vec!["a.b", "a.b.home", "a.b.lan"]);
        assert_eq!(c.candidates("pi-store1."), vec!["pi-store1"]);
        let none = ResolvConf::parse("");
        assert_eq!(none.candidates("pi"), vec!["pi"]);
    }
}
