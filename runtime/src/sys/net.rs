//! Socket system calls for `net` that std does not expose in non-blocking
//! form: socket options set before `bind` (SO_REUSEPORT), a non-blocking
//! `connect`, `accept4` with SOCK_NONBLOCK, and `poll(2)` for callers that
//! are plain threads rather than goroutines.
//!
//! Stream reads and writes ([`recv`], [`recv_reporting_queue`], [`send`])
//! go through `syscall(2)` rather than glibc's `recv`/`send`, which std
//! calls: those are cancellation points, and wrap every call in
//! `__pthread_enable_asynccancel`/`__pthread_disable_asynccancel`. goro never
//! cancels threads, and perf put the pair at about 3 % of the Ms' CPU on the
//! echo server at 100 connections (`perf record -a`, cpu-clock). Go issues
//! raw system calls too.

use std::io;
use std::mem::{size_of, size_of_val, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(super::last_error())
    } else {
        Ok(rc)
    }
}

/// A byte count returned by `syscall(2)`, or the error its -1 stands for.
fn byte_count(rc: libc::c_long) -> io::Result<usize> {
    if rc < 0 {
        Err(super::last_error())
    } else {
        Ok(rc as usize)
    }
}

/// `recvfrom(fd, buf, len, 0, NULL, NULL)`, without glibc's cancellation
/// wrapper (module doc). Integer arguments are widened to `c_long`, the
/// type `syscall(2)` reads every argument as.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call;
    // null address arguments ask for no peer address.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd as libc::c_long,
            buf.as_mut_ptr(),
            buf.len(),
            0 as libc::c_long,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    };
    byte_count(rc)
}

/// The most slices one readv(2)/recvmsg(2) takes (`IOV_MAX`; std passes
/// no more either).
pub const IOV_MAX: usize = 1024;

/// Linux's `TCP_INQ` (4.18): once set, each `recvmsg` on the socket carries
/// a `TCP_CM_INQ` control message (the same number) with the bytes still
/// queued after the read. Accepted sockets inherit it from their listener.
const TCP_INQ: libc::c_int = 36;

/// What a stream read returned: the bytes read, and, when the kernel said
/// (`TCP_INQ`), how many were still queued behind them. A read that stops
/// at TCP's urgent mark says so with a non-zero `queued`, as does one that
/// reached a FIN (queued 1).
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub len: usize,
    pub queued: Option<u32>,
}

/// Sets `TCP_INQ` on a TCP socket (see [`Received`]).
pub fn set_inq(fd: RawFd) -> io::Result<()> {
    set_option(fd, libc::IPPROTO_TCP, TCP_INQ)
}

/// `recvmsg(fd, {iov: bufs, control}, 0)`: a read that also reports the
/// bytes left queued, from the `TCP_CM_INQ` control message of a socket
/// with [`set_inq`]. At most `IOV_MAX` slices go in one call. For TCP only:
/// on a Unix socket, descriptors passed with the data would be dropped.
pub fn recv_reporting_queue(fd: RawFd, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<Received> {
    // Room for TCP_CM_INQ (CMSG_SPACE(4) = 24 bytes) and one other message
    // a program might have enabled on the socket; u64s for cmsghdr's
    // alignment.
    let mut control = [0u64; 8];
    // SAFETY: zeroed is a valid msghdr (no name, no iov, no control yet).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSliceMut` is ABI-compatible with `iovec` (std documents it so).
    message.msg_iov = bufs.as_mut_ptr().cast::<libc::iovec>();
    message.msg_iovlen = bufs.len().min(IOV_MAX);
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = size_of_val(&control);
    // SAFETY: `message` points at `bufs`' slices, each valid for writes of
    // its length for the call, and at `control`, valid for writes of
    // `msg_controllen` bytes; both outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_recvmsg,
            fd as libc::c_long,
            &mut message as *mut libc::msghdr,
            0 as libc::c_long,
        )
    };
    let len = byte_count(rc)?;
    // SAFETY: the call succeeded, so the kernel filled `message`'s control
    // buffer (still alive) and set `msg_controllen` to what it wrote.
    let queued = unsafe { queued_after(&message) };
    Ok(Received { len, queued })
}

