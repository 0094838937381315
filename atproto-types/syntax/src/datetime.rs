//! Datetimes in the Lexicon `datetime` format: the intersection of RFC 3339,
//! ISO 8601 and WHATWG HTML, with a required timezone.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};

use crate::error::{show_char, SyntaxError, SyntaxKind};

/// A valid Lexicon datetime, e.g. `1985-04-12T23:20:50.123Z`.
///
/// Syntax: `YYYY-MM-DDTHH:MM:SS[.F+](Z|+HH:MM|-HH:MM)` with exactly those
/// digit counts, an uppercase `T` and `Z`, at least one fractional digit when
/// there is a `.`, and no `-00:00` offset. The values must make a real
/// datetime: month 01-12, a day that exists in that month (leap years
/// included), hour 00-23, minute and second 00-59 (no leap seconds), offset
/// hours 00-23 and minutes 00-59; and the instant, normalised to UTC, may not
/// fall before year 0000.
///
/// The original string is kept verbatim (so records round-trip); `Eq` and
/// `Hash` compare that string. `Ord` orders by instant first, then by string,
/// so it agrees with `Eq`.
#[derive(Clone)]
pub struct Datetime {
    raw: String,
    utc: DateTime<Utc>,
}

string_newtype!(Datetime);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::Datetime, reason)
}

const SHAPE: &str = "expected YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or +HH:MM/-HH:MM";

/// Read `n` ASCII digits at `at` as a number, naming the field on failure.
fn digits(b: &[u8], at: usize, n: usize, field: &str) -> Result<u32, SyntaxError> {
    let Some(part) = b.get(at..at + n) else {
        return Err(err(format!("{field} is missing or too short; {SHAPE}")));
    };
    let mut v = 0u32;
    for &d in part {
        if !d.is_ascii_digit() {
            return Err(err(format!("{field} must be exactly {n} digits; {SHAPE}")));
        }
        v = v * 10 + u32::from(d - b'0');
    }
    Ok(v)
}

/// Require the separator `want` at `at`.
fn sep(s: &str, b: &[u8], at: usize, want: u8, after: &str) -> Result<(), SyntaxError> {
    match b.get(at) {
        Some(&c) if c == want => Ok(()),
        Some(&c) => {
            let found = s
                .get(at..)
                .and_then(|r| r.chars().next())
                .map(show_char)
                .unwrap_or_else(|| format!("byte {c:#04x}"));
            if want == b'T' && (c == b't' || c == b' ' || c == b'_') {
                return Err(err(format!(
                    "date and time must be separated by an uppercase 'T', found {found}"
                )));
            }
            Err(err(format!(
                "expected {:?} after the {after}, found {found} (wrong digit count or separator); {SHAPE}",
                char::from(want)
            )))
        }
        None => Err(err(format!("ends after the {after}; {SHAPE}"))),
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap {
                29
            } else {
                28
            }
        }
    }
}

