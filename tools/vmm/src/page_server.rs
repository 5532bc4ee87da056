// SPDX-License-Identifier: GPL-2.0
//! The page server: a thread that owns the userfaultfd of guest RAM and
//! serves each missing page from the memory image file after its latency
//! (`schedule.rs` decides when). It shares nothing with the vCPUs but the
//! userfaultfd, and never waits for a vCPU, for KVM or for the main thread:
//! KVM's async page fault work items and vCPU teardown wait for it
//! (Documentation/vmm-interface.rst, section 5). It stops when told to, and
//! dropping the userfaultfd then wakes whoever still waits.
//!
//! Asked to (`make_remote`, with the vCPUs paused), it writes the present
//! pages to the image and drops all of guest RAM (`remote.rs`): every page
//! is then served again, from the image, as after a snapshot restore, with
//! the latency given for that restore.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::fd::FromRawFd;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

use crate::error::Context;
use crate::error::Error;
use crate::error::Result;
use crate::latency::Latency;
use crate::latency::Rng;
use crate::remote;
use crate::remote::Remote;
use crate::schedule::Request;
use crate::schedule::Schedule;
use crate::uffd::CopyResult;
use crate::uffd::Uffd;
use crate::uffd::UffdMsg;
use crate::uffd::UFFD_EVENT_PAGEFAULT;

/// The range served and how.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Host virtual address of the first byte of guest RAM.
    pub base: u64,
    /// Bytes of guest RAM.
    pub len: u64,
    /// Page size of the host.
    pub page_size: u64,
    /// Per-page latency.
    pub latency: Latency,
    /// Seed of the latency generator.
    pub seed: u64,
}

/// What the server did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pages copied in with `UFFDIO_COPY`.
    pub served: u64,
    /// Of those, pages beyond the end of the image file (zeros).
    pub zero_filled: u64,
    /// Messages for a page already queued.
    pub duplicates: u64,
    /// Messages for a page already served, answered with a wake-up.
    pub woken: u64,
    /// Most pages queued at once.
    pub max_queued: u64,
    /// Times guest RAM was made remote again.
    pub remote_again: u64,
    /// Pages served since it was last made remote (all, if it never was).
    pub served_since_remote: u64,
}

/// What one `make_remote` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MadeRemote {
    /// The write-back and drop.
    pub remote: Remote,
    /// Pages served since the previous `make_remote` (since the start for
    /// the first): what the guest touched in between.
    pub served_since: u64,
    /// Pages served since the start.
    pub served_total: u64,
}

/// A running page server.
#[derive(Debug)]
pub struct PageServer {
    stop: Arc<OwnedFd>,
    /// Written to ask for a `make_remote`, whose answer comes on `replies`.
    request: Arc<OwnedFd>,
    replies: mpsc::Receiver<Result<MadeRemote>>,
    /// The latency of each make-remote request, sent before its signal.
    latencies: mpsc::Sender<Option<Latency>>,
    /// Pages served so far, for whoever wants to read it at any time.
    served: Arc<AtomicU64>,
    thread: JoinHandle<Result<Stats>>,
}

/// Adds one to an eventfd.
fn signal(fd: &OwnedFd, what: &str) -> Result<()> {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer to an eventfd we own.
    let r = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    if r < 0 {
        return Err(Error::last_os(format!("page server: cannot signal {what}")));
    }
    Ok(())
}

/// Reads an eventfd's count (0 if none), which resets it.
fn take(fd: &OwnedFd) -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live buffer from a non-blocking
    // eventfd we own.
    let r = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
    if r == 8 {
        u64::from_ne_bytes(b)
    } else {
        0
    }
}

