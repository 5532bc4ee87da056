// SPDX-License-Identifier: GPL-2.0

//! Tests of the SDEI dispatcher state (`rust/logic/sdei.rs`): one row per
//! call and per bad argument, against DEN0054 (SDEI v1.1; the handler state
//! table is its section 6.1, as TF-A's `sdei_state.c` encodes it), the
//! delivery flows of the fault path, migration, and random sequences
//! against a model.

use kvm_apf_logic::sdei::*;
use proptest::prelude::*;

#[path = "../fuzz/fuzz_targets/sdei_calls.rs"]
mod fuzz_body;

const EV: u64 = 0x4040_0001;
const EP: u64 = 0x4008_1000;
const ARG: u64 = 0xdead_beef_0000_0001;

const fn fid(n: u32) -> u32 {
    FN_BASE_SMC64 + n
}

const fn fid32(n: u32) -> u32 {
    FN_BASE_SMC32 + n
}

fn ctx(seed: u64) -> Context {
    let mut x = [0u64; SAVED_REGS];
    for (i, r) in x.iter_mut().enumerate() {
        *r = seed * 0x100 + i as u64;
    }
    Context {
        x,
        pc: 0xffff_8000_1234_5670,
        pstate: 0x6000_0000 | PSR_MODE_EL1H,
    }
}

/// The states the table rows start from.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// Reset state: nothing registered, PE masked.
    Fresh,
    /// Registered, disabled, PE unmasked.
    Registered,
    /// Registered, enabled, PE unmasked: deliverable.
    Ready,
    /// The handler runs (entered from `ctx(1)`).
    Running,
    /// Unregistered while the handler runs.
    UnregPending,
}

fn setup(s: Setup) -> SdeiState {
    let mut st = SdeiState::new(ClientEl::El1);
    let ok = |r: CallResult| assert_eq!(r, CallResult::Return([0, 0, 0, 0]));
    if matches!(s, Setup::Fresh) {
        return st;
    }
    ok(st.handle_call(SdeiCall::PeUnmask));
    ok(st.handle_call(SdeiCall::EventRegister {
        event: ASYNC_PF_EVENT,
        entry_point: EP,
        ep_argument: ARG,
        flags: 0,
        affinity: 0,
    }));
    if matches!(s, Setup::Registered) {
        return st;
    }
    ok(st.handle_call(SdeiCall::EventEnable {
        event: ASYNC_PF_EVENT,
    }));
    if matches!(s, Setup::Ready) {
        return st;
    }
    assert!(st.enter(&ctx(1)).is_ok());
    if matches!(s, Setup::Running) {
        return st;
    }
    assert_eq!(
        st.handle_call(SdeiCall::EventUnregister {
            event: ASYNC_PF_EVENT
        }),
        CallResult::Return([PENDING as u64, 0, 0, 0])
    );
    st
}

fn x0(r: Option<CallResult>) -> i64 {
    match r {
        Some(CallResult::Return(regs)) => regs[0] as i64,
        other => panic!("not a plain return: {other:?}"),
    }
}

/// One row: from `setup`, the call `fid(args)` answers `want` in `x0`.
struct Row {
    setup: Setup,
    fid: u32,
    args: [u64; 5],
    want: i64,
    /// Status bits after the call.
    status: u64,
}

const R: u64 = STATUS_REGISTERED;
const E: u64 = STATUS_ENABLED;
const RUN: u64 = STATUS_RUNNING;

