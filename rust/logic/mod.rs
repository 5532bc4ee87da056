// SPDX-License-Identifier: GPL-2.0

//! Pure logic of the async page fault modules (the host's `kvm_apf` and
//! the guest's `kvm_apf_guest`): no `kernel` crate, only
//! `core` and `zerocopy`, so the same files also build as the host crate
//! `rust/logic_tests` for `cargo test` and property tests.

// The items are `pub` because these files are also the public API of the
// host test crate; in the module they sit in a private module, and the glue
// uses only part of them (the rest is covered by the host tests).
#![allow(unreachable_pub, dead_code)]

pub(crate) mod completion_queue;
pub(crate) mod config;
pub(crate) mod gfn_table;
pub(crate) mod guest_abi;
pub(crate) mod hypercall;
pub(crate) mod record;
pub(crate) mod sdei;
pub(crate) mod sleepers;
pub(crate) mod token;
pub(crate) mod vcpu_state;
pub(crate) mod vm_ready;
