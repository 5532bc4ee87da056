// SPDX-License-Identifier: GPL-2.0

//! libFuzzer entry point of `kvm_apf_logic_fuzz::vm_ready_model` (see `bodies.rs`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_apf_logic_fuzz::vm_ready_model(data));
