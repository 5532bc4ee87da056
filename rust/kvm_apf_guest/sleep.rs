// SPDX-License-Identifier: GPL-2.0

//! The sleep of a task on a token: queued by the not-present handler as a
//! task_work that runs on the task's way back to user mode, on whatever
//! CPU the task runs by then, and that waits in the table of the vCPU that
//! announced the token.

use core::ptr;
use kernel::bindings;
use kernel::bindings::callback_head;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::types::Opaque;

use crate::cpu::wait;
use crate::cpu::CpuState;
use crate::cpu::Waited;
use crate::cpu::NO_TIMEOUT;
use crate::ffi;
use crate::logic::sleepers::SleepEnd;
use crate::logic::sleepers::SleepStart;
use crate::stats::Stats;

/// The task_work of one sleeper entry, preallocated: the interrupt handler
/// allocates nothing.
///
/// # Invariants
///
/// `owner` points to the [`CpuState`] whose `works[index]` this is (set
/// once by [`CpuState::new`]); `head` is first, so a pointer to it is a
/// pointer to the `SleepWork`.
#[repr(C)]
pub(crate) struct SleepWork {
    head: Opaque<callback_head>,
    pub(crate) owner: *const CpuState,
    index: usize,
    /// The task the work is queued on (set by the not-present handler,
    /// under the table lock).
    pub(crate) task: Atomic<*mut bindings::task_struct>,
}

// SAFETY: `owner` is only dereferenced by the task_work callback, while the
// module reference of the queued work keeps the `CpuState` alive; `head` is
// only touched by `task_work_add()`/`task_work_run()`, one owner at a time
// (the entry is in use from queueing until the callback frees it).
unsafe impl Send for SleepWork {}
// SAFETY: as for `Send`; shared references only read `index` and `owner`.
unsafe impl Sync for SleepWork {}

impl SleepWork {
    /// The work of entry `index`, not linked yet.
    pub(crate) fn new(index: usize) -> Self {
        Self {
            head: Opaque::uninit(),
            owner: ptr::null(),
            index,
            task: Atomic::new(ptr::null_mut()),
        }
    }

    /// Queues the sleep on the current task, to run before it returns to
    /// user mode. The caller took entry `index` for it and frees it again
    /// if this fails.
    pub(crate) fn queue(&self) -> Result {
        // SAFETY: `head` is not queued: its entry was free until the caller
        // took it. It stays valid until the callback ran (`works` is never
        // reallocated and the module reference the shim takes keeps it).
        kernel::error::to_result(unsafe { ffi::kvm_apf_guest_shim_queue_sleep(self.head.get()) })
    }
}

impl CpuState {
    /// The task_work of entry `idx`: sleep until page-ready, `WAKE_ALL`, or
    /// a signal. The entry is freed before returning, in every case.
    pub(crate) fn sleep(&self, idx: usize) {
        let table = self.table.lock();
        let mut table = table;
        match table.begin_sleep(idx) {
            Ok(SleepStart::Wait) => {}
            Ok(SleepStart::ReadyBeforeSleep) => return,
            Err(_) => {
                drop(table);
                pr_warn!(
                    "cpu {}: sleep on entry {} that is not queued\n",
                    self.cpu,
                    idx
                );
                return;
            }
        }
        Stats::inc(&self.stats.sleeps);
        Stats::inc(&self.stats.asleep);
        // SAFETY: reads the current task's flags; no precondition.
        let exiting = unsafe { ffi::kvm_apf_guest_shim_current_exiting() };
        if !exiting {
            // On a signal, return to deliver it: the access is made again
            // afterwards and blocks in the host if the page is still not
            // there.
            let (t, _how): (_, Waited) =
                wait(&self.table, table, true, NO_TIMEOUT, |t| t.is_woken(idx));
            table = t;
        }
        let end = table.end_sleep(idx);
        drop(table);
        Stats::dec(&self.stats.asleep);
        if end == Ok(SleepEnd::Interrupted) {
            Stats::inc(&self.stats.interrupted);
        }
    }
}

/// Called by `kvm_apf_guest_task_work()` (`c_shim/kvm_apf_guest_entry.S`),
/// which drops the module reference of the work once this returns.
///
/// # Safety
///
/// `head` is the `head` of a [`SleepWork`] queued by [`SleepWork::queue`]
/// and now run by `task_work_run()`, exactly once.
#[no_mangle]
unsafe extern "C" fn kvm_apf_guest_rs_task_work(head: *mut callback_head) {
    // SAFETY: `head` is the first field of a `repr(C)` `SleepWork` (type
    // invariant), which is valid while its work is queued or running.
    let work = unsafe { &*head.cast::<SleepWork>() };
    // SAFETY: `owner` was linked before any work was queued and the
    // `CpuState` lives until module exit, which waits for this callback's
    // module reference.
    let cpu = unsafe { &*work.owner };
    // Nothing in `work` is used after this: once `sleep` frees the entry,
    // the handler may queue `head` again.
    cpu.sleep(work.index);
}
