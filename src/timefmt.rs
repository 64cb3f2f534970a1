//! Dates as HTTP and S3 write them: unix milliseconds to `Thu, 26 Nov 2026 07:16:07 GMT`
//! (RFC 7231, through the `httpdate` crate tiny_http already uses) and to
//! `2026-11-26T07:16:07.000Z` and `20261126T071607Z` (ISO 8601, written here: no crate in
//! the build has them).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last instant an HTTP date can name (9999-12-31T23:59:59.999Z): `httpdate` has
/// four-digit years and panics past them, so later times are written as this one.
pub const HTTP_DATE_MS_MAX: u64 = 253_402_300_799_999;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian
/// (Howard Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The inverse of `civil_from_days`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    y: i64,
    mo: u32,
    d: u32,
    h: u64,
    mi: u64,
    s: u64,
    ms: u64,
}

fn parts(ms: u64) -> Parts {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let (y, mo, d) = civil_from_days(days);
    let rem = secs % 86_400;
    Parts {
        y,
        mo,
        d,
        h: rem / 3600,
        mi: rem % 3600 / 60,
        s: rem % 60,
        ms: ms % 1000,
    }
}

/// `Thu, 26 Nov 2026 07:16:07 GMT` (times past `HTTP_DATE_MS_MAX` are written as it).
pub fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms.min(HTTP_DATE_MS_MAX)))
}

/// `2026-11-26T07:16:07.000Z`
pub fn iso8601(ms: u64) -> String {
    let p = parts(ms);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.y, p.mo, p.d, p.h, p.mi, p.s, p.ms
    )
}

/// `20130524T000000Z`: the basic ISO 8601 form SigV4 signs (`x-amz-date`, `X-Amz-Date`).
pub fn amz_date(ms: u64) -> String {
    let p = parts(ms);
    format!(
        "{}{:02}{:02}T{:02}{:02}{:02}Z",
        p.y, p.mo, p.d, p.h, p.mi, p.s
    )
}

/// Parses `20130524T000000Z` to unix milliseconds; anything else is None.
pub fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y as i64, mo as u32, d as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + sec;
    Some(secs * 1000)
}

/// Parses an HTTP date to unix milliseconds: the preferred `Thu, 26 Nov 2026 07:16:07
/// GMT` and the two obsolete forms RFC 7231 section 7.1.1.1 says a recipient must accept
/// (`Thursday, 26-Nov-26 07:16:07 GMT`, asctime's `Thu Nov 26 07:16:07 2026`). A date
/// whose weekday is wrong, or before 1970, is None.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    let ms = t.duration_since(UNIX_EPOCH).ok()?.as_millis();
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(1_795_677_367_000),
            "Thu, 26 Nov 2026 07:16:07 GMT"
        );
        assert_eq!(iso8601(1_795_677_367_123), "2026-11-26T07:16:07.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn http_dates_round_trip() {
        for ms in [0u64, 951_782_400_000, 1_795_677_367_000, 4_102_444_800_000] {
            assert_eq!(parse_http_date(&http_date(ms)), Some(ms));
        }
        assert_eq!(parse_http_date("yesterday"), None);
    }

    /// Where `httpdate` differs from the hand-written parser it replaced: the obsolete
    /// forms are accepted, a wrong weekday or a short day is not, and no time makes
    /// `http_date` panic.
    #[test]
    fn http_dates_as_rfc_7231_reads_them() {
        let ms = Some(784_111_777_000);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), ms);
        assert_eq!(parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT "), ms);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), ms);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), ms);
        assert_eq!(parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 6 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:60 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(http_date(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(http_date(HTTP_DATE_MS_MAX + 1), http_date(HTTP_DATE_MS_MAX));
    }

    #[test]
    fn amz_dates_round_trip() {
        assert_eq!(amz_date(1_369_353_600_000), "20130524T000000Z");
        for ms in [0u64, 951_782_400_000, 1_795_677_367_000] {
            assert_eq!(parse_amz_date(&amz_date(ms)), Some(ms));
        }
        assert_eq!(parse_amz_date("20130524T000000"), None);
        assert_eq!(parse_amz_date("2013-05-24T00:00:00Z"), None);
        assert_eq!(parse_amz_date("20131324T000000Z"), None);
        assert_eq!(parse_amz_date("2013052+T000000Z"), None);
    }
}
