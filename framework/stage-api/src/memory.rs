//! How much memory this machine has, so that the host and stages can refuse
//! a size they could never hold when the pipeline is checked, instead of
//! aborting on a failed allocation hours into a run.

use crate::StageError;

/// Total physical memory in bytes (`MemTotal` of /proc/meminfo); `None`
/// where it cannot be read (then nothing is refused on its account).
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total(&text)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.trim_start_matches("MemTotal:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// `bytes` for people: "512 B", "3.1 MB", "1.2 TB" (powers of 1024).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// An error when `needed` bytes (what `what` would allocate) exceed the
/// machine's memory; `what` names the option to change, e.g. "option
/// `features_root` = 100000".
pub fn ensure_fits(what: &str, needed: u64) -> Result<(), StageError> {
    match machine_memory() {
        Some(total) if needed > total => Err(StageError::invalid(format!(
            "{what} needs at least {} of memory, more than this machine's {}",
            format_bytes(needed),
            format_bytes(total)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total_from_meminfo() {
        let meminfo = "MemTotal:       24683616 kB\nMemFree:        18210304 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(24_683_616 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 << 20), "3.0 MB");
        assert_eq!(format_bytes(1_319_413_953_331), "1.2 TB");
    }

    #[test]
    fn more_than_the_machine_is_refused_naming_the_option() {
        let Some(total) = machine_memory() else { return };
        assert!(ensure_fits("option `x`", total / 2).is_ok());
        let error = ensure_fits("option `x` = 9", total + 1).unwrap_err().to_string();
        assert!(error.starts_with("option `x` = 9 needs at least") && error.contains("this machine's"), "{error}");
    }
}
