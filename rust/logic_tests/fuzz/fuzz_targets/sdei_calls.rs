// SPDX-License-Identifier: GPL-2.0

//! libFuzzer target `sdei_calls`: the fuzzer's bytes become a sequence of
//! SDEI calls (SMC64 and SMC32 function ids, reserved ones, foreign ones),
//! fault-path raises and entries, completions, vCPU resets and migrations
//! (also of corrupted saved states) on one vCPU's
//! `kvm_apf_logic::sdei::SdeiState`; after every step the state's
//! invariants and the documented answers are checked, panicking on any
//! disagreement.
//!
//! The body is in this file rather than in `bodies.rs`: `tests/fuzz_corpus.rs`
//! (corpus replay) and `tests/sdei.rs` (a proptest over random bytes)
//! include it with `#[path]`; there, built with `cfg(test)`, it is a plain
//! module without the libFuzzer entry point.

#![cfg_attr(not(test), no_main)]

use kvm_apf_logic::sdei::*;

#[cfg(not(test))]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sdei_calls(data));

/// Reads the fuzzer's bytes; past the end every read is 0.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }

    fn byte0(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    fn word(&mut self) -> u64 {
        let mut w = [0u8; 8];
        for b in w.iter_mut() {
            *b = self.byte0();
        }
        u64::from_le_bytes(w)
    }

    /// An argument register: mostly values that matter to some call.
    fn arg(&mut self) -> u64 {
        match self.byte0() % 14 {
            0 => 0,
            1 | 2 => u64::from(ASYNC_PF_EVENT),
            3 => u64::from(ASYNC_PF_EVENT) | 1 << 32,
            4 => 0x4008_0000,
            5 => 0x4008_0002,
            6 => 1,
            7 => 2,
            8 => 17,
            9 => 18,
            10 => u64::MAX,
            11 => 1020,
            12 => 0x1_4008_0000,
            _ => self.word(),
        }
    }

    /// An interrupted context, mostly in a valid mode.
    fn context(&mut self) -> Context {
        let seed = self.word();
        let mut x = [0u64; SAVED_REGS];
        for (i, r) in x.iter_mut().enumerate() {
            *r = seed.rotate_left(i as u32) ^ i as u64;
        }
        let mode = match self.byte0() % 7 {
            0 => PSR_MODE_EL0T,
            1 => PSR_MODE_EL1T,
            2 => PSR_MODE_EL1H,
            3 => PSR_MODE_USR32,
            4 => PSR_MODE_EL2H,
            5 => 0x13,
            _ => u64::from(self.byte0()),
        };
        Context {
            x,
            pc: seed & !3,
            pstate: (seed & !PSR_MODE_MASK & 0xffff_ffff) | mode,
        }
    }
}

/// The invariants of `SdeiState`, and that its saved form restores to the
/// same state.
pub fn check_invariants(s: &SdeiState) {
    assert!(
        !s.is_enabled() || s.is_registered(),
        "enabled but not registered: {s:?}"
    );
    assert!(
        !s.is_pending()
            || (s.is_registered() && s.is_enabled() && !s.is_masked() && !s.is_running()),
        "pending but not deliverable: {s:?}"
    );
    assert_eq!(s.is_running(), s.context().is_some());
    let want_status = (u64::from(s.is_registered()) * STATUS_REGISTERED)
        | (u64::from(s.is_enabled()) * STATUS_ENABLED)
        | (u64::from(s.is_running()) * STATUS_RUNNING);
    assert_eq!(s.status(), want_status);
    if s.is_registered() {
        assert!(
            s.entry_point() != 0 && s.entry_point().is_multiple_of(4),
            "{s:?}"
        );
    } else {
        assert_eq!((s.entry_point(), s.entry_arg()), (0, 0), "{s:?}");
    }
    if let Some(ctx) = s.context() {
        assert!(s.client_el().is_interruptible_mode(ctx.pstate), "{s:?}");
    }
    let d = s.deliverable();
    assert_eq!(
        d.is_ok(),
        s.is_registered() && s.is_enabled() && !s.is_masked() && !s.is_running() && !s.is_pending()
    );
    let mut t = SdeiState::new(s.client_el());
    assert_eq!(t.restore(&s.save()), Ok(()), "{s:?}");
    assert_eq!(&t, s);
}

