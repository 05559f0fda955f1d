//! Who holds a renewal lease, and whether that process is gone.
//!
//! A lease is written into the token record by the process calling the token endpoint. If
//! that process dies between the vendor's answer and the store write, a rotating vendor has
//! already killed the refresh token in the record, and the lease blocks every other renewal
//! until it lapses. On a store whose processes all run on this machine (the SQLite file of
//! `homehook serve`), a dead holder can be recognised at once: its id names its machine, its
//! boot and its process id, and `/proc` says whether that process still runs. Elsewhere (a
//! DynamoDB table shared by Lambda instances) a holder cannot be checked and its lease is
//! waited out.

use std::sync::OnceLock;

use rand::RngCore;

/// This process's identity in leases: `<machine>:<boot>:<pid>:<random>`. The random part tells
/// two keepers of one process apart (tests run several). Machine and boot are empty where the
/// system does not say (not Linux): such a holder is never judged gone.
pub(super) fn new_id() -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{}:{}:{}:{}",
        machine(),
        boot(),
        std::process::id(),
        hex::encode(bytes)
    )
}

/// Whether the process that wrote lease holder id `holder` is known to be gone: it ran on this
/// machine, and this machine has rebooted since, or no process with its id runs now. Unknown
/// cases (another machine, an id from an older version, this very process) answer `false`.
pub(super) fn gone(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(their_machine), Some(their_boot), Some(pid), Some(_)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let ours = machine();
    if ours.is_empty() || their_machine != ours {
        return false;
    }
    if their_boot != boot() {
        return true;
    }
    match pid.parse::<u32>() {
        // Another keeper of this process (several share a process in tests): alive.
        Ok(pid) if pid == std::process::id() => false,
        Ok(pid) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}

/// A short, stable name of this machine: the first 12 characters of `/etc/machine-id` (empty
/// when there is none). Read once: it does not change while the process runs.
fn machine() -> &'static str {
    static MACHINE: OnceLock<String> = OnceLock::new();
    MACHINE.get_or_init(|| first_line("/etc/machine-id"))
}

/// This boot: the first 12 characters of the kernel's boot id (empty outside Linux).
fn boot() -> &'static str {
    static BOOT: OnceLock<String> = OnceLock::new();
    BOOT.get_or_init(|| first_line("/proc/sys/kernel/random/boot_id"))
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().replace('-', "")))
        .map(|l| l.chars().take(12).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_no_longer_runs_is_gone_and_a_running_one_is_not() {
        if machine().is_empty() || !std::path::Path::new("/proc/self").exists() {
            return; // Not Linux: holders are never judged gone (and the lease is waited out).
        }
        let me = new_id();
        assert!(!gone(&me), "this process runs");
        let parts: Vec<&str> = me.split(':').collect();
        // A child process that has exited: its pid is free.
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        let dead = format!("{}:{}:{pid}:abcdef", parts[0], parts[1]);
        assert!(gone(&dead), "{dead}");
        let rebooted = format!("{}:000000000000:{}:abcdef", parts[0], std::process::id());
        assert!(gone(&rebooted), "a lease from before a reboot");
        let elsewhere = format!("ffffffffffff:{}:{pid}:abcdef", parts[1]);
        assert!(!gone(&elsewhere), "another machine cannot be checked");
        assert!(!gone("a1b2c3d4e5f6"), "an id from an older version");
    }
}
