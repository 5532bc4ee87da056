// SPDX-License-Identifier: GPL-2.0

//! Per-CPU state and its lifecycle: the record, the sleeper table and the
//! wait queue of one vCPU, registered from the CPU-hotplug online
//! callback and torn down from the offline callback (also run for every
//! CPU at module unload), or stopped at once at reboot and kexec.

use core::mem::ManuallyDrop;
use core::pin::Pin;
use core::ptr;
use kernel::bindings;
use kernel::ffi::c_long;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::lock::Guard;
use kernel::task::Task;

use crate::ffi;
use crate::hvc;
use crate::logic::hypercall::ENABLE_NOTIFY_EL1;
use crate::logic::hypercall::SUCCESS_RET;
use crate::logic::record::RECORD_ALIGN;
use crate::logic::record::RECORD_VERSION;
use crate::logic::sleepers::Entry;
use crate::logic::sleepers::SleeperTable;
use crate::raw_lock::RawSpinLockIrq;
use crate::raw_lock::RawSpinLockIrqBackend;
use crate::record::Record;
use crate::sleep::SleepWork;
use crate::stats::Stats;

/// How long the offline callback waits for the `WAKE_ALL` of its
/// `DISABLE` before it wakes the sleepers itself.
const WAKE_ALL_TIMEOUT_MS: u32 = 1000;

/// The storage of a sleeper table: allocated once, never resized.
pub(crate) struct Entries(KVec<Entry>);

impl Entries {
    /// `n` free entries.
    pub(crate) fn free(n: usize) -> Result<Self> {
        let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
        v.resize(n, Entry::Free, GFP_KERNEL)?;
        Ok(Self(v))
    }
}

impl AsRef<[Entry]> for Entries {
    fn as_ref(&self) -> &[Entry] {
        &self.0
    }
}

impl AsMut<[Entry]> for Entries {
    fn as_mut(&mut self) -> &mut [Entry] {
        &mut self.0
    }
}

/// A vCPU's sleeper table with kernel storage.
pub(crate) type Table = SleeperTable<Entries>;

/// The table, locked.
pub(crate) type TableGuard<'a> = Guard<'a, Table, RawSpinLockIrqBackend>;

/// How a [`wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The condition holds.
    Done,
    /// A signal is pending (interruptible waits only).
    Signal,
    /// The timeout expired.
    Timeout,
}

/// No timeout, for [`wait`].
pub(crate) const NO_TIMEOUT: c_long = c_long::MAX;

/// Sleeps until `done` holds for the table, a signal comes (if
/// `interruptible`), or `timeout` jiffies passed. The waker changes the
/// table under its lock and then calls `wake_up_process()` on the task
/// (also under the lock): the state is set before the condition is checked
/// under the lock, so such a wake-up is never lost.
pub(crate) fn wait<'a>(
    lock: &'a RawSpinLockIrq<Table>,
    mut guard: TableGuard<'a>,
    interruptible: bool,
    mut timeout: c_long,
    done: impl Fn(&Table) -> bool,
) -> (TableGuard<'a>, Waited) {
    let how = loop {
        // SAFETY: sets the current task's state; no precondition.
        unsafe { ffi::kvm_apf_guest_shim_set_current_state(interruptible) };
        if done(&guard) {
            break Waited::Done;
        }
        if interruptible && kernel::current!().signal_pending() {
            break Waited::Signal;
        }
        if timeout <= 0 {
            break Waited::Timeout;
        }
        drop(guard);
        // SAFETY: process context, no lock held; the state set above.
        timeout = unsafe { bindings::schedule_timeout(timeout) };
        guard = lock.lock();
    };
    // SAFETY: as above.
    unsafe { ffi::kvm_apf_guest_shim_set_current_running() };
    (guard, how)
}