const fn row(setup: Setup, n: u32, args: [u64; 5], want: i64, status: u64) -> Row {
    Row {
        setup,
        fid: fid(n),
        args,
        want,
        status,
    }
}

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    use Setup::*;
    use func::*;
    const IP: i64 = INVALID_PARAMETERS;
    const A32: u64 = 0x0bad_cafe;
    vec![
        // SDEI_VERSION: 1.1, vendor bits[31:0] 0; bit 63 clear.
        row(Fresh, VERSION, [0; 5], kvm_apf_logic::sdei::VERSION as i64, 0),
        // SDEI_FEATURES (v1.1): BIND_SLOTS = 0 private, 0 shared slots.
        row(Fresh, FEATURES, [0, 0, 0, 0, 0], 0, 0),
        // SDEI_FEATURES: RELATIVE_MODE = 0, relative entry points unsupported.
        row(Fresh, FEATURES, [1, 0, 0, 0, 0], 0, 0),
        // SDEI_FEATURES: unknown feature.
        row(Fresh, FEATURES, [2, 0, 0, 0, 0], IP, 0),
        row(Fresh, FEATURES, [1 << 31, 0, 0, 0, 0], IP, 0),
        // SDEI_EVENT_REGISTER: success, the new registration is disabled
        // (state table 6.1: unregistered -> registered).
        row(Fresh, EVENT_REGISTER, [EV, EP, A32, 0, 0], 0, R),
        // REGISTER: RM_PE and an affinity mean nothing for a private event.
        row(Fresh, EVENT_REGISTER, [EV, EP, A32, REGISTER_RM_PE, 0xffff], 0, R),
        // REGISTER: unknown event number, event 0 (not offered).
        row(Fresh, EVENT_REGISTER, [EV + 1, EP, A32, 0, 0], IP, 0),
        row(Fresh, EVENT_REGISTER, [0, EP, A32, 0, 0], IP, 0),
        // REGISTER: relative mode (flags bit 1) not supported.
        row(Fresh, EVENT_REGISTER, [EV, EP, A32, REGISTER_RELATIVE, 0], IP, 0),
        // REGISTER: reserved flags bits[63:2].
        row(Fresh, EVENT_REGISTER, [EV, EP, A32, 1 << 2, 0], IP, 0),
        row(Fresh, EVENT_REGISTER, [EV, EP, A32, 1 << 63, 0], IP, 0),
        // REGISTER: invalid entry point (0, not an instruction address).
        row(Fresh, EVENT_REGISTER, [EV, 0, A32, 0, 0], IP, 0),
        row(Fresh, EVENT_REGISTER, [EV, EP + 2, A32, 0, 0], IP, 0),
        // REGISTER: already registered (6.1: only from unregistered).
        row(Registered, EVENT_REGISTER, [EV, EP, A32, 0, 0], DENIED, R),
        row(Running, EVENT_REGISTER, [EV, EP, A32, 0, 0], DENIED, R | E | RUN),
        // REGISTER: unregister pending (6.1: running, unregistered).
        row(UnregPending, EVENT_REGISTER, [EV, EP, A32, 0, 0], DENIED, RUN),
        // SDEI_EVENT_ENABLE: registered -> registered, enabled.
        row(Registered, EVENT_ENABLE, [EV, 0, 0, 0, 0], 0, R | E),
        // ENABLE: enabling an enabled event succeeds (6.1: no change).
        row(Ready, EVENT_ENABLE, [EV, 0, 0, 0, 0], 0, R | E),
        // ENABLE: allowed while the handler runs.
        row(Running, EVENT_ENABLE, [EV, 0, 0, 0, 0], 0, R | E | RUN),
        // ENABLE: unknown event; not registered; unregister pending.
        row(Registered, EVENT_ENABLE, [EV ^ 1, 0, 0, 0, 0], IP, R),
        row(Fresh, EVENT_ENABLE, [EV, 0, 0, 0, 0], DENIED, 0),
        row(UnregPending, EVENT_ENABLE, [EV, 0, 0, 0, 0], DENIED, RUN),
        // SDEI_EVENT_DISABLE: enabled -> registered; twice succeeds.
        row(Ready, EVENT_DISABLE, [EV, 0, 0, 0, 0], 0, R),
        row(Registered, EVENT_DISABLE, [EV, 0, 0, 0, 0], 0, R),
        row(Running, EVENT_DISABLE, [EV, 0, 0, 0, 0], 0, R | RUN),
        // DISABLE: unknown event; not registered; unregister pending.
        row(Ready, EVENT_DISABLE, [0, 0, 0, 0, 0], IP, R | E),
        row(Fresh, EVENT_DISABLE, [EV, 0, 0, 0, 0], DENIED, 0),
        row(UnregPending, EVENT_DISABLE, [EV, 0, 0, 0, 0], DENIED, RUN),
        // SDEI_EVENT_CONTEXT: x0 and x17 of the interrupted context.
        row(Running, EVENT_CONTEXT, [0, 0, 0, 0, 0], 0x100, R | E | RUN),
        row(Running, EVENT_CONTEXT, [17, 0, 0, 0, 0], 0x111, R | E | RUN),
        row(UnregPending, EVENT_CONTEXT, [5, 0, 0, 0, 0], 0x105, RUN),
        // CONTEXT: only x0-x17.
        row(Running, EVENT_CONTEXT, [18, 0, 0, 0, 0], IP, R | E | RUN),
        row(Running, EVENT_CONTEXT, [0xffff_ffff, 0, 0, 0, 0], IP, R | E | RUN),
        // CONTEXT: outside a handler (6.1: running states only), even for
        // a bad register number.
        row(Ready, EVENT_CONTEXT, [0, 0, 0, 0, 0], DENIED, R | E),
        row(Fresh, EVENT_CONTEXT, [18, 0, 0, 0, 0], DENIED, 0),
        // SDEI_EVENT_COMPLETE, COMPLETE_AND_RESUME: outside a handler.
        row(Ready, EVENT_COMPLETE, [0, 0, 0, 0, 0], DENIED, R | E),
        row(Fresh, EVENT_COMPLETE_AND_RESUME, [EP, 0, 0, 0, 0], DENIED, 0),
        // COMPLETE_AND_RESUME: a resume address that cannot be code (the
        // handler keeps running).
        row(Running, EVENT_COMPLETE_AND_RESUME, [0, 0, 0, 0, 0], DENIED, R | E | RUN),
        row(Running, EVENT_COMPLETE_AND_RESUME, [EP | 1, 0, 0, 0, 0], DENIED, R | E | RUN),
        // SDEI_EVENT_UNREGISTER: registered (enabled or not) -> unregistered.
        row(Registered, EVENT_UNREGISTER, [EV, 0, 0, 0, 0], 0, 0),
        row(Ready, EVENT_UNREGISTER, [EV, 0, 0, 0, 0], 0, 0),
        // UNREGISTER while running: PENDING, completes at COMPLETE.
        row(Running, EVENT_UNREGISTER, [EV, 0, 0, 0, 0], PENDING, RUN),
        // UNREGISTER again while unregister pending: still PENDING (TF-A).
        row(UnregPending, EVENT_UNREGISTER, [EV, 0, 0, 0, 0], PENDING, RUN),
        // UNREGISTER: unknown event; not registered.
        row(Ready, EVENT_UNREGISTER, [EV << 1, 0, 0, 0, 0], IP, R | E),
        row(Fresh, EVENT_UNREGISTER, [EV, 0, 0, 0, 0], DENIED, 0),
        // SDEI_EVENT_STATUS: bit 0 registered, 1 enabled, 2 running.
        row(Fresh, EVENT_STATUS, [EV, 0, 0, 0, 0], 0, 0),
        row(Registered, EVENT_STATUS, [EV, 0, 0, 0, 0], R as i64, R),
        row(Ready, EVENT_STATUS, [EV, 0, 0, 0, 0], (R | E) as i64, R | E),
        row(Running, EVENT_STATUS, [EV, 0, 0, 0, 0], (R | E | RUN) as i64, R | E | RUN),
        row(UnregPending, EVENT_STATUS, [EV, 0, 0, 0, 0], RUN as i64, RUN),
        // STATUS: unknown event.
        row(Ready, EVENT_STATUS, [1, 0, 0, 0, 0], IP, R | E),
        // SDEI_EVENT_GET_INFO: EV_TYPE private, EV_SIGNALED no, EV_PRIORITY
        // normal; registration not needed.
        row(Fresh, EVENT_GET_INFO, [EV, 0, 0, 0, 0], 0, 0),
        row(Fresh, EVENT_GET_INFO, [EV, 1, 0, 0, 0], 0, 0),
        row(Fresh, EVENT_GET_INFO, [EV, 2, 0, 0, 0], 0, 0),
        // GET_INFO: EV_ROUTING_MODE and EV_ROUTING_AFF are for shared
        // events only.
        row(Ready, EVENT_GET_INFO, [EV, 3, 0, 0, 0], IP, R | E),
        row(Ready, EVENT_GET_INFO, [EV, 4, 0, 0, 0], IP, R | E),
        // GET_INFO: unknown query; unknown event.
        row(Ready, EVENT_GET_INFO, [EV, 5, 0, 0, 0], IP, R | E),
        row(Fresh, EVENT_GET_INFO, [0, 0, 0, 0, 0], IP, 0),
        // SDEI_EVENT_ROUTING_SET: only shared events are routed.
        row(Registered, EVENT_ROUTING_SET, [EV, 0, 0, 0, 0], IP, R),
        row(Registered, EVENT_ROUTING_SET, [EV, 1, 0, 0, 0], IP, R),
        row(Fresh, EVENT_ROUTING_SET, [3, 0, 0, 0, 0], IP, 0),
        // SDEI_PE_MASK: 1 if the PE was unmasked, 0 if already masked.
        row(Ready, PE_MASK, [0; 5], 1, R | E),
        row(Fresh, PE_MASK, [0; 5], 0, 0),
        // SDEI_PE_UNMASK: SUCCESS, also when unmasked already.
        row(Fresh, PE_UNMASK, [0; 5], 0, 0),
        row(Ready, PE_UNMASK, [0; 5], 0, R | E),
        // SDEI_INTERRUPT_BIND: SGIs and special INTIDs cannot be bound.
        row(Fresh, INTERRUPT_BIND, [0, 0, 0, 0, 0], IP, 0),
        row(Fresh, INTERRUPT_BIND, [15, 0, 0, 0, 0], IP, 0),
        row(Fresh, INTERRUPT_BIND, [1023, 0, 0, 0, 0], IP, 0),
        // BIND: a PPI or SPI: no slot (FEATURES(BIND_SLOTS) = 0).
        row(Fresh, INTERRUPT_BIND, [16, 0, 0, 0, 0], OUT_OF_RESOURCE, 0),
        row(Fresh, INTERRUPT_BIND, [40, 0, 0, 0, 0], OUT_OF_RESOURCE, 0),
        // SDEI_INTERRUPT_RELEASE: our event is not bound; unknown event.
        row(Registered, INTERRUPT_RELEASE, [EV, 0, 0, 0, 0], IP, R),
        row(Fresh, INTERRUPT_RELEASE, [7, 0, 0, 0, 0], IP, 0),
        // SDEI_EVENT_SIGNAL (v1.1): only event 0 is signalable, not offered.
        row(Ready, EVENT_SIGNAL, [0, 0, 0, 0, 0], IP, R | E),
        row(Ready, EVENT_SIGNAL, [EV, 0, 0, 0, 0], IP, R | E),
        // SDEI_PRIVATE_RESET: unregisters this PE's private events.
        row(Ready, PRIVATE_RESET, [0; 5], 0, 0),
        row(Fresh, PRIVATE_RESET, [0; 5], 0, 0),
        // PRIVATE_RESET while the handler runs: unregistration left pending
        // for COMPLETE, answer DENIED (TF-A's sdei_private_reset()).
        row(Running, PRIVATE_RESET, [0; 5], DENIED, RUN),
        row(UnregPending, PRIVATE_RESET, [0; 5], DENIED, RUN),
        // SDEI_SHARED_RESET: no shared event, no binding: SUCCESS.
        row(Ready, SHARED_RESET, [0; 5], 0, R | E),
        // Reserved function numbers 0x13..=0x1f of the SDEI range.
        row(Ready, 0x13, [0; 5], NOT_SUPPORTED, R | E),
        row(Ready, 0x1f, [0; 5], NOT_SUPPORTED, R | E),
    ]
}

