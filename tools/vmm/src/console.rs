// SPDX-License-Identifier: GPL-2.0
//! The console's output: what the guest transmits on the PL011 goes to a
//! writer (stdout), and, with `--remote-after MARKER`, through a
//! [`Marker`] matcher too; each completed marker is counted in a
//! [`MarkerHits`] that the main thread polls. The count can also ask for a
//! pause of the vCPUs first: the vCPU whose write completed the marker then
//! parks before it re-enters the guest, so the guest stops exactly after
//! the marker (a snapshot taken there). With `--served-at MARKER` another
//! count prints, at each hit, how many pages the page server has served:
//! a probe a benchmark in the guest places where it wants the count.

use std::io::Write;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Instant;

use crate::marker::Marker;
use crate::pause::Gate;

/// How many markers the guest transmitted; shared by the console (on a
/// vCPU thread, under the UART lock) and the main thread.
#[derive(Debug, Default)]
pub struct MarkerHits {
    count: AtomicU64,
    /// Asked to pause before a hit is counted.
    gate: Option<Arc<Gate>>,
    /// Printed at each hit: the marker and the page server's count.
    probe: Option<(String, Arc<AtomicU64>)>,
    /// When the last hit was counted.
    last: Mutex<Option<Instant>>,
}

impl MarkerHits {
    /// A count that asks `gate` for a pause before it counts a hit, so that
    /// whoever sees the hit (the main thread) finds the pause requested,
    /// and its resume ends it.
    pub fn pausing(gate: Arc<Gate>) -> Self {
        MarkerHits { count: AtomicU64::new(0), gate: Some(gate), probe: None, last: Mutex::new(None) }
    }

    /// A count that prints, at each hit of `marker`, the value of `served`
    /// (the page server's count of pages served) on stderr.
    pub fn probing(marker: &str, served: Arc<AtomicU64>) -> Self {
        MarkerHits {
            count: AtomicU64::new(0),
            gate: None,
            probe: Some((marker.to_owned(), served)),
            last: Mutex::new(None),
        }
    }

    /// Markers seen so far.
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// When the last marker was completed (`None` before the first): the
    /// moment a pausing count stopped the guest.
    pub fn last_hit(&self) -> Option<Instant> {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, n: u64) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        if let Some(g) = &self.gate {
            g.request();
        }
        let hits = self.count.fetch_add(n, Ordering::SeqCst) + n;
        if let Some((marker, served)) = &self.probe {
            eprintln!(
                "apf-vmm: marker '{marker}' ({hits}): {} pages served so far",
                served.load(Relaxed)
            );
        }
    }
}

/// The UART's output writer.
#[derive(Debug)]
pub struct Console<W: Write> {
    out: W,
    watch: Vec<(Marker, Arc<MarkerHits>)>,
}

impl<W: Write> Console<W> {
    /// Writes to `out`, and counts each marker of `watch` in its hits.
    pub fn new(out: W, watch: Vec<(Marker, Arc<MarkerHits>)>) -> Self {
        Console { out, watch }
    }

    /// The writer (tests).
    #[cfg(test)]
    pub fn inner(&self) -> &W {
        &self.out
    }
}

impl<W: Write> Write for Console<W> {
    /// Takes all of `buf` or fails: the matcher sees every byte once even
    /// when the output fails (the guest's console must not stop, nor the
    /// marker be missed, because stdout is closed).
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for (marker, hits) in &mut self.watch {
            let n = marker.feed(buf);
            if n > 0 {
                hits.add(n);
            }
        }
        self.out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(libc::EPIPE))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn forwards_and_counts_markers_in_single_bytes() {
        let hits = Arc::new(MarkerHits::default());
        let marker = Marker::new("APF-WORK: filled").unwrap();
        let mut c = Console::new(Vec::new(), vec![(marker, Arc::clone(&hits))]);
        let text = b"x\nAPF-WORK: filled pages=1\nAPF-WORK: filled\n";
        for b in text {
            c.write_all(&[*b]).unwrap();
        }
        assert_eq!(c.inner().as_slice(), text);
        assert_eq!(hits.get(), 2);
    }

    #[test]
    fn a_broken_output_still_counts_once() {
        let hits = Arc::new(MarkerHits::default());
        let marker = Marker::new("ab").unwrap();
        let mut c = Console::new(Broken, vec![(marker, Arc::clone(&hits))]);
        assert!(c.write_all(b"a").is_err());
        assert!(c.write_all(b"b").is_err());
        assert_eq!(hits.get(), 1);
    }

    #[test]
    fn a_pausing_count_requests_the_pause_before_it_counts() {
        let gate = Arc::new(Gate::default());
        let hits = Arc::new(MarkerHits::pausing(Arc::clone(&gate)));
        let marker = Marker::new("go").unwrap();
        let mut c = Console::new(Vec::new(), vec![(marker, Arc::clone(&hits))]);
        c.write_all(b"g").unwrap();
        assert!(!gate.requested());
        assert_eq!(hits.last_hit(), None);
        let before = Instant::now();
        c.write_all(b"o").unwrap();
        assert!(gate.requested());
        assert!(hits.last_hit().is_some_and(|t| t >= before));
        assert_eq!(hits.get(), 1);
        gate.resume();
        c.write_all(b"x\n").unwrap();
        assert!(!gate.requested());
    }

    #[test]
    fn two_markers_are_counted_apart_and_a_probe_reads_its_counter() {
        let gate = Arc::new(Gate::default());
        let restores = Arc::new(MarkerHits::pausing(Arc::clone(&gate)));
        let served = Arc::new(AtomicU64::new(41));
        let probes = Arc::new(MarkerHits::probing("END", Arc::clone(&served)));
        let mut c = Console::new(
            Vec::new(),
            vec![
                (Marker::new("RESTORE").unwrap(), Arc::clone(&restores)),
                (Marker::new("END").unwrap(), Arc::clone(&probes)),
            ],
        );
        c.write_all(b"RESTORE 1\nEND\nEND RESTORE\n").unwrap();
        assert_eq!(restores.get(), 2);
        assert_eq!(probes.get(), 2);
        assert!(gate.requested());
    }

    #[test]
    fn without_a_marker_it_only_forwards() {
        let mut c = Console::new(Vec::new(), Vec::new());
        c.write_all(b"hello\n").unwrap();
        assert_eq!(c.inner().as_slice(), b"hello\n");
    }
}
