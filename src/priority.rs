//! How readily this instance leaves the CPU to its neighbours.
//!
//! hookrouter usually shares its machine with the Redis it works through and with the mail
//! server or API that feeds that Redis. Deliveries are background work: when the CPU is busy
//! they wait in Redis, durably, and catch up; Redis answering late holds up everyone on it. So
//! the service can lower its own CPU priority to `instance.nice` at start (0 by default: left
//! as started, since scheduling priority is the operator's decision; 19 is the advice for a
//! machine shared with Redis): under contention the kernel then runs Redis and the neighbours
//! first, and with the CPU to itself the service runs as fast as before (docs/benchmarks.md: Redis's worst PING during a broadcast to
//! 1,000 webhooks on 2 cores, 47–71 ms at nice 0 and 3–9 ms at 19, deliveries/s unchanged).
//!
//! Linux keeps a nice value per thread, and with autogroups (the default on Debian and Ubuntu)
//! it only orders threads within one session's group: systemd starts every service in a session
//! of its own, so there it is the group's nice that weighs the service against Redis. Both are
//! lowered: every thread's (threads started later inherit it) and, when this process leads its
//! session, its group's — never the group of a terminal session it was merely started from.
//! Neither is ever raised, so no privilege is needed (a service started under `nice -n 19`
//! stays there). In a cgroup of its own with the CPU controller (a container, a systemd unit
//! with `CPUWeight=`), the cgroup's weight is what counts between services (README).

use std::fmt;

use rustix::process::{getpriority_process, setpriority_process, Pid};
use rustix::thread::gettid;

/// The most a nice value can be (the lowest priority).
pub const LOWEST: i32 = 19;

/// The kernel's autogroup of a session: its name and nice in `/proc/self/autogroup`.
const AUTOGROUP: &str = "/proc/self/autogroup";
/// "1" when the kernel groups threads by session.
const AUTOGROUP_ENABLED: &str = "/proc/sys/kernel/sched_autogroup_enabled";
/// This process's status line, which names its session.
const STAT: &str = "/proc/self/stat";

/// What [`lower`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lowered {
    /// The nice value asked for.
    pub nice: i32,
    /// Threads lowered to it (the others were as low, or lower, already).
    pub threads: usize,
    /// Why some thread may not have been lowered, if so.
    pub problem: Option<String>,
    pub session: Session,
}

/// What happened to the session's autogroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// Its nice is now at least the one asked for.
    Lowered,
    /// This process does not lead its session: the group is a terminal's or a supervisor's,
    /// not ours to change.
    NotLeader,
    /// The kernel does not group by session (then the threads' nice is all there is).
    NoAutogroups,
    /// Writing the group's nice failed (the threads' nice still holds).
    Failed(String),
}

impl fmt::Display for Lowered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nice {} (threads lowered: {}", self.nice, self.threads)?;
        if let Some(problem) = &self.problem {
            write!(f, "; {problem}")?;
        }
        f.write_str("); session: ")?;
        match &self.session {
            Session::Lowered => write!(f, "its autogroup lowered to nice {} too", self.nice),
            Session::NotLeader => f.write_str("not its leader, its autogroup left as it is"),
            Session::NoAutogroups => f.write_str("the kernel does not group by session"),
            Session::Failed(why) => write!(f, "its autogroup could not be lowered: {why}"),
        }
    }
}

/// Lowers every thread of this process, and its session's autogroup when it leads the session,
/// to at least `nice` (0 to [`LOWEST`]); raises nothing. Never fails: a priority that could not
/// be lowered is reported in [`Lowered`] (the service runs either way, only less politely).
pub fn lower(nice: i32) -> Lowered {
    let nice = nice.clamp(0, LOWEST);
    let mut lowered = Lowered {
        nice,
        threads: 0,
        problem: None,
        session: Session::NotLeader,
    };
    // The calling thread first (`None`: itself), which needs no /proc: at start-up it is
    // the only one, and every thread it starts inherits its nice.
    lowered.lower_thread(None);
    match std::fs::read_dir("/proc/self/task") {
        Ok(tasks) => {
            let me = gettid();
            let tids = tasks
                .filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok())
                .filter_map(Pid::from_raw)
                .filter(|tid| *tid != me);
            for tid in tids {
                lowered.lower_thread(Some(tid));
            }
        }
        Err(e) => lowered.problem = Some(format!("other threads not listed (/proc/self/task: {e})")),
    }
    lowered.session = lower_session(nice);
    lowered
}

impl Lowered {
    /// Whether everything that should have been lowered was (a session that is not ours, or a
    /// kernel without autogroups, is nothing to lower).
    pub fn is_complete(&self) -> bool {
        self.problem.is_none() && !matches!(self.session, Session::Failed(_))
    }