fn eventfd() -> Result<OwnedFd> {
    // SAFETY: eventfd takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(Error::last_os("eventfd"));
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl PageServer {
    /// Starts serving `uffd`, whose registered range is `cfg`'s, from `image`.
    pub fn spawn(uffd: Uffd, image: File, cfg: ServerConfig) -> Result<Self> {
        if cfg.page_size == 0 || !cfg.len.is_multiple_of(cfg.page_size) {
            return Err(Error::new("page server: RAM size is not a whole number of pages"));
        }
        let image_len = image
            .metadata()
            .context(|| "page server: cannot stat the memory image")?
            .len();
        let stop = Arc::new(eventfd()?);
        let request = Arc::new(eventfd()?);
        let (reply, replies) = mpsc::channel::<Result<MadeRemote>>();
        let (latencies, next_latency) = mpsc::channel::<Option<Latency>>();
        let served = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            uffd,
            image,
            image_len,
            cfg,
            stop: Arc::clone(&stop),
            request: Arc::clone(&request),
            reply,
            next_latency,
            served_at_remote: 0,
            served: Arc::clone(&served),
            stats: Stats::default(),
        };
        let thread = std::thread::Builder::new()
            .name("page-server".into())
            .spawn(move || worker.run())
            .context(|| "cannot start the page server thread")?;
        Ok(PageServer { stop, request, replies, latencies, served, thread })
    }

    /// The count of pages served so far, updated as each is served.
    pub fn served_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.served)
    }

    /// Has the server write the present pages of guest RAM to the memory
    /// image (opened for writing) and drop all of RAM, so that every page is
    /// served again, with `latency` from now on if given; waits at most
    /// `timeout` for it. The caller has paused every vCPU: nothing but the
    /// server may make pages present meanwhile.
    pub fn make_remote(&self, timeout: Duration, latency: Option<Latency>) -> Result<MadeRemote> {
        self.latencies
            .send(latency)
            .map_err(|_| Error::new("page server: stopped before making guest RAM remote"))?;
        signal(&self.request, "a make-remote request")?;
        match self.replies.recv_timeout(timeout) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::new(format!(
                "page server: guest RAM not written back and dropped within {} s",
                timeout.as_secs()
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(Error::new("page server: stopped before making guest RAM remote"))
            }
        }
    }

    /// Whether the thread has ended (it only does on its own on an error).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the server and returns what it did.
    pub fn stop(self) -> Result<Stats> {
        signal(&self.stop, "stop")?;
        self.thread
            .join()
            .map_err(|_| Error::new("page server thread panicked"))?
    }
}

struct Worker {
    uffd: Uffd,
    image: File,
    image_len: u64,
    cfg: ServerConfig,
    stop: Arc<OwnedFd>,
    request: Arc<OwnedFd>,
    reply: mpsc::Sender<Result<MadeRemote>>,
    /// The latency of each make-remote request, sent before its signal.
    next_latency: mpsc::Receiver<Option<Latency>>,
    /// `stats.served` at the last make-remote.
    served_at_remote: u64,
    /// `stats.served`, for readers on other threads.
    served: Arc<AtomicU64>,
    stats: Stats,
}

