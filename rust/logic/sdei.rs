// SPDX-License-Identifier: GPL-2.0

//! The per-vCPU state of a minimal SDEI dispatcher (Arm DEN0054, SDEI
//! v1.1) that offers one private event, [`ASYNC_PF_EVENT`], through which
//! the host can announce a page-not-present instead of with a PPI.
//!
//! Pure, like [`super::vcpu_state`]: [`SdeiState::handle_call`] answers a
//! decoded call with the registers to write back or the context to load,
//! and the stage-2 fault path asks [`SdeiState::deliverable`] and enters
//! the handler with [`SdeiState::enter`]. Nothing here touches the vCPU:
//! the glue reads and writes the registers these functions name. All of it
//! runs on the vCPU thread.
//!
//! # State
//!
//! One event, so its state is four `bool`s rather than bitmaps (the shape
//! the KVM/arm64 reviewers asked of the earlier series: registered,
//! enabled, pending, running, at most one pending event per vCPU), the
//! entry point and argument given to `EVENT_REGISTER`, and the PE's mask
//! (set at reset: a PE starts masked). "Running" is
//! `Option<`[`Context`]`>`: the handler runs exactly when an interrupted
//! context is saved. "Unregister pending" (DEN0054 section 6.1: the event
//! was unregistered while its handler ran) is running and not registered;
//! `EVENT_COMPLETE` finishes the unregistration.
//!
//! # Delivery
//!
//! The event is deliverable when it is registered and enabled, the PE is
//! unmasked, and neither a handler runs nor an event is pending: normal
//! priority does not preempt itself, so a fault taken while the handler
//! runs is not deliverable and blocks. [`SdeiState::enter`] saves the
//! interrupted `x0`-`x17`, PC and PSTATE and returns the handler's entry
//! state. The glue may instead [`SdeiState::raise`] the event and enter it
//! on its way back into the guest; "pending" lasts only until then (the
//! guest makes no call in between), so a call that would make the event
//! undeliverable (disable, unregister, mask, reset) drops it, and `enter`
//! then refuses, which the glue treats as a blocking fault.
//!
//! # Choices where the spec leaves room
//!
//! Event 0 (the software-signalled event of DEN0054) is not offered, so
//! `EVENT_SIGNAL` always answers `INVALID_PARAMETERS`. The SMC32 function
//! ids are decoded too, with every argument cut to its low 32 bits (the
//! `W` registers); results are written as for SMC64, so an SMC32 caller
//! reading only `W0` sees error codes whole but not the values above bit
//! 31 (`VERSION`'s 1.1, 64-bit registers from `EVENT_CONTEXT`). The Linux
//! client, TF-A and the earlier KVM series use the SMC64 ids only. See
//! [`SdeiState::handle_call`] and the private helpers for each call.

use zerocopy_derive::FromBytes;
use zerocopy_derive::Immutable;
use zerocopy_derive::IntoBytes;
use zerocopy_derive::KnownLayout;

/// The one event this dispatcher offers (private, normal priority, not
/// signalable).
///
/// The number Gavin Shan's KVM SDEI series gave its async page fault event
/// (`KVM_SDEI_ASYNC_PF_NUM`, next to its injectable `KVM_SDEI_DEFAULT_NUM`
/// 0x40400000). DEN0054 numbers are 32-bit and leave discovery to the
/// platform: bit 30 keeps it out of the low range of the spec's own events
/// (event 0 is the software-signalled one), and `bits[23:22]` = 0b01 is that
/// series' mark of an event defined by KVM. The guest learns the number
/// out of band, as the spec expects (it has no event discovery).
pub const ASYNC_PF_EVENT: u32 = 0x4040_0001;

/// Shift of the major version in `SDEI_VERSION`'s result.
pub const VERSION_MAJOR_SHIFT: u32 = 48;
/// Shift of the minor version in `SDEI_VERSION`'s result.
pub const VERSION_MINOR_SHIFT: u32 = 32;
/// `SDEI_VERSION` result: 1.1, vendor-defined `bits[31:0]` zero.
pub const VERSION: u64 = (1 << VERSION_MAJOR_SHIFT) | (1 << VERSION_MINOR_SHIFT);

/// First SDEI function id, SMC64 fast call (`SDEI_VERSION`).
pub const FN_BASE_SMC64: u32 = 0xc400_0020;
/// First SDEI function id, SMC32 fast call.
pub const FN_BASE_SMC32: u32 = 0x8400_0020;
/// The SDEI range is function numbers 0x20..=0x3f of the standard service:
/// the function is `fid & FN_NUM_MASK` from the base.
pub const FN_NUM_MASK: u32 = 0x1f;

/// Function offsets from [`FN_BASE_SMC64`] / [`FN_BASE_SMC32`].
pub mod func {
    /// `SDEI_VERSION`.
    pub const VERSION: u32 = 0x00;
    /// `SDEI_EVENT_REGISTER`.
    pub const EVENT_REGISTER: u32 = 0x01;
    /// `SDEI_EVENT_ENABLE`.
    pub const EVENT_ENABLE: u32 = 0x02;
    /// `SDEI_EVENT_DISABLE`.
    pub const EVENT_DISABLE: u32 = 0x03;
    /// `SDEI_EVENT_CONTEXT`.
    pub const EVENT_CONTEXT: u32 = 0x04;
    /// `SDEI_EVENT_COMPLETE`.
    pub const EVENT_COMPLETE: u32 = 0x05;
    /// `SDEI_EVENT_COMPLETE_AND_RESUME`.
    pub const EVENT_COMPLETE_AND_RESUME: u32 = 0x06;
    /// `SDEI_EVENT_UNREGISTER`.
    pub const EVENT_UNREGISTER: u32 = 0x07;
    /// `SDEI_EVENT_STATUS`.
    pub const EVENT_STATUS: u32 = 0x08;
    /// `SDEI_EVENT_GET_INFO`.
    pub const EVENT_GET_INFO: u32 = 0x09;
    /// `SDEI_EVENT_ROUTING_SET`.
    pub const EVENT_ROUTING_SET: u32 = 0x0a;
    /// `SDEI_PE_MASK`.
    pub const PE_MASK: u32 = 0x0b;
    /// `SDEI_PE_UNMASK`.
    pub const PE_UNMASK: u32 = 0x0c;
    /// `SDEI_INTERRUPT_BIND`.
    pub const INTERRUPT_BIND: u32 = 0x0d;
    /// `SDEI_INTERRUPT_RELEASE`.
    pub const INTERRUPT_RELEASE: u32 = 0x0e;
    /// `SDEI_EVENT_SIGNAL` (v1.1).
    pub const EVENT_SIGNAL: u32 = 0x0f;
    /// `SDEI_FEATURES` (v1.1).
    pub const FEATURES: u32 = 0x10;
    /// `SDEI_PRIVATE_RESET`.
    pub const PRIVATE_RESET: u32 = 0x11;
    /// `SDEI_SHARED_RESET`.
    pub const SHARED_RESET: u32 = 0x12;
    /// The last defined function; 0x13..=0x1f are reserved.
    pub const LAST: u32 = SHARED_RESET;
}