#[test]
fn table() {
    let rows = rows();
    for (i, r) in rows.iter().enumerate() {
        for smc32 in [false, true] {
            // The SMC32 form sees only the low halves: skip rows that need
            // the high ones.
            if smc32 && r.args.iter().any(|&a| a > u64::from(u32::MAX)) {
                continue;
            }
            let n = r.fid - FN_BASE_SMC64;
            let f = if smc32 { fid32(n) } else { fid(n) };
            let mut st = setup(r.setup);
            let got = x0(st.handle_raw(f, &r.args));
            assert_eq!(
                got, r.want,
                "row {i} ({:?}, fid {f:#x}, {:x?})",
                r.setup, r.args
            );
            assert_eq!(st.status(), r.status, "row {i} status");
            fuzz_body::check_invariants(&st);
        }
    }
    // Every defined function has a row.
    for n in 0..=func::LAST {
        assert!(
            rows.iter().any(|r| r.fid == fid(n)),
            "no row for function {n:#x}"
        );
    }
}

#[test]
fn event_number() {
    // Gavin Shan's KVM_SDEI_ASYNC_PF_NUM; see the doc of ASYNC_PF_EVENT.
    assert_eq!(u64::from(ASYNC_PF_EVENT), EV);
    assert_eq!(ASYNC_PF_EVENT, 0x4040_0001);
    assert_eq!(ASYNC_PF_EVENT >> 30, 0b01);
    assert_eq!((ASYNC_PF_EVENT >> 22) & 3, 0b01);
}

