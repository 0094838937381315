//! The table: each metric for every run, and each run's ratio to the first
//! (the baseline), oriented so that a ratio above 1 means "better than the
//! baseline" whatever the unit.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};

/// Whether a larger figure is better.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
    /// Information only (no ratio).
    Neither,
}

/// (key, label, which way is better, target ratio of the issue if any).
const METRICS: &[(&str, &str, Better, Option<f64>)] = &[
    (
        "write_c1_rps",
        "createRecord, 1 client: records/s",
        Better::Higher,
        Some(5.0),
    ),
    (
        "write_c1_p50_ms",
        "createRecord, 1 client: p50 ms",
        Better::Lower,
        None,
    ),
    (
        "write_c1_p99_ms",
        "createRecord, 1 client: p99 ms",
        Better::Lower,
        None,
    ),
    (
        "write_c8_rps",
        "createRecord, 8 clients: records/s",
        Better::Higher,
        Some(5.0),
    ),
    (
        "write_c8_p50_ms",
        "createRecord, 8 clients: p50 ms",
        Better::Lower,
        None,
    ),
    (
        "write_c8_p99_ms",
        "createRecord, 8 clients: p99 ms",
        Better::Lower,
        None,
    ),
    (
        "write_c64_rps",
        "createRecord, 64 clients: records/s",
        Better::Higher,
        Some(5.0),
    ),
    (
        "write_c64_p50_ms",
        "createRecord, 64 clients: p50 ms",
        Better::Lower,
        None,
    ),
    (
        "write_c64_p99_ms",
        "createRecord, 64 clients: p99 ms",
        Better::Lower,
        None,
    ),
    (
        "get_record_rps",
        "getRecord, 16 clients: requests/s",
        Better::Higher,
        Some(10.0),
    ),
    (
        "get_record_p50_ms",
        "getRecord: p50 ms",
        Better::Lower,
        None,
    ),
    (
        "get_record_p99_ms",
        "getRecord: p99 ms",
        Better::Lower,
        None,
    ),
    (
        "list_records_rps",
        "listRecords (50), 16 clients: requests/s",
        Better::Higher,
        Some(10.0),
    ),
    (
        "list_records_p50_ms",
        "listRecords: p50 ms",
        Better::Lower,
        None,
    ),
    (
        "list_records_p99_ms",
        "listRecords: p99 ms",
        Better::Lower,
        None,
    ),
    (
        "export_s",
        "getRepo of 10,000 records: seconds",
        Better::Lower,
        Some(5.0),
    ),
    (
        "export_peak_rss_mb",
        "getRepo: peak server RSS MB",
        Better::Lower,
        None,
    ),
    (
        "export_car_mb",
        "getRepo: CAR size MB",
        Better::Neither,
        None,
    ),
    (
        "export_fill_records_per_s",
        "applyWrites (200/call): records/s",
        Better::Higher,
        None,
    ),
    (
        "firehose_events_per_s",
        "firehose, 100 subscribers: events/s delivered",
        Better::Higher,
        Some(10.0),
    ),
    (
        "firehose_p50_ms",
        "firehose: p50 delivery delay ms",
        Better::Lower,
        None,
    ),
    (
        "firehose_p99_ms",
        "firehose: p99 delivery delay ms",
        Better::Lower,
        Some(1.0),
    ),
    (
        "firehose_writes_per_s",
        "firehose: writes/s meanwhile (8 clients)",
        Better::Higher,
        None,
    ),
    (
        "firehose_delivered_fraction",
        "firehose: fraction of events delivered",
        Better::Higher,
        None,
    ),
    (
        "replay_events_per_s",
        "firehose replay, 100 subscribers from a cursor 2,000 back: events/s",
        Better::Higher,
        None,
    ),
    (
        "replay_s",
        "firehose replay: seconds until the last frame",
        Better::Lower,
        None,
    ),
    (
        "replay_min_events",
        "firehose replay: fewest events a subscriber got",
        Better::Neither,
        None,
    ),
    (
        "blob_upload_per_s",
        "uploadBlob 1 MB, 4 clients: blobs/s",
        Better::Higher,
        None,
    ),
    (
        "blob_upload_p50_ms",
        "uploadBlob: p50 ms",
        Better::Lower,
        None,
    ),
    (
        "blob_upload_p99_ms",
        "uploadBlob: p99 ms",
        Better::Lower,
        None,
    ),
    (
        "blob_get_rps",
        "getBlob 1 MB, 16 clients: requests/s",
        Better::Higher,
        None,
    ),
    ("blob_get_p50_ms", "getBlob: p50 ms", Better::Lower, None),
    ("blob_get_p99_ms", "getBlob: p99 ms", Better::Lower, None),
    ("idle_rss_mb", "idle RSS MB", Better::Lower, Some(5.0)),
    ("load_rss_mb", "peak RSS under load MB", Better::Lower, None),
    (
        "after_rss_mb",
        "RSS after the workload MB",
        Better::Lower,
        None,
    ),
    (
        "startup_ms",
        "start-up ms (spawn to first answer)",
        Better::Lower,
        None,
    ),
    (
        "install_mb",
        "installed size MB (binary / node + node_modules)",
        Better::Lower,
        None,
    ),
    (
        "disk_mb",
        "data on disk after the workload MB",
        Better::Lower,
        None,
    ),
    (
        "load_avg_before",
        "machine load average (1 min) before the run",
        Better::Neither,
        None,
    ),
    (
        "load_avg_after",
        "machine load average (1 min) after the run",
        Better::Neither,
        None,
    ),
    (
        "driver_max_cpu_pct",
        "driver CPU, busiest phase: % of one core",
        Better::Neither,
        None,
    ),
];

