// SPDX-License-Identifier: GPL-2.0

//! libFuzzer entry point of `kvm_apf_logic_fuzz::hypercall_decode` (see `bodies.rs`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_apf_logic_fuzz::hypercall_decode(data));
