// SPDX-License-Identifier: GPL-2.0

//! The guest's sleeper tables (`rust/logic/sleepers.rs`) driven the way
//! `kvm_apf_guest.ko` drives them, against a model of the host's side of
//! the ABI (Documentation/async-pf.rst) and of the guest's tasks and CPUs.
//!
//! Every order of events the ABI allows is generated: not-present and
//! page-ready in either order, a task migrated between its not-present
//! interrupt and its sleep, `WAKE_ALL` (of `DISABLE` or of a migration
//! restore) racing a sleep, a CPU going offline with sleepers, signals,
//! not-present taken in kernel mode, a full table. After every step the
//! table must agree with the model; at the end, with the host left to
//! finish its work and no signal sent, every task must have finished and
//! every entry must be free: nothing may leave a task asleep.

use kvm_apf_logic::sleepers::AnnounceError;
use kvm_apf_logic::sleepers::Entry;
use kvm_apf_logic::sleepers::PageReady;
use kvm_apf_logic::sleepers::SleepEnd;
use kvm_apf_logic::sleepers::SleepStart;
use kvm_apf_logic::sleepers::SleeperTable;
use kvm_apf_logic::token::Token;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::collections::VecDeque;

fn token(page: usize) -> Token {
    Token::from_raw(((page as u64) + 1) << 12)
}

/// The host's view of one vCPU, and the vCPU's record and interrupts.
#[derive(Debug)]
struct HostVcpu {
    /// The guest registered a record (the host's copy of the registration).
    registered: bool,
    enabled: bool,
    /// Announced and not yet delivered as ready.
    outstanding: BTreeSet<Token>,
    /// Page-ready notifications waiting behind `ready`.
    queue: VecDeque<Token>,
    np: Token,
    ready: Token,
    ack_ready: bool,
    irq_np: bool,
    irq_pr: bool,
}

impl Default for HostVcpu {
    fn default() -> Self {
        HostVcpu {
            registered: false,
            enabled: false,
            outstanding: BTreeSet::new(),
            queue: VecDeque::new(),
            np: Token::NONE,
            ready: Token::NONE,
            ack_ready: false,
            irq_np: false,
            irq_pr: false,
        }
    }
}

impl HostVcpu {
    fn deliver(&mut self, t: Token) {
        if self.ready.is_none() {
            self.ready = t;
            self.irq_pr = true;
        } else {
            self.queue.push_back(t);
            self.ack_ready = true;
        }
    }

    fn ack(&mut self) {
        if self.ready.is_none() {
            if let Some(t) = self.queue.pop_front() {
                self.ready = t;
                self.ack_ready = !self.queue.is_empty();
                self.irq_pr = true;
            }
        }
    }

    fn wake_all_owed(&self) -> bool {
        self.ready.is_wake_all() || self.queue.iter().any(|t| t.is_wake_all())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    /// Not on a CPU, ready to run.
    Runnable,
    /// Current on `cpu`, about to make its next access.
    Running {
        cpu: usize,
    },
    /// Its access on `cpu` was announced; not-present is pending there and
    /// the task sits at the faulting instruction.
    AtFault {
        cpu: usize,
    },
    /// Not-present queued its sleep on entry `idx` of `cpu`'s table; the
    /// task left the CPU (it may run the sleep anywhere).
    SleepQueued {
        cpu: usize,
        idx: usize,
        tok: Token,
    },
    /// Sleeping on entry `idx` of `cpu`'s table.
    Sleeping {
        cpu: usize,
        idx: usize,
        tok: Token,
    },
    Done,
}

struct World {
    slots: usize,
    pages: Vec<bool>,
    /// (vCPU, token) being brought in by a host worker.
    in_flight: BTreeSet<(usize, Token)>,
    host: Vec<HostVcpu>,
    online: Vec<bool>,
    current: Vec<Option<usize>>,
    tables: Vec<SleeperTable<Vec<Entry>>>,
    tasks: Vec<Task>,
    /// The pages each task reads, in order, and how far it got.
    work: Vec<(Vec<usize>, usize)>,
    /// Counters, as the driver keeps them.
    woken: usize,
    before_sleep: usize,
    before_np: usize,
    kernel_skipped: usize,
    full: usize,
}

impl World {
    fn new(cpus: usize, pages: usize, slots: usize, entries: usize, work: Vec<Vec<usize>>) -> Self {
        let mut w = World {
            slots,
            pages: vec![false; pages],
            in_flight: BTreeSet::new(),
            host: (0..cpus).map(|_| HostVcpu::default()).collect(),
            online: vec![false; cpus],
            current: vec![None; cpus],
            tables: (0..cpus)
                .map(|_| SleeperTable::new(vec![Entry::Free; entries]))
                .collect(),
            tasks: vec![Task::Runnable; work.len()],
            work: work.into_iter().map(|w| (w, 0)).collect(),
            woken: 0,
            before_sleep: 0,
            before_np: 0,
            kernel_skipped: 0,
            full: 0,
        };
        for c in 0..cpus {
            w.online_cpu(c);
        }
        w
    }