#[test]
fn foreign_function_ids_are_not_decoded() {
    let mut st = setup(Setup::Ready);
    for f in [
        0x8400_0000u32,
        0xc400_0040,
        0xc400_001f,
        0xc600_0042,
        0x0400_0020,
        0xc500_0020,
    ] {
        assert_eq!(st.handle_raw(f, &[EV, 0, 0, 0, 0]), None, "{f:#x}");
    }
    assert_eq!(st, setup(Setup::Ready));
}

#[test]
fn smc32_arguments_are_32_bit() {
    // SMC32: x1's upper half is ignored, so is the entry point's.
    let mut st = setup(Setup::Fresh);
    let args = [EV | 0xffff_ffff_0000_0000, 0x7_4008_1000, ARG, 0, 0];
    assert_eq!(x0(st.handle_raw(fid32(func::EVENT_REGISTER), &args)), 0);
    assert_eq!(st.entry_point(), 0x4008_1000);
    assert_eq!(st.entry_arg(), ARG & 0xffff_ffff);
    // SMC64: the event number is 32-bit too, the entry point is not.
    let mut st = setup(Setup::Fresh);
    assert_eq!(x0(st.handle_raw(fid(func::EVENT_REGISTER), &args)), 0);
    assert_eq!(st.entry_point(), 0x7_4008_1000);
    assert_eq!(st.entry_arg(), ARG);
    // An SMC32 resume address is 32-bit.
    let mut st = setup(Setup::Running);
    let Some(CallResult::Complete(c)) = st.handle_raw(
        fid32(func::EVENT_COMPLETE_AND_RESUME),
        &[0x1_0000_2000, 0, 0, 0, 0],
    ) else {
        panic!("no completion");
    };
    assert_eq!(c.pc, 0x2000);
}

#[test]
fn main_flow() {
    let mut st = SdeiState::new(ClientEl::El1);
    // A PE starts masked: nothing deliverable, even once registered.
    assert!(st.is_masked());
    assert_eq!(st.deliverable(), Err(NotDeliverable::NotRegistered));
    let reg = [EV, EP, ARG, 0, 0];
    assert_eq!(x0(st.handle_raw(fid(func::EVENT_REGISTER), &reg)), 0);
    assert_eq!(st.deliverable(), Err(NotDeliverable::NotEnabled));
    assert_eq!(
        x0(st.handle_raw(fid(func::EVENT_ENABLE), &[EV, 0, 0, 0, 0])),
        0
    );
    assert_eq!(st.deliverable(), Err(NotDeliverable::Masked));
    assert_eq!(x0(st.handle_raw(fid(func::PE_UNMASK), &[0; 5])), 0);
    assert_eq!(st.deliverable(), Ok(()));

    // The fault path enters the handler with the spec's entry state.
    let c = ctx(7);
    let e = st.enter(&c).expect("deliverable");
    assert_eq!(e.x, [EV, ARG, c.pc, c.pstate]);
    assert_eq!(e.pc, EP);
    assert_eq!(e.pstate, PSR_DAIF | PSR_MODE_EL1H);
    assert_eq!(e.pstate, 0x3c5);
    assert!(st.is_running());
    assert_eq!(st.context(), Some(&c));

    // The handler reads the interrupted registers.
    for (i, &want) in c.x.iter().enumerate() {
        assert_eq!(
            x0(st.handle_raw(fid(func::EVENT_CONTEXT), &[i as u64, 0, 0, 0, 0])) as u64,
            want
        );
    }

    // COMPLETE: the interrupted context comes back, nothing else written.
    let r = st.handle_raw(fid(func::EVENT_COMPLETE), &[0, 0, 0, 0, 0]);
    assert_eq!(
        r,
        Some(CallResult::Complete(Completion {
            x: c.x,
            pc: c.pc,
            pstate: c.pstate,
            irq: None
        }))
    );
    assert!(!st.is_running());
    assert_eq!(st.status(), STATUS_REGISTERED | STATUS_ENABLED);
    assert_eq!(st.deliverable(), Ok(()));
    // And a second COMPLETE is refused.
    assert_eq!(
        x0(st.handle_raw(fid(func::EVENT_COMPLETE), &[0; 5])),
        DENIED
    );
}

