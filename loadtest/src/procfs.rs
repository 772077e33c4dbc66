//! CPU time and resident memory of processes, from `/proc`.

use anyhow::Context;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// User plus system CPU seconds of `pid` ("self" for this process).
pub(crate) fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / TICKS)
}

/// Resident set size of `pid` in KiB.
pub(crate) fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

/// CPU seconds summed over `pids`.
pub(crate) fn cpu_of(pids: &[u32]) -> anyhow::Result<f64> {
    pids.iter().map(|p| cpu_seconds(&p.to_string())).sum()
}

/// RSS in KiB summed over `pids`.
pub(crate) fn rss_of(pids: &[u32]) -> anyhow::Result<u64> {
    pids.iter().map(|p| rss_kib(&p.to_string())).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(cpu_seconds("self").unwrap() >= 0.0);
        assert!(rss_kib("self").unwrap() > 0);
    }
}
