//! Timestamp identifiers (TIDs) and a monotonic TID clock.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{show_char, SyntaxError, SyntaxKind};

/// Length of every TID string.
pub const TID_LEN: usize = 13;
/// Largest timestamp (microseconds since the UNIX epoch) a TID can hold: 53 bits.
pub const TID_MAX_TIMESTAMP: u64 = (1 << 53) - 1;
/// Largest clock identifier: 10 bits.
pub const TID_MAX_CLOCK_ID: u16 = (1 << 10) - 1;

/// The base32-sortable alphabet.
const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// Headroom kept below [`TID_MAX_TIMESTAMP`]: a [`TidClock`] never starts
/// from a timestamp above `TID_MAX_TIMESTAMP - CLOCK_HEADROOM`, so it can
/// always issue 2^42 further TIDs.
const CLOCK_HEADROOM: u64 = 1 << 42;
const CLOCK_HORIZON: u64 = TID_MAX_TIMESTAMP - CLOCK_HEADROOM;

/// A syntactically valid TID: 13 characters of the base32-sortable alphabet
/// `234567abcdefghijklmnopqrstuvwxyz`, the first one of `234567abcdefghij`.
///
/// A TID encodes a 64-bit integer (big-endian, 5 bits a character): the top
/// bit, then 53 bits of microseconds since the UNIX epoch, then a 10-bit clock
/// identifier. Each valid string encodes exactly one integer, so the string
/// order, the integer order and [`Ord`] all agree.
#[derive(Clone)]
pub struct Tid {
    raw: String,
    value: u64,
}

string_newtype!(Tid);
string_eq_ord!(Tid);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::Tid, reason)
}

fn digit(b: u8) -> Option<u64> {
    match b {
        b'2'..=b'7' => Some(u64::from(b - b'2')),
        b'a'..=b'z' => Some(u64::from(b - b'a') + 6),
        _ => None,
    }
}

fn decode(s: &str) -> Result<u64, SyntaxError> {
    let count = s.chars().count();
    if count != TID_LEN {
        return Err(err(format!(
            "TID must be exactly {TID_LEN} characters, found {count}"
        )));
    }
    let mut value: u64 = 0;
    for (i, c) in s.chars().enumerate() {
        let d = u8::try_from(c).ok().and_then(digit).ok_or_else(|| {
            err(format!(
                "TID may only contain base32-sortable characters 234567a-z, found {}",
                show_char(c)
            ))
        })?;
        if i == 0 && d >= 16 {
            return Err(err(format!(
                "TID first character must be one of 234567abcdefghij (high bit can't be set), found {}",
                show_char(c)
            )));
        }
        // 13 digits of 5 bits = 65 bits; the first digit is < 16, so the
        // value fits in 64 bits.
        value = (value << 5) | d;
    }
    Ok(value)
}

fn encode(value: u64) -> String {
    let mut out = [0u8; TID_LEN];
    let mut v = value;
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v & 0x1f) as usize];
        v >>= 5;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

impl Tid {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        let value = decode(&s)?;
        Ok(Tid { raw: s, value })
    }

    /// The TID exactly as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The TID string, consuming the value.
    pub fn into_inner(self) -> String {
        self.raw
    }

    /// The TID of an integer. Every `u64` has a valid TID encoding (the
    /// protocol keeps the top bit zero; [`Tid::from_parts`] enforces that).
    pub fn from_u64(value: u64) -> Tid {
        Tid {
            raw: encode(value),
            value,
        }
    }

    /// The integer this TID encodes.
    pub fn to_u64(&self) -> u64 {
        self.value
    }

    /// The TID for a timestamp (microseconds since the UNIX epoch, at most
    /// 2^53 - 1) and a clock identifier (at most 1023).
    pub fn from_parts(timestamp_micros: u64, clock_id: u16) -> Result<Tid, SyntaxError> {
        if timestamp_micros > TID_MAX_TIMESTAMP {
            return Err(err(format!(
                "TID timestamp {timestamp_micros} does not fit in 53 bits"
            )));
        }
        if clock_id > TID_MAX_CLOCK_ID {
            return Err(err(format!(
                "TID clock id {clock_id} does not fit in 10 bits"
            )));
        }
        Ok(Tid::from_u64(
            (timestamp_micros << 10) | u64::from(clock_id),
        ))
    }

    /// The timestamp part: microseconds since the UNIX epoch. (For the rare
    /// syntactically valid TID with the top bit set, that bit is included.)
    pub fn timestamp_micros(&self) -> u64 {
        self.value >> 10
    }

    /// The clock identifier part (0..=1023).
    pub fn clock_id(&self) -> u16 {
        (self.value & u64::from(TID_MAX_CLOCK_ID)) as u16
    }

    /// A new TID from the process-wide monotonic clock
    /// ([`TidClock::global`]): strictly greater than every TID it returned
    /// before, from any thread, even if the system clock goes backwards.
    pub fn now() -> Tid {
        TidClock::global().next()
    }
}