#[test]
fn complete_and_resume() {
    for el in [ClientEl::El1, ClientEl::El2] {
        let mut st = SdeiState::new(el);
        st.handle_call(SdeiCall::PeUnmask);
        st.handle_call(SdeiCall::EventRegister {
            event: ASYNC_PF_EVENT,
            entry_point: EP,
            ep_argument: ARG,
            flags: 0,
            affinity: 0,
        });
        st.handle_call(SdeiCall::EventEnable {
            event: ASYNC_PF_EVENT,
        });
        let mut c = ctx(3);
        c.pstate = 0x8000_0000 | PSR_MODE_EL0T;
        let e = st.enter(&c).expect("deliverable");
        let mode = match el {
            ClientEl::El1 => PSR_MODE_EL1H,
            ClientEl::El2 => PSR_MODE_EL2H,
        };
        assert_eq!(e.pstate, PSR_DAIF | mode);
        let resume = 0xffff_8000_0001_0480;
        let r = st.handle_raw(fid(func::EVENT_COMPLETE_AND_RESUME), &[resume, 0, 0, 0, 0]);
        // x0-x17 restored, then as if an IRQ had been taken from `c` to the
        // client EL: ELR = interrupted PC, SPSR = interrupted PSTATE,
        // PSTATE = client EL, SP_ELx, DAIF masked, PC = resume address.
        assert_eq!(
            r,
            Some(CallResult::Complete(Completion {
                x: c.x,
                pc: resume,
                pstate: PSR_DAIF | mode,
                irq: Some(IrqFrame {
                    elr: c.pc,
                    spsr: c.pstate
                }),
            }))
        );
        assert!(!st.is_running());
        assert_eq!(st.deliverable(), Ok(()));
    }
}

#[test]
fn masking() {
    let mut st = setup(Setup::Ready);
    assert_eq!(st.deliverable(), Ok(()));
    assert_eq!(x0(st.handle_raw(fid(func::PE_MASK), &[0; 5])), 1);
    assert_eq!(st.deliverable(), Err(NotDeliverable::Masked));
    assert_eq!(st.raise(), Err(NotDeliverable::Masked));
    assert_eq!(st.enter(&ctx(1)), Err(NotDeliverable::Masked));
    assert_eq!(x0(st.handle_raw(fid(func::PE_MASK), &[0; 5])), 0);
    assert_eq!(x0(st.handle_raw(fid(func::PE_UNMASK), &[0; 5])), 0);
    assert_eq!(st.deliverable(), Ok(()));
    // Masking while the handler runs is allowed and does not end it.
    assert!(st.enter(&ctx(1)).is_ok());
    assert_eq!(x0(st.handle_raw(fid(func::PE_MASK), &[0; 5])), 1);
    assert!(st.is_running());
    assert!(matches!(
        st.handle_raw(fid(func::EVENT_COMPLETE), &[0; 5]),
        Some(CallResult::Complete(_))
    ));
    assert_eq!(st.deliverable(), Err(NotDeliverable::Masked));
}

#[test]
fn fault_while_running_is_not_deliverable() {
    let mut st = setup(Setup::Running);
    assert_eq!(st.deliverable(), Err(NotDeliverable::Running));
    assert_eq!(st.raise(), Err(NotDeliverable::Running));
    let before = st;
    assert_eq!(st.enter(&ctx(2)), Err(NotDeliverable::Running));
    assert_eq!(st, before, "a refused entry changes nothing");
    // The first context is the one kept.
    assert_eq!(st.context(), Some(&ctx(1)));
}

#[test]
fn at_most_one_pending() {
    let mut st = setup(Setup::Ready);
    assert_eq!(st.raise(), Ok(()));
    assert!(st.is_pending());
    assert_eq!(st.deliverable(), Err(NotDeliverable::Pending));
    assert_eq!(st.raise(), Err(NotDeliverable::Pending));
    // Entering takes the pending event.
    let e = st.enter(&ctx(4)).expect("pending event enters");
    assert_eq!(e.pc, EP);
    assert!(!st.is_pending());
    assert!(st.is_running());
    // A call that makes the event undeliverable drops a pending one.
    for call in [
        SdeiCall::EventDisable {
            event: ASYNC_PF_EVENT,
        },
        SdeiCall::EventUnregister {
            event: ASYNC_PF_EVENT,
        },
        SdeiCall::PeMask,
        SdeiCall::PrivateReset,
    ] {
        let mut st = setup(Setup::Ready);
        assert_eq!(st.raise(), Ok(()));
        st.handle_call(call);
        assert!(!st.is_pending(), "{call:?}");
        assert!(st.enter(&ctx(1)).is_err(), "{call:?}");
    }
    // Enabling again or unmasking does not.
    let mut st = setup(Setup::Ready);
    assert_eq!(st.raise(), Ok(()));
    st.handle_call(SdeiCall::EventEnable {
        event: ASYNC_PF_EVENT,
    });
    st.handle_call(SdeiCall::PeUnmask);
    assert!(st.is_pending());
}

#[test]
fn bad_interrupted_mode_is_refused() {
    let mut st = setup(Setup::Ready);
    for mode in [PSR_MODE_EL2H, PSR_MODE_EL2T, 0x13, 0x2, 0xd] {
        let mut c = ctx(1);
        c.pstate = mode;
        assert_eq!(
            st.enter(&c),
            Err(NotDeliverable::BadInterruptedMode),
            "{mode:#x}"
        );
    }
    let mut st = SdeiState::new(ClientEl::El2);
    st.handle_call(SdeiCall::PeUnmask);
    st.handle_call(SdeiCall::EventRegister {
        event: ASYNC_PF_EVENT,
        entry_point: EP,
        ep_argument: 0,
        flags: 0,
        affinity: 0,
    });
    st.handle_call(SdeiCall::EventEnable {
        event: ASYNC_PF_EVENT,
    });
    let mut c = ctx(1);
    c.pstate = PSR_MODE_EL2T;
    assert!(st.enter(&c).is_ok());
}

