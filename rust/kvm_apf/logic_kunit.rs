// SPDX-License-Identifier: GPL-2.0

//! KUnit suites for the pure logic in kernel context: the same types the
//! provider uses, with kernel-allocated (`KVec`) storage, run at `insmod`.

use kernel::prelude::*;

#[kunit_tests(kvm_apf_logic)]
mod tests {
    use kernel::prelude::*;

    use crate::logic::config::validate_cap;
    use crate::logic::config::CapRequest;
    use crate::logic::config::ConfigError;
    use crate::logic::gfn_table::capacity_for;
    use crate::logic::gfn_table::GfnTable;
    use crate::logic::gfn_table::TableError;
    use crate::logic::hypercall::INVALID_PARAMETER_RET;
    use crate::logic::hypercall::NOT_REQUIRED_RET;
    use crate::logic::hypercall::NOT_SUPPORTED_RET;
    use crate::logic::hypercall::SUCCESS_RET;
    use crate::logic::hypercall::VERSION;
    use crate::logic::record;
    use crate::logic::token::Token;
    use crate::logic::vcpu_state::Action;
    use crate::logic::vcpu_state::Actions;
    use crate::logic::vcpu_state::Eligibility;
    use crate::logic::vcpu_state::GuestMemory;
    use crate::vcpu::State;
    use crate::vcpu::Storage;

    const PAGE_SHIFT: u32 = kernel::page::PAGE_SHIFT as u32;


    fn state(slots: u64) -> Result<State> {
        let Ok(CapRequest::Enable(cfg)) = validate_cap(&[1, slots, 20, 21]) else {
            return Err(EINVAL);
        };
        let n = cfg.slots_usize();
        State::new(cfg, PAGE_SHIFT, Storage::zeroed(capacity_for(n).ok_or(EINVAL)?)?, Storage::zeroed(n)?)
            .map_err(|_| EINVAL)
    }

    #[test]
    fn gfn_table_insert_remove_full() -> Result {
        let mut t = GfnTable::new(Storage::zeroed(capacity_for(8).ok_or(EINVAL)?)?, 8).map_err(|_| EINVAL)?;
        // Gfns that share a home slot exercise the probe chains.
        let cap = t.capacity() as u64;
        for i in 0..8u64 {
            assert_eq!(t.insert(i * cap), Ok(()));
        }
        assert!(t.is_full());
        assert_eq!(t.insert(12345), Err(TableError::Full));
        assert_eq!(t.insert(3 * cap), Err(TableError::AlreadyPresent));
        // Removing from the middle of a chain keeps the rest reachable.
        assert!(t.remove(2 * cap));
        assert!(!t.remove(2 * cap));
        for i in (0..8u64).filter(|&i| i != 2) {
            assert!(t.contains(i * cap));
        }
        assert_eq!(t.len(), 7);
        Ok(())
    }

    #[test]
    fn config_validation() {
        assert!(matches!(validate_cap(&[0, 0, 0, 0]), Ok(CapRequest::Disable)));
        assert_eq!(validate_cap(&[1 << 5, 0, 20, 21]), Err(ConfigError::UnknownFlags));
        assert_eq!(validate_cap(&[1, 3, 20, 21]), Err(ConfigError::BadSlots));
        assert_eq!(validate_cap(&[1, 2048, 20, 21]), Err(ConfigError::BadSlots));
        assert_eq!(validate_cap(&[1, 0, 32, 21]), Err(ConfigError::NotPresentIntidNotPpi));
        assert_eq!(validate_cap(&[1, 0, 20, 1020]), Err(ConfigError::ReadyIntidInvalid));
        assert_eq!(validate_cap(&[1, 0, 20, 20]), Err(ConfigError::SameIntid));
        assert!(matches!(validate_cap(&[3, 64, 20, 40]), Ok(CapRequest::Enable(_))));
    }

    #[test]
    fn record_layout() {
        assert_eq!(record::RECORD_SIZE, 64);
        assert_eq!(record::NOT_PRESENT_TOKEN_OFFSET, 0);
        assert_eq!(record::READY_TOKEN_OFFSET, 8);
        let w = record::ready_write(0x1000, Token::from_raw(0x4000_0000));
        assert!(matches!(w, Some(w) if w.gpa == 0x1008 && w.bytes == [0, 0, 0, 0x40, 0, 0, 0, 0]));
    }

    /// A small guest memory: RAM below 1 MiB, the record's three words
    /// stored, everything else reads as zero.
    struct Mem {
        words: [(u64, u64); 3],
    }

    impl Mem {
        fn new(record: u64) -> Self {
            Self { words: [(record, 0), (record + 8, 0), (record + 16, 0)] }
        }

        /// The guest clears the token field at `gpa`.
        fn clear(&mut self, gpa: u64) {
            for w in self.words.iter_mut().filter(|w| w.0 == gpa) {
                w.1 = 0;
            }
        }

        fn apply(&mut self, actions: &Actions) {
            for a in actions.iter() {
                if let Some(w) = a.guest_write() {
                    for word in self.words.iter_mut().filter(|x| x.0 == w.gpa) {
                        word.1 = u64::from_le_bytes(w.bytes);
                    }
                }
            }
        }
    }