/// `SUCCESS`.
pub const SUCCESS: i64 = 0;
/// `SUCCESS` as the register value returned in `x0`.
pub const SUCCESS_RET: u64 = 0;
/// `NOT_SUPPORTED`.
pub const NOT_SUPPORTED: i64 = -1;
/// `INVALID_PARAMETERS`.
pub const INVALID_PARAMETERS: i64 = -2;
/// `DENIED`.
pub const DENIED: i64 = -3;
/// `PENDING`.
pub const PENDING: i64 = -5;
/// `OUT_OF_RESOURCE`.
pub const OUT_OF_RESOURCE: i64 = -10;

/// `EVENT_REGISTER` flags bit 0, routing mode: 1 = `RM_PE`, 0 = `RM_ANY`
/// (ignored for a private event, as is the affinity).
pub const REGISTER_RM_PE: u64 = 1 << 0;
/// `EVENT_REGISTER` flags bit 1 (v1.1): entry point relative to the
/// client's vector base. Not supported (`FEATURES(RELATIVE_MODE)` is 0).
pub const REGISTER_RELATIVE: u64 = 1 << 1;

/// `EVENT_STATUS` bit: registered.
pub const STATUS_REGISTERED: u64 = 1 << 0;
/// `EVENT_STATUS` bit: enabled.
pub const STATUS_ENABLED: u64 = 1 << 1;
/// `EVENT_STATUS` bit: running (a handler runs on this PE).
pub const STATUS_RUNNING: u64 = 1 << 2;

/// `EVENT_GET_INFO` queries (`x2`).
pub mod info {
    /// `EV_TYPE`: 0 private, 1 shared.
    pub const EV_TYPE: u32 = 0;
    /// `EV_SIGNALED`: 1 if `EVENT_SIGNAL` can signal the event.
    pub const EV_SIGNALED: u32 = 1;
    /// `EV_PRIORITY`: 0 normal, 1 critical.
    pub const EV_PRIORITY: u32 = 2;
    /// `EV_ROUTING_MODE`: shared events only.
    pub const EV_ROUTING_MODE: u32 = 3;
    /// `EV_ROUTING_AFF`: shared events only.
    pub const EV_ROUTING_AFF: u32 = 4;
}

/// `EV_TYPE` of a private event.
pub const EVENT_TYPE_PRIVATE: u64 = 0;
/// `EV_PRIORITY` of a normal priority event.
pub const EVENT_PRIORITY_NORMAL: u64 = 0;

/// `SDEI_FEATURES` queries (`x1`).
pub mod feature {
    /// `BIND_SLOTS`: `bits[31:16]` shared, `bits[15:0]` private slots for
    /// `INTERRUPT_BIND` (as TF-A and the earlier KVM series' selftest).
    pub const BIND_SLOTS: u32 = 0;
    /// `RELATIVE_MODE`: 1 if `EVENT_REGISTER` takes relative entry points.
    pub const RELATIVE_MODE: u32 = 1;
}

/// Number of saved general purpose registers: `x0`-`x17`.
pub const SAVED_REGS: usize = 18;

/// PSTATE.F.
pub const PSR_F: u64 = 1 << 6;
/// PSTATE.I.
pub const PSR_I: u64 = 1 << 7;
/// PSTATE.A.
pub const PSR_A: u64 = 1 << 8;
/// PSTATE.D.
pub const PSR_D: u64 = 1 << 9;
/// All of PSTATE.{D,A,I,F}.
pub const PSR_DAIF: u64 = PSR_D | PSR_A | PSR_I | PSR_F;
/// `PSTATE.M[4:0]` (`M[4]` = nRW: AArch32).
pub const PSR_MODE_MASK: u64 = 0x1f;
/// AArch64 EL0.
pub const PSR_MODE_EL0T: u64 = 0x0;
/// AArch64 EL1 with SP_EL0.
pub const PSR_MODE_EL1T: u64 = 0x4;
/// AArch64 EL1 with SP_EL1.
pub const PSR_MODE_EL1H: u64 = 0x5;
/// AArch64 EL2 with SP_EL0.
pub const PSR_MODE_EL2T: u64 = 0x8;
/// AArch64 EL2 with SP_EL2.
pub const PSR_MODE_EL2H: u64 = 0x9;
/// AArch32 User mode (an AArch32 task under an AArch64 kernel).
pub const PSR_MODE_USR32: u64 = 0x10;

/// Last SGI INTID: SGIs cannot be bound.
const SGI_LAST: u32 = 15;
/// First special INTID (1020..=1023 are not interrupts).
const SPECIAL_INTID_FIRST: u32 = 1020;
/// Last special INTID.
const SPECIAL_INTID_LAST: u32 = 1023;

