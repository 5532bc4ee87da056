// SPDX-License-Identifier: GPL-2.0

//! Host build of the kvm_apf pure logic: the files in `rust/logic/` as they
//! are compiled into the kernel module, re-exported for `cargo test`.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[path = "../../logic/completion_queue.rs"]
pub mod completion_queue;
#[path = "../../logic/config.rs"]
pub mod config;
#[path = "../../logic/gfn_table.rs"]
pub mod gfn_table;
#[path = "../../logic/guest_abi.rs"]
pub mod guest_abi;
#[path = "../../logic/hypercall.rs"]
pub mod hypercall;
#[path = "../../logic/record.rs"]
pub mod record;
#[path = "../../logic/sdei.rs"]
pub mod sdei;
#[path = "../../logic/sleepers.rs"]
pub mod sleepers;
#[path = "../../logic/token.rs"]
pub mod token;
#[path = "../../logic/vcpu_state.rs"]
pub mod vcpu_state;
#[path = "../../logic/vm_ready.rs"]
pub mod vm_ready;
