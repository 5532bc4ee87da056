// SPDX-License-Identifier: GPL-2.0
//! userfaultfd through its raw system call and ioctls (`<linux/userfaultfd.h>`),
//! so no bindgen is needed: only MISSING faults on anonymous memory, which
//! is all the page server uses.

use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::os::fd::BorrowedFd;
use std::os::fd::FromRawFd;
use std::os::fd::OwnedFd;

use crate::error::Error;
use crate::error::Result;

const UFFD_API: u64 = 0xaa;
const UFFDIO: u64 = 0xaa;
/// `msg.event` of a page fault.
pub const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1 << 0;
/// Bit of `_UFFDIO_COPY` in a register answer's `ioctls`.
const UFFDIO_COPY_BIT: u64 = 1 << 0x03;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (UFFDIO << 8) | nr
}
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

#[repr(C)]
#[derive(Debug, Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

const UFFDIO_API: u64 = ioc(IOC_READ | IOC_WRITE, 0x3f, std::mem::size_of::<UffdioApi>());
const UFFDIO_REGISTER: u64 =
    ioc(IOC_READ | IOC_WRITE, 0x00, std::mem::size_of::<UffdioRegister>());
const UFFDIO_WAKE: u64 = ioc(IOC_READ, 0x02, std::mem::size_of::<UffdioRange>());
const UFFDIO_COPY: u64 = ioc(IOC_READ | IOC_WRITE, 0x03, std::mem::size_of::<UffdioCopy>());

/// One `struct uffd_msg` (32 bytes): only the page-fault fields are read.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UffdMsg {
    /// `UFFD_EVENT_*`.
    pub event: u8,
    reserved1: u8,
    reserved2: u16,
    reserved3: u32,
    /// `arg.pagefault.flags`.
    pub flags: u64,
    /// `arg.pagefault.address`.
    pub address: u64,
    /// `arg.pagefault.feat.ptid` and padding.
    pub ptid: u64,
}

/// What `copy` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyResult {
    /// The page was copied and the waiters woken.
    Copied,
    /// The page was present already (`EEXIST`): nothing was copied and no
    /// one woken.
    Exists,
}

/// A userfaultfd, non-blocking, close-on-exec.
#[derive(Debug)]
pub struct Uffd(OwnedFd);

fn ioctl<T>(fd: BorrowedFd<'_>, req: u64, arg: &mut T) -> std::io::Result<()> {
    // SAFETY: `arg` is a live, exclusively borrowed `#[repr(C)]` struct of the
    // size encoded in `req`, which the kernel reads and writes only for the
    // duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Uffd {
    /// Opens a userfaultfd and does the API handshake (no features).
    pub fn new() -> Result<Self> {
        // SAFETY: userfaultfd takes one flags argument and returns a new fd
        // or -1; it touches no memory of ours.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            let hint = match e.raw_os_error() {
                Some(libc::ENOSYS) => ": the kernel lacks CONFIG_USERFAULTFD",
                Some(libc::EPERM) => ": not permitted (vm.unprivileged_userfaultfd=0 and not root?)",
                _ => "",
            };
            return Err(Error::new(format!("userfaultfd: {e}{hint}")));
        }
        let fd = i32::try_from(fd).map_err(|_| Error::new("userfaultfd returned a bad fd"))?;
        // SAFETY: `fd` was just returned by the kernel and is owned by no one else.
        let uffd = Uffd(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut api = UffdioApi { api: UFFD_API, ..Default::default() };
        ioctl(uffd.0.as_fd(), UFFDIO_API, &mut api)
            .map_err(|e| Error::new(format!("UFFDIO_API: {e}")))?;
        Ok(uffd)
    }

    /// Registers `[start, start + len)` for MISSING faults.
    pub fn register_missing(&self, start: u64, len: u64) -> Result<()> {
        let mut reg = UffdioRegister {
            range: UffdioRange { start, len },
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        ioctl(self.0.as_fd(), UFFDIO_REGISTER, &mut reg)
            .map_err(|e| Error::new(format!("UFFDIO_REGISTER of {len:#x} bytes at {start:#x}: {e}")))?;
        if reg.ioctls & UFFDIO_COPY_BIT == 0 {
            return Err(Error::new("UFFDIO_REGISTER: the range does not support UFFDIO_COPY"));
        }
        Ok(())
    }

    /// Reads the messages that are queued, into `buf`; returns how many
    /// (0 when none is queued).
    pub fn read_msgs(&self, buf: &mut [UffdMsg]) -> Result<usize> {
        let size = std::mem::size_of_val(buf);
        // SAFETY: `buf` is writable for `size` bytes and `UffdMsg` is plain
        // data for which any bytes are valid.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), size) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(0),
                _ => Err(Error::new(format!("read from userfaultfd: {e}"))),
            };
        }
        Ok(n as usize / std::mem::size_of::<UffdMsg>())
    }

    /// Copies `src` (one or more whole pages) to `dst` and wakes whoever
    /// waits on it.
    pub fn copy(&self, dst: u64, src: &[u8]) -> Result<CopyResult> {
        // EAGAIN is transient (the mm is changing); bound the retries all
        // the same, so a kernel that keeps answering it cannot spin us.
        for _ in 0..10_000 {
            let mut c = UffdioCopy {
                dst,
                src: src.as_ptr() as u64,
                len: src.len() as u64,
                mode: 0,
                copy: 0,
            };
            match ioctl(self.0.as_fd(), UFFDIO_COPY, &mut c) {
                Ok(()) => return Ok(CopyResult::Copied),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EEXIST) => return Ok(CopyResult::Exists),
                    // The mm is changing under us (or a signal): try again.
                    Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
                    _ => return Err(Error::new(format!("UFFDIO_COPY to {dst:#x}: {e}"))),
                },
            }
        }
        Err(Error::new(format!("UFFDIO_COPY to {dst:#x}: still EAGAIN after 10000 tries")))
    }

    /// Wakes the threads waiting on `[start, start + len)`.
    pub fn wake(&self, start: u64, len: u64) -> Result<()> {
        let mut r = UffdioRange { start, len };
        ioctl(self.0.as_fd(), UFFDIO_WAKE, &mut r)
            .map_err(|e| Error::new(format!("UFFDIO_WAKE at {start:#x}: {e}")))
    }

    /// The file descriptor, to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_uapi_header() {
        assert_eq!(UFFDIO_API, 0xc018_aa3f);
        assert_eq!(UFFDIO_REGISTER, 0xc020_aa00);
        assert_eq!(UFFDIO_WAKE, 0x8010_aa02);
        assert_eq!(UFFDIO_COPY, 0xc028_aa03);
        assert_eq!(std::mem::size_of::<UffdMsg>(), 32);
    }
}