/// An SDEI error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdeiError {
    /// `NOT_SUPPORTED`: a reserved function in the SDEI range.
    NotSupported,
    /// `INVALID_PARAMETERS`: unknown event, bad flags, entry point, query.
    InvalidParameters,
    /// `DENIED`: the call is not allowed in the event's state.
    Denied,
    /// `PENDING`: `EVENT_UNREGISTER` while the handler runs; it completes
    /// at `EVENT_COMPLETE`.
    Pending,
    /// `OUT_OF_RESOURCE`: no slot to bind an interrupt to.
    OutOfResource,
}

impl SdeiError {
    /// The SDEI code.
    pub const fn code(self) -> i64 {
        match self {
            SdeiError::NotSupported => NOT_SUPPORTED,
            SdeiError::InvalidParameters => INVALID_PARAMETERS,
            SdeiError::Denied => DENIED,
            SdeiError::Pending => PENDING,
            SdeiError::OutOfResource => OUT_OF_RESOURCE,
        }
    }

    /// The code as the register value returned in `x0`.
    pub const fn ret(self) -> u64 {
        self.code() as u64
    }
}

/// The calling convention of a function id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallConv {
    /// SMC64: 64-bit arguments.
    Smc64,
    /// SMC32: every argument is the low 32 bits of its register.
    Smc32,
}

/// A decoded SDEI call. Arguments the spec defines as 32-bit (event
/// numbers, queries, register index, status, INTID) are the low 32 bits of
/// their register in both conventions, as the Linux client, TF-A and the
/// earlier KVM series treat them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdeiCall {
    /// `SDEI_VERSION`.
    Version,
    /// `SDEI_EVENT_REGISTER(event, entry_point, ep_argument, flags,
    /// affinity)`.
    EventRegister {
        /// `x1`.
        event: u32,
        /// `x2`: handler address.
        entry_point: u64,
        /// `x3`: passed to the handler in `x1`.
        ep_argument: u64,
        /// `x4`: [`REGISTER_RM_PE`], [`REGISTER_RELATIVE`].
        flags: u64,
        /// `x5`: MPIDR for `RM_PE` shared events.
        affinity: u64,
    },
    /// `SDEI_EVENT_ENABLE(event)`.
    EventEnable {
        /// `x1`.
        event: u32,
    },
    /// `SDEI_EVENT_DISABLE(event)`.
    EventDisable {
        /// `x1`.
        event: u32,
    },
    /// `SDEI_EVENT_CONTEXT(param_id)`: saved `x<param_id>`.
    EventContext {
        /// `x1`: 0..=17.
        param_id: u32,
    },
    /// `SDEI_EVENT_COMPLETE(status)`.
    EventComplete {
        /// `x1`: `SDEI_EV_HANDLED` (0) or `SDEI_EV_FAILED` (1) from Linux;
        /// it changes nothing for an event not bound to an interrupt.
        status: u32,
    },
    /// `SDEI_EVENT_COMPLETE_AND_RESUME(resume_addr)`.
    EventCompleteAndResume {
        /// `x1`.
        resume_addr: u64,
    },
    /// `SDEI_EVENT_UNREGISTER(event)`.
    EventUnregister {
        /// `x1`.
        event: u32,
    },
    /// `SDEI_EVENT_STATUS(event)`.
    EventStatus {
        /// `x1`.
        event: u32,
    },
    /// `SDEI_EVENT_GET_INFO(event, info)`.
    EventGetInfo {
        /// `x1`.
        event: u32,
        /// `x2`: an [`info`] query.
        info: u32,
    },
    /// `SDEI_EVENT_ROUTING_SET(event, routing_mode, affinity)`.
    EventRoutingSet {
        /// `x1`.
        event: u32,
        /// `x2`.
        routing_mode: u64,
        /// `x3`.
        affinity: u64,
    },
    /// `SDEI_PE_MASK`.
    PeMask,
    /// `SDEI_PE_UNMASK`.
    PeUnmask,
    /// `SDEI_INTERRUPT_BIND(interrupt)`.
    InterruptBind {
        /// `x1`: INTID.
        intid: u32,
    },
    /// `SDEI_INTERRUPT_RELEASE(event)`.
    InterruptRelease {
        /// `x1`.
        event: u32,
    },
    /// `SDEI_EVENT_SIGNAL(event, target_pe)`.
    EventSignal {
        /// `x1`.
        event: u32,
        /// `x2`: MPIDR.
        target_pe: u64,
    },
    /// `SDEI_FEATURES(feature)`.
    Features {
        /// `x1`: a [`feature`] query.
        feature: u32,
    },
    /// `SDEI_PRIVATE_RESET`.
    PrivateReset,
    /// `SDEI_SHARED_RESET`.
    SharedReset,
}

/// The `W` half of an `X` register.
const W_MASK: u64 = 0xffff_ffff;

/// Low 32 bits of an argument register.
const fn low32(x: u64) -> u32 {
    // Truncation intended: the argument is a 32-bit value.
    x as u32
}

