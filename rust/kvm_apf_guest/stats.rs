// SPDX-License-Identifier: GPL-2.0

//! Counters of what the driver did, read-only in
//! `/sys/kernel/debug/kvm_apf_guest/`, one file each. All are totals since
//! load except `asleep` and `enabled_cpus`, which are values now.

use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;

use crate::ffi;

/// The counters of one driver instance (the module's, or a KUnit test's).
pub(crate) struct Stats {
    /// Not-present notifications with a token.
    pub(crate) not_present: Atomic<u64>,
    /// Page-ready notifications with a token (not `WAKE_ALL`).
    pub(crate) page_ready: Atomic<u64>,
    /// `WAKE_ALL` notifications.
    pub(crate) wake_all: Atomic<u64>,
    /// Notifications whose token field read 0, or that came with no
    /// record registered.
    pub(crate) spurious: Atomic<u64>,
    /// Waits that returned at once: page-ready (or `WAKE_ALL`) came before
    /// the task slept, or even before its not-present was handled.
    pub(crate) ready_before_sleep: Atomic<u64>,
    /// Not-present taken in kernel mode: the field is handed back, the
    /// access blocks in the host.
    pub(crate) kernel_skipped: Atomic<u64>,
    /// Not-present with no free sleeper entry, or whose sleep could not be
    /// queued: the access blocks in the host.
    pub(crate) no_entry: Atomic<u64>,
    /// Page-ready for a token nobody waits on (its wait ended on a signal,
    /// or its not-present was not acted on).
    pub(crate) unmatched: Atomic<u64>,
    /// Tasks that slept.
    pub(crate) sleeps: Atomic<u64>,
    /// Sleeps ended by a signal rather than page-ready.
    pub(crate) interrupted: Atomic<u64>,
    /// Tasks asleep now.
    pub(crate) asleep: Atomic<u64>,
    /// CPUs with the feature enabled now.
    pub(crate) enabled_cpus: Atomic<u64>,
}

impl Stats {
    /// All zero.
    pub(crate) const fn new() -> Self {
        Self {
            not_present: Atomic::new(0),
            page_ready: Atomic::new(0),
            wake_all: Atomic::new(0),
            spurious: Atomic::new(0),
            ready_before_sleep: Atomic::new(0),
            kernel_skipped: Atomic::new(0),
            no_entry: Atomic::new(0),
            unmatched: Atomic::new(0),
            sleeps: Atomic::new(0),
            interrupted: Atomic::new(0),
            asleep: Atomic::new(0),
            enabled_cpus: Atomic::new(0),
        }
    }

    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &Atomic<u64>, n: u64) {
        counter.add(n, Relaxed);
    }

    /// Adds one to `counter`.
    pub(crate) fn inc(counter: &Atomic<u64>) {
        counter.add(1u64, Relaxed);
    }

    /// Takes one from `counter` (a value-now counter).
    pub(crate) fn dec(counter: &Atomic<u64>) {
        counter.fetch_sub(1u64, Relaxed);
    }

    /// Creates the debugfs directory with one file per counter.
    pub(crate) fn publish(&'static self) {
        let files = [
            (c"not_present", &self.not_present),
            (c"page_ready", &self.page_ready),
            (c"wake_all", &self.wake_all),
            (c"spurious", &self.spurious),
            (c"ready_before_sleep", &self.ready_before_sleep),
            (c"kernel_skipped", &self.kernel_skipped),
            (c"no_entry", &self.no_entry),
            (c"unmatched", &self.unmatched),
            (c"sleeps", &self.sleeps),
            (c"interrupted", &self.interrupted),
            (c"asleep", &self.asleep),
            (c"enabled_cpus", &self.enabled_cpus),
        ];
        // SAFETY: no precondition; undone by `unpublish`.
        unsafe { ffi::kvm_apf_guest_shim_debugfs_init() };
        for (name, counter) in files {
            // SAFETY: `name` is a static C string and `counter` a `'static`
            // `u64` (an `Atomic<u64>` has the layout of `u64`), which debugfs
            // reads with one 64-bit load. Both outlive the files: they are
            // removed by `unpublish` at module exit.
            unsafe { ffi::kvm_apf_guest_shim_debugfs_add(name.as_ptr(), counter.as_ptr()) };
        }
    }

    /// Removes the debugfs directory.
    pub(crate) fn unpublish() {
        // SAFETY: removes what `publish` created, if anything.
        unsafe { ffi::kvm_apf_guest_shim_debugfs_exit() };
    }
}

/// The module's counters.
pub(crate) static STATS: Stats = Stats::new();
