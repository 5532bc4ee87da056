// SPDX-License-Identifier: GPL-2.0
//! Signals: SIGINT, SIGTERM and SIGHUP are blocked in every thread and
//! collected by the main thread with `sigtimedwait`, so that a kill stops
//! the VM in order; a no-op handler for the kick signal makes a vCPU
//! thread's `KVM_RUN` return `EINTR` when the main thread wants it to stop.

use std::time::Duration;

use crate::error::Error;
use crate::error::Result;

/// The signal that kicks a vCPU thread out of `KVM_RUN`.
pub const KICK: libc::c_int = libc::SIGUSR1;

/// The set of terminating signals that the main thread collects.
#[derive(Clone, Copy)]
pub struct Termination(libc::sigset_t);

extern "C" fn on_kick(_sig: libc::c_int) {}

/// Blocks the terminating signals in the calling thread, and so in every
/// thread it starts afterwards, and installs the kick handler (without
/// `SA_RESTART`, so `KVM_RUN` returns `EINTR`).
pub fn setup() -> Result<Termination> {
    // SAFETY: a zeroed sigset_t is a valid argument for sigemptyset, which
    // initialises it; the signal numbers are valid.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    };
    // SAFETY: `set` is initialised; the old mask is not asked for.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(Error::new(format!(
            "pthread_sigmask: {}",
            std::io::Error::from_raw_os_error(r)
        )));
    }
    // SAFETY: installs a handler that does nothing (so is async-signal-safe)
    // for a signal no other part of the program uses; `sa` is fully
    // initialised (zeroed, then its fields set).
    let r = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_kick as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(KICK, &sa, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(Error::last_os("sigaction"));
    }
    Ok(Termination(set))
}

impl Termination {
    /// Waits up to `timeout` for a terminating signal; returns it, if one came.
    pub fn wait(&self, timeout: Duration) -> Option<libc::c_int> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `self.0` is an initialised set blocked in this thread; no
        // siginfo is asked for; `ts` is live.
        let r = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
        (r > 0).then_some(r)
    }
}

/// Sends the kick signal to a thread of this process.
pub fn kick(thread: libc::pthread_t) {
    // SAFETY: `thread` is a thread of this process that has not been joined
    // yet (the caller holds its JoinHandle), so the id is valid.
    unsafe { libc::pthread_kill(thread, KICK) };
}

/// The name of a terminating signal.
pub fn name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}