/// Decodes an SDEI call: `fid` is `x0` (the function id), `args` are
/// `x1`..`x5`.
///
/// `None` if `fid` is not in the SDEI range (0x20..=0x3f of the standard
/// service, fast call, SMC32 or SMC64); `Some(Err(NotSupported))` for a
/// reserved function of that range.
pub const fn decode(fid: u32, args: &[u64; 5]) -> Option<Result<SdeiCall, SdeiError>> {
    let conv = if fid & !FN_NUM_MASK == FN_BASE_SMC64 {
        CallConv::Smc64
    } else if fid & !FN_NUM_MASK == FN_BASE_SMC32 {
        CallConv::Smc32
    } else {
        return None;
    };
    let [b1, b2, b3, b4, b5] = *args;
    let [a1, a2, a3, a4, a5] = match conv {
        CallConv::Smc64 => [b1, b2, b3, b4, b5],
        CallConv::Smc32 => [
            b1 & W_MASK,
            b2 & W_MASK,
            b3 & W_MASK,
            b4 & W_MASK,
            b5 & W_MASK,
        ],
    };
    let call = match fid & FN_NUM_MASK {
        func::VERSION => SdeiCall::Version,
        func::EVENT_REGISTER => SdeiCall::EventRegister {
            event: low32(a1),
            entry_point: a2,
            ep_argument: a3,
            flags: a4,
            affinity: a5,
        },
        func::EVENT_ENABLE => SdeiCall::EventEnable { event: low32(a1) },
        func::EVENT_DISABLE => SdeiCall::EventDisable { event: low32(a1) },
        func::EVENT_CONTEXT => SdeiCall::EventContext {
            param_id: low32(a1),
        },
        func::EVENT_COMPLETE => SdeiCall::EventComplete { status: low32(a1) },
        func::EVENT_COMPLETE_AND_RESUME => SdeiCall::EventCompleteAndResume { resume_addr: a1 },
        func::EVENT_UNREGISTER => SdeiCall::EventUnregister { event: low32(a1) },
        func::EVENT_STATUS => SdeiCall::EventStatus { event: low32(a1) },
        func::EVENT_GET_INFO => SdeiCall::EventGetInfo {
            event: low32(a1),
            info: low32(a2),
        },
        func::EVENT_ROUTING_SET => SdeiCall::EventRoutingSet {
            event: low32(a1),
            routing_mode: a2,
            affinity: a3,
        },
        func::PE_MASK => SdeiCall::PeMask,
        func::PE_UNMASK => SdeiCall::PeUnmask,
        func::INTERRUPT_BIND => SdeiCall::InterruptBind { intid: low32(a1) },
        func::INTERRUPT_RELEASE => SdeiCall::InterruptRelease { event: low32(a1) },
        func::EVENT_SIGNAL => SdeiCall::EventSignal {
            event: low32(a1),
            target_pe: a2,
        },
        func::FEATURES => SdeiCall::Features { feature: low32(a1) },
        func::PRIVATE_RESET => SdeiCall::PrivateReset,
        func::SHARED_RESET => SdeiCall::SharedReset,
        _ => return Some(Err(SdeiError::NotSupported)),
    };
    Some(Ok(call))
}

/// The Exception level the client runs at: where handlers are entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEl {
    /// A guest kernel at EL1.
    El1,
    /// A guest hypervisor at (virtual) EL2.
    El2,
}

impl ClientEl {
    /// PSTATE of a handler entry and of a `COMPLETE_AND_RESUME`: the
    /// client's EL in AArch64 with SP_ELx, `D`, `A`, `I`, `F` masked, every
    /// other bit 0. Bits an exception entry derives from `SCTLR_ELx` or
    /// from features (`PAN`, `SSBS`, `TCO`...) are the glue's to add, as
    /// KVM's own exception entry computes them.
    pub const fn handler_pstate(self) -> u64 {
        PSR_DAIF
            | match self {
                ClientEl::El1 => PSR_MODE_EL1H,
                ClientEl::El2 => PSR_MODE_EL2H,
            }
    }

    /// Whether `pstate` is one the client's PE can be interrupted in:
    /// AArch64 EL0 or the client EL (either stack pointer), or AArch32 User
    /// (a 32-bit task).
    pub const fn is_interruptible_mode(self, pstate: u64) -> bool {
        match pstate & PSR_MODE_MASK {
            PSR_MODE_EL0T | PSR_MODE_EL1T | PSR_MODE_EL1H | PSR_MODE_USR32 => true,
            PSR_MODE_EL2T | PSR_MODE_EL2H => matches!(self, ClientEl::El2),
            _ => false,
        }
    }
}

/// The interrupted context the dispatcher saves while the handler runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// `x0`-`x17`.
    pub x: [u64; SAVED_REGS],
    /// PC to resume at (for a stage-2 fault: the faulting instruction).
    pub pc: u64,
    /// PSTATE.
    pub pstate: u64,
}

/// The handler's entry state (DEN0054 "event handler entry"): the glue
/// writes `x0`-`x3`, PC and PSTATE; the other registers keep the
/// interrupted values (the handler may clobber only `x0`-`x17`, which
/// `EVENT_COMPLETE` restores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `x0` = event number, `x1` = registered argument, `x2` = interrupted
    /// PC, `x3` = interrupted PSTATE.
    pub x: [u64; 4],
    /// The registered entry point.
    pub pc: u64,
    /// [`ClientEl::handler_pstate`].
    pub pstate: u64,
}

/// `ELR_ELx`/`SPSR_ELx` of the client EL after `COMPLETE_AND_RESUME`: as if
/// an IRQ had been taken from the interrupted context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqFrame {
    /// `ELR_ELx`: the interrupted PC.
    pub elr: u64,
    /// `SPSR_ELx`: the interrupted PSTATE.
    pub spsr: u64,
}

/// What the vCPU becomes when the handler completes. No return value is
/// written: `x0`-`x17` are the interrupted context's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// `x0`-`x17` to write.
    pub x: [u64; SAVED_REGS],
    /// PC to write (absolute: the glue must not also step over the call).
    pub pc: u64,
    /// PSTATE to write.
    pub pstate: u64,
    /// For `COMPLETE_AND_RESUME`: `ELR_ELx`/`SPSR_ELx` to write.
    pub irq: Option<IrqFrame>,
}

/// The answer to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// Write `x0`..`x3` and return to the caller, as for any SMCCC call.
    Return([u64; 4]),
    /// `EVENT_COMPLETE` or `EVENT_COMPLETE_AND_RESUME` succeeded: load this
    /// state instead of returning.
    Complete(Completion),
}

impl CallResult {
    /// Returns `x0`; `x1`..`x3` are 0.
    const fn ret(x0: u64) -> Self {
        CallResult::Return([x0, 0, 0, 0])
    }

    /// Returns the error code in `x0`.
    const fn err(e: SdeiError) -> Self {
        CallResult::ret(e.ret())
    }