fn ratio(base: Option<f64>, v: Option<f64>, better: Better) -> Option<f64> {
    let (b, v) = (base?, v?);
    match better {
        Better::Higher if b > 0.0 => Some(v / b),
        Better::Lower if v > 0.0 => Some(b / v),
        _ => None,
    }
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

pub fn report(files: &[PathBuf], out: &Path, markdown: Option<&Path>) -> Result<(), String> {
    let runs: Vec<Json> = files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect::<Result<_, String>>()?;
    let Some(base) = runs.first() else {
        return Err("no runs given".into());
    };
    let names: Vec<String> = runs
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("?").to_owned())
        .collect();
    let get = |run: &Json, key: &str| run["metrics"][key].as_f64();

    let mut header = vec!["metric".to_owned()];
    header.extend(names.iter().cloned());
    for n in &names[1..] {
        header.push(format!("{n} ×"));
    }
    header.push("target ×".into());
    let mut rows = vec![header];
    let mut combined = Vec::new();
    for &(key, label, better, target) in METRICS {
        let mut row = vec![label.to_owned()];
        let mut values = serde_json::Map::new();
        for (run, name) in runs.iter().zip(&names) {
            row.push(fmt(get(run, key)));
            values.insert(name.clone(), get(run, key).map_or(Json::Null, Json::from));
        }
        let mut ratios = serde_json::Map::new();
        for (run, name) in runs.iter().zip(&names).skip(1) {
            let r = ratio(get(base, key), get(run, key), better);
            row.push(r.map_or_else(|| "".into(), |r| format!("{}×", fmt(Some(r)))));
            ratios.insert(name.clone(), r.map_or(Json::Null, Json::from));
        }
        row.push(target.map_or_else(String::new, |t| format!("≥ {t}×")));
        rows.push(row);
        combined.push(json!({
            "metric": key,
            "label": label,
            "better": match better { Better::Higher => "higher", Better::Lower => "lower", Better::Neither => "n/a" },
            "target_ratio": target,
            "values": values,
            "ratio_to_baseline": ratios,
        }));
    }

    // Plain text for the terminal.
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for (i, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(text, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(text, "  {}{cell}", " ".repeat(pad));
            }
        }
        text.push('\n');
        if i == 0 {
            text.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * widths.len()));
            text.push('\n');
        }
    }
    println!(
        "Ratios (×) are against {}; above 1 means better than it.\n",
        names[0]
    );
    print!("{text}");
    for run in &runs {
        if let Some(notes) = run["notes"].as_array() {
            for n in notes {
                println!(
                    "note ({}): {}",
                    run["name"].as_str().unwrap_or("?"),
                    n.as_str().unwrap_or("")
                );
            }
        }
    }

    if let Some(md) = markdown {
        let mut m = String::new();
        for (i, row) in rows.iter().enumerate() {
            m.push_str("| ");
            m.push_str(&row.join(" | "));
            m.push_str(" |\n");
            if i == 0 {
                m.push('|');
                m.push_str(&" --- |".repeat(row.len()));
                m.push('\n');
            }
        }
        std::fs::write(md, m).map_err(|e| format!("{}: {e}", md.display()))?;
    }
    let doc = json!({
        "baseline": names[0],
        "metrics": combined,
        "runs": runs,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_point_the_better_way() {
        assert_eq!(ratio(Some(100.0), Some(500.0), Better::Higher), Some(5.0));
        assert_eq!(ratio(Some(100.0), Some(20.0), Better::Lower), Some(5.0));
        assert_eq!(ratio(Some(0.0), Some(20.0), Better::Higher), None);
        assert_eq!(ratio(None, Some(20.0), Better::Lower), None);
        assert_eq!(ratio(Some(1.0), Some(2.0), Better::Neither), None);
    }
}
