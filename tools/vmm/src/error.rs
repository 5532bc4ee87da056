// SPDX-License-Identifier: GPL-2.0
//! The VMM's one error type: a message of one line, built up with context
//! as it travels to `main`, which prints it and exits non-zero.

use std::fmt;

/// An error that is reported to the user as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

/// Result with the VMM's error type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A new error with `msg` as its whole text.
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }

    /// An error for the last OS error (`errno`), prefixed by `what`.
    pub fn last_os(what: impl fmt::Display) -> Self {
        Error(format!("{what}: {}", std::io::Error::last_os_error()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the inner errors said.
        f.write_str(&self.0.replace('\n', " "))
    }
}

impl std::error::Error for Error {}

/// Adds what was being done to an error of any displayable type.
pub trait Context<T> {
    /// Prefixes the error with the message `f` returns.
    fn context<S: fmt::Display>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context<S: fmt::Display>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", f())))
    }
}

/// The symbolic name of the errno values this VMM explains, `E?` otherwise.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTTY => "ENOTTY",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => "E?",
    }
}

/// `NAME (meaning)` for an errno, e.g. `EBUSY (Device or resource busy)`.
pub fn describe_errno(errno: i32) -> String {
    let io = std::io::Error::from_raw_os_error(errno);
    // The OS message ends with " (os error N)"; keep only the meaning.
    let text = io.to_string();
    let meaning = text.split(" (os error").next().unwrap_or(&text);
    format!("{} ({meaning})", errno_name(errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_prefixes_and_stays_one_line() {
        let r: std::result::Result<(), &str> = Err("inner\nsecond");
        let e = r.context(|| "outer").unwrap_err();
        assert_eq!(e.to_string(), "outer: inner second");
    }

    #[test]
    fn errno_is_named_with_its_meaning() {
        assert_eq!(describe_errno(libc::EBUSY), "EBUSY (Device or resource busy)");
        assert_eq!(describe_errno(libc::ENXIO), "ENXIO (No such device or address)");
        assert_eq!(errno_name(9999), "E?");
    }
}
