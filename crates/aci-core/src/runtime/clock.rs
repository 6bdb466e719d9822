//! Wall-clock helpers: milliseconds since the Unix epoch and RFC 3339 text (UTC).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds (`2026-11-29T10:34:03.123Z`).
pub fn rfc3339_ms(ms: u64) -> String {
    let (date, secs_of_day) = split_days(ms / 1000);
    format!("{date}T{}.{:03}Z", hms(secs_of_day), ms % 1000)
}

/// `ns` since the Unix epoch as RFC 3339 UTC with nanoseconds (log timestamps, as ACI prints
/// them).
pub fn rfc3339_ns(ns: u64) -> String {
    let (date, secs_of_day) = split_days(ns / 1_000_000_000);
    format!("{date}T{}.{:09}Z", hms(secs_of_day), ns % 1_000_000_000)
}

fn hms(secs_of_day: u64) -> String {
    format!("{:02}:{:02}:{:02}", secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60)
}

/// The civil date (`YYYY-MM-DD`) of a Unix time and the seconds into that day.
fn split_days(secs: u64) -> (String, u64) {
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    (format!("{y:04}-{m:02}-{d:02}"), secs % 86_400)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (era arithmetic: 400-year
/// cycles of 146,097 days, years starting in March so the leap day comes last).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789
        assert_eq!(rfc3339_ms(951_827_696_789), "2000-02-29T12:34:56.789Z");
        assert_eq!(rfc3339_ms(1_798_761_599_000), "2026-12-31T23:59:59.000Z");
        assert_eq!(rfc3339_ns(1_000_000_001), "1970-01-01T00:00:01.000000001Z");
    }
}
