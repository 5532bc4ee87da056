// SPDX-License-Identifier: GPL-2.0

//! KUnit suite of the guest driver, run at `insmod`: the sleeper table
//! with kernel storage, the discovery checks, and the two handlers and the
//! sleep on a per-CPU state that is not registered with any host (the
//! test writes the record as the host would, and never makes a call).

use kernel::prelude::*;

#[kunit_tests(kvm_apf_guest)]
mod tests {
    use kernel::prelude::*;
    use kernel::sync::atomic::Acquire;
    use kernel::sync::atomic::Atomic;
    use kernel::sync::atomic::Relaxed;
    use kernel::sync::atomic::Release;
    use kernel::sync::Arc;
    use kernel::task::Task;
    use kernel::time::delay::fsleep;
    use kernel::time::Delta;
    use kernel::workqueue;

    use crate::cpu::CpuState;
    use crate::cpu::Entries;
    use crate::cpu::Table;
    use crate::logic::guest_abi::check_version;
    use crate::logic::guest_abi::GuestConfig;
    use crate::logic::guest_abi::Refusal;
    use crate::logic::sleepers::PageReady;
    use crate::logic::sleepers::SleepEnd;
    use crate::logic::sleepers::SleepStart;
    use crate::logic::sleepers::SleeperTable;
    use crate::logic::token::Token;
    use crate::stats::Stats;

    const T1: Token = Token::from_raw(0x4000_1000);
    const T2: Token = Token::from_raw(0x4000_2000);

    fn table(n: usize) -> Result<Table> {
        Ok(SleeperTable::new(Entries::free(n)?))
    }

    #[test]
    fn table_orders() -> Result {
        let mut t = table(2)?;
        // Sleep, then page-ready.
        let a = t.announce(T1).map_err(|_| EINVAL)?;
        assert_eq!(t.begin_sleep(a), Ok(SleepStart::Wait));
        assert!(t.page_ready(T1, Token::NONE, |_| {}).must_wake());
        assert_eq!(t.end_sleep(a), Ok(SleepEnd::Woken));
        // Page-ready, then the sleep: returns at once.
        let b = t.announce(T2).map_err(|_| EINVAL)?;
        assert!(!t.page_ready(T2, Token::NONE, |_| {}).must_wake());
        assert_eq!(t.begin_sleep(b), Ok(SleepStart::ReadyBeforeSleep));
        // Page-ready before not-present was even handled.
        let r = t.page_ready(T1, T1, |_| {});
        assert_eq!(r.outcome, PageReady::BeforeNotPresent);
        assert!(r.clear_not_present);
        assert_eq!(t.in_use(), 0);
        Ok(())
    }

    #[test]
    fn discovery_checks() {
        assert_eq!(check_version(0x0001_0000), Ok(()));
        assert_eq!(check_version(u64::MAX), Err(Refusal::NotSupported));
        assert!(GuestConfig::from_regs([0, 20, 21, 64], 4, 0x0001_0000).is_ok());
        assert_eq!(
            GuestConfig::from_regs([0, 20, 40, 64], 2, 0x0001_0000),
            Err(Refusal::SpiWithSmp(2))
        );
        // A 1.1 host: an SPI for any number of CPUs, through GET_READY.
        assert!(GuestConfig::from_regs([0, 20, 40, 64], 2, 0x0001_0001).is_ok_and(|c| c.vm_wide_ready));
    }

    /// A per-CPU state that the handlers treat as registered.
    fn registered(stats: &'static Stats) -> Result<Pin<KBox<CpuState>>> {
        let cs = CpuState::new(0, 4, stats)?;
        cs.registered.store(true, Relaxed);
        Ok(cs)
    }

    fn release(cs: Pin<KBox<CpuState>>) {
        // Never registered with a host: let drop free the record.
        cs.registered.store(false, Relaxed);
        drop(cs);
    }

    #[test]
    fn not_present_in_kernel_mode_hands_the_field_back() -> Result {
        static S: Stats = Stats::new();
        let cs = registered(&S)?;
        cs.record().host_write(Some(T1), None);
        // Not in an interrupt from user mode: no sleep is queued.
        cs.not_present();
        assert!(cs.record().not_present().is_none());
        assert_eq!(S.not_present.load(Relaxed), 1);
        assert_eq!(S.kernel_skipped.load(Relaxed), 1);
        assert_eq!(cs.table.lock().in_use(), 0);
        // The field reads 0 now: spurious.
        cs.not_present();
        assert_eq!(S.spurious.load(Relaxed), 1);
        release(cs);
        Ok(())
    }

    #[test]
    fn page_ready_before_not_present() -> Result {
        static S: Stats = Stats::new();
        let cs = registered(&S)?;
        cs.record().host_write(Some(T1), Some(T1));
        cs.page_ready();
        assert!(cs.record().not_present().is_none());
        assert!(cs.record().take_ready().is_none());
        assert_eq!(S.ready_before_sleep.load(Relaxed), 1);
        release(cs);
        Ok(())
    }