/// A thread-safe monotonic TID generator.
///
/// Every TID it returns is strictly greater than every TID it returned (or
/// was told about with [`TidClock::observe`]) before, whatever the system
/// clock does: when the clock stands still or goes backwards, the timestamp
/// is bumped one microsecond past the last one issued. The state is a single
/// atomic, updated with compare-and-swap.
#[derive(Debug)]
pub struct TidClock {
    /// The last TID issued or observed, as an integer (0 = none yet).
    last: AtomicU64,
    clock_id: u16,
}

fn random_clock_id() -> u16 {
    // RandomState is seeded from the OS's randomness source.
    let r = RandomState::new().hash_one(std::process::id());
    (r & u64::from(TID_MAX_CLOCK_ID)) as u16
}

fn system_micros() -> u64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}

impl Default for TidClock {
    fn default() -> Self {
        TidClock::new()
    }
}

impl TidClock {
    /// A clock with a random clock identifier.
    pub fn new() -> TidClock {
        TidClock {
            last: AtomicU64::new(0),
            clock_id: random_clock_id(),
        }
    }

    /// A clock with the given clock identifier (at most 1023).
    pub fn with_clock_id(clock_id: u16) -> Result<TidClock, SyntaxError> {
        if clock_id > TID_MAX_CLOCK_ID {
            return Err(err(format!(
                "TID clock id {clock_id} does not fit in 10 bits"
            )));
        }
        Ok(TidClock {
            last: AtomicU64::new(0),
            clock_id,
        })
    }

    /// A clock (random clock id) whose TIDs will all be greater than `after`,
    /// e.g. a repository's last revision.
    pub fn seeded(after: &Tid) -> Result<TidClock, SyntaxError> {
        let clock = TidClock::new();
        clock.observe(after)?;
        Ok(clock)
    }

