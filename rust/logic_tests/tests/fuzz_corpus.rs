// SPDX-License-Identifier: GPL-2.0

//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) through the
//! fuzz targets' bodies, so that every input libFuzzer kept, and every
//! crash it once found, is checked again by each `cargo test`.

#[path = "../fuzz/bodies.rs"]
mod bodies;
#[path = "../fuzz/fuzz_targets/sdei_calls.rs"]
mod sdei_calls;

use std::fs;
use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        body(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus for {target}");
}

#[test]
fn hypercall_decode_corpus() {
    replay("hypercall_decode", bodies::hypercall_decode);
}

#[test]
fn vmm_input_corpus() {
    replay("vmm_input", bodies::vmm_input);
}

#[test]
fn vcpu_state_model_corpus() {
    replay("vcpu_state_model", bodies::vcpu_state_model);
}

#[test]
fn vm_ready_model_corpus() {
    replay("vm_ready_model", bodies::vm_ready_model);
}

#[test]
fn sdei_calls_corpus() {
    replay("sdei_calls", sdei_calls::sdei_calls);
}