#[test]
fn unregister_while_running() {
    let mut st = setup(Setup::Running);
    assert_eq!(
        x0(st.handle_raw(fid(func::EVENT_UNREGISTER), &[EV, 0, 0, 0, 0])),
        PENDING
    );
    assert!(!st.is_registered());
    assert!(!st.is_enabled());
    assert!(st.is_running());
    assert_eq!(st.status(), STATUS_RUNNING);
    // Still the handler's context; registration waits for COMPLETE.
    assert_eq!(
        x0(st.handle_raw(fid(func::EVENT_CONTEXT), &[3, 0, 0, 0, 0])),
        0x103
    );
    assert_eq!(
        x0(st.handle_raw(fid(func::EVENT_REGISTER), &[EV, EP, 0, 0, 0])),
        DENIED
    );
    let Some(CallResult::Complete(c)) = st.handle_raw(fid(func::EVENT_COMPLETE), &[0; 5]) else {
        panic!("no completion");
    };
    assert_eq!(c.x, ctx(1).x);
    // Unregistration done.
    assert_eq!(st.status(), 0);
    assert_eq!((st.entry_point(), st.entry_arg()), (0, 0));
    assert_eq!(
        x0(st.handle_raw(fid(func::EVENT_UNREGISTER), &[EV, 0, 0, 0, 0])),
        DENIED
    );
    assert_eq!(
        x0(st.handle_raw(fid(func::EVENT_REGISTER), &[EV, EP, 0, 0, 0])),
        0
    );
}

#[test]
fn private_reset() {
    // Idle: unregisters, keeps the PE mask as it was.
    let mut st = setup(Setup::Ready);
    assert_eq!(x0(st.handle_raw(fid(func::PRIVATE_RESET), &[0; 5])), 0);
    assert_eq!(st.status(), 0);
    assert!(!st.is_masked());
    assert_eq!(st.deliverable(), Err(NotDeliverable::NotRegistered));
    // From within the handler: DENIED, unregistration pending until
    // COMPLETE.
    let mut st = setup(Setup::Running);
    assert_eq!(x0(st.handle_raw(fid(func::PRIVATE_RESET), &[0; 5])), DENIED);
    assert_eq!(st.status(), STATUS_RUNNING);
    assert!(matches!(
        st.handle_raw(fid(func::EVENT_COMPLETE), &[0; 5]),
        Some(CallResult::Complete(_))
    ));
    assert_eq!(st.status(), 0);
    assert_eq!(x0(st.handle_raw(fid(func::PRIVATE_RESET), &[0; 5])), 0);
}

#[test]
fn vcpu_reset() {
    for s in [
        Setup::Fresh,
        Setup::Registered,
        Setup::Ready,
        Setup::Running,
        Setup::UnregPending,
    ] {
        let mut st = setup(s);
        // Pending where the state allows it; refused elsewhere, which is
        // as good a starting point: the reset must clear either.
        let _ = st.raise();
        st.reset();
        assert_eq!(st, SdeiState::new(ClientEl::El1), "{s:?}");
        assert!(st.is_masked());
    }
}

#[test]
fn save_restore_round_trip() {
    for s in [
        Setup::Fresh,
        Setup::Registered,
        Setup::Ready,
        Setup::Running,
        Setup::UnregPending,
    ] {
        let st = setup(s);
        let raw = st.save();
        let mut t = SdeiState::new(ClientEl::El1);
        assert_eq!(t.restore(&raw), Ok(()), "{s:?}");
        assert_eq!(t, st, "{s:?}");
        // Through bytes, as the VMM moves it.
        let bytes = zerocopy::IntoBytes::as_bytes(&raw).to_vec();
        assert_eq!(bytes.len(), SAVED_SIZE);
        let back =
            <SdeiSaved as zerocopy::FromBytes>::read_from_bytes(&bytes[..]).expect("256 bytes");
        assert_eq!(back, raw);
    }
    let mut st = setup(Setup::Ready);
    assert_eq!(st.raise(), Ok(()));
    let mut t = SdeiState::new(ClientEl::El1);
    assert_eq!(t.restore(&st.save()), Ok(()));
    assert!(t.is_pending());
    // The restored handler completes to the saved context.
    let mut t = SdeiState::new(ClientEl::El1);
    assert_eq!(t.restore(&setup(Setup::Running).save()), Ok(()));
    let Ok(c) = t.complete() else {
        panic!("no completion");
    };
    assert_eq!((c.x, c.pc, c.pstate), (ctx(1).x, ctx(1).pc, ctx(1).pstate));
    // The layout: flags, event, entry point, argument, context.
    let raw = setup(Setup::Running).save();
    assert_eq!(
        raw.flags,
        STATUS_REGISTERED | STATUS_ENABLED | STATUS_RUNNING | SAVED_CONTEXT
    );
    assert_eq!(raw.event, EV);
    assert_eq!((raw.entry_point, raw.entry_arg), (EP, ARG));
    assert_eq!(raw.ctx_x[17], 0x111);
    let fresh = SdeiState::new(ClientEl::El1).save();
    assert_eq!(fresh.flags, SAVED_MASKED);
}

