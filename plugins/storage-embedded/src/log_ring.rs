//! A post-log record's write and sync handed to the kernel (io_uring), so
//! that the thread that logs a lone post applies it while the disk syncs.
//!
//! Written with `pwrite` and `fdatasync`, the record holds its thread for
//! the whole sync, and the post's transaction (and the last post's commit,
//! if its task has not made it yet) can only begin after it. With the
//! write in the kernel's hands the same thread does that work meanwhile
//! and then waits for what is left of the sync, without waking another
//! thread (see docs/storage-embedded.md, "A lone post applied while its
//! record syncs").
//!
//! The write carries `RWF_DSYNC`: it completes once the data is as
//! durable as `fdatasync` would make it.

use std::{fs::File, io, marker::PhantomData, os::fd::AsRawFd};

use io_uring::{opcode, types::Fd, IoUring};

/// A ring for one record's write at a time.
pub(crate) struct LogRing {
    ring: IoUring,
}

impl LogRing {
    /// A ring, or why there is none: the kernel refuses io_uring or has no
    /// write operation in it.
    pub(crate) fn new() -> Result<Self, String> {
        let ring = IoUring::new(2).map_err(|e| format!("io_uring is not available: {e}"))?;
        let mut probe = io_uring::Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|e| format!("io_uring cannot say what it supports: {e}"))?;
        if !probe.is_supported(opcode::Write::CODE) {
            return Err("this kernel's io_uring has no write operation".into());
        }
        Ok(Self { ring })
    }

    /// Starts writing `bytes` at `offset` of `file`, durable once
    /// [`WriteInFlight::finish`] returns `Ok`. `bytes` and `file` stay
    /// borrowed until the write is over.
    pub(crate) fn start<'a>(
        &'a mut self,
        file: &'a File,
        bytes: &'a [u8],
        offset: u64,
    ) -> io::Result<WriteInFlight<'a>> {
        let len = u32::try_from(bytes.len()).map_err(io::Error::other)?;
        let entry = opcode::Write::new(Fd(file.as_raw_fd()), bytes.as_ptr(), len)
            .offset(offset)
            .rw_flags(libc::RWF_DSYNC)
            .build();
        // SAFETY: `bytes` and `file` are borrowed by the value made just
        // below, which does not let go of them before the kernel has
        // answered (its drop waits for that answer, submitting the entry
        // first if it is still queued).
        unsafe { self.ring.submission().push(&entry) }
            .map_err(|_| io::Error::other("the post log's ring is full"))?;
        let in_flight = WriteInFlight {
            ring: &mut self.ring,
            len: bytes.len(),
            answered: false,
            _borrowed: PhantomData,
        };
        submit(in_flight.ring, 0)?;
        Ok(in_flight)
    }
}

/// A write the kernel is doing.
pub(crate) struct WriteInFlight<'a> {
    ring: &'a mut IoUring,
    len: usize,
    /// Whether the kernel has answered.
    answered: bool,
    _borrowed: PhantomData<&'a [u8]>,
}

impl WriteInFlight<'_> {
    /// Waits for the write; `Ok` once it is durable.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.wait()
    }

    fn wait(&mut self) -> io::Result<()> {
        loop {
            if let Some(completion) = self.ring.completion().next() {
                self.answered = true;
                return match completion.result() {
                    written if written < 0 => Err(io::Error::from_raw_os_error(-written)),
                    written if written as usize == self.len => Ok(()),
                    written => Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("a post-log record was written in part ({written} bytes)"),
                    )),
                };
            }
            if let Err(e) = submit(self.ring, 1) {
                // The kernel still holds the buffer; nothing else can be
                // trusted to wait for it.
                panic!("embedded store: cannot wait for a post-log write: {e}");
            }
        }
    }
}

impl Drop for WriteInFlight<'_> {
    fn drop(&mut self) {
        // Never let go of the buffer while the kernel may still read it.
        if !self.answered {
            let _ = self.wait();
        }
    }
}

/// Submits what is queued and waits for `wait` answers, through signals.
fn submit(ring: &IoUring, wait: usize) -> io::Result<()> {
    loop {
        match ring.submit_and_wait(wait) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            other => return other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    #[test]
    fn a_write_lands_where_it_was_asked_to() {
        let Ok(mut ring) = LogRing::new() else {
            eprintln!("io_uring is refused here; the post log writes with pwrite");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("f"))
            .unwrap();
        file.write_all_at(&[0u8; 8192], 0).unwrap();
        let bytes = vec![7u8; 4096];
        ring.start(&file, &bytes, 4096).unwrap().finish().unwrap();
        let mut read = vec![0u8; 8192];
        file.read_exact_at(&mut read, 0).unwrap();
        assert!(read[..4096].iter().all(|&b| b == 0));
        assert!(read[4096..].iter().all(|&b| b == 7));
    }

    #[test]
    fn a_failed_write_says_why() {
        let Ok(mut ring) = LogRing::new() else { return };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        File::create(&path).unwrap();
        // Opened for reading only: the write is refused.
        let file = File::open(&path).unwrap();
        let bytes = vec![7u8; 512];
        let error = ring.start(&file, &bytes, 0).unwrap().finish().unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EBADF));
        // The ring is usable after a failure.
        let file = File::options().write(true).open(&path).unwrap();
        ring.start(&file, &bytes, 0).unwrap().finish().unwrap();
    }
}
