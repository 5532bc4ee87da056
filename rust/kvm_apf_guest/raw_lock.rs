// SPDX-License-Identifier: GPL-2.0

//! A `raw_spinlock_t` taken with interrupts saved and disabled, as a
//! [`Lock`] backend: the kernel crate has none, and the sleeper tables are
//! taken in per-CPU interrupt handlers, which are never threaded, so a
//! `spinlock_t` (a sleeping lock on PREEMPT_RT) is not allowed there
//! (lockdep: "Invalid wait context"). The same reason makes the driver
//! wake sleepers with `wake_up_process()` rather than a wait queue.

use kernel::bindings;
use kernel::ffi::{
    c_char,
    c_ulong, //
};
use kernel::sync::lock::Backend;
use kernel::sync::lock::Lock;

use crate::ffi;

/// A raw spinlock with interrupts disabled while held.
pub(crate) type RawSpinLockIrq<T> = Lock<T, RawSpinLockIrqBackend>;

/// The backend of [`RawSpinLockIrq`]; the guard state is the saved
/// interrupt flags.
pub(crate) struct RawSpinLockIrqBackend;

// SAFETY: `raw_spin_lock_irqsave()` gives mutual exclusion; `unlock`
// restores the flags `lock` saved; `relock` keeps the default, which locks
// again and saves new flags.
unsafe impl Backend for RawSpinLockIrqBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        _name: *const c_char,
        _key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: `ptr` is valid for writes (the trait's contract). The
        // shim gives every table one lock class of its own.
        unsafe { ffi::kvm_apf_guest_shim_raw_lock_init(ptr) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: `ptr` is an initialised lock (the trait's contract).
        unsafe { ffi::kvm_apf_guest_shim_raw_lock(ptr) }
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        let mut flags: c_ulong = 0;
        // SAFETY: `ptr` is an initialised lock; `flags` is writable.
        if unsafe { ffi::kvm_apf_guest_shim_raw_trylock(ptr, &mut flags) } {
            Some(flags)
        } else {
            None
        }
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // SAFETY: the caller holds the lock, locked with these flags.
        unsafe { ffi::kvm_apf_guest_shim_raw_unlock(ptr, *guard_state) }
    }

    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: `ptr` is an initialised lock.
        unsafe { ffi::kvm_apf_guest_shim_raw_assert_held(ptr) }
    }
}