    /// Lowers one thread (None: the calling one) unless it is as low already.
    fn lower_thread(&mut self, tid: Option<Pid>) {
        // PRIO_PROCESS with a thread id sets that one thread's nice (Linux).
        let result = getpriority_process(tid).and_then(|current| {
            if current >= self.nice {
                Ok(false)
            } else {
                setpriority_process(tid, self.nice).map(|()| true)
            }
        });
        match result {
            Ok(changed) => self.threads += usize::from(changed),
            // The thread ended between the listing and now.
            Err(rustix::io::Errno::SRCH) => {}
            Err(e) => self.problem = Some(format!("a thread's nice could not be set: {e}")),
        }
    }
}

fn lower_session(nice: i32) -> Session {
    let enabled = std::fs::read_to_string(AUTOGROUP_ENABLED).is_ok_and(|flag| flag.trim() == "1");
    if !enabled {
        return Session::NoAutogroups;
    }
    if !leads_its_session() {
        return Session::NotLeader;
    }
    let current = std::fs::read_to_string(AUTOGROUP).map(|text| autogroup_nice(&text));
    match current {
        Ok(Some(current)) if current >= nice => Session::Lowered,
        Ok(_) => match std::fs::write(AUTOGROUP, nice.to_string()) {
            Ok(()) => Session::Lowered,
            Err(e) => Session::Failed(format!("writing {AUTOGROUP}: {e}")),
        },
        Err(e) => Session::Failed(format!("reading {AUTOGROUP}: {e}")),
    }
}

/// Whether this process leads its session. Read from /proc rather than asked with `getsid`:
/// where the session's leader is outside this PID namespace (a container started by a
/// runtime, some CI runners) the session id is 0, which rustix's `Pid` cannot hold — its
/// `getsid` panics there in a debug build. Both ids come from the one line, so they agree
/// even when /proc was mounted by another PID namespace than this process's.
fn leads_its_session() -> bool {
    let stat = std::fs::read_to_string(STAT).unwrap_or_default();
    matches!(stat_ids(&stat), Some(ids) if ids.session == ids.pid)
}

/// The ids in a `/proc/<pid>/stat` line that say whether the process leads its session.
#[derive(Debug, PartialEq, Eq)]
struct StatIds {
    pid: u32,
    /// 0 when the session's leader is outside the PID namespace of this /proc.
    session: u32,
}

/// Reads a `/proc/<pid>/stat` line: the pid first, the session the fourth field after the
/// command name, which is in parentheses and may hold spaces and parentheses itself.
fn stat_ids(stat: &str) -> Option<StatIds> {
    let (pid, rest) = stat.split_once(" (")?;
    let session = rest.rsplit_once(')')?.1.split_whitespace().nth(3)?;
    Some(StatIds {
        pid: pid.trim().parse().ok()?,
        session: session.parse().ok()?,
    })
}

/// The nice value in an autogroup line, `/autogroup-85 nice 0`.
pub fn autogroup_nice(line: &str) -> Option<i32> {
    line.split_whitespace()
        .skip_while(|word| *word != "nice")
        .nth(1)
        .and_then(|nice| nice.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_autogroup_line_gives_its_nice() {
        assert_eq!(autogroup_nice("/autogroup-85 nice 0\n"), Some(0));
        assert_eq!(autogroup_nice("/autogroup-17 nice 19"), Some(19));
        assert_eq!(autogroup_nice("/autogroup-17 nice -5"), Some(-5));
        assert_eq!(autogroup_nice("garbage"), None);
    }

    #[test]
    fn a_stat_line_gives_its_pid_and_session_even_outside_the_pid_namespace() {
        let ids = |pid, session| Some(StatIds { pid, session });
        assert_eq!(stat_ids("5047 (cat) R 5041 5041 4267 0 -1 4194304"), ids(5047, 4267));
        // A command name with spaces and a parenthesis of its own.
        assert_eq!(stat_ids("12 (a b) c)) S 1 12 12 0 -1"), ids(12, 12));
        // The session's leader is outside this PID namespace.
        assert_eq!(stat_ids("1 (hookrouter) S 0 1 0 0 -1"), ids(1, 0));
        assert_eq!(stat_ids("garbage"), None);
    }

    #[test]
    fn the_report_says_what_was_left_alone() {
        let lowered = Lowered {
            nice: 19,
            threads: 3,
            problem: None,
            session: Session::NotLeader,
        };
        assert_eq!(
            lowered.to_string(),
            "nice 19 (threads lowered: 3); session: not its leader, its autogroup left as it is"
        );
    }
}