/// One vCPU's side of the ABI.
///
/// # Invariants
///
/// - `record` is a valid allocation while `self` lives, and is never freed
///   while the host may write it: [`PinnedDrop`] leaks it if it is still
///   registered.
/// - `works` is never reallocated, so a queued task_work's
///   `callback_head` stays where it was queued; `works[i]` belongs to
///   entry `i` of `table`, and `works[i].owner` points to `self`.
#[pin_data(PinnedDrop)]
pub(crate) struct CpuState {
    /// CPU number, for messages.
    pub(crate) cpu: u32,
    /// The record registered for this vCPU.
    record: ManuallyDrop<KBox<Record>>,
    /// Who waits on which token of this vCPU. Taken by the handlers (on
    /// this CPU, interrupts masked) and by sleeping tasks (anywhere).
    #[pin]
    pub(crate) table: RawSpinLockIrq<Table>,
    /// The task waiting for a `WAKE_ALL` (the offline callback), or null;
    /// changed under the table lock.
    waiter: Atomic<*mut bindings::task_struct>,
    /// The task_work of each entry.
    pub(crate) works: KVec<SleepWork>,
    /// The record is registered with the host (set and cleared on this
    /// CPU; read by the handlers).
    pub(crate) registered: Atomic<bool>,
    /// `ENABLE` succeeded and no `DISABLE` was made since.
    enabled: Atomic<bool>,
    /// Where the counters go.
    pub(crate) stats: &'static Stats,
}

impl CpuState {
    /// The state of `cpu`, with `entries` sleeper entries, linked
    /// (`works[i].owner`) to its final place.
    pub(crate) fn new(cpu: u32, entries: usize, stats: &'static Stats) -> Result<Pin<KBox<Self>>> {
        let storage = Entries::free(entries)?;
        let mut works = KVec::with_capacity(entries, GFP_KERNEL)?;
        for i in 0..entries {
            works.push(SleepWork::new(i), GFP_KERNEL)?;
        }
        let record = KBox::new(Record::zeroed(), GFP_KERNEL)?;
        let mut this = KBox::pin_init(
            pin_init!(Self {
                cpu,
                record: ManuallyDrop::new(record),
                table <- RawSpinLockIrq::new(
                    SleeperTable::new(storage),
                    kernel::optional_name!("kvm_apf_guest_table"),
                    kernel::static_lock_class!(),
                ),
                waiter: Atomic::new(ptr::null_mut()),
                works,
                registered: Atomic::new(false),
                enabled: Atomic::new(false),
                stats,
            }),
            GFP_KERNEL,
        )?;
        let owner: *const Self = &*this;
        // INVARIANT: `works` is not pinned (only `table` is);
        // it is linked once, to the address `this` keeps until dropped.
        for w in this.as_mut().project().works.iter_mut() {
            w.owner = owner;
        }
        Ok(this)
    }

    /// The record.
    pub(crate) fn record(&self) -> &Record {
        &self.record
    }

    /// Online callback: zeroed record, `SET_RECORD`, interrupts, `ENABLE`.
    /// Runs on this CPU. A refusal leaves the CPU without the feature (and
    /// says so); it does not fail the CPU's bring-up.
    pub(crate) fn online(&self) {
        if self.enabled.load(Relaxed) {
            return;
        }
        let record = self.record();
        record.clear();
        // SAFETY: `record` is kmalloc memory, in the linear map.
        let pa = unsafe { ffi::kvm_apf_guest_shim_virt_to_phys((record as *const Record).cast()) };
        // The type's alignment makes this hold; the host would refuse it.
        if pa % RECORD_ALIGN != 0 {
            pr_warn!(
                "cpu {}: record at {:#x} not 64-byte aligned, not enabled\n",
                self.cpu,
                pa
            );
            return;
        }
        let ret = hvc::set_record(pa);
        if ret != SUCCESS_RET {
            pr_warn!(
                "cpu {}: SET_RECORD refused ({:#x}), not enabled\n",
                self.cpu,
                ret
            );
            return;
        }
        if record.version() != RECORD_VERSION {
            pr_warn!(
                "cpu {}: record version {} (expected {})\n",
                self.cpu,
                record.version(),
                RECORD_VERSION
            );
        }
        self.registered.store(true, Relaxed);
        // SAFETY: on this CPU, with the interrupts requested.
        unsafe { ffi::kvm_apf_guest_shim_enable_local_irqs() };
        let notify_el1 = crate::module_parameters::notify_el1.value();
        let mut ret = hvc::enable(if notify_el1 { ENABLE_NOTIFY_EL1 } else { 0 });
        if ret != SUCCESS_RET && notify_el1 {
            pr_info!(
                "cpu {}: NOTIFY_EL1 refused ({:#x}), user mode only\n",
                self.cpu,
                ret
            );
            ret = hvc::enable(0);
        }
        if ret != SUCCESS_RET {
            pr_warn!(
                "cpu {}: ENABLE refused ({:#x}), not enabled\n",
                self.cpu,
                ret
            );
            self.unregister();
            return;
        }
        self.enabled.store(true, Relaxed);
        Stats::inc(&self.stats.enabled_cpus);
    }

