//! Latency percentiles, CPU time and resident memory from /proc.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Latencies in microseconds.
#[derive(Default)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.0
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q`-quantile (0..=1) in milliseconds, nearest rank; `None` when empty.
    pub fn quantile_ms(&mut self, q: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        Some(self.0[rank - 1] as f64 / 1000.0)
    }
}

/// Clock ticks per second of /proc/*/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds used so far by process `pid` ("self" for the
/// driver), all its threads included.
pub fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
    (tick(11) + tick(12)) / TICKS_PER_SECOND
}

/// A `VmRSS`/`VmHWM`-style line of /proc/<pid>/status, in bytes.
pub fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Samples the server's resident memory every few milliseconds on its own
/// OS thread (so a busy driver runtime cannot make it miss a peak) and
/// keeps the maximum since the last [`RssSampler::take_peak`] and overall.
pub struct RssSampler {
    phase_peak: Arc<AtomicU64>,
    overall_peak: Arc<AtomicU64>,
    stop: Arc<AtomicU64>,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let phase_peak = Arc::new(AtomicU64::new(0));
        let overall_peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicU64::new(0));
        let (p, o, s) = (phase_peak.clone(), overall_peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while s.load(Ordering::Relaxed) == 0 {
                if let Some(rss) = status_bytes(pid, "VmRSS") {
                    p.fetch_max(rss, Ordering::Relaxed);
                    o.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(every);
            }
        });
        RssSampler {
            phase_peak,
            overall_peak,
            stop,
        }
    }

    /// The peak since the previous call, and restart the phase's peak.
    pub fn take_peak(&self) -> u64 {
        self.phase_peak.swap(0, Ordering::Relaxed)
    }

    pub fn overall_peak(&self) -> u64 {
        self.overall_peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile_ms(0.5), None);
        for ms in 1..=100u64 {
            l.push(Duration::from_millis(ms));
        }
        assert_eq!(l.quantile_ms(0.5), Some(50.0));
        assert_eq!(l.quantile_ms(0.99), Some(99.0));
        assert_eq!(l.quantile_ms(1.0), Some(100.0));
    }

    #[test]
    fn reads_own_proc_figures() {
        assert!(status_bytes(std::process::id(), "VmRSS").unwrap_or(0) > 0);
        assert!(cpu_seconds("self") >= 0.0);
    }
}