    /// Returns the value or the error code in `x0`.
    const fn from_result(r: Result<u64, SdeiError>) -> Self {
        match r {
            Ok(x0) => CallResult::ret(x0),
            Err(e) => CallResult::err(e),
        }
    }
}

/// Why the event cannot be delivered now (the fault then blocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotDeliverable {
    /// The guest has not registered the event (or is unregistering it).
    NotRegistered,
    /// Registered but not enabled.
    NotEnabled,
    /// The PE is masked (its reset state).
    Masked,
    /// The handler runs: a normal event does not preempt itself.
    Running,
    /// An event is pending already (at most one per vCPU).
    Pending,
    /// The interrupted PSTATE given to [`SdeiState::enter`] is not a mode
    /// the client can be interrupted in.
    BadInterruptedMode,
}

/// Whether `addr` can be an instruction address: not 0, 4-byte aligned.
const fn valid_code_address(addr: u64) -> bool {
    addr != 0 && addr & 3 == 0
}

/// The SDEI state of one vCPU.
///
/// # Invariants
///
/// - `enabled` implies `registered`.
/// - `registered` implies a valid entry point (not 0, 4-byte aligned);
///   not `registered` implies `entry_point == 0` and `entry_arg == 0`.
/// - `pending` implies `registered`, `enabled`, not `masked` and not
///   running.
/// - A saved context's PSTATE is an interruptible mode of `client_el`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdeiState {
    client_el: ClientEl,
    registered: bool,
    enabled: bool,
    pending: bool,
    masked: bool,
    entry_point: u64,
    entry_arg: u64,
    /// The interrupted context while the handler runs.
    running: Option<Context>,
}

impl SdeiState {
    /// The reset state of a vCPU whose client runs at `client_el`: nothing
    /// registered, PE masked.
    pub const fn new(client_el: ClientEl) -> Self {
        Self {
            client_el,
            registered: false,
            enabled: false,
            pending: false,
            masked: true,
            entry_point: 0,
            entry_arg: 0,
            running: None,
        }
    }

    /// vCPU reset (KVM vCPU init, PSCI `CPU_ON`): back to [`Self::new`].
    pub fn reset(&mut self) {
        *self = Self::new(self.client_el);
    }

    /// The client's EL.
    pub const fn client_el(&self) -> ClientEl {
        self.client_el
    }

    /// Whether the event is registered.
    pub const fn is_registered(&self) -> bool {
        self.registered
    }

    /// Whether the event is enabled.
    pub const fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the event is pending (raised, not entered yet).
    pub const fn is_pending(&self) -> bool {
        self.pending
    }

    /// Whether the handler runs.
    pub const fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Whether the PE is masked.
    pub const fn is_masked(&self) -> bool {
        self.masked
    }

    /// The registered entry point (0 if not registered).
    pub const fn entry_point(&self) -> u64 {
        self.entry_point
    }

    /// The registered argument (0 if not registered).
    pub const fn entry_arg(&self) -> u64 {
        self.entry_arg
    }

    /// The saved interrupted context, while the handler runs.
    pub const fn context(&self) -> Option<&Context> {
        self.running.as_ref()
    }

    /// `EVENT_STATUS` bits of the event.
    pub const fn status(&self) -> u64 {
        let mut s = 0;
        if self.registered {
            s |= STATUS_REGISTERED;
        }
        if self.enabled {
            s |= STATUS_ENABLED;
        }
        if self.running.is_some() {
            s |= STATUS_RUNNING;
        }
        s
    }

    /// Forgets the registration (`EVENT_UNREGISTER`, `PRIVATE_RESET`); a
    /// running handler keeps running ("unregister pending").
    fn unregister_now(&mut self) {
        self.registered = false;
        self.enabled = false;
        self.pending = false;
        self.entry_point = 0;
        self.entry_arg = 0;
    }

    /// The event number check every per-event call starts with.
    const fn check_event(event: u32) -> Result<(), SdeiError> {
        if event == ASYNC_PF_EVENT {
            Ok(())
        } else {
            Err(SdeiError::InvalidParameters)
        }
    }

    /// `EVENT_REGISTER`: checks event, flags, entry point, then state
    /// (registered or unregister pending: `DENIED`). A new registration
    /// is disabled.
    fn register(
        &mut self,
        event: u32,
        entry_point: u64,
        arg: u64,
        flags: u64,
    ) -> Result<u64, SdeiError> {
        Self::check_event(event)?;
        // Routing mode and affinity mean nothing for a private event;
        // relative mode is not supported; bits[63:2] are reserved.
        if flags & !REGISTER_RM_PE != 0 {
            return Err(SdeiError::InvalidParameters);
        }
        if !valid_code_address(entry_point) {
            return Err(SdeiError::InvalidParameters);
        }
        if self.registered || self.running.is_some() {
            return Err(SdeiError::Denied);
        }
        self.registered = true;
        self.enabled = false;
        self.entry_point = entry_point;
        self.entry_arg = arg;
        Ok(SUCCESS_RET)
    }

    /// `EVENT_ENABLE` / `EVENT_DISABLE`: `DENIED` unless registered (so
    /// also while unregister pending); enabling twice succeeds. Disabling
    /// drops a pending event.
    fn set_enabled(&mut self, event: u32, enable: bool) -> Result<u64, SdeiError> {
        Self::check_event(event)?;
        if !self.registered {
            return Err(SdeiError::Denied);
        }
        self.enabled = enable;
        if !enable {
            self.pending = false;
        }
        Ok(SUCCESS_RET)
    }

    /// `EVENT_UNREGISTER`: `PENDING` if the handler runs (unregistration
    /// completes at `EVENT_COMPLETE`), also when it was already pending;
    /// `DENIED` if not registered.
    fn unregister(&mut self, event: u32) -> Result<u64, SdeiError> {
        Self::check_event(event)?;
        if !self.registered {
            return Err(if self.running.is_some() {
                SdeiError::Pending
            } else {
                SdeiError::Denied
            });
        }
        self.unregister_now();
        if self.running.is_some() {
            return Err(SdeiError::Pending);
        }
        Ok(SUCCESS_RET)
    }