impl Worker {
    fn run(mut self) -> Result<Stats> {
        let start = Instant::now();
        let now = || u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let pages = self.cfg.len / self.cfg.page_size;
        let mut sched = Schedule::new(pages);
        let mut rng = Rng::new(self.cfg.seed);
        let mut buf = vec![0u8; self.cfg.page_size as usize];
        let mut msgs = [UffdMsg::default(); 64];
        loop {
            while let Some(page) = sched.pop_due(now()) {
                self.serve(page, &mut buf)?;
            }
            let timeout = sched.next_due().map(|due| due.saturating_sub(now()));
            let (uffd_ready, stop, request) = self.wait(timeout)?;
            if stop {
                self.stats.served_since_remote = self.stats.served - self.served_at_remote;
                return Ok(self.stats);
            }
            if request && take(&self.request) > 0 {
                let r = self.make_remote(&mut sched);
                let failed = r.as_ref().err().cloned();
                // The asker may have given up waiting; its error says so.
                let _ = self.reply.send(r);
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            if !uffd_ready {
                continue;
            }
            loop {
                let n = self.uffd.read_msgs(&mut msgs)?;
                if n == 0 {
                    break;
                }
                for m in &msgs[..n] {
                    if m.event != UFFD_EVENT_PAGEFAULT {
                        continue;
                    }
                    let off = m.address.wrapping_sub(self.cfg.base);
                    let page = off / self.cfg.page_size;
                    let latency = self.cfg.latency.sample(&mut rng);
                    match sched.request(page, now(), latency) {
                        Some(Request::Queued(_)) => {}
                        Some(Request::AlreadyPending) => self.stats.duplicates += 1,
                        Some(Request::AlreadyServed) => {
                            self.stats.woken += 1;
                            self.uffd.wake(self.page_addr(page), self.cfg.page_size)?;
                        }
                        None => {
                            return Err(Error::new(format!(
                                "page server: fault at {:#x}, outside guest RAM",
                                m.address
                            )))
                        }
                    }
                }
                self.stats.max_queued = self.stats.max_queued.max(sched.queued() as u64);
            }
        }
    }

    fn page_addr(&self, page: u64) -> u64 {
        self.cfg.base + page * self.cfg.page_size
    }

    /// Writes the present pages to the image, drops guest RAM, and forgets
    /// which pages were served: each is served again when next touched,
    /// with the request's latency if it has one.
    fn make_remote(&mut self, sched: &mut Schedule) -> Result<MadeRemote> {
        // Sent before the request's signal, so it is there; after an asker
        // that gave up, the signals of two requests may be read as one: the
        // last latency is the newest request's.
        let latency = self
            .next_latency
            .try_iter()
            .last()
            .ok_or_else(|| Error::new("page server: a make-remote request without its latency"))?;
        // SAFETY: `base`/`len` is guest RAM, page aligned (vm-memory maps
        // it), mapped until after this thread ends, registered with the
        // userfaultfd only this thread serves; the caller paused the vCPUs
        // (`PageServer::make_remote`).
        let r = unsafe { remote::write_back_and_drop(&self.image, self.cfg.base, self.cfg.len, self.cfg.page_size) }?;
        sched.forget_served();
        self.image_len = self
            .image
            .metadata()
            .context(|| "page server: cannot stat the memory image")?
            .len();
        self.stats.remote_again += 1;
        if let Some(l) = latency {
            self.cfg.latency = l;
        }
        let served_since = self.stats.served - self.served_at_remote;
        self.served_at_remote = self.stats.served;
        Ok(MadeRemote { remote: r, served_since, served_total: self.stats.served })
    }

    /// Waits until the userfaultfd, the stop or the request eventfd is
    /// readable, or `timeout` ns passed; returns (userfaultfd readable,
    /// stop asked, request pending).
    fn wait(&self, timeout: Option<u64>) -> Result<(bool, bool, bool)> {
        let mut fds = [
            libc::pollfd { fd: self.uffd.fd().as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: self.stop.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: self.request.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        let ts = timeout.map(|ns| libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `fds` is a live array of three pollfds, `ts_ptr` null or
        // a live timespec, and no signal mask is passed.
        let r = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ts_ptr, std::ptr::null()) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok((false, false, false));
            }
            return Err(Error::new(format!("page server: ppoll: {e}")));
        }
        if fds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Err(Error::new("page server: userfaultfd reported an error"));
        }
        Ok((fds[0].revents & libc::POLLIN != 0, fds[1].revents != 0, fds[2].revents != 0))
    }