    impl GuestMemory for Mem {
        fn is_ram(&mut self, gpa: u64, len: u64) -> bool {
            gpa.checked_add(len).is_some_and(|end| end <= 0x10_0000)
        }

        fn read_u64(&mut self, gpa: u64) -> Option<u64> {
            Some(self.words.iter().find(|w| w.0 == gpa).map_or(0, |w| w.1))
        }
    }

    #[test]
    fn guest_abi_and_fault_flow() -> Result {
        let mut st = state(4)?;
        let mut m = Mem::new(0x1000);
        let call = |st: &mut State, m: &mut Mem, x1: u64, x2: u64| {
            let r = st.handle_raw(x1, x2, m);
            m.apply(&r.actions);
            r.regs[0]
        };
        assert_eq!(call(&mut st, &mut m, 0, 0), VERSION);
        assert_eq!(call(&mut st, &mut m, 3, 0), NOT_REQUIRED_RET); // enable before register
        assert_eq!(call(&mut st, &mut m, 2, 0x1010), INVALID_PARAMETER_RET); // misaligned
        assert_eq!(call(&mut st, &mut m, 2, 0x20_0000), INVALID_PARAMETER_RET); // not RAM
        assert_eq!(call(&mut st, &mut m, 6, 0), NOT_SUPPORTED_RET);
        assert_eq!(call(&mut st, &mut m, 2, 0x1000), SUCCESS_RET);
        assert_eq!(call(&mut st, &mut m, 3, 0), SUCCESS_RET);

        // EL1 faults are not notified unless the guest opted in.
        assert_eq!(st.fault_eligible(0x40, false, true, &mut m), Eligibility::El1NotAllowed);
        assert_eq!(st.fault_eligible(0x40, true, false, &mut m), Eligibility::IrqNotDeliverable);
        assert_eq!(st.fault_eligible(0, true, true, &mut m), Eligibility::NoToken);
        assert_eq!(st.fault_eligible(0x40, true, true, &mut m), Eligibility::Eligible);
        let acts = st.fault_started(0x40).map_err(|_| EINVAL)?;
        m.apply(&acts);
        let token = Token::from_gfn(0x40, PAGE_SHIFT).ok_or(EINVAL)?;
        let mut it = acts.iter();
        assert_eq!(it.next(), Some(Action::WriteNotPresent { record: 0x1000, token }));
        assert_eq!(it.next(), Some(Action::SignalNp { intid: 20 }));
        // The guest faults again on the page it was told about: block.
        assert_eq!(st.fault_eligible(0x40, true, true, &mut m), Eligibility::AlreadyPending);
        // Another page before the guest cleared the token: block too.
        assert_eq!(st.fault_eligible(0x41, true, true, &mut m), Eligibility::NotPresentBusy);
        m.clear(0x1000);
        assert_eq!(st.fault_eligible(0x41, true, true, &mut m), Eligibility::Eligible);

        let acts = st.page_ready(0x40, &mut m);
        m.apply(&acts);
        let mut it = acts.iter();
        assert_eq!(it.next(), Some(Action::WriteReady { record: 0x1000, token }));
        assert_eq!(it.next(), Some(Action::WriteHeader { record: 0x1000, ack_ready: false }));
        assert_eq!(it.next(), Some(Action::SignalReady { intid: 21 }));
        assert!(st.page_ready(0x40, &mut m).is_empty()); // stale: nothing twice
        // Nothing waits: ACK_READY has nothing to do, cleared or not.
        assert_eq!(call(&mut st, &mut m, 5, 0), NOT_REQUIRED_RET);
        m.clear(0x1008);
        assert_eq!(call(&mut st, &mut m, 5, 0), NOT_REQUIRED_RET);
        assert_eq!(st.counters().async_faults, 1);
        assert_eq!(st.counters().blocked_on_pending, 1);
        Ok(())
    }

    #[test]
    fn slots_bound_outstanding_tokens() -> Result {
        let mut st = state(2)?;
        let mut m = Mem::new(0x2000);
        let r = st.handle_raw(2, 0x2000, &mut m);
        assert_eq!(r.regs[0], SUCCESS_RET);
        assert_eq!(st.handle_raw(3, 0, &mut m).regs[0], SUCCESS_RET);
        for gfn in [1u64, 2] {
            assert_eq!(st.fault_eligible(gfn, true, true, &mut m), Eligibility::Eligible);
            st.fault_started(gfn).map_err(|_| EINVAL)?;
        }
        assert_eq!(st.fault_eligible(3, true, true, &mut m), Eligibility::TableFull);
        // DISABLE drops both and wakes everything.
        assert_eq!(st.handle_raw(4, 0, &mut m).regs[0], SUCCESS_RET);
        assert_eq!(st.outstanding(), 0);
        assert_eq!(st.counters().wake_all, 1);
        Ok(())
    }