fn parse(s: &str) -> Result<DateTime<Utc>, SyntaxError> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4, "year")?;
    sep(s, b, 4, b'-', "year")?;
    let month = digits(b, 5, 2, "month")?;
    sep(s, b, 7, b'-', "month")?;
    let day = digits(b, 8, 2, "day")?;
    sep(s, b, 10, b'T', "day")?;
    let hour = digits(b, 11, 2, "hour")?;
    sep(s, b, 13, b':', "hour")?;
    let minute = digits(b, 14, 2, "minute")?;
    sep(s, b, 16, b':', "minute")?;
    let second = digits(b, 17, 2, "second")?;

    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return Err(err("fractional seconds need at least one digit after '.'"));
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }

    let offset_minutes: i64 = match &b[i..] {
        [] => return Err(err("timezone is required (Z or +HH:MM/-HH:MM at the end)")),
        [b'Z'] => 0,
        [b'z'] => return Err(err("the UTC timezone must be an uppercase 'Z'")),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            if rest.len() != 5 || rest[2] != b':' {
                return Err(err("timezone offset must be exactly +HH:MM or -HH:MM"));
            }
            let oh = digits(rest, 0, 2, "timezone offset hours")?;
            let om = digits(rest, 3, 2, "timezone offset minutes")?;
            if oh > 23 {
                return Err(err(format!(
                    "timezone offset hours {oh:02} out of range 00-23"
                )));
            }
            if om > 59 {
                return Err(err(format!(
                    "timezone offset minutes {om:02} out of range 00-59"
                )));
            }
            if *sign == b'-' && oh == 0 && om == 0 {
                return Err(err("negative zero timezone offset -00:00 is not allowed"));
            }
            let total = i64::from(oh * 60 + om);
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => {
            let found = s
                .get(i..)
                .and_then(|r| r.chars().next())
                .map(show_char)
                .unwrap_or_default();
            return Err(err(format!(
                "unexpected {found} after the seconds; {SHAPE}"
            )));
        }
    };

    let year = i32::try_from(year).map_err(|_| err("year out of range"))?;
    if !(1..=12).contains(&month) {
        return Err(err(format!("month {month:02} out of range 01-12")));
    }
    let dim = days_in_month(year, month);
    if day < 1 || day > dim {
        return Err(err(format!(
            "day {day:02} does not exist in month {month:02} of year {year:04}"
        )));
    }
    if hour > 23 {
        return Err(err(format!("hour {hour:02} out of range 00-23")));
    }
    if minute > 59 {
        return Err(err(format!("minute {minute:02} out of range 00-59")));
    }
    if second > 59 {
        return Err(err(format!(
            "second {second:02} out of range 00-59 (leap seconds are not supported)"
        )));
    }

    let naive = NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_nano_opt(hour, minute, second, nanos))
        .ok_or_else(|| err("not a valid calendar datetime"))?;
    let utc_naive = naive
        .checked_sub_signed(TimeDelta::minutes(offset_minutes))
        .ok_or_else(|| err("datetime out of range"))?;
    if utc_naive.year() < 0 {
        return Err(err(
            "datetime normalises to an instant before year 0000 in UTC",
        ));
    }
    Ok(utc_naive.and_utc())
}

impl Datetime {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        let utc = parse(&s)?;
        Ok(Datetime { raw: s, utc })
    }

    /// The datetime exactly as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The datetime string, consuming the value.
    pub fn into_inner(self) -> String {
        self.raw
    }

    /// The instant in UTC (fractional digits past nanoseconds are dropped).
    pub fn to_utc(&self) -> DateTime<Utc> {
        self.utc
    }

    /// Format an instant as `YYYY-MM-DDTHH:MM:SS.mmmZ` (millisecond
    /// precision, the preferred form). Fails outside years 0000-9999.
    pub fn from_utc(dt: DateTime<Utc>) -> Result<Datetime, SyntaxError> {
        if !(0..=9999).contains(&dt.year()) {
            return Err(err(format!(
                "year {} can not be written as four digits",
                dt.year()
            )));
        }
        let s = dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        Datetime::from_string(s)
    }

    /// The current time, `YYYY-MM-DDTHH:MM:SS.mmmZ` (millisecond precision).
    /// A system clock outside years 0000-9999 is clamped into that range.
    pub fn now() -> Datetime {
        let now = Utc::now();
        if let Ok(d) = Datetime::from_utc(now) {
            return d;
        }
        let clamped = if now.year() < 0 {
            "0000-01-01T00:00:00.000Z"
        } else {
            "9999-12-31T23:59:59.999Z"
        };
        Datetime {
            raw: clamped.to_owned(),
            utc: parse(clamped).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        }
    }
}

impl From<&Datetime> for DateTime<Utc> {
    fn from(d: &Datetime) -> Self {
        d.utc
    }
}

impl From<Datetime> for DateTime<Utc> {
    fn from(d: Datetime) -> Self {
        d.utc
    }
}

impl PartialEq for Datetime {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Datetime {}

impl Hash for Datetime {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state)
    }
}

