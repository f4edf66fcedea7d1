//! Resource figures of any process by id (Linux `/proc`), for benchmarks
//! that measure our server and the peer servers they compare it with in
//! the same way.

use std::time::Duration;

/// The resident memory of process `pid` in bytes, 0 when unknown.
pub fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU time process `pid` has used so far (user + system, all threads).
pub fn cpu_time(pid: u32) -> Duration {
    cpu_split(pid).total()
}

/// CPU time a process has used, split by where it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuSplit {
    /// In the process's own code and libraries.
    pub user: Duration,
    /// In the kernel on its behalf (system calls: for a server, mostly the
    /// network stack).
    pub system: Duration,
}

impl CpuSplit {
    /// User and system time together.
    pub fn total(self) -> Duration {
        self.user + self.system
    }
}

impl std::ops::Sub for CpuSplit {
    type Output = CpuSplit;

    fn sub(self, earlier: CpuSplit) -> CpuSplit {
        CpuSplit {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// User and system CPU time process `pid` has used so far (all threads;
/// zero when unknown).
pub fn cpu_split(pid: u32) -> CpuSplit {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are
    // the 12th and 13th of them, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        let ticks = fields.get(i).and_then(|v| v.parse::<u64>().ok());
        Duration::from_millis(ticks.unwrap_or(0) * 10)
    };
    CpuSplit {
        user: ticks(11),
        system: ticks(12),
    }
}