#[test]
fn restore_errors() {
    use SdeiStateError::*;
    let ready = setup(Setup::Ready).save();
    let running = setup(Setup::Running).save();
    let fresh = setup(Setup::Fresh).save();
    let with = |base: SdeiSaved, f: &dyn Fn(&mut SdeiSaved)| {
        let mut r = base;
        f(&mut r);
        r
    };
    let cases: Vec<(SdeiSaved, SdeiStateError)> = vec![
        (with(ready, &|r| r.reserved[0] = 1), ReservedNotZero),
        (with(ready, &|r| r.reserved[7] = 1 << 63), ReservedNotZero),
        (with(ready, &|r| r.flags |= 1 << 6), UnknownFlags),
        (with(ready, &|r| r.flags |= 1 << 63), UnknownFlags),
        (with(ready, &|r| r.event = 0), WrongEvent),
        (with(ready, &|r| r.event = EV | 1 << 32), WrongEvent),
        (
            with(fresh, &|r| r.flags |= STATUS_ENABLED),
            EnabledNotRegistered,
        ),
        (with(ready, &|r| r.entry_point = 0), BadEntryPoint),
        (with(ready, &|r| r.entry_point = EP + 1), BadEntryPoint),
        (with(fresh, &|r| r.entry_point = EP), HandlerNotRegistered),
        (with(fresh, &|r| r.entry_arg = 1), HandlerNotRegistered),
        (
            with(running, &|r| r.flags &= !SAVED_CONTEXT),
            RunningWithoutContext,
        ),
        (
            with(running, &|r| r.flags &= !STATUS_RUNNING),
            ContextNotRunning,
        ),
        (with(ready, &|r| r.ctx_x[4] = 1), StaleContext),
        (with(ready, &|r| r.ctx_pc = 4), StaleContext),
        (with(ready, &|r| r.ctx_pstate = 5), StaleContext),
        (
            with(running, &|r| r.ctx_pstate = PSR_MODE_EL2H),
            BadInterruptedMode,
        ),
        (with(running, &|r| r.ctx_pstate = 0x13), BadInterruptedMode),
        (
            with(fresh, &|r| r.flags = SAVED_PENDING),
            PendingNotRegistered,
        ),
        (
            with(ready, &|r| {
                r.flags &= !STATUS_ENABLED;
                r.flags |= SAVED_PENDING;
            }),
            PendingNotEnabled,
        ),
        (
            with(ready, &|r| r.flags |= SAVED_PENDING | SAVED_MASKED),
            PendingMasked,
        ),
        (
            with(running, &|r| r.flags |= SAVED_PENDING),
            PendingWhileRunning,
        ),
    ];
    let mut seen = Vec::new();
    for (i, (raw, want)) in cases.iter().enumerate() {
        let mut st = setup(Setup::Registered);
        let before = st;
        assert_eq!(st.restore(raw), Err(*want), "case {i}");
        assert_eq!(st, before, "case {i}: a refused restore changes nothing");
        if !seen.contains(want) {
            seen.push(*want);
        }
    }
    // Every variant is produced by some case.
    let all = [
        ReservedNotZero,
        UnknownFlags,
        WrongEvent,
        EnabledNotRegistered,
        BadEntryPoint,
        HandlerNotRegistered,
        RunningWithoutContext,
        ContextNotRunning,
        StaleContext,
        BadInterruptedMode,
        PendingNotRegistered,
        PendingNotEnabled,
        PendingMasked,
        PendingWhileRunning,
    ];
    for e in all {
        // Exhaustive: a new variant must be added to `all` and a case.
        match e {
            ReservedNotZero
            | UnknownFlags
            | WrongEvent
            | EnabledNotRegistered
            | BadEntryPoint
            | HandlerNotRegistered
            | RunningWithoutContext
            | ContextNotRunning
            | StaleContext
            | BadInterruptedMode
            | PendingNotRegistered
            | PendingNotEnabled
            | PendingMasked
            | PendingWhileRunning => {}
        }
        assert!(seen.contains(&e), "no case for {e:?}");
    }
    // An EL2 context is fine for an EL2 client.
    let mut st = SdeiState::new(ClientEl::El2);
    assert_eq!(
        st.restore(&with(running, &|r| r.ctx_pstate = PSR_MODE_EL2H)),
        Ok(())
    );
}

// ---- Random sequences against a model ------------------------------------

/// The dispatcher as DEN0054's state table reads (section 6.1), written
/// independently of the implementation.
#[derive(Clone, Copy, Debug, Default)]
struct Model {
    reg: bool,
    en: bool,
    run: Option<Context>,
    pend: bool,
    unmasked: bool,
    ep: u64,
    arg: u64,
}

enum Want {
    X0(i64),
    Complete(Completion),
}

