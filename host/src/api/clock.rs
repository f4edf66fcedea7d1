//! Wall-clock time and the two timestamp formats of the API: Zaqar's
//! `%Y-%m-%dT%H:%M:%S` (UTC, no zone) and ISO 8601 input as the `iso8601`
//! library reads it (pre-signed URL expiry).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC for a time in milliseconds.
pub fn format_utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, in_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Parses ISO 8601 as Python's `iso8601.parse_date` does (`YYYY`,
/// `YYYY-M`, `YYYY-M-D`, then `T` or space, `HH[:MM[:SS[.fff]]]`, then `Z` or
/// `±HH[:MM]`; no zone means UTC). Returns milliseconds since the epoch.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let mut cursor = Cursor { rest: text };
    let year = cursor.digits(4, 4)?;
    let (mut month, mut day) = (1, 1);
    let (mut hour, mut minute, mut second, mut millis, mut offset_minutes) = (0, 0, 0, 0, 0);
    if cursor.eat('-') {
        month = cursor.digits(1, 2)?;
        if cursor.eat('-') {
            day = cursor.digits(1, 2)?;
            if cursor.eat('T') || cursor.eat(' ') {
                hour = cursor.digits(2, 2)?;
                if cursor.eat(':') {
                    minute = cursor.digits(2, 2)?;
                    if cursor.eat(':') {
                        second = cursor.digits(1, 2)?;
                        if cursor.eat('.') || cursor.eat(',') {
                            let fraction = cursor.take_while(|c| c.is_ascii_digit());
                            if fraction.is_empty() {
                                return None;
                            }
                            let padded = format!("{fraction:0<3}");
                            millis = padded[..3].parse::<i64>().ok()?;
                        }
                    }
                }
                if cursor.eat('Z') {
                } else if let Some(sign) = cursor.sign() {
                    let hours = cursor.digits(2, 2)?;
                    cursor.eat(':');
                    let minutes = if cursor.rest.is_empty() {
                        0
                    } else {
                        cursor.digits(2, 2)?
                    };
                    offset_minutes = sign * (hours * 60 + minutes);
                }
            }
        }
    }
    if !cursor.rest.is_empty()
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn sign(&mut self) -> Option<i64> {
        if self.eat('+') {
            Some(1)
        } else if self.eat('-') {
            Some(-1)
        } else {
            None
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self
            .rest
            .find(|c: char| !keep(c))
            .unwrap_or(self.rest.len());
        let (taken, rest) = self.rest.split_at(end);
        self.rest = rest;
        taken
    }

    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let end = self
            .rest
            .bytes()
            .take(max)
            .take_while(u8::is_ascii_digit)
            .count();
        if end < min {
            return None;
        }
        let (digits, rest) = self.rest.split_at(end);
        self.rest = rest;
        digits.parse().ok()
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_without_zone() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc(1_795_509_781_999), "2026-11-24T08:43:01");
    }

    #[test]
    fn parses_the_forms_iso8601_accepts() {
        let expected = parse_iso8601("2026-11-24T08:43:01").unwrap();
        assert_eq!(format_utc(expected), "2026-11-24T08:43:01");
        assert_eq!(parse_iso8601("2026-11-24T08:43:01Z"), Some(expected));
        assert_eq!(parse_iso8601("2026-11-24T09:43:01+01:00"), Some(expected));
        assert_eq!(
            parse_iso8601("2026-11-24 08:43:01.250"),
            Some(expected + 250)
        );
        assert_eq!(parse_iso8601("2026-11-24T07:13:01-0130"), Some(expected));
        assert_eq!(
            format_utc(parse_iso8601("2014-9-24").unwrap()),
            "2014-09-24T00:00:00"
        );
        assert_eq!(
            format_utc(parse_iso8601("2016").unwrap()),
            "2016-01-01T00:00:00"
        );
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for text in [
            "garbage",
            "",
            "2016-13-01",
            "2016-02-30",
            "2016-01-01T25:00:00",
            "2016-01-01T00:00:00 junk",
        ] {
            assert_eq!(parse_iso8601(text), None, "{text}");
        }
    }
}
