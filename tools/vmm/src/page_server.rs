// SPDX-License-Identifier: GPL-2.0
//! The page server: a thread that owns the userfaultfd of guest RAM and
//! serves each missing page from the memory image file after its latency
//! (`schedule.rs` decides when). It shares nothing with the vCPUs but the
//! userfaultfd, and never waits for a vCPU, for KVM or for the main thread:
//! KVM's async page fault work items and vCPU teardown wait for it
//! (Documentation/vmm-interface.rst, section 5). It stops when told to, and
//! dropping the userfaultfd then wakes whoever still waits.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::fd::FromRawFd;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::Context;
use crate::error::Error;
use crate::error::Result;
use crate::latency::Latency;
use crate::latency::Rng;
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
}

/// A running page server.
#[derive(Debug)]
pub struct PageServer {
    stop: Arc<OwnedFd>,
    thread: JoinHandle<Result<Stats>>,
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
        let worker = Worker {
            uffd,
            image,
            image_len,
            cfg,
            stop: Arc::clone(&stop),
            stats: Stats::default(),
        };
        let thread = std::thread::Builder::new()
            .name("page-server".into())
            .spawn(move || worker.run())
            .context(|| "cannot start the page server thread")?;
        Ok(PageServer { stop, thread })
    }

    /// Whether the thread has ended (it only does on its own on an error).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the server and returns what it did.
    pub fn stop(self) -> Result<Stats> {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to an eventfd we own.
        let r = unsafe { libc::write(self.stop.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        if r < 0 {
            return Err(Error::last_os("page server: cannot signal stop"));
        }
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
            let (uffd_ready, stop) = self.wait(timeout)?;
            if stop {
                return Ok(self.stats);
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

    /// Waits until the userfaultfd or the stop eventfd is readable, or
    /// `timeout` ns passed; returns (userfaultfd readable, stop asked).
    fn wait(&self, timeout: Option<u64>) -> Result<(bool, bool)> {
        let mut fds = [
            libc::pollfd { fd: self.uffd.fd().as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: self.stop.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        let ts = timeout.map(|ns| libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `fds` is a live array of two pollfds, `ts_ptr` null or a
        // live timespec, and no signal mask is passed.
        let r = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, ts_ptr, std::ptr::null()) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok((false, false));
            }
            return Err(Error::new(format!("page server: ppoll: {e}")));
        }
        if fds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Err(Error::new("page server: userfaultfd reported an error"));
        }
        Ok((fds[0].revents & libc::POLLIN != 0, fds[1].revents != 0))
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