/// One raw call; checks what can be said of any answer.
fn call(s: &mut SdeiState, fid: u32, args: &[u64; 5]) {
    let before = *s;
    let num = fid & FN_NUM_MASK;
    let sdei = fid & !FN_NUM_MASK == FN_BASE_SMC64 || fid & !FN_NUM_MASK == FN_BASE_SMC32;
    let Some(r) = s.handle_raw(fid, args) else {
        assert!(!sdei, "{fid:#x} not decoded");
        assert_eq!(*s, before);
        return;
    };
    assert!(sdei, "{fid:#x} decoded");
    match r {
        CallResult::Return([x0, x1, x2, x3]) => {
            assert_eq!((x1, x2, x3), (0, 0, 0));
            if num > func::LAST {
                assert_eq!(x0 as i64, NOT_SUPPORTED);
                assert_eq!(*s, before);
            }
            if num == func::EVENT_COMPLETE || num == func::EVENT_COMPLETE_AND_RESUME {
                assert_eq!(x0 as i64, DENIED);
                assert_eq!(*s, before);
            }
            if num == func::VERSION {
                assert_eq!(x0, VERSION);
            }
        }
        CallResult::Complete(c) => {
            let ctx = before.context().copied();
            assert!(ctx.is_some(), "completed without a running handler");
            assert!(!s.is_running());
            let ctx = ctx.unwrap_or_default();
            assert_eq!(c.x, ctx.x);
            match num {
                func::EVENT_COMPLETE => {
                    assert_eq!((c.pc, c.pstate, c.irq), (ctx.pc, ctx.pstate, None));
                }
                func::EVENT_COMPLETE_AND_RESUME => {
                    assert_eq!(c.pstate, s.client_el().handler_pstate());
                    assert_eq!(
                        c.irq,
                        Some(IrqFrame {
                            elr: ctx.pc,
                            spsr: ctx.pstate
                        })
                    );
                    let resume = if fid & !FN_NUM_MASK == FN_BASE_SMC32 {
                        args[0] & 0xffff_ffff
                    } else {
                        args[0]
                    };
                    assert_eq!(c.pc, resume);
                    assert!(c.pc != 0 && c.pc.is_multiple_of(4));
                }
                _ => panic!("completion from function {num:#x}"),
            }
        }
    }
}

/// The fuzz target body.
pub fn sdei_calls(data: &[u8]) {
    let mut r = Bytes { data, pos: 0 };
    let el = if r.byte0() & 1 == 0 {
        ClientEl::El1
    } else {
        ClientEl::El2
    };
    let mut s = SdeiState::new(el);
    check_invariants(&s);
    let mut steps = 0;
    while let Some(op) = r.byte() {
        steps += 1;
        if steps > 4096 {
            break;
        }
        match op % 10 {
            0..=4 => {
                let n = u32::from(r.byte0());
                let fid = match n % 66 {
                    k @ 0..=31 => FN_BASE_SMC64 + k,
                    k @ 32..=63 => FN_BASE_SMC32 + (k - 32),
                    64 => FN_BASE_SMC64 + 0x20,
                    _ => 0x8400_0000,
                };
                let args = [r.arg(), r.arg(), r.arg(), r.arg(), r.arg()];
                call(&mut s, fid, &args);
            }
            5 => {
                let before = s;
                let d = s.deliverable();
                let raised = s.raise();
                assert_eq!(d, raised);
                if raised.is_ok() {
                    assert!(s.is_pending());
                    assert_eq!(s.deliverable(), Err(NotDeliverable::Pending));
                    assert_eq!(s.raise(), Err(NotDeliverable::Pending));
                } else {
                    assert_eq!(s, before);
                }
            }
            6 => {
                let before = s;
                let ctx = r.context();
                match s.enter(&ctx) {
                    Ok(e) => {
                        assert!(before.deliverable().is_ok() || before.is_pending());
                        assert_eq!(
                            e.x,
                            [
                                u64::from(ASYNC_PF_EVENT),
                                before.entry_arg(),
                                ctx.pc,
                                ctx.pstate
                            ]
                        );
                        assert_eq!(e.pc, before.entry_point());
                        assert_eq!(e.pstate, s.client_el().handler_pstate());
                        assert_eq!(s.context(), Some(&ctx));
                        assert!(!s.is_pending());
                    }
                    Err(_) => assert_eq!(s, before),
                }
            }
            7 => {
                s.reset();
                assert_eq!(s, SdeiState::new(el));
            }
            8 => {
                let mut raw = s.save();
                let word = usize::from(r.byte0() % 32);
                let flip = r.word();
                let bytes = zerocopy_bytes(&mut raw);
                let at = word * 8;
                if let Some(chunk) = bytes.get_mut(at..at + 8) {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(chunk);
                    chunk.copy_from_slice(&(u64::from_le_bytes(w) ^ flip).to_le_bytes());
                }
                let mut t = s;
                match t.restore(&raw) {
                    Ok(()) => {
                        assert_eq!(t.save(), raw, "restore accepted a non-canonical state");
                        check_invariants(&t);
                        s = t;
                    }
                    Err(_) => assert_eq!(t, s),
                }
            }
            _ => {
                let before = s;
                let resume = r.arg();
                let done = if r.byte0() & 1 == 0 {
                    s.complete()
                } else {
                    s.complete_and_resume(resume)
                };
                match done {
                    Ok(_) => assert!(before.is_running() && !s.is_running()),
                    Err(e) => {
                        assert_eq!(e, SdeiError::Denied);
                        assert_eq!(s, before);
                    }
                }
            }
        }
        check_invariants(&s);
    }
}

/// The saved state as bytes (little-endian host assumed for the flip,
/// which only needs to change some bits).
fn zerocopy_bytes(raw: &mut SdeiSaved) -> &mut [u8] {
    zerocopy::IntoBytes::as_mut_bytes(raw)
}