    /// The cpuhp online callback: zeroed record, SET_RECORD, ENABLE.
    fn online_cpu(&mut self, c: usize) {
        let h = &mut self.host[c];
        h.registered = true;
        h.np = Token::NONE;
        h.ready = Token::NONE;
        h.ack_ready = false;
        h.queue.clear();
        h.enabled = true;
        self.online[c] = true;
    }

    /// The host brings `tok`'s page in for vCPU `v` and delivers page-ready.
    fn bring_in(&mut self, v: usize, tok: Token) {
        if !self.in_flight.remove(&(v, tok)) {
            return;
        }
        self.pages[(tok.raw() >> 12) as usize - 1] = true;
        let h = &mut self.host[v];
        if h.outstanding.remove(&tok) {
            h.deliver(tok);
        }
    }

    /// DISABLE, or a migration restore: every announced token is dropped
    /// (their pages stay remote: the destination faults them again) and
    /// one WAKE_ALL takes their place.
    fn wake_all_from_host(&mut self, v: usize) {
        let h = &mut self.host[v];
        h.outstanding.clear();
        self.in_flight.retain(|(c, _)| *c != v);
        self.host[v].deliver(Token::WAKE_ALL);
    }

    /// A task current on `c` accesses its next page.
    fn access(&mut self, task: usize, c: usize) {
        let (list, pos) = &self.work[task];
        let Some(&page) = list.get(*pos) else {
            self.tasks[task] = Task::Done;
            self.current[c] = None;
            return;
        };
        if self.pages[page] {
            self.work[task].1 += 1;
            self.tasks[task] = Task::Running { cpu: c };
            return;
        }
        let tok = token(page);
        let h = &mut self.host[c];
        let announce = h.enabled
            && h.np.is_none()
            && !h.outstanding.contains(&tok)
            && !h.wake_all_owed()
            && h.outstanding.len() < self.slots;
        if announce {
            h.np = tok;
            h.outstanding.insert(tok);
            h.irq_np = true;
            self.in_flight.insert((c, tok));
            self.tasks[task] = Task::AtFault { cpu: c };
        } else if h.outstanding.contains(&tok) {
            // Blocks in the host until the page is in; page-ready follows.
            self.bring_in(c, tok);
            self.tasks[task] = Task::Running { cpu: c };
        } else {
            // Handled synchronously, as without the feature.
            self.pages[page] = true;
            self.tasks[task] = Task::Running { cpu: c };
        }
    }

    /// The not-present handler on `c`; `from_user` is
    /// `user_mode(get_irq_regs())`.
    fn take_np(&mut self, c: usize, from_user: bool) -> Result<(), TestCaseError> {
        let h = &mut self.host[c];
        prop_assert!(h.irq_np);
        h.irq_np = false;
        if !h.registered {
            return Ok(());
        }
        let tok = h.np;
        let Some(task) = self.current[c] else {
            prop_assert!(tok.is_none(), "announced with no task on the vCPU");
            return Ok(());
        };
        prop_assert_eq!(self.tasks[task], Task::AtFault { cpu: c });
        // Whatever happens, the task is no longer at the fault with the
        // interrupt pending: it re-executes unless put to sleep.
        self.tasks[task] = Task::Running { cpu: c };
        if tok.is_none() {
            return Ok(());
        }
        h.np = Token::NONE;
        if !from_user {
            self.kernel_skipped += 1;
            return Ok(());
        }
        match self.tables[c].announce(tok) {
            Ok(idx) => {
                self.tasks[task] = Task::SleepQueued { cpu: c, idx, tok };
                self.current[c] = None;
            }
            Err(AnnounceError::Full) => self.full += 1,
            Err(AnnounceError::NotAToken) => prop_assert!(false, "token {tok:?}"),
        }
        Ok(())
    }