impl PartialOrd for Datetime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Datetime {
    fn cmp(&self, other: &Self) -> Ordering {
        self.utc
            .cmp(&other.utc)
            .then_with(|| self.raw.cmp(&other.raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Datetime {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bad(s: &str) -> SyntaxError {
        match s.parse::<Datetime>() {
            Ok(_) => panic!("{s} should be invalid"),
            Err(e) => e,
        }
    }

    #[test]
    fn spec_examples() {
        for s in [
            "1985-04-12T23:20:50.123Z",
            "1985-04-12T23:20:50.123456Z",
            "1985-04-12T23:20:50.120Z",
            "1985-04-12T23:20:50.120000Z",
            "0001-01-01T00:00:00.000Z",
            "0000-01-01T00:00:00.000Z",
            "1985-04-12T23:20:50.12345678912345Z",
            "1985-04-12T23:20:50Z",
            "1985-04-12T23:20:50.0Z",
            "1985-04-12T23:20:50.123+00:00",
            "1985-04-12T23:20:50.123-07:00",
            "9999-12-31T23:59:59.999-23:59",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
        ] {
            ok(s);
        }
        for s in [
            "1985-04-12",
            "1985-04-12T23:20Z",
            "1985-04-12T23:20:5Z",
            "1985-04-12T23:20:50.123",
            "+001985-04-12T23:20:50.123Z",
            "23:20:50.123Z",
            "-1985-04-12T23:20:50.123Z",
            "1985-4-12T23:20:50.123Z",
            "01985-04-12T23:20:50.123Z",
            "1985-04-12T23:20:50.123+00",
            "1985-04-12T23:20:50.123+0000",
            "1985-04-12t23:20:50.123Z",
            "1985-04-12T23:20:50.123z",
            "1985-04-12T23:20:50.123-00:00",
            "1985-04-12 23:20:50.123Z",
            "1985-04-12T23:99:50.123Z",
            "1985-00-12T23:20:50.123Z",
            "1985-04-31T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "1985-04-12T23:20:60Z",
            "1985-04-12T23:20:50.Z",
            "0000-01-01T00:00:00+01:00",
            "1985—04-12T23:20:50.123Z",
            "",
        ] {
            bad(s);
        }
    }

    #[test]
    fn reasons() {
        assert!(bad("1985-13-12T23:20:50Z").reason().contains("month 13"));
        assert!(bad("1985-04-12T23:20:50")
            .reason()
            .contains("timezone is required"));
        assert!(bad("1985-04-12t23:20:50Z")
            .reason()
            .contains("uppercase 'T'"));
        assert!(bad("1985-04-12T23:20:50z")
            .reason()
            .contains("uppercase 'Z'"));
        assert!(bad("1985-04-12T23:20:50-00:00").reason().contains("-00:00"));
        assert!(bad("0000-01-01T00:00:00+01:00")
            .reason()
            .contains("before year 0000"));
        assert!(bad("2023-02-30T00:00:00Z").reason().contains("day 30"));
    }

    #[test]
    fn conversion_to_chrono() {
        let d = ok("1985-04-12T23:20:50.123-07:00");
        let utc = d.to_utc();
        assert_eq!(utc.to_rfc3339(), "1985-04-13T06:20:50.123+00:00");
        let from: DateTime<Utc> = (&d).into();
        assert_eq!(from, utc);
        let d = ok("1985-04-12T23:20:50.1234567890123Z");
        assert_eq!(d.to_utc().timestamp_subsec_nanos(), 123_456_789);
        let d = ok("0000-01-01T00:00:00-05:00");
        assert_eq!(d.to_utc().year(), 0);
    }

    #[test]
    fn now_and_from_utc() {
        let a = Datetime::now();
        assert_eq!(a.as_str().len(), "2024-01-01T00:00:00.000Z".len());
        assert!(a.as_str().ends_with('Z'));
        let b = Datetime::from_utc(a.to_utc()).unwrap();
        assert_eq!(a, b);
        let early = DateTime::<Utc>::from_timestamp(-70_000_000_000, 0).unwrap();
        assert!(Datetime::from_utc(early).is_err());
    }

    #[test]
    fn ordering_and_equality() {
        let a = ok("1985-04-12T23:20:50.123Z");
        let b = ok("1985-04-12T23:20:50.123000Z");
        let c = ok("1985-04-12T16:20:50.124-07:00");
        assert_ne!(a, b);
        assert_eq!(a.to_utc(), b.to_utc());
        // same instant: ordered by string, never Equal unless the strings are
        assert_eq!(a.cmp(&b), a.as_str().cmp(b.as_str()));
        assert!(a < c && b < c);
        assert_eq!(a.cmp(&a.clone()), Ordering::Equal);
    }

    #[test]
    fn serde_keeps_exact_string() {
        for s in [
            "\"1985-04-12T23:20:50.120000Z\"",
            "\"1985-04-12T23:20:50.1+01:45\"",
        ] {
            let d: Datetime = serde_json::from_str(s).unwrap();
            assert_eq!(serde_json::to_string(&d).unwrap(), s);
        }
        assert!(serde_json::from_str::<Datetime>("\"1985-04-12\"").is_err());
    }
}