    /// `EVENT_GET_INFO`: private, not signalable, normal priority; the
    /// routing queries are for shared events only (`INVALID_PARAMETERS`).
    /// `EV_SIGNALED` answers 0 as its name (and Linux's
    /// `SDEI_EVENT_INFO_EV_SIGNALED`) reads; TF-A calls the query
    /// `EV_NOT_SIGNALED` and answers the inverse.
    fn get_info(event: u32, query: u32) -> Result<u64, SdeiError> {
        Self::check_event(event)?;
        match query {
            info::EV_TYPE => Ok(EVENT_TYPE_PRIVATE),
            info::EV_SIGNALED => Ok(0),
            info::EV_PRIORITY => Ok(EVENT_PRIORITY_NORMAL),
            _ => Err(SdeiError::InvalidParameters),
        }
    }

    /// `EVENT_CONTEXT`: `DENIED` outside a handler, then
    /// `INVALID_PARAMETERS` for a register above `x17`.
    fn read_context(&self, param_id: u32) -> Result<u64, SdeiError> {
        let Some(ctx) = &self.running else {
            return Err(SdeiError::Denied);
        };
        match ctx.x.get(param_id as usize) {
            Some(&v) => Ok(v),
            None => Err(SdeiError::InvalidParameters),
        }
    }

    /// `PRIVATE_RESET`: unregisters the event; if its handler runs, the
    /// unregistration is left pending for `EVENT_COMPLETE` and the call
    /// answers `DENIED` (TF-A's reading of DEN0054).
    fn private_reset(&mut self) -> Result<u64, SdeiError> {
        if self.registered {
            self.unregister_now();
        }
        if self.running.is_some() {
            return Err(SdeiError::Denied);
        }
        Ok(SUCCESS_RET)
    }

    /// Handles a call decoded by [`decode`].
    ///
    /// - `VERSION`: 1.1. `FEATURES`: `BIND_SLOTS` 0, `RELATIVE_MODE` 0
    ///   (not supported), others `INVALID_PARAMETERS`.
    /// - Per-event calls: any event but [`ASYNC_PF_EVENT`] is
    ///   `INVALID_PARAMETERS`.
    /// - `ROUTING_SET`, `INTERRUPT_RELEASE`, `EVENT_SIGNAL`:
    ///   `INVALID_PARAMETERS` (no shared, bound or signalable event).
    ///   `INTERRUPT_BIND`: `INVALID_PARAMETERS` for an SGI or a special
    ///   INTID, else `OUT_OF_RESOURCE` (0 slots). `SHARED_RESET`: nothing
    ///   to reset, `SUCCESS`.
    /// - `PE_MASK`: 1 if the PE was unmasked, 0 if it was masked already.
    ///   `PE_UNMASK`: `SUCCESS`.
    pub fn handle_call(&mut self, call: SdeiCall) -> CallResult {
        let r = match call {
            SdeiCall::Version => Ok(VERSION),
            SdeiCall::Features { feature } => match feature {
                feature::BIND_SLOTS | feature::RELATIVE_MODE => Ok(0),
                _ => Err(SdeiError::InvalidParameters),
            },
            SdeiCall::EventRegister {
                event,
                entry_point,
                ep_argument,
                flags,
                affinity: _,
            } => self.register(event, entry_point, ep_argument, flags),
            SdeiCall::EventEnable { event } => self.set_enabled(event, true),
            SdeiCall::EventDisable { event } => self.set_enabled(event, false),
            SdeiCall::EventContext { param_id } => self.read_context(param_id),
            SdeiCall::EventComplete { status: _ } => {
                return match self.complete() {
                    Ok(c) => CallResult::Complete(c),
                    Err(e) => CallResult::err(e),
                };
            }
            SdeiCall::EventCompleteAndResume { resume_addr } => {
                return match self.complete_and_resume(resume_addr) {
                    Ok(c) => CallResult::Complete(c),
                    Err(e) => CallResult::err(e),
                };
            }
            SdeiCall::EventUnregister { event } => self.unregister(event),
            SdeiCall::EventStatus { event } => Self::check_event(event).map(|()| self.status()),
            SdeiCall::EventGetInfo { event, info } => Self::get_info(event, info),
            // Only shared events can be routed.
            SdeiCall::EventRoutingSet { .. } => Err(SdeiError::InvalidParameters),
            SdeiCall::PeMask => {
                let was_unmasked = !self.masked;
                self.masked = true;
                self.pending = false;
                Ok(u64::from(was_unmasked))
            }
            SdeiCall::PeUnmask => {
                self.masked = false;
                Ok(SUCCESS_RET)
            }
            SdeiCall::InterruptBind { intid } => {
                if intid <= SGI_LAST || (SPECIAL_INTID_FIRST..=SPECIAL_INTID_LAST).contains(&intid)
                {
                    Err(SdeiError::InvalidParameters)
                } else {
                    Err(SdeiError::OutOfResource)
                }
            }
            // No event is bound to an interrupt.
            SdeiCall::InterruptRelease { .. } => Err(SdeiError::InvalidParameters),
            // Only event 0 is signalable, and it is not offered.
            SdeiCall::EventSignal { .. } => Err(SdeiError::InvalidParameters),
            SdeiCall::PrivateReset => self.private_reset(),
            SdeiCall::SharedReset => Ok(SUCCESS_RET),
        };
        CallResult::from_result(r)
    }

    /// Decodes `x0` (`fid`) and `x1`..`x5` and handles the call; `None` if
    /// `fid` is not an SDEI function (see [`decode`]).
    pub fn handle_raw(&mut self, fid: u32, args: &[u64; 5]) -> Option<CallResult> {
        match decode(fid, args)? {
            Ok(call) => Some(self.handle_call(call)),
            Err(e) => Some(CallResult::err(e)),
        }
    }

