// SPDX-License-Identifier: GPL-2.0
//! Pausing every vCPU thread outside `KVM_RUN`: the main thread asks for a
//! pause and kicks the threads out of `KVM_RUN` until each has parked at
//! the top of its run loop, does its work on a quiet guest, then resumes
//! them. Every wait is bounded, and a stop of the VM ends a pause.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::Condvar;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::PoisonError;
use std::time::Duration;
use std::time::Instant;

/// How often a parked thread looks at the stop flag, and the main thread
/// kicks those that have not parked yet.
const POLL: Duration = Duration::from_millis(10);

/// Why the vCPUs did not all park.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotParked {
    /// The deadline passed with this many of them parked.
    Timeout(u32),
    /// The VM is stopping.
    Stopping,
}

/// The pause handshake between the main thread and the vCPU threads.
#[derive(Debug, Default)]
pub struct Gate {
    /// A pause is asked for (read by the vCPU threads before each KVM_RUN).
    requested: AtomicBool,
    /// Threads parked now.
    parked: Mutex<u32>,
    changed: Condvar,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, u32> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// vCPU side: whether to call [`Gate::park`] instead of entering KVM_RUN.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// vCPU side: stays parked while the pause lasts and `stop` is clear.
    pub fn park(&self, stop: &AtomicBool) {
        let mut parked = self.lock();
        if !self.requested() {
            return;
        }
        *parked += 1;
        self.changed.notify_all();
        while self.requested() && !stop.load(Ordering::SeqCst) {
            parked = self
                .changed
                .wait_timeout(parked, POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *parked -= 1;
        self.changed.notify_all();
    }

    /// Main side: asks every vCPU thread to park.
    pub fn request(&self) {
        let _parked = self.lock();
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Main side: waits until `n` threads are parked, calling `kick` every
    /// few milliseconds meanwhile (a kick can land just before a thread
    /// enters KVM_RUN; the next one gets it out), at most `timeout`.
    pub fn wait_parked(
        &self,
        n: u32,
        timeout: Duration,
        stop: &AtomicBool,
        mut kick: impl FnMut(),
    ) -> Result<(), NotParked> {
        let deadline = Instant::now() + timeout;
        loop {
            let parked = self.lock();
            if *parked >= n {
                return Ok(());
            }
            if stop.load(Ordering::SeqCst) {
                return Err(NotParked::Stopping);
            }
            if Instant::now() >= deadline {
                return Err(NotParked::Timeout(*parked));
            }
            drop(parked);
            kick();
            let parked = self.lock();
            if *parked < n {
                drop(
                    self.changed
                        .wait_timeout(parked, POLL)
                        .unwrap_or_else(PoisonError::into_inner),
                );
            }
        }
    }

    /// Main side: ends the pause (whether or not every thread parked).
    pub fn resume(&self) {
        let _parked = self.lock();
        self.requested.store(false, Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// Threads parked now (tests).
    #[cfg(test)]
    pub fn parked(&self) -> u32 {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    /// A stand-in vCPU thread: "runs" (counts) unless parked.
    fn vcpu(gate: Arc<Gate>, stop: Arc<AtomicBool>, runs: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if gate.requested() {
                    gate.park(&stop);
                    continue;
                }
                runs.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    }

    #[test]
    fn two_threads_park_stay_parked_and_resume() {
        let gate = Arc::new(Gate::default());
        let stop = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(AtomicU64::new(0));
        let t: Vec<_> = (0..2).map(|_| vcpu(gate.clone(), stop.clone(), runs.clone())).collect();
        for _ in 0..3 {
            gate.request();
            let mut kicks = 0;
            gate.wait_parked(2, Duration::from_secs(10), &stop, || kicks += 1).unwrap();
            let before = runs.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(runs.load(Ordering::SeqCst), before, "a parked thread ran");
            assert_eq!(gate.parked(), 2);
            gate.resume();
            let t0 = Instant::now();
            while runs.load(Ordering::SeqCst) < before + 4 {
                assert!(t0.elapsed() < Duration::from_secs(10), "not resumed");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        stop.store(true, Ordering::SeqCst);
        for t in t {
            t.join().unwrap();
        }
    }

    #[test]
    fn a_thread_that_never_parks_times_out_boundedly() {
        let gate = Gate::default();
        let stop = AtomicBool::new(false);
        gate.request();
        let t0 = Instant::now();
        let r = gate.wait_parked(1, Duration::from_millis(50), &stop, || {});
        assert_eq!(r, Err(NotParked::Timeout(0)));
        assert!(t0.elapsed() < Duration::from_secs(5));
        gate.resume();
        assert!(!gate.requested());
    }

    #[test]
    fn stop_ends_a_pause_on_both_sides() {
        let gate = Arc::new(Gate::default());
        let stop = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(AtomicU64::new(0));
        let t = vcpu(gate.clone(), stop.clone(), runs);
        gate.request();
        gate.wait_parked(1, Duration::from_secs(10), &stop, || {}).unwrap();
        stop.store(true, Ordering::SeqCst);
        // The parked thread sees the stop without a resume.
        t.join().unwrap();
        assert_eq!(gate.wait_parked(1, Duration::from_secs(10), &stop, || {}), Err(NotParked::Stopping));
    }

    #[test]
    fn park_without_a_request_returns_at_once() {
        let gate = Gate::default();
        gate.park(&AtomicBool::new(false));
        assert_eq!(gate.parked(), 0);
    }
}