/// The `TCP_CM_INQ` value among `message`'s control messages, if any.
///
/// # Safety
/// `message` must be a header that a successful `recvmsg` just filled: its
/// `msg_control` points at a live buffer of `msg_controllen` bytes holding
/// well-formed control messages, each of whose `cmsg_len` the kernel keeps
/// within that buffer.
unsafe fn queued_after(message: &libc::msghdr) -> Option<u32> {
    // SAFETY: CMSG_LEN only computes a size.
    let int_len = unsafe { libc::CMSG_LEN(size_of::<libc::c_int>() as u32) } as usize;
    // SAFETY: the buffer is live and well-formed (the caller's contract);
    // CMSG_FIRSTHDR/CMSG_NXTHDR return null or a header that fits in it.
    let mut header = unsafe { libc::CMSG_FIRSTHDR(message) };
    while !header.is_null() {
        // SAFETY: non-null, so a whole, aligned header inside the buffer.
        let this = unsafe { &*header };
        if this.cmsg_level == libc::IPPROTO_TCP
            && this.cmsg_type == TCP_INQ
            && this.cmsg_len as usize >= int_len
        {
            // SAFETY: `header` is a whole header inside the buffer (above).
            let data = unsafe { libc::CMSG_DATA(header) }.cast::<libc::c_int>();
            // The message holds at least a c_int of data (checked above),
            // inside the buffer: the kernel wrote `cmsg_len` to fit it.
            // SAFETY: so `data` is readable for a c_int, maybe unaligned.
            let queued = unsafe { std::ptr::read_unaligned(data) };
            return u32::try_from(queued).ok();
        }
        // SAFETY: as for CMSG_FIRSTHDR; `header` is a header of `message`.
        header = unsafe { libc::CMSG_NXTHDR(message, header) };
    }
    None
}

/// `sendto(fd, buf, len, MSG_NOSIGNAL, NULL, 0)`, without glibc's
/// cancellation wrapper (module doc). MSG_NOSIGNAL, as std's `send`: a
/// write to a reset connection is an `EPIPE` error, never a SIGPIPE.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call; a
    // null address with length 0 sends on the connected socket.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd as libc::c_long,
            buf.as_ptr(),
            buf.len(),
            libc::MSG_NOSIGNAL as libc::c_long,
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::c_long,
        )
    };
    byte_count(rc)
}