    /// The page-ready handler on `c`, checked against the model.
    fn take_pr(&mut self, c: usize) -> Result<(), TestCaseError> {
        let h = &mut self.host[c];
        prop_assert!(h.irq_pr);
        h.irq_pr = false;
        if !h.registered {
            return Ok(());
        }
        let t = h.ready;
        h.ready = Token::NONE;
        if h.ack_ready {
            h.ack();
        }
        let np = h.np;
        // Who the model says must be woken, or made not to sleep.
        let sleepers: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| match self.tasks[i] {
                Task::Sleeping { cpu, idx, tok } => {
                    cpu == c && (t.is_wake_all() || tok == t) && !self.tables[c].is_woken(idx)
                }
                _ => false,
            })
            .collect();
        let queued: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| match self.tasks[i] {
                Task::SleepQueued { cpu, idx, tok } => {
                    cpu == c
                        && (t.is_wake_all() || tok == t)
                        && matches!(self.tables[c].entry(idx), Some(Entry::Queued(_)))
                }
                _ => false,
            })
            .collect();
        let mut woken_idx = Vec::new();
        let a = self.tables[c].page_ready(t, np, |i| woken_idx.push(i));
        match a.outcome {
            PageReady::Spurious => prop_assert!(t.is_none()),
            PageReady::WakeAll(m) => {
                prop_assert!(t.is_wake_all());
                prop_assert_eq!(m.woken, sleepers.len());
                prop_assert_eq!(m.before_sleep, queued.len());
                prop_assert_eq!(a.clear_not_present, !np.is_none());
            }
            PageReady::Matched(m) => {
                prop_assert_eq!(m.woken, sleepers.len());
                prop_assert_eq!(m.before_sleep, queued.len());
                prop_assert!(!a.clear_not_present);
            }
            PageReady::BeforeNotPresent => {
                prop_assert!(sleepers.is_empty() && queued.is_empty());
                prop_assert_eq!(np, t);
                prop_assert!(a.clear_not_present);
                self.before_np += 1;
            }
            PageReady::Unmatched => {
                prop_assert!(sleepers.is_empty() && queued.is_empty());
                prop_assert!(np != t);
            }
        }
        let mut expect_idx = Vec::new();
        for &i in &sleepers {
            let Task::Sleeping { idx, .. } = self.tasks[i] else {
                unreachable!()
            };
            prop_assert!(self.tables[c].is_woken(idx));
            expect_idx.push(idx);
        }
        expect_idx.sort();
        woken_idx.sort();
        prop_assert_eq!(woken_idx, expect_idx);
        self.before_sleep += queued.len();
        if a.clear_not_present {
            self.host[c].np = Token::NONE;
        }
        Ok(())
    }

    /// The task's queued sleep runs, on whichever CPU.
    fn run_sleep(&mut self, task: usize) -> Result<(), TestCaseError> {
        let Task::SleepQueued { cpu, idx, tok } = self.tasks[task] else {
            return Ok(());
        };
        match self.tables[cpu].begin_sleep(idx) {
            Ok(SleepStart::Wait) => self.tasks[task] = Task::Sleeping { cpu, idx, tok },
            Ok(SleepStart::ReadyBeforeSleep) => self.tasks[task] = Task::Runnable,
            Err(e) => prop_assert!(false, "begin_sleep({idx}): {e:?}"),
        }
        Ok(())
    }

    /// A sleeper that was woken runs; `signal`: a signal ends its wait.
    fn end_sleep(&mut self, task: usize, signal: bool) -> Result<bool, TestCaseError> {
        let Task::Sleeping { cpu, idx, .. } = self.tasks[task] else {
            return Ok(false);
        };
        let woken = self.tables[cpu].is_woken(idx);
        if !woken && !signal {
            return Ok(false);
        }
        let end = self.tables[cpu].end_sleep(idx);
        prop_assert_eq!(
            end,
            Ok(if woken {
                SleepEnd::Woken
            } else {
                SleepEnd::Interrupted
            })
        );
        if woken {
            self.woken += 1;
        }
        self.tasks[task] = Task::Runnable;
        Ok(true)
    }

    /// The cpuhp offline callback: DISABLE, wait for its WAKE_ALL, wake
    /// the sleepers, unregister.
    fn offline_cpu(&mut self, c: usize) -> Result<(), TestCaseError> {
        if let Some(task) = self.current[c] {
            match self.tasks[task] {
                // The scheduler moves it away first.
                Task::Running { .. } => {
                    self.tasks[task] = Task::Runnable;
                    self.current[c] = None;
                }
                // Its interrupt is taken first.
                _ => return Ok(()),
            }
        }
        let before = self.tables[c].wake_alls();
        if self.host[c].enabled {
            self.host[c].enabled = false;
            self.wake_all_from_host(c);
            let mut rounds = 0;
            while self.tables[c].wake_alls() == before {
                prop_assert!(self.host[c].irq_pr, "DISABLE's WAKE_ALL never came");
                self.take_pr(c)?;
                rounds += 1;
                prop_assert!(rounds <= self.slots + 2);
            }
        }
        self.tables[c].wake_all(|_| {});
        let h = &mut self.host[c];
        h.registered = false;
        h.queue.clear();
        h.ack_ready = false;
        self.online[c] = false;
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for (c, t) in self.tables.iter().enumerate() {
            let sleeping = self
                .tasks
                .iter()
                .filter(|s| matches!(s, Task::Sleeping { cpu, idx, .. } if *cpu == c && !t.is_woken(*idx)))
                .count();
            prop_assert_eq!(t.sleeping(), sleeping);
            let used = self
                .tasks
                .iter()
                .filter(|s| {
                    matches!(s, Task::Sleeping { cpu, .. } | Task::SleepQueued { cpu, .. } if *cpu == c)
                })
                .count();
            prop_assert_eq!(t.in_use(), used);
        }
        Ok(())
    }

    /// One generated event; events that do not apply now are skipped.
    fn step(&mut self, ev: Ev) -> Result<(), TestCaseError> {
        let nc = self.host.len();
        let nt = self.tasks.len();
        match ev {
            Ev::Schedule(t, c) => {
                let (t, c) = (t % nt, c % nc);
                if self.tasks[t] == Task::Runnable && self.online[c] && self.current[c].is_none() {
                    self.current[c] = Some(t);
                    self.tasks[t] = Task::Running { cpu: c };
                }
            }
            Ev::Access(c) => {
                let c = c % nc;
                if let Some(t) = self.current[c] {
                    if self.tasks[t] == (Task::Running { cpu: c }) {
                        self.access(t, c);
                    }
                }
            }
            Ev::Preempt(c) => {
                let c = c % nc;
                if let Some(t) = self.current[c] {
                    if self.tasks[t] == (Task::Running { cpu: c }) {
                        self.tasks[t] = Task::Runnable;
                        self.current[c] = None;
                    }
                }
            }
            Ev::TakeNp(c, from_user) => {
                let c = c % nc;
                if self.host[c].irq_np {
                    self.take_np(c, from_user)?;
                }
            }
            Ev::TakePr(c) => {
                let c = c % nc;
                if self.host[c].irq_pr {
                    self.take_pr(c)?;
                }
            }
            Ev::BringIn(i) => {
                if let Some(&(v, tok)) = self.in_flight.iter().nth(i % self.in_flight.len().max(1))
                {
                    self.bring_in(v, tok);
                }
            }
            Ev::RunSleep(t) => self.run_sleep(t % nt)?,
            Ev::Wake(t) => {
                self.end_sleep(t % nt, false)?;
            }
            Ev::Signal(t) => {
                self.end_sleep(t % nt, true)?;
            }
            Ev::Offline(c) => {
                let c = c % nc;
                if self.online[c] && self.online.iter().filter(|o| **o).count() > 1 {
                    self.offline_cpu(c)?;
                }
            }
            Ev::Online(c) => {
                let c = c % nc;
                if !self.online[c] {
                    self.online_cpu(c);
                }
            }
            Ev::Restore(c) => {
                let c = c % nc;
                if self.host[c].registered {
                    self.wake_all_from_host(c);
                }
            }
        }
        self.check()
    }

    /// No more events from outside: the host finishes its work, the guest
    /// takes its interrupts and runs its tasks. No signal is sent.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        for c in 0..self.host.len() {
            if !self.online[c] {
                self.online_cpu(c);
            }
        }
        for _round in 0..10_000 {
            let mut progress = false;
            for c in 0..self.host.len() {
                if self.host[c].irq_np {
                    self.take_np(c, true)?;
                    progress = true;
                }
                if self.host[c].irq_pr {
                    self.take_pr(c)?;
                    progress = true;
                }
            }
            if let Some(&(v, tok)) = self.in_flight.iter().next() {
                self.bring_in(v, tok);
                progress = true;
            }
            for t in 0..self.tasks.len() {
                match self.tasks[t] {
                    Task::SleepQueued { .. } => {
                        self.run_sleep(t)?;
                        progress = true;
                    }
                    Task::Sleeping { .. } => progress |= self.end_sleep(t, false)?,
                    Task::Runnable => {
                        if let Some(c) = (0..self.host.len()).find(|&c| self.current[c].is_none()) {
                            self.current[c] = Some(t);
                            self.tasks[t] = Task::Running { cpu: c };
                            progress = true;
                        }
                    }
                    Task::Running { cpu } => {
                        self.access(t, cpu);
                        progress = true;
                    }
                    Task::AtFault { .. } | Task::Done => {}
                }
            }
            self.check()?;
            if !progress {
                break;
            }
        }
        for (t, s) in self.tasks.iter().enumerate() {
            prop_assert_eq!(*s, Task::Done, "task {} did not finish", t);
        }
        for (c, t) in self.tables.iter().enumerate() {
            prop_assert_eq!(t.in_use(), 0, "cpu {}: entries left in use", c);
            prop_assert_eq!(t.sleeping(), 0);
        }
        prop_assert!(self.in_flight.is_empty());
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Schedule(usize, usize),
    Access(usize),
    Preempt(usize),
    TakeNp(usize, bool),
    TakePr(usize),
    BringIn(usize),
    RunSleep(usize),
    Wake(usize),
    Signal(usize),
    Offline(usize),
    Online(usize),
    Restore(usize),
}

