//! Threads that work beside request handling (writing users rows,
//! checkpointing the SQLite log) and give way to it.

/// Starts the thread `name` running `body`, scheduled so that it never takes
/// the core from the thread that woke it (see [`give_way`]).
pub(crate) fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(|| {
            give_way();
            body()
        })
        .unwrap_or_else(|err| panic!("cannot start the {name} thread: {err}"))
}

/// Makes the calling thread `SCHED_BATCH` on Linux: woken by a request's
/// job, it waits for its turn instead of preempting the worker that queued
/// the job. Where both share a core, the worker goes on reading the
/// requests it has already received, and the background thread then finds
/// their jobs all queued together instead of one at a time. It still gets
/// its fair share of the core. Elsewhere (or if refused) nothing changes.
fn give_way() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` lives through the call; pid 0 is the calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            log::debug!("SCHED_BATCH refused: {}", std::io::Error::last_os_error());
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn a_background_thread_runs_as_sched_batch() {
        let (policy, seen) = std::sync::mpsc::channel();
        super::spawn("policy-probe", move || {
            // SAFETY: no arguments beyond the calling thread's pid 0.
            let _ = policy.send(unsafe { libc::sched_getscheduler(0) });
        });
        assert_eq!(seen.recv().unwrap(), libc::SCHED_BATCH);
    }
}