    /// The process-wide clock used by [`Tid::now`].
    pub fn global() -> &'static TidClock {
        static GLOBAL: OnceLock<TidClock> = OnceLock::new();
        GLOBAL.get_or_init(TidClock::new)
    }

    /// This clock's identifier.
    pub fn clock_id(&self) -> u16 {
        self.clock_id
    }

    /// Make every later TID from this clock greater than `tid`. Fails for a
    /// TID whose timestamp lies so far in the future (beyond about year 2255)
    /// that the clock could not keep counting after it.
    pub fn observe(&self, tid: &Tid) -> Result<(), SyntaxError> {
        if tid.timestamp_micros() > CLOCK_HORIZON {
            return Err(err(format!(
                "TID {} is too far in the future to seed a clock",
                tid.as_str()
            )));
        }
        self.last.fetch_max(tid.to_u64(), Ordering::AcqRel);
        Ok(())
    }

    /// The next TID, using the system clock.
    pub fn next(&self) -> Tid {
        self.next_with_timestamp(system_micros())
    }

    /// The next TID, taking `now_micros` as the current time: the timestamp
    /// is `now_micros`, or one microsecond past the last TID's when that is
    /// not greater. Useful for deterministic tests.
    pub fn next_with_timestamp(&self, now_micros: u64) -> Tid {
        let now = now_micros.min(CLOCK_HORIZON);
        let cid = u64::from(self.clock_id);
        let mut prev = self.last.load(Ordering::Acquire);
        loop {
            let prev_ts = prev >> 10;
            let ts = if now > prev_ts {
                now
            } else {
                // Only reachable past the horizon after 2^42 bumps; the
                // saturation keeps the value in range.
                prev_ts.saturating_add(1).min(TID_MAX_TIMESTAMP)
            };
            let value = (ts << 10) | cid;
            match self
                .last
                .compare_exchange_weak(prev, value, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Tid::from_u64(value),
                Err(actual) => prev = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn syntax() {
        for s in [
            "3jzfcijpj2z2a",
            "7777777777777",
            "3zzzzzzzzzzzz",
            "2222222222222",
        ] {
            assert!(s.parse::<Tid>().is_ok(), "{s}");
        }
        for s in [
            "3jzfcijpj2z21",
            "0000000000000",
            "3JZFCIJPJ2Z2A",
            "3jzfcijpj2z2aa",
            "3jzfcijpj2z2",
            "222",
            "3jzf-cij-pj2z-2a",
            "zzzzzzzzzzzzz",
            "kjzfcijpj2z2a",
            "3jzfcijpj2z2é",
            "",
        ] {
            assert!(s.parse::<Tid>().is_err(), "{s}");
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(Tid::from_u64(0).as_str(), "2222222222222");
        let t: Tid = "2222222222222".parse().unwrap();
        assert_eq!(t.to_u64(), 0);
        let t = Tid::from_parts(TID_MAX_TIMESTAMP, TID_MAX_CLOCK_ID).unwrap();
        assert_eq!(t.as_str(), "bzzzzzzzzzzzz");
        assert!(Tid::from_parts(TID_MAX_TIMESTAMP + 1, 0).is_err());
        assert!(Tid::from_parts(0, 1024).is_err());
        let j: Tid = "jzzzzzzzzzzzz".parse().unwrap();
        assert_eq!(j.to_u64(), u64::MAX);
    }

    #[test]
    fn clock_never_goes_back() {
        let clock = TidClock::with_clock_id(7).unwrap();
        let a = clock.next_with_timestamp(1_000_000);
        let b = clock.next_with_timestamp(1_000_000);
        let c = clock.next_with_timestamp(500);
        let d = clock.next_with_timestamp(2_000_000);
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert_eq!(a.timestamp_micros(), 1_000_000);
        assert_eq!(b.timestamp_micros(), 1_000_001);
        assert_eq!(c.timestamp_micros(), 1_000_002);
        assert_eq!(d.timestamp_micros(), 2_000_000);
        assert_eq!(c.clock_id(), 7);
    }

    #[test]
    fn seeded_clock_stays_above_seed() {
        let seed = Tid::from_parts(5_000_000_000_000_000, TID_MAX_CLOCK_ID).unwrap();
        let clock = TidClock::seeded(&seed).unwrap();
        let t = clock.next();
        assert!(t > seed, "{t} <= {seed}");
        let far: Tid = "bzzzzzzzzzzzz".parse().unwrap();
        assert!(clock.observe(&far).is_err());
        // observing an older TID changes nothing
        let older = Tid::from_parts(1, 0).unwrap();
        clock.observe(&older).unwrap();
        assert!(clock.next() > t);
    }

    #[test]
    fn now_is_monotonic_across_threads() {
        let clock = Arc::new(TidClock::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let clock = Arc::clone(&clock);
                std::thread::spawn(move || (0..5_000).map(|_| clock.next()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            let tids = h.join().unwrap();
            assert!(tids.windows(2).all(|w| w[0] < w[1]));
            for t in tids {
                assert!(all.insert(t), "duplicate TID");
            }
        }
        assert_eq!(all.len(), 40_000);
    }

    #[test]
    fn global_now_is_monotonic_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..2_000).map(|_| Tid::now()).collect::<Vec<_>>()))
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            let tids = h.join().unwrap();
            assert!(tids.windows(2).all(|w| w[0] < w[1]));
            all.extend(tids);
        }
        assert_eq!(all.len(), 8_000);
        let a = Tid::now();
        let b = Tid::now();
        assert!(a < b);
        assert_eq!(a.clock_id(), TidClock::global().clock_id());
    }

    #[test]
    fn serde_round_trip() {
        let t: Tid = serde_json::from_str("\"3jzfcijpj2z2a\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"3jzfcijpj2z2a\"");
        assert!(serde_json::from_str::<Tid>("\"3jzfcijpj2z2\"").is_err());
    }

    proptest! {
        #[test]
        fn parts_round_trip(ts in 0..=TID_MAX_TIMESTAMP, cid in 0..=TID_MAX_CLOCK_ID) {
            let t = Tid::from_parts(ts, cid).unwrap();
            prop_assert_eq!(t.timestamp_micros(), ts);
            prop_assert_eq!(t.clock_id(), cid);
            let reparsed: Tid = t.as_str().parse().unwrap();
            prop_assert_eq!(reparsed.to_u64(), t.to_u64());
            prop_assert_eq!(&reparsed, &t);
        }

        #[test]
        fn string_order_is_timestamp_order(
            a in 0..=TID_MAX_TIMESTAMP,
            b in 0..=TID_MAX_TIMESTAMP,
            ca in 0..=TID_MAX_CLOCK_ID,
            cb in 0..=TID_MAX_CLOCK_ID,
        ) {
            let ta = Tid::from_parts(a, ca).unwrap();
            let tb = Tid::from_parts(b, cb).unwrap();
            if a != b {
                prop_assert_eq!(ta.as_str().cmp(tb.as_str()), a.cmp(&b));
                prop_assert_eq!(ta.cmp(&tb), a.cmp(&b));
            } else {
                prop_assert_eq!(ta.as_str().cmp(tb.as_str()), ca.cmp(&cb));
            }
        }

        #[test]
        fn u64_round_trip(v in any::<u64>()) {
            let t = Tid::from_u64(v);
            prop_assert_eq!(t.as_str().len(), TID_LEN);
            let reparsed: Tid = t.as_str().parse().unwrap();
            prop_assert_eq!(reparsed.to_u64(), v);
        }

        #[test]
        fn string_order_is_integer_order(a in any::<u64>(), b in any::<u64>()) {
            let (ta, tb) = (Tid::from_u64(a), Tid::from_u64(b));
            prop_assert_eq!(ta.as_str().cmp(tb.as_str()), a.cmp(&b));
        }
    }
}