    /// Whether the event could be entered now (the fault path's question):
    /// registered, enabled, PE unmasked, no handler running, none pending.
    pub const fn deliverable(&self) -> Result<(), NotDeliverable> {
        if self.pending {
            return Err(NotDeliverable::Pending);
        }
        self.enterable()
    }

    /// [`Self::deliverable`] without the pending check: what `enter` needs.
    const fn enterable(&self) -> Result<(), NotDeliverable> {
        if !self.registered {
            Err(NotDeliverable::NotRegistered)
        } else if !self.enabled {
            Err(NotDeliverable::NotEnabled)
        } else if self.masked {
            Err(NotDeliverable::Masked)
        } else if self.running.is_some() {
            Err(NotDeliverable::Running)
        } else {
            Ok(())
        }
    }

    /// Makes the event pending, to be entered with [`Self::enter`] before
    /// the guest runs again. Refused unless [`Self::deliverable`]: a
    /// second event while one is pending is [`NotDeliverable::Pending`].
    pub fn raise(&mut self) -> Result<(), NotDeliverable> {
        self.deliverable()?;
        self.pending = true;
        Ok(())
    }

    /// Enters the handler from the interrupted context `ctx` (the pending
    /// event if there is one): saves `ctx`, marks the handler running and
    /// returns the entry state to load. Refused unless the event is
    /// registered and enabled, the PE unmasked and no handler runs.
    pub fn enter(&mut self, ctx: &Context) -> Result<Entry, NotDeliverable> {
        self.enterable()?;
        if !self.client_el.is_interruptible_mode(ctx.pstate) {
            return Err(NotDeliverable::BadInterruptedMode);
        }
        self.pending = false;
        self.running = Some(*ctx);
        Ok(Entry {
            x: [
                u64::from(ASYNC_PF_EVENT),
                self.entry_arg,
                ctx.pc,
                ctx.pstate,
            ],
            pc: self.entry_point,
            pstate: self.client_el.handler_pstate(),
        })
    }

    /// `EVENT_COMPLETE`: the interrupted context, to load as it was.
    /// `DENIED` if no handler runs. Finishes a pending unregistration.
    pub fn complete(&mut self) -> Result<Completion, SdeiError> {
        let Some(ctx) = self.running.take() else {
            return Err(SdeiError::Denied);
        };
        Ok(Completion {
            x: ctx.x,
            pc: ctx.pc,
            pstate: ctx.pstate,
            irq: None,
        })
    }

    /// `EVENT_COMPLETE_AND_RESUME(resume_addr)`: restores `x0`-`x17`, then
    /// resumes at `resume_addr` as if an IRQ had been taken from the
    /// interrupted context to the client EL. `DENIED` if no handler runs or
    /// if `resume_addr` cannot be an instruction address (0 or unaligned:
    /// TF-A also answers `DENIED` for a resume address it refuses); the
    /// handler then keeps running.
    pub fn complete_and_resume(&mut self, resume_addr: u64) -> Result<Completion, SdeiError> {
        let Some(ctx) = self.running else {
            return Err(SdeiError::Denied);
        };
        if !valid_code_address(resume_addr) {
            return Err(SdeiError::Denied);
        }
        self.running = None;
        Ok(Completion {
            x: ctx.x,
            pc: resume_addr,
            pstate: self.client_el.handler_pstate(),
            irq: Some(IrqFrame {
                elr: ctx.pc,
                spsr: ctx.pstate,
            }),
        })
    }

    /// The state for migration.
    pub fn save(&self) -> SdeiSaved {
        let mut flags = self.status();
        if self.pending {
            flags |= SAVED_PENDING;
        }
        if self.masked {
            flags |= SAVED_MASKED;
        }
        let ctx = match &self.running {
            Some(ctx) => {
                flags |= SAVED_CONTEXT;
                *ctx
            }
            None => Context::default(),
        };
        SdeiSaved {
            flags,
            event: u64::from(ASYNC_PF_EVENT),
            entry_point: self.entry_point,
            entry_arg: self.entry_arg,
            ctx_x: ctx.x,
            ctx_pc: ctx.pc,
            ctx_pstate: ctx.pstate,
            reserved: [0; SAVED_RESERVED_WORDS],
        }
    }

    /// Validates `raw` and, if it is a state [`Self::save`] can produce
    /// for this client EL, replaces this state with it (nothing changes on
    /// error). Checks in the order of [`SdeiStateError`]'s variants.
    pub fn restore(&mut self, raw: &SdeiSaved) -> Result<(), SdeiStateError> {
        if raw.reserved.iter().any(|&w| w != 0) {
            return Err(SdeiStateError::ReservedNotZero);
        }
        if raw.flags & !SAVED_KNOWN_FLAGS != 0 {
            return Err(SdeiStateError::UnknownFlags);
        }
        if raw.event != u64::from(ASYNC_PF_EVENT) {
            return Err(SdeiStateError::WrongEvent);
        }
        let registered = raw.flags & STATUS_REGISTERED != 0;
        let enabled = raw.flags & STATUS_ENABLED != 0;
        let running = raw.flags & STATUS_RUNNING != 0;
        let pending = raw.flags & SAVED_PENDING != 0;
        let masked = raw.flags & SAVED_MASKED != 0;
        let has_ctx = raw.flags & SAVED_CONTEXT != 0;
        if enabled && !registered {
            return Err(SdeiStateError::EnabledNotRegistered);
        }
        if registered && !valid_code_address(raw.entry_point) {
            return Err(SdeiStateError::BadEntryPoint);
        }
        if !registered && (raw.entry_point != 0 || raw.entry_arg != 0) {
            return Err(SdeiStateError::HandlerNotRegistered);
        }
        if running && !has_ctx {
            return Err(SdeiStateError::RunningWithoutContext);
        }
        if has_ctx && !running {
            return Err(SdeiStateError::ContextNotRunning);
        }
        let ctx = Context {
            x: raw.ctx_x,
            pc: raw.ctx_pc,
            pstate: raw.ctx_pstate,
        };
        if !has_ctx && ctx != Context::default() {
            return Err(SdeiStateError::StaleContext);
        }
        if has_ctx && !self.client_el.is_interruptible_mode(ctx.pstate) {
            return Err(SdeiStateError::BadInterruptedMode);
        }
        if pending && !registered {
            return Err(SdeiStateError::PendingNotRegistered);
        }
        if pending && !enabled {
            return Err(SdeiStateError::PendingNotEnabled);
        }
        if pending && masked {
            return Err(SdeiStateError::PendingMasked);
        }
        if pending && running {
            return Err(SdeiStateError::PendingWhileRunning);
        }
        *self = Self {
            client_el: self.client_el,
            registered,
            enabled,
            pending,
            masked,
            entry_point: raw.entry_point,
            entry_arg: raw.entry_arg,
            running: if has_ctx { Some(ctx) } else { None },
        };
        Ok(())
    }
}