impl Model {
    fn call(&mut self, n: u32, a: [u64; 5]) -> Want {
        use func::*;
        let ev_ok = a[0] as u32 == ASYNC_PF_EVENT;
        let code = |ok: bool, e: i64| if ok { 0 } else { e };
        let v = match n {
            VERSION => kvm_apf_logic::sdei::VERSION as i64,
            FEATURES => code(a[0] as u32 <= 1, INVALID_PARAMETERS),
            EVENT_REGISTER => {
                if !ev_ok || a[3] > 1 || a[1] == 0 || !a[1].is_multiple_of(4) {
                    INVALID_PARAMETERS
                } else if self.reg || self.run.is_some() {
                    DENIED
                } else {
                    self.reg = true;
                    self.ep = a[1];
                    self.arg = a[2];
                    0
                }
            }
            EVENT_ENABLE | EVENT_DISABLE => {
                if !ev_ok {
                    INVALID_PARAMETERS
                } else if !self.reg {
                    DENIED
                } else {
                    self.en = n == EVENT_ENABLE;
                    self.pend &= self.en;
                    0
                }
            }
            EVENT_CONTEXT => match &self.run {
                None => DENIED,
                Some(c) if (a[0] as u32) < 18 => c.x[a[0] as u32 as usize] as i64,
                Some(_) => INVALID_PARAMETERS,
            },
            EVENT_COMPLETE => match self.run.take() {
                None => DENIED,
                Some(c) => {
                    return Want::Complete(Completion {
                        x: c.x,
                        pc: c.pc,
                        pstate: c.pstate,
                        irq: None,
                    })
                }
            },
            EVENT_COMPLETE_AND_RESUME => {
                if self.run.is_none() || a[0] == 0 || !a[0].is_multiple_of(4) {
                    DENIED
                } else {
                    let c = self.run.take().unwrap_or_default();
                    return Want::Complete(Completion {
                        x: c.x,
                        pc: a[0],
                        pstate: 0x3c5,
                        irq: Some(IrqFrame {
                            elr: c.pc,
                            spsr: c.pstate,
                        }),
                    });
                }
            }
            EVENT_UNREGISTER => {
                if !ev_ok {
                    INVALID_PARAMETERS
                } else if !self.reg {
                    if self.run.is_some() {
                        PENDING
                    } else {
                        DENIED
                    }
                } else {
                    *self = Model {
                        run: self.run,
                        unmasked: self.unmasked,
                        ..Model::default()
                    };
                    if self.run.is_some() {
                        PENDING
                    } else {
                        0
                    }
                }
            }
            EVENT_STATUS => {
                if ev_ok {
                    i64::from(self.reg)
                        | i64::from(self.en) << 1
                        | i64::from(self.run.is_some()) << 2
                } else {
                    INVALID_PARAMETERS
                }
            }
            EVENT_GET_INFO => code(ev_ok && a[1] as u32 <= 2, INVALID_PARAMETERS),
            PE_MASK => {
                let was = self.unmasked;
                self.unmasked = false;
                self.pend = false;
                i64::from(was)
            }
            PE_UNMASK => {
                self.unmasked = true;
                0
            }
            INTERRUPT_BIND => {
                let i = a[0] as u32;
                if i < 16 || (1020..1024).contains(&i) {
                    INVALID_PARAMETERS
                } else {
                    OUT_OF_RESOURCE
                }
            }
            EVENT_ROUTING_SET | INTERRUPT_RELEASE | EVENT_SIGNAL => INVALID_PARAMETERS,
            PRIVATE_RESET => {
                *self = Model {
                    run: self.run,
                    unmasked: self.unmasked,
                    ..Model::default()
                };
                if self.run.is_some() {
                    DENIED
                } else {
                    0
                }
            }
            SHARED_RESET => 0,
            _ => NOT_SUPPORTED,
        };
        Want::X0(v)
    }

    fn can_enter(&self) -> bool {
        self.reg && self.en && self.unmasked && self.run.is_none()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Call(u32, bool, [u64; 5]),
    Raise,
    Enter(u64, u64),
    Reset,
    Migrate,
}

fn arg() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(EV),
        1 => Just(EV | 1 << 40),
        2 => Just(EP),
        1 => Just(EP + 2),
        3 => 0u64..20,
        1 => Just(1020u64),
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0u32..0x20, any::<bool>(), proptest::array::uniform5(arg()))
            .prop_map(|(n, smc32, a)| Op::Call(n, smc32, a)),
        4 => (prop_oneof![Just(0u32), 1u32..=7, Just(9u32)], any::<u64>())
            .prop_map(|(n, a)| Op::Call(n, false, [EV, EP, a, 0, 0])),
        2 => Just(Op::Raise),
        3 => (any::<u64>(), prop_oneof![Just(0u64), Just(5u64), Just(0x10u64), Just(9u64)])
            .prop_map(|(s, m)| Op::Enter(s, m)),
        1 => Just(Op::Reset),
        1 => Just(Op::Migrate),
    ]
}

fn run(ops: Vec<Op>) {
    let mut st = SdeiState::new(ClientEl::El1);
    let mut m = Model::default();
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Call(n, smc32, a) => {
                let f = if smc32 { fid32(n) } else { fid(n) };
                let a32 = if smc32 { a.map(|v| v & 0xffff_ffff) } else { a };
                let got = st.handle_raw(f, &a);
                match m.call(n, a32) {
                    Want::X0(v) => assert_eq!(
                        got,
                        Some(CallResult::Return([v as u64, 0, 0, 0])),
                        "op {i}: fn {n:#x} {a:x?}"
                    ),
                    Want::Complete(c) => assert_eq!(got, Some(CallResult::Complete(c)), "op {i}"),
                }
            }
            Op::Raise => {
                let ok = m.can_enter() && !m.pend;
                assert_eq!(st.raise().is_ok(), ok, "op {i}");
                m.pend |= ok;
            }
            Op::Enter(seed, mode) => {
                let mut c = ctx(seed & 0xffff);
                c.pstate = mode;
                let ok = m.can_enter() && mode != 9;
                let got = st.enter(&c);
                assert_eq!(got.is_ok(), ok, "op {i}: {got:?}");
                if let Ok(e) = got {
                    assert_eq!(e.x, [EV, m.arg, c.pc, c.pstate]);
                    assert_eq!(e.pc, m.ep);
                    m.run = Some(c);
                    m.pend = false;
                }
            }
            Op::Reset => {
                st.reset();
                m = Model::default();
            }
            Op::Migrate => {
                let mut t = SdeiState::new(ClientEl::El1);
                assert_eq!(t.restore(&st.save()), Ok(()));
                st = t;
            }
        }
        // The model's view and the invariants: at most one pending (a bool),
        // running implies a saved context, unregistered implies disabled.
        assert_eq!(st.is_registered(), m.reg, "op {i}");
        assert_eq!(st.is_enabled(), m.en, "op {i}");
        assert_eq!(st.context(), m.run.as_ref(), "op {i}");
        assert_eq!(st.is_pending(), m.pend, "op {i}");
        assert_eq!(st.is_masked(), !m.unmasked, "op {i}");
        assert_eq!(
            (st.entry_point(), st.entry_arg()),
            if m.reg { (m.ep, m.arg) } else { (0, 0) },
            "op {i}"
        );
        assert!(!st.is_running() || st.context().is_some());
        assert!(st.is_registered() || !st.is_enabled());
        fuzz_body::check_invariants(&st);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn model(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz_body::sdei_calls(&data);
    }
}