    /// Unregisters the record and stops taking this CPU's interrupts.
    fn unregister(&self) {
        if self.registered.load(Relaxed) {
            let ret = hvc::unregister();
            if ret == SUCCESS_RET {
                self.registered.store(false, Relaxed);
            } else {
                // Still registered: the record is leaked at drop.
                pr_warn!(
                    "cpu {}: unregistering the record failed ({:#x})\n",
                    self.cpu,
                    ret
                );
            }
        }
        // SAFETY: on this CPU (or on each CPU at reboot), with the
        // interrupts requested; disabling twice is harmless.
        unsafe { ffi::kvm_apf_guest_shim_disable_local_irqs() };
    }

    /// Wakes the task sleeping on entry `idx`, which the caller just marked
    /// woken. Called with the table lock held (from the closure a marking
    /// method of the locked table calls): the task cannot end its sleep,
    /// and free the entry, before it took the lock too.
    pub(crate) fn wake_entry(&self, idx: usize) {
        let Some(work) = self.works.get(idx) else {
            return;
        };
        let task = work.task.load(Relaxed);
        if !task.is_null() {
            // SAFETY: the task sleeps on `idx` (it was marked woken from
            // sleeping under the lock we hold), so it is alive.
            unsafe { bindings::wake_up_process(task) };
        }
    }

    /// Wakes the task waiting for a `WAKE_ALL`, if any.
    pub(crate) fn wake_waiter(&self, _table: &TableGuard<'_>) {
        let task = self.waiter.load(Relaxed);
        if !task.is_null() {
            // SAFETY: the waiter clears the pointer under the lock we hold
            // before it stops waiting, so it is alive.
            unsafe { bindings::wake_up_process(task) };
        }
    }

    /// Marks every entry and wakes the sleepers.
    pub(crate) fn wake_everyone(&self) {
        self.table.lock().wake_all(|idx| self.wake_entry(idx));
    }

    /// Offline callback (also at module unload): `DISABLE`, wait for its
    /// `WAKE_ALL`, unregister, wake whoever still sleeps. Runs on this CPU,
    /// in its hotplug thread, interrupts enabled.
    pub(crate) fn offline(&self) {
        // An exchange: the reboot IPI may stop this CPU at any point.
        if self.enabled.xchg(false, Relaxed) {
            Stats::dec(&self.stats.enabled_cpus);
            let table = self.table.lock();
            let before = table.wake_alls();
            // The page-ready handler wakes us at the WAKE_ALL; it cannot
            // run on this CPU before `wait` releases the lock.
            self.waiter.store(Task::current_raw(), Relaxed);
            let table = if hvc::disable() == SUCCESS_RET {
                let timeout = c_long::try_from(kernel::time::msecs_to_jiffies(WAKE_ALL_TIMEOUT_MS))
                    .unwrap_or(NO_TIMEOUT);
                let (table, how) = wait(&self.table, table, false, timeout, |t| {
                    t.wake_alls() != before
                });
                if how != Waited::Done {
                    pr_warn!(
                        "cpu {}: no WAKE_ALL after DISABLE, waking the sleepers\n",
                        self.cpu
                    );
                }
                table
            } else {
                table
            };
            self.waiter.store(ptr::null_mut(), Relaxed);
            drop(table);
        }
        self.unregister();
        self.wake_everyone();
    }

    /// Reboot and kexec: stops at once, interrupts masked (run on each CPU
    /// by an IPI). Unregistering drops the `WAKE_ALL` of `DISABLE`, so the
    /// sleepers are woken here.
    pub(crate) fn stop(&self) {
        // An exchange: the reboot IPI may stop this CPU at any point.
        if self.enabled.xchg(false, Relaxed) {
            Stats::dec(&self.stats.enabled_cpus);
            hvc::disable();
        }
        self.unregister();
        self.wake_everyone();
    }
}

#[pinned_drop]
impl PinnedDrop for CpuState {
    fn drop(self: Pin<&mut Self>) {
        let registered = self.registered.load(Relaxed);
        let this = self.project();
        if registered {
            // The host may still write it: leak it rather than free it.
            pr_warn!("record of cpu {} still registered, not freed\n", *this.cpu);
            return;
        }
        // SAFETY: not registered, so nothing writes the record any more,
        // and `record` is not used after this.
        unsafe { ManuallyDrop::drop(this.record) };
    }
}