    #[test]
    fn wake_all_ends_a_queued_sleep_and_voids_not_present() -> Result {
        static S: Stats = Stats::new();
        let cs = registered(&S)?;
        let idx = cs.table.lock().announce(T1).map_err(|_| EINVAL)?;
        cs.record().host_write(Some(T2), Some(Token::WAKE_ALL));
        cs.page_ready();
        assert!(cs.record().not_present().is_none());
        assert_eq!(S.wake_all.load(Relaxed), 1);
        assert_eq!(cs.table.lock().wake_alls(), 1);
        // The queued sleep returns at once and frees its entry.
        cs.sleep(idx);
        assert_eq!(cs.table.lock().in_use(), 0);
        assert_eq!(S.asleep.load(Relaxed), 0);
        release(cs);
        Ok(())
    }

    /// VM-wide page-ready (an SPI): an entry that `GET_READY` names for
    /// another CPU acts on that CPU's table and not-present field only,
    /// even when both CPUs announced the same token.
    #[test]
    fn vm_wide_page_ready_acts_on_the_named_cpu() -> Result {
        use crate::logic::sleepers::Entry;

        static S: Stats = Stats::new();
        let a = registered(&S)?;
        let b = registered(&S)?;
        let ia = a.table.lock().announce(T1).map_err(|_| EINVAL)?;
        let ib = b.table.lock().announce(T1).map_err(|_| EINVAL)?;
        b.deliver_ready(T1);
        assert_eq!(b.table.lock().entry(ib), Some(Entry::Ready));
        assert_eq!(a.table.lock().entry(ia), Some(Entry::Queued(T1)));
        // Page-ready before the named CPU took its not-present.
        a.record().host_write(Some(T2), None);
        b.record().host_write(Some(T2), None);
        b.deliver_ready(T2);
        assert!(b.record().not_present().is_none());
        assert_eq!(a.record().not_present(), T2);
        assert_eq!(S.ready_before_sleep.load(Relaxed), 2);
        b.sleep(ib);
        assert_eq!(b.table.lock().in_use(), 0);
        a.table.lock().cancel(ia).map_err(|_| EINVAL)?;
        a.record().host_write(Some(Token::NONE), None);
        release(a);
        release(b);
        Ok(())
    }

    #[test]
    fn unregistered_ignores_notifications() -> Result {
        static S: Stats = Stats::new();
        let cs = CpuState::new(0, 1, &S)?;
        cs.record().host_write(Some(T1), Some(T1));
        cs.not_present();
        cs.page_ready();
        assert_eq!(S.spurious.load(Relaxed), 2);
        assert_eq!(cs.record().not_present(), T1);
        drop(cs);
        Ok(())
    }

    /// A task sleeping in a worker, and whether its sleep returned.
    struct Sleeper {
        cs: Pin<KBox<CpuState>>,
        finished: Atomic<bool>,
    }

    /// Polls `what` for up to five seconds.
    fn eventually(what: impl Fn() -> bool) -> bool {
        for _ in 0..5000 {
            if what() {
                return true;
            }
            fsleep(Delta::from_millis(1));
        }
        what()
    }

    /// A worker sleeps on `T1` through the real wait; the page-ready
    /// handler, fed `ready` as the host would, must wake it.
    fn sleeper_woken_by(stats: &'static Stats, ready: Token) -> Result {
        let cs = registered(stats)?;
        let idx = cs.table.lock().announce(T1).map_err(|_| EINVAL)?;
        let s = Arc::new(
            Sleeper {
                cs,
                finished: Atomic::new(false),
            },
            GFP_KERNEL,
        )?;
        let worker = s.clone();
        workqueue::system()
            .try_spawn(GFP_KERNEL, move || {
                // What the not-present handler records for the task.
                if let Some(w) = worker.cs.works.get(idx) {
                    w.task.store(Task::current_raw(), Relaxed);
                }
                worker.cs.sleep(idx);
                worker.finished.store(true, Release);
            })
            .map_err(|_| ENOMEM)?;
        assert!(eventually(|| stats.asleep.load(Relaxed) == 1));
        fsleep(Delta::from_millis(20));
        assert!(!s.finished.load(Acquire));
        s.cs.record().host_write(None, Some(ready));
        s.cs.page_ready();
        let woke = eventually(|| s.finished.load(Acquire));
        if !woke {
            // Never leave it asleep, even when the test fails.
            s.cs.wake_everyone();
            eventually(|| s.finished.load(Acquire));
        }
        assert!(woke);
        assert_eq!(stats.sleeps.load(Relaxed), 1);
        assert_eq!(stats.asleep.load(Relaxed), 0);
        assert_eq!(s.cs.table.lock().in_use(), 0);
        // Whoever drops the last reference frees a record no host knows.
        s.cs.registered.store(false, Relaxed);
        Ok(())
    }

    #[test]
    fn a_sleeper_is_woken_by_its_page_ready() -> Result {
        static S: Stats = Stats::new();
        sleeper_woken_by(&S, T1)
    }

    #[test]
    fn a_sleeper_is_woken_by_wake_all() -> Result {
        static S: Stats = Stats::new();
        sleeper_woken_by(&S, Token::WAKE_ALL)
    }
}
