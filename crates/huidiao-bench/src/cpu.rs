//! CPU time of processes on this machine (the server's nodes, PostgreSQL's backends), read from
//! `/proc/<pid>/stat` before and after a load, so a scenario can say what each event cost.

use std::collections::HashMap;

/// Linux reports `/proc` times in USER_HZ, which is 100 on every architecture it runs on.
const TICKS_PER_S: u64 = 100;

/// `utime + stime` of `pid` in clock ticks; `None` when it is gone or not readable.
fn ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; count from after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime), counted from field 3 (state) on.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The CPU time so far of a set of processes, by pid.
#[derive(Debug, Default)]
pub struct Sample(HashMap<u32, u64>);

impl Sample {
    pub fn of(pids: &[u32]) -> Sample {
        Sample(pids.iter().filter_map(|&pid| Some((pid, ticks(pid)?))).collect())
    }

    /// CPU µs the processes of `self` (read after) used since `before`. A process that started
    /// in between counts from its start; one that ended in between is not counted.
    pub fn used_us_since(&self, before: &Sample) -> u64 {
        let ticks: u64 =
            self.0.iter().map(|(pid, now)| now.saturating_sub(before.0.get(pid).copied().unwrap_or(0))).sum();
        ticks * 1_000_000 / TICKS_PER_S
    }

    /// Whether any process could be read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = Sample::of(&[std::process::id()]);
        assert!(!me.is_empty());
        assert_eq!(me.used_us_since(&me), 0);
        assert!(Sample::of(&[u32::MAX]).is_empty());
    }

    #[test]
    fn new_processes_count_from_their_start() {
        let before = Sample(HashMap::from([(1, 10)]));
        let after = Sample(HashMap::from([(1, 15), (2, 3)]));
        assert_eq!(after.used_us_since(&before), 80_000);
    }
}