/// `sendmsg(fd, {iov: bufs}, MSG_NOSIGNAL)`: a vectored [`send`]. std's
/// `write_vectored` is `writev`, which raises SIGPIPE on a reset
/// connection in a process that has not ignored it (a host program
/// embedding goro, say). At most `IOV_MAX` slices go in one call, as std
/// does.
pub fn send_vectored(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: zeroed is a valid msghdr (no name, no control data).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` (std documents it so).
    message.msg_iov = bufs.as_ptr().cast_mut().cast::<libc::iovec>();
    message.msg_iovlen = bufs.len().min(IOV_MAX);
    // SAFETY: `message` points at `bufs`' slices, each valid for reads of
    // its length for the call; the kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sendmsg,
            fd as libc::c_long,
            &message as *const libc::msghdr,
            libc::MSG_NOSIGNAL as libc::c_long,
        )
    };
    byte_count(rc)
}

/// A non-blocking, close-on-exec socket of `kind` (SOCK_STREAM, SOCK_DGRAM)
/// in the family of `addr`.
pub fn socket_for(addr: &SocketAddr, kind: libc::c_int) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let flags = kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: no memory preconditions.
    let fd = check(unsafe { libc::socket(family, flags, 0) })?;
    // SAFETY: a fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub const SOCK_STREAM: libc::c_int = libc::SOCK_STREAM;

/// Sets an integer SOL_SOCKET option: SO_REUSEADDR or SO_REUSEPORT.
fn set_flag(fd: RawFd, option: libc::c_int) -> io::Result<()> {
    set_option(fd, libc::SOL_SOCKET, option)
}

/// Sets an integer socket option at `level` to 1.
fn set_option(fd: RawFd, level: libc::c_int, option: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: passes a live c_int and its size.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            option,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

pub fn set_reuseaddr(fd: RawFd) -> io::Result<()> {
    set_flag(fd, libc::SO_REUSEADDR)
}

pub fn set_reuseport(fd: RawFd) -> io::Result<()> {
    set_flag(fd, libc::SO_REUSEPORT)
}

fn to_raw(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let raw = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(raw)
            };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let raw = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in6.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(raw)
            };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_raw(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            let raw = (storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
            // SAFETY: the family says the storage holds a sockaddr_in.
            let raw = unsafe { &*raw };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(raw.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(raw.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let raw = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(raw.sin6_addr.s6_addr),
                u16::from_be(raw.sin6_port),
                raw.sin6_flowinfo,
                raw.sin6_scope_id,
            )))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "goro: unsupported address family",
        )),
    }
}

pub fn bind(fd: RawFd, addr: &SocketAddr) -> io::Result<()> {
    let (storage, len) = to_raw(addr);
    // SAFETY: `storage` holds a valid address of `len` bytes.
    check(unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) })
        .map(drop)
}

pub fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: no memory preconditions.
    check(unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// Starts a connect; `Ok(false)` means EINPROGRESS (wait for writable, then
/// [`take_error`]).
pub fn connect(fd: RawFd, addr: &SocketAddr) -> io::Result<bool> {
    let (storage, len) = to_raw(addr);
    loop {
        let address = (&storage as *const libc::sockaddr_storage).cast();
        // SAFETY: `storage` holds a valid address of `len` bytes.
        let rc = unsafe { libc::connect(fd, address, len) };
        if rc == 0 {
            return Ok(true);
        }
        let error = super::last_error();
        match error.raw_os_error() {
            Some(libc::EINPROGRESS) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}

/// SO_ERROR: the pending error of a socket (a finished connect's outcome).
pub fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: passes a live c_int and its size.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok((value != 0).then(|| io::Error::from_raw_os_error(value)))
}

/// `accept4` with SOCK_NONBLOCK | SOCK_CLOEXEC: the new socket and its
/// peer's address.
pub fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    loop {
        // SAFETY: `storage` is writable for `len` bytes.
        let rc = unsafe {
            libc::accept4(
                fd,
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if rc >= 0 {
            // SAFETY: a fresh descriptor, owned by nobody else.
            let socket = unsafe { OwnedFd::from_raw_fd(rc) };
            return Ok((socket, from_raw(&storage)?));
        }
        let error = super::last_error();
        if error.raw_os_error() != Some(libc::EINTR) {
            return Err(error);
        }
    }
}

/// Blocks the calling thread until `fd` is readable (or writable), or until
/// `deadline`: the wait of a caller that is not a goroutine. `Ok(false)` on
/// timeout.
pub fn poll_thread(fd: &impl AsRawFd, write: bool, deadline: Option<Instant>) -> io::Result<bool> {
    let events = if write { libc::POLLOUT } else { libc::POLLIN };
    loop {
        let timeout = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
            }
        };
        let mut pollfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        let rc = unsafe { libc::poll(&mut pollfd, 1, timeout) };
        if rc > 0 {
            return Ok(true);
        }
        if rc < 0 {
            let error = super::last_error();
            if error.raw_os_error() != Some(libc::EINTR) {
                return Err(error);
            }
        }
    }
}

/// The soft RLIMIT_NOFILE raised to the hard limit; returns the new soft
/// limit. (Load generators and servers with thousands of sockets.)
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writes one rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: reads one rlimit.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })?;
    Ok(limit.rlim_cur)
}

/// Sets the soft RLIMIT_NOFILE (tests lower it to provoke EMFILE).
pub fn set_nofile_soft_limit(soft: u64) -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writes one rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    limit.rlim_cur = soft.min(limit.rlim_max);
    // SAFETY: reads one rlimit.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }).map(drop)
}

/// A zero timeout is std's error for `set_read_timeout(Some(0))`.
pub fn zero_timeout_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot set a 0 duration timeout",
    )
}

/// How long is "no timeout": deadlines are computed only for `Some`.
pub fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    // A timeout too long to add (`Duration::MAX`) is no deadline at all.
    timeout.and_then(|t| Instant::now().checked_add(t))
}
