// SPDX-License-Identifier: GPL-2.0
//! `apf-vmm`: a small arm64 VMM on the rust-vmm crates that boots Linux
//! with guest RAM either present or served lazily through userfaultfd, and
//! that can enable KVM's asynchronous page faults (`KVM_CAP_ARM_ASYNC_PF`).
//!
//! Pure parts (arguments, device tree, PL011, latency, page-server
//! schedule, memory map) build and are tested on any host; the KVM parts
//! only on aarch64.

// Off aarch64 only the pure parts are used, by their tests.
#![cfg_attr(
    not(target_arch = "aarch64"),
    expect(dead_code, reason = "the KVM code that uses these is aarch64-only")
)]

mod apf;
mod args;
mod console;
mod error;
mod fdt;
mod latency;
mod layout;
mod marker;
mod page_server;
mod pause;
mod pl011;
mod remote;
mod schedule;
mod uffd;

#[cfg(target_arch = "aarch64")]
mod restore;
#[cfg(target_arch = "aarch64")]
mod signals;
#[cfg(target_arch = "aarch64")]
mod vcpu;
#[cfg(target_arch = "aarch64")]
mod vm;

use std::process::ExitCode;

use args::Command;

fn main() -> ExitCode {
    let cmd = match args::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("apf-vmm: error: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match cmd {
        Command::Help => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Run(cfg) => *cfg,
    };
    run(cfg)
}

#[cfg(target_arch = "aarch64")]
fn run(cfg: args::Config) -> ExitCode {
    match vm::run(&cfg) {
        Ok(outcome) => {
            eprintln!("{}", outcome.summary());
            ExitCode::from(outcome.exit_code())
        }
        Err(e) => {
            eprintln!("apf-vmm: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_arch = "aarch64"))]
fn run(_cfg: args::Config) -> ExitCode {
    eprintln!("apf-vmm: error: this VMM runs KVM guests on aarch64 hosts only");
    ExitCode::FAILURE
}