/// [`SdeiSaved::flags`]: the event is pending.
pub const SAVED_PENDING: u64 = 1 << 3;
/// [`SdeiSaved::flags`]: the PE is masked.
pub const SAVED_MASKED: u64 = 1 << 4;
/// [`SdeiSaved::flags`]: `ctx_*` hold the interrupted context (exactly when
/// [`STATUS_RUNNING`] is set).
pub const SAVED_CONTEXT: u64 = 1 << 5;
/// Every [`SdeiSaved::flags`] bit this version knows: bits 0-2 are the
/// `EVENT_STATUS` bits.
pub const SAVED_KNOWN_FLAGS: u64 = STATUS_REGISTERED
    | STATUS_ENABLED
    | STATUS_RUNNING
    | SAVED_PENDING
    | SAVED_MASKED
    | SAVED_CONTEXT;
/// Number of reserved words in [`SdeiSaved`].
pub const SAVED_RESERVED_WORDS: usize = 8;

/// The SDEI state of one vCPU as the VMM saves and restores it (host byte
/// order, as any UAPI struct).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SdeiSaved {
    /// [`STATUS_REGISTERED`], [`STATUS_ENABLED`], [`STATUS_RUNNING`],
    /// [`SAVED_PENDING`], [`SAVED_MASKED`], [`SAVED_CONTEXT`].
    pub flags: u64,
    /// The event the state is of: [`ASYNC_PF_EVENT`].
    pub event: u64,
    /// Registered entry point; 0 if not registered.
    pub entry_point: u64,
    /// Registered argument; 0 if not registered.
    pub entry_arg: u64,
    /// Interrupted `x0`-`x17`; 0 unless [`SAVED_CONTEXT`].
    pub ctx_x: [u64; SAVED_REGS],
    /// Interrupted PC; 0 unless [`SAVED_CONTEXT`].
    pub ctx_pc: u64,
    /// Interrupted PSTATE; 0 unless [`SAVED_CONTEXT`].
    pub ctx_pstate: u64,
    /// Must be zero.
    pub reserved: [u64; SAVED_RESERVED_WORDS],
}

/// Size of [`SdeiSaved`] in bytes.
pub const SAVED_SIZE: usize = 256;
const _: () = assert!(core::mem::size_of::<SdeiSaved>() == SAVED_SIZE);
const _: () = assert!(core::mem::offset_of!(SdeiSaved, flags) == 0);
const _: () = assert!(core::mem::offset_of!(SdeiSaved, event) == 8);
const _: () = assert!(core::mem::offset_of!(SdeiSaved, entry_point) == 16);
const _: () = assert!(core::mem::offset_of!(SdeiSaved, entry_arg) == 24);
const _: () = assert!(core::mem::offset_of!(SdeiSaved, ctx_x) == 32);
const _: () = assert!(core::mem::offset_of!(SdeiSaved, ctx_pc) == 176);
const _: () = assert!(core::mem::offset_of!(SdeiSaved, ctx_pstate) == 184);
const _: () = assert!(core::mem::offset_of!(SdeiSaved, reserved) == 192);

/// Why a saved SDEI state was refused. Each maps to `EINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdeiStateError {
    /// A reserved word is not zero.
    ReservedNotZero,
    /// `flags` has unknown bits.
    UnknownFlags,
    /// `event` is not [`ASYNC_PF_EVENT`].
    WrongEvent,
    /// Enabled but not registered.
    EnabledNotRegistered,
    /// Registered with an entry point of 0 or not 4-byte aligned.
    BadEntryPoint,
    /// Not registered, but an entry point or argument is set.
    HandlerNotRegistered,
    /// Running without [`SAVED_CONTEXT`].
    RunningWithoutContext,
    /// [`SAVED_CONTEXT`] without running.
    ContextNotRunning,
    /// No context, but a `ctx_*` word is not zero.
    StaleContext,
    /// The saved PSTATE is not a mode the client can be interrupted in.
    BadInterruptedMode,
    /// Pending but not registered.
    PendingNotRegistered,
    /// Pending but not enabled.
    PendingNotEnabled,
    /// Pending while the PE is masked.
    PendingMasked,
    /// Pending while the handler runs.
    PendingWhileRunning,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rows() {
        let a = [u64::from(ASYNC_PF_EVENT), 0x1000, 7, 0, 0];
        assert_eq!(decode(0xc400_0020, &a), Some(Ok(SdeiCall::Version)));
        assert_eq!(
            decode(0x8400_0022, &a),
            Some(Ok(SdeiCall::EventEnable {
                event: ASYNC_PF_EVENT
            }))
        );
        assert_eq!(decode(0xc400_0033, &a), Some(Err(SdeiError::NotSupported)));
        assert_eq!(decode(0xc400_0040, &a), None);
        assert_eq!(VERSION, 0x0001_0001_0000_0000);
    }
}