    /// VM-wide page-ready with the kernel storage the provider uses: a
    /// completion becomes a queue entry that holds its vCPU's slot until
    /// `GET_READY` pops it, and `DISABLE`'s `WAKE_ALL` voids the entries.
    #[test]
    fn vm_wide_ready_queue() -> Result {
        use crate::logic::vcpu_state::VmView;
        use crate::logic::vm_ready::VmReadyQueue;

        let Ok(CapRequest::Enable(cfg)) = validate_cap(&[1, 2, 20, 40]) else {
            return Err(EINVAL);
        };
        let mut st = State::new(cfg, PAGE_SHIFT, Storage::zeroed(capacity_for(2).ok_or(EINVAL)?)?, Storage::zeroed(2)?)
            .map_err(|_| EINVAL)?;
        assert!(st.is_vm_wide());
        let mut q = VmReadyQueue::new(Storage::zeroed(0)?, Storage::zeroed(0)?);
        let (ne, nv) = q.sizes_with_one_more(2).ok_or(EINVAL)?;
        let (idx, _, _) = q
            .add_vcpu(Storage::zeroed(ne)?, Storage::zeroed(nv)?, 2)
            .map_err(|_| EINVAL)?;
        let mut m = Mem::new(0x2000);
        assert_eq!(st.handle_raw(2, 0x2000, &mut m).regs[0], SUCCESS_RET);
        assert_eq!(st.handle_raw(3, 0, &mut m).regs[0], SUCCESS_RET);
        let none = VmView::default();
        assert_eq!(st.fault_eligible_vm(1, true, true, &none, &mut m), Eligibility::Eligible);
        st.fault_started_vm(1, &none).map_err(|_| EINVAL)?;
        m.clear(0x2000);
        let a = st.page_ready(1, &mut m);
        let mut it = a.iter();
        let Some(Action::VmReady { token }) = it.next() else {
            return Err(EINVAL);
        };
        assert_eq!(it.next(), None);
        assert_eq!(q.push(idx, 0x8000_0102, token), Ok(true));
        // The queued entry still holds a slot, and its token blocks.
        let queued = q.queued(idx);
        let view = VmView { tokens: queued.tokens as usize, wake_all: false, has_token: q.contains(idx, token) };
        assert_eq!(st.fault_eligible_vm(1, true, true, &view, &mut m), Eligibility::AlreadyPending);
        assert_eq!(q.get_ready_regs(), [SUCCESS_RET, 1 << PAGE_SHIFT, 0x102, 0]);
        assert_eq!(q.get_ready_regs(), [NOT_REQUIRED_RET, 0, 0, 0]);
        // ACK_READY has nothing to do with an SPI; DISABLE's WAKE_ALL
        // goes to the VM queue.
        assert_eq!(st.handle_raw(5, 0, &mut m).regs[0], NOT_REQUIRED_RET);
        let r = st.handle_raw(4, 0, &mut m);
        assert_eq!(r.regs[0], SUCCESS_RET);
        assert!(r.actions.iter().any(|a| a == Action::VmReady { token: Token::WAKE_ALL }));
        Ok(())
    }

    /// The SDEI dispatcher in kernel context: register, enable, unmask,
    /// enter at a fault, complete and resume, and a masked PE refusing.
    #[test]
    fn sdei_dispatcher_flow() -> Result {
        use crate::logic::sdei::CallResult;
        use crate::logic::sdei::ClientEl;
        use crate::logic::sdei::Context;
        use crate::logic::sdei::SdeiState;
        use crate::logic::sdei::ASYNC_PF_EVENT;

        let ev = u64::from(ASYNC_PF_EVENT);
        let mut s = SdeiState::new(ClientEl::El1);
        // Masked from reset: nothing can be entered.
        assert!(s.deliverable().is_err());
        assert_eq!(s.handle_raw(0xc400_0021, &[ev, 0x8000, 7, 0, 0]), Some(CallResult::Return([0, 0, 0, 0])));
        assert_eq!(s.handle_raw(0xc400_0022, &[ev, 0, 0, 0, 0]), Some(CallResult::Return([0, 0, 0, 0])));
        assert!(s.deliverable().is_err());
        assert_eq!(s.handle_raw(0xc400_002c, &[0; 5]), Some(CallResult::Return([0, 0, 0, 0])));
        assert!(s.deliverable().is_ok());
        let ctx = Context { x: [3; 18], pc: 0x4000, pstate: 0 };
        // An unmasked, enabled event is entered.
        let entry = s.enter(&ctx).map_err(|_| EINVAL)?;
        assert_eq!(entry.x, [ev, 7, 0x4000, 0]);
        assert_eq!(entry.pc, 0x8000);
        // No nesting while the handler runs.
        assert!(s.deliverable().is_err());
        let Some(CallResult::Complete(c)) = s.handle_raw(0xc400_0026, &[0x9000, 0, 0, 0, 0]) else {
            return Err(EINVAL);
        };
        assert_eq!((c.pc, c.x), (0x9000, [3; 18]));
        assert!(c.irq.is_some_and(|f| f.elr == 0x4000 && f.spsr == 0));
        assert!(s.deliverable().is_ok());
        Ok(())
    }
}