    /// Copies page `page` in from the image (zeros beyond its end).
    fn serve(&mut self, page: u64, buf: &mut [u8]) -> Result<()> {
        let off = page * self.cfg.page_size;
        let mut filled = 0;
        while filled < buf.len() && off + (filled as u64) < self.image_len {
            let n = self
                .image
                .read_at(&mut buf[filled..], off + filled as u64)
                .context(|| format!("page server: cannot read the memory image at {off:#x}"))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            self.stats.zero_filled += 1;
        }
        buf[filled..].fill(0);
        match self.uffd.copy(self.page_addr(page), buf)? {
            CopyResult::Copied => {}
            // Present already: whoever faulted may still wait.
            CopyResult::Exists => self.uffd.wake(self.page_addr(page), self.cfg.page_size)?,
        }
        self.stats.served += 1;
        self.served.store(self.stats.served, Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// An anonymous private mapping, unmapped on drop.
    struct Mapping {
        addr: *mut u8,
        len: usize,
    }

    impl Mapping {
        fn new(len: usize) -> Self {
            // SAFETY: a fresh anonymous mapping; no existing memory is touched.
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(addr, libc::MAP_FAILED);
            Mapping { addr: addr.cast(), len }
        }

        fn read(&self, off: usize) -> u8 {
            assert!(off < self.len);
            // SAFETY: `off` is inside the live mapping; the read may fault
            // and be served by the page server thread.
            unsafe { std::ptr::read_volatile(self.addr.add(off)) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly the mapping made in `new`.
            unsafe { libc::munmap(self.addr.cast(), self.len) };
        }
    }

    fn page_size() -> u64 {
        // SAFETY: sysconf has no memory effects.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
    }

    fn image(bytes: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!("apf-vmm-test-{}-{}", std::process::id(), bytes.len()));
        let mut f = File::create(&path).unwrap();
        f.write_all(bytes).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    #[test]
    fn serves_pages_from_the_image_then_zeros_after_the_latency() {
        let uffd = match Uffd::new() {
            Ok(u) => u,
            Err(e) => {
                eprintln!("skipped: no userfaultfd here ({e})");
                return;
            }
        };
        let ps = page_size();
        let map = Mapping::new(4 * ps as usize);
        uffd.register_missing(map.addr as u64, 4 * ps).unwrap();
        // Page 0 and half of page 1 come from the image.
        let mut content = vec![0xa5u8; ps as usize];
        content.extend(vec![0x5au8; ps as usize / 2]);
        let cfg = ServerConfig {
            base: map.addr as u64,
            len: 4 * ps,
            page_size: ps,
            latency: Latency::Fixed(20_000_000),
            seed: 1,
        };
        let server = PageServer::spawn(uffd, image(&content), cfg).unwrap();
        let t = Instant::now();
        assert_eq!(map.read(10), 0xa5);
        assert!(t.elapsed() >= Duration::from_millis(20), "{:?}", t.elapsed());
        assert_eq!(map.read(ps as usize + 1), 0x5a);
        assert_eq!(map.read(ps as usize * 3 / 2 + 1), 0);
        assert_eq!(map.read(ps as usize * 3), 0);
        assert_eq!(map.read(11), 0xa5);
        let stats = server.stop().unwrap();
        assert_eq!(stats.served, 3);
        assert_eq!(stats.zero_filled, 1);
    }

    fn write(map: &Mapping, off: usize, v: u8) {
        assert!(off < map.len);
        // SAFETY: `off` is inside the live mapping; the write may fault and
        // be served by the page server thread.
        unsafe { std::ptr::write_volatile(map.addr.add(off), v) };
    }

    #[test]
    fn made_remote_pages_are_written_back_then_served_again() {
        let uffd = match Uffd::new() {
            Ok(u) => u,
            Err(e) => {
                eprintln!("skipped: no userfaultfd here ({e})");
                return;
            }
        };
        let ps = page_size();
        let map = Mapping::new(4 * ps as usize);
        // Page 0 is present before registration, like the boot payload.
        write(&map, 5, 0x11);
        uffd.register_missing(map.addr as u64, 4 * ps).unwrap();
        let path = std::env::temp_dir().join(format!("apf-vmm-test-remote-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let probe = file.try_clone().unwrap();
        let cfg = ServerConfig {
            base: map.addr as u64,
            len: 4 * ps,
            page_size: ps,
            latency: Latency::Fixed(20_000_000),
            seed: 1,
        };
        let server = PageServer::spawn(uffd, file, cfg).unwrap();
        // Page 2 is served (zeros: the image is empty), then written.
        write(&map, 2 * ps as usize + 7, 0x22);
        let r = server.make_remote(Duration::from_secs(10), Some(Latency::Fixed(60_000_000))).unwrap();
        assert_eq!(r, MadeRemote { remote: Remote { written: 2, dropped: 4 }, served_since: 1, served_total: 1 });
        let served = server.served_counter();
        let mut page = vec![0u8; ps as usize];
        probe.read_exact_at(&mut page, 2 * ps).unwrap();
        assert_eq!(page[7], 0x22);
        // Each page is missing again and comes back from the image, after
        // the restore's latency.
        let t = Instant::now();
        assert_eq!(map.read(2 * ps as usize + 7), 0x22);
        assert!(t.elapsed() >= Duration::from_millis(60), "{:?}", t.elapsed());
        assert_eq!(map.read(5), 0x11);
        assert_eq!(map.read(3 * ps as usize), 0);
        // A second restore without a latency keeps the last one, and counts
        // what was served since the first.
        let r = server.make_remote(Duration::from_secs(10), None).unwrap();
        assert_eq!(r, MadeRemote { remote: Remote { written: 3, dropped: 4 }, served_since: 3, served_total: 4 });
        assert_eq!(served.load(Relaxed), 4);
        let t = Instant::now();
        assert_eq!(map.read(5), 0x11);
        assert!(t.elapsed() >= Duration::from_millis(60), "{:?}", t.elapsed());
        let stats = server.stop().unwrap();
        assert_eq!(stats.remote_again, 2);
        assert_eq!(stats.served, 1 + 3 + 1);
        assert_eq!(stats.served_since_remote, 1);
    }

    #[test]
    fn refuses_a_range_of_partial_pages() {
        let uffd = match Uffd::new() {
            Ok(u) => u,
            Err(_) => return,
        };
        let cfg = ServerConfig { base: 0, len: 100, page_size: 4096, latency: Latency::Fixed(0), seed: 0 };
        assert!(PageServer::spawn(uffd, image(b"x"), cfg).is_err());
    }
}