fn ev() -> impl Strategy<Value = Ev> {
    let i = 0usize..8;
    prop_oneof![
        4 => (i.clone(), i.clone()).prop_map(|(t, c)| Ev::Schedule(t, c)),
        6 => i.clone().prop_map(Ev::Access),
        1 => i.clone().prop_map(Ev::Preempt),
        4 => (i.clone(), prop::bool::weighted(0.85)).prop_map(|(c, u)| Ev::TakeNp(c, u)),
        4 => i.clone().prop_map(Ev::TakePr),
        4 => i.clone().prop_map(Ev::BringIn),
        3 => i.clone().prop_map(Ev::RunSleep),
        3 => i.clone().prop_map(Ev::Wake),
        1 => i.clone().prop_map(Ev::Signal),
        1 => i.clone().prop_map(Ev::Offline),
        1 => i.clone().prop_map(Ev::Online),
        1 => i.prop_map(Ev::Restore),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn nothing_leaves_a_task_asleep(
        cpus in 1usize..4,
        slots in prop::sample::select(vec![1usize, 2, 4]),
        entries in 1usize..5,
        work in prop::collection::vec(prop::collection::vec(0usize..6, 1..6), 1..5),
        events in prop::collection::vec(ev(), 0..120),
    ) {
        let mut w = World::new(cpus, 6, slots, entries, work);
        for e in events {
            w.step(e)?;
        }
        w.drain()?;
    }
}

/// A few orders spelled out, with the counters the driver would show.
#[test]
fn ready_before_sleep_returns_at_once() {
    let mut w = World::new(1, 2, 4, 4, vec![vec![0]]);
    w.step(Ev::Schedule(0, 0)).unwrap();
    w.step(Ev::Access(0)).unwrap();
    w.step(Ev::TakeNp(0, true)).unwrap();
    w.step(Ev::BringIn(0)).unwrap();
    w.step(Ev::TakePr(0)).unwrap();
    assert_eq!(w.before_sleep, 1);
    w.step(Ev::RunSleep(0)).unwrap();
    assert_eq!(w.tasks[0], Task::Runnable);
    w.drain().unwrap();
}

#[test]
fn page_ready_before_not_present() {
    let mut w = World::new(1, 2, 4, 4, vec![vec![0]]);
    w.step(Ev::Schedule(0, 0)).unwrap();
    w.step(Ev::Access(0)).unwrap();
    w.step(Ev::BringIn(0)).unwrap();
    w.step(Ev::TakePr(0)).unwrap();
    assert_eq!(w.before_np, 1);
    // Not-present now reads 0: the task re-executes and finds its page.
    w.step(Ev::TakeNp(0, true)).unwrap();
    assert_eq!(w.tasks[0], Task::Running { cpu: 0 });
    w.drain().unwrap();
    assert_eq!(w.woken, 0);
}

#[test]
fn migrated_before_sleep_is_woken_by_its_vcpu() {
    let mut w = World::new(2, 2, 4, 4, vec![vec![0], vec![1]]);
    w.step(Ev::Schedule(0, 0)).unwrap();
    w.step(Ev::Access(0)).unwrap();
    w.step(Ev::TakeNp(0, true)).unwrap();
    // The sleep runs while the task is on CPU 1: it waits in CPU 0's table.
    w.step(Ev::RunSleep(0)).unwrap();
    assert!(matches!(w.tasks[0], Task::Sleeping { cpu: 0, .. }));
    w.step(Ev::BringIn(0)).unwrap();
    w.step(Ev::TakePr(0)).unwrap();
    w.step(Ev::Wake(0)).unwrap();
    assert_eq!(w.woken, 1);
    w.drain().unwrap();
}

#[test]
fn wake_all_races_a_sleep() {
    let mut w = World::new(1, 2, 4, 4, vec![vec![0]]);
    w.step(Ev::Schedule(0, 0)).unwrap();
    w.step(Ev::Access(0)).unwrap();
    w.step(Ev::TakeNp(0, true)).unwrap();
    w.step(Ev::Restore(0)).unwrap();
    w.step(Ev::TakePr(0)).unwrap();
    w.step(Ev::RunSleep(0)).unwrap();
    assert_eq!(w.tasks[0], Task::Runnable);
    w.drain().unwrap();
}

#[test]
fn wake_all_voids_an_unread_not_present() {
    let mut w = World::new(1, 2, 4, 4, vec![vec![0]]);
    w.step(Ev::Schedule(0, 0)).unwrap();
    w.step(Ev::Access(0)).unwrap();
    w.step(Ev::Restore(0)).unwrap();
    w.step(Ev::TakePr(0)).unwrap();
    assert!(w.host[0].np.is_none());
    w.drain().unwrap();
}

#[test]
fn offline_wakes_sleepers() {
    let mut w = World::new(2, 3, 4, 4, vec![vec![0], vec![1]]);
    for (t, c) in [(0, 0), (1, 1)] {
        w.step(Ev::Schedule(t, c)).unwrap();
        w.step(Ev::Access(c)).unwrap();
        w.step(Ev::TakeNp(c, true)).unwrap();
        w.step(Ev::RunSleep(t)).unwrap();
    }
    w.step(Ev::Offline(0)).unwrap();
    assert!(!w.online[0]);
    w.step(Ev::Wake(0)).unwrap();
    assert_eq!(w.tasks[0], Task::Runnable);
    assert!(matches!(w.tasks[1], Task::Sleeping { .. }));
    w.drain().unwrap();
}

#[test]
fn signal_then_late_page_ready_is_unmatched() {
    let mut t = SleeperTable::new(vec![Entry::Free; 2]);
    let tok = token(0);
    let i = t.announce(tok).unwrap();
    assert_eq!(t.begin_sleep(i), Ok(SleepStart::Wait));
    assert_eq!(t.end_sleep(i), Ok(SleepEnd::Interrupted));
    assert_eq!(
        t.page_ready(tok, Token::NONE, |_| {}).outcome,
        PageReady::Unmatched
    );
    assert_eq!(t.in_use(), 0);
}

#[test]
fn full_table_and_bad_tokens() {
    let mut t = SleeperTable::new(vec![Entry::Free; 1]);
    assert_eq!(t.announce(Token::NONE), Err(AnnounceError::NotAToken));
    assert_eq!(t.announce(Token::WAKE_ALL), Err(AnnounceError::NotAToken));
    let i = t.announce(token(0)).unwrap();
    assert_eq!(t.announce(token(1)), Err(AnnounceError::Full));
    assert_eq!(t.cancel(i), Ok(()));
    assert!(t.cancel(i).is_err());
    assert!(t.begin_sleep(7).is_err());
    assert!(t.end_sleep(0).is_err());
    assert!(t.is_woken(7));
}
