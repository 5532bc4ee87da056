// SPDX-License-Identifier: GPL-2.0
//! Making guest RAM remote again, as a snapshot restore does: every page
//! that is present is written to the memory image, then the whole range is
//! dropped (`MADV_DONTNEED`), so each page is missing again and is served
//! from the image through userfaultfd the next time it is touched.
//!
//! Only the page server calls this, with the vCPUs paused: it is the only
//! thread that makes pages of the range present (`UFFDIO_COPY`), so the
//! pages `mincore` reports present stay present while they are written,
//! and reading them never waits for a page (which, on the thread that
//! serves the pages, would never end). A page that is missing is not
//! written: its content is the image's already.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::error::Error;
use crate::error::Result;

/// What one write-back and drop did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Remote {
    /// Present pages written to the image.
    pub written: u64,
    /// Pages of the range dropped (all of it).
    pub dropped: u64,
}

/// Which pages of `[base, base + len)` are present, one byte per page
/// (bit 0 set: present).
fn resident(base: u64, len: u64, page_size: u64) -> Result<Vec<u8>> {
    let pages = usize::try_from(len / page_size).map_err(|_| Error::new("mincore: range too large"))?;
    let mut vec = vec![0u8; pages];
    // SAFETY: `vec` has one byte per page of the range, which is what
    // mincore writes; the range is page aligned (the caller's contract) and
    // mincore only reads page tables.
    let r = unsafe { libc::mincore(base as *mut libc::c_void, len as usize, vec.as_mut_ptr()) };
    if r != 0 {
        return Err(Error::last_os(format!("mincore of {len:#x} bytes at {base:#x}")));
    }
    Ok(vec)
}

/// Writes `len` bytes at host address `addr` to `file` at `off`.
///
/// # Safety
///
/// `[addr, addr + len)` is mapped and present for the whole call.
unsafe fn write_at(file: &File, addr: u64, len: u64, off: u64) -> Result<()> {
    let mut done = 0u64;
    while done < len {
        let off_t = libc::off_t::try_from(off + done)
            .map_err(|_| Error::new("memory image offset too large"))?;
        // SAFETY: by the function's contract the source is readable for
        // `len - done` bytes from `addr + done`; the kernel copies them.
        let n = unsafe {
            libc::pwrite(
                file.as_raw_fd(),
                (addr + done) as *const libc::c_void,
                (len - done) as usize,
                off_t,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::new(format!(
                "cannot write guest RAM to the memory image at {:#x}: {e}",
                off + done
            )));
        }
        if n == 0 {
            return Err(Error::new(format!(
                "cannot write guest RAM to the memory image at {:#x}: no progress",
                off + done
            )));
        }
        done += n as u64;
    }
    Ok(())
}

/// Writes the present pages of `[base, base + len)` to `image` (offset 0 is
/// `base`), then drops the whole range.
///
/// # Safety
///
/// `[base, base + len)` is a page-aligned private anonymous mapping that
/// stays mapped during the call, registered for MISSING faults with a
/// userfaultfd that only the calling thread serves, and nothing else makes
/// its pages present meanwhile (no vCPU runs); dropping it is what the
/// caller wants (its content is in `image` afterwards).
pub unsafe fn write_back_and_drop(image: &File, base: u64, len: u64, page_size: u64) -> Result<Remote> {
    if page_size == 0 || !base.is_multiple_of(page_size) || !len.is_multiple_of(page_size) {
        return Err(Error::new("make remote: the range is not whole pages"));
    }
    let present = resident(base, len, page_size)?;
    let mut written = 0u64;
    let mut i = 0usize;
    while i < present.len() {
        if present[i] & 1 == 0 {
            i += 1;
            continue;
        }
        let first = i;
        while i < present.len() && present[i] & 1 != 0 {
            i += 1;
        }
        let off = first as u64 * page_size;
        let run = (i - first) as u64 * page_size;
        // SAFETY: these pages are present (mincore) and, by the function's
        // contract, nothing drops them before the drop below.
        unsafe { write_at(image, base + off, run, off)? };
        written += (i - first) as u64;
    }
    image
        .sync_data()
        .or_else(|e| if e.raw_os_error() == Some(libc::EINVAL) { Ok(()) } else { Err(e) })
        .map_err(|e| Error::new(format!("cannot sync the memory image: {e}")))?;
    // SAFETY: by the function's contract the range is ours to drop; a
    // private anonymous mapping reads missing afterwards, and userfaultfd
    // serves each page again.
    let r = unsafe { libc::madvise(base as *mut libc::c_void, len as usize, libc::MADV_DONTNEED) };
    if r != 0 {
        return Err(Error::last_os(format!("madvise(MADV_DONTNEED) of guest RAM ({len:#x} bytes)")));
    }
    Ok(Remote { written, dropped: len / page_size })
}
