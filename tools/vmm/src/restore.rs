// SPDX-License-Identifier: GPL-2.0
//! `--remote-after MARKER`, the snapshot-restore trigger: each time the
//! guest's console completes MARKER (the console counts it, `console.rs`,
//! and asks for a pause first, so the vCPU that wrote it parks right after
//! that write), the main thread pauses every vCPU outside KVM_RUN
//! (`pause.rs`), has the page server write the present pages of guest RAM
//! to the memory image and drop all of it (`remote.rs`), and resumes the
//! vCPUs. Memory the guest already wrote is then remote again, and is
//! served page by page, with the latency of that restore
//! (`--remote-latency`), as after a restore from that image.

use std::os::unix::thread::JoinHandleExt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

use kvm_ioctls::VcpuFd;

use crate::console::MarkerHits;
use crate::error::Error;
use crate::error::Result;
use crate::latency::latency_of_restore;
use crate::latency::Latency;
use crate::page_server::PageServer;
use crate::pause::NotParked;
use crate::signals;
use crate::vcpu::Shared;

/// How long the vCPUs may take to leave KVM_RUN.
const PAUSE_DEADLINE: Duration = Duration::from_secs(10);
/// How long writing guest RAM back and dropping it may take.
const WRITE_BACK_DEADLINE: Duration = Duration::from_secs(120);

/// The trigger: fires once for each time the marker appears.
pub struct RemoteAfter {
    marker: String,
    hits: Arc<MarkerHits>,
    /// Restores done.
    fired: u64,
    latencies: Vec<Latency>,
}

impl RemoteAfter {
    /// A trigger on `marker`, whose sightings the console counts in `hits`;
    /// restore `n` serves pages with [`latency_of_restore`]`(latencies, n)`.
    pub fn new(marker: String, hits: Arc<MarkerHits>, latencies: Vec<Latency>) -> Self {
        RemoteAfter { marker, hits, fired: 0, latencies }
    }

    /// Called by the main thread's loop: if the marker appeared more often
    /// than RAM was made remote, does it once now (prints one line). An
    /// error means the VM must stop.
    pub fn poll(
        &mut self,
        shared: &Shared,
        threads: &[JoinHandle<VcpuFd>],
        server: Option<&PageServer>,
    ) -> Result<()> {
        if self.fired >= self.hits.get() {
            return Ok(());
        }
        self.fired += 1;
        let restore = self.fired;
        let latency = latency_of_restore(&self.latencies, restore);
        let server = server.ok_or_else(|| Error::new("--remote-after without lazily served RAM"))?;
        // From the moment the marker stopped the guest (the vCPU that wrote
        // it parked then), which the main thread sees up to a poll later.
        let t0 = self.hits.last_hit().unwrap_or_else(Instant::now);
        shared.pause.request();
        let n = u32::try_from(threads.len()).unwrap_or(u32::MAX);
        let parked = shared.pause.wait_parked(n, PAUSE_DEADLINE, &shared.stop, || {
            for t in threads.iter().filter(|t| !t.is_finished()) {
                signals::kick(t.as_pthread_t());
            }
        });
        let result = match parked {
            Ok(()) => {
                let paused = t0.elapsed();
                server.make_remote(WRITE_BACK_DEADLINE, latency).map(|m| {
                    let r = m.remote;
                    let latency = latency.map_or(String::new(), |l| {
                        format!(", pages now served after {l:?} (mean {} us)", l.mean_ns() / 1000)
                    });
                    eprintln!(
                        "apf-vmm: guest RAM made remote again after marker '{}': {n} vCPUs paused in {} ms, \
                         {} present pages written to the memory image, {} pages dropped, resumed after {} ms \
                         (restore {restore}; {} pages served since the last, {} in all){latency}; \
                         stopped_us={}",
                        self.marker,
                        paused.as_millis(),
                        r.written,
                        r.dropped,
                        t0.elapsed().as_millis(),
                        m.served_since,
                        m.served_total,
                        t0.elapsed().as_micros(),
                    );
                })
            }
            // The VM is ending anyway: nothing to report.
            Err(NotParked::Stopping) => Ok(()),
            Err(NotParked::Timeout(k)) => Err(Error::new(format!(
                "--remote-after: only {k} of {n} vCPUs left KVM_RUN within {} s",
                PAUSE_DEADLINE.as_secs()
            ))),
        };
        shared.pause.resume();
        result
    }

    /// Says so if the marker never appeared (the run did not test what it
    /// was meant to).
    pub fn report_unfired(&self) {
        if self.fired == 0 {
            eprintln!(
                "apf-vmm: warning: the marker '{}' never appeared on the console; guest RAM was not made remote again",
                self.marker
            );
        }
    }
}
