//! Pipes and `socketpair(AF_UNIX, SOCK_STREAM)` as peers: `[u32 length,
//! little-endian][payload]` frames, one `write` per message, the reader behind
//! a 64 KiB `BufReader`; the descriptors are passed down to the children. An
//! empty frame (or EOF) stops a reader.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::child::{Kid, args, ready_then_wait_for_go, report_done, spawn_all};
use crate::split;
use crate::stats::{PingPlan, sample};

fn frame(size: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + size);
    f.extend_from_slice(&(size as u32).to_le_bytes());
    f.resize(4 + size, 0xab);
    f
}

/// Reads one frame into `buf`; `None` at EOF or at the empty stop frame.
fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Option<usize> {
    let mut len = [0u8; 4];
    if r.read_exact(&mut len).is_err() {
        return None;
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 {
        return None;
    }
    buf.resize(len, 0);
    r.read_exact(buf).expect("read frame payload");
    Some(len)
}

/// Takes ownership of a descriptor the parent passed down.
fn inherited(fd: RawFd) -> File {
    // SAFETY: the parent cleared FD_CLOEXEC on exactly this descriptor for
    // this child and passed its number; nothing else in this process owns it.
    File::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn fd_producer(fd: RawFd, size: usize, count: usize) {
    let mut w = inherited(fd);
    let f = frame(size);
    ready_then_wait_for_go();
    for _ in 0..count {
        w.write_all(&f).expect("write frame");
    }
    w.write_all(&0u32.to_le_bytes()).expect("write stop frame");
    report_done(count);
}

pub fn fd_consumer(fd: RawFd, size: usize) {
    let mut r = BufReader::with_capacity(64 * 1024, inherited(fd));
    let mut buf = Vec::with_capacity(size);
    ready_then_wait_for_go();
    let mut n = 0;
    while read_frame(&mut r, &mut buf).is_some() {
        n += 1;
    }
    report_done(n);
}

pub fn fd_echo(rfd: RawFd, wfd: RawFd, size: usize) {
    // For a socketpair both numbers are the same descriptor: own it once.
    let rf = inherited(rfd);
    let mut w = if wfd == rfd {
        rf.try_clone().unwrap()
    } else {
        inherited(wfd)
    };
    let mut r = BufReader::with_capacity(64 * 1024, rf);
    let mut buf = Vec::with_capacity(size);
    let mut out = Vec::with_capacity(4 + size);
    ready_then_wait_for_go();
    while let Some(len) = read_frame(&mut r, &mut buf) {
        out.clear();
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&buf);
        w.write_all(&out).expect("echo write");
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Stream {
    Pipe,
    Socket,
}

/// A connected pair of descriptors (read end, write end), close-on-exec.
fn stream_pair(kind: Stream) -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors returned.
    let r = unsafe {
        match kind {
            Stream::Pipe => libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC),
            Stream::Socket => libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            ),
        }
    };
    assert_eq!(r, 0, "pipe/socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let one_mib: libc::c_int = 1 << 20;
    // Best effort: bigger buffers, as a user tuning for throughput would do.
    // SAFETY: plain fcntl/setsockopt calls on descriptors we own, with a
    // pointer to a live c_int of the size passed.
    unsafe {
        match kind {
            Stream::Pipe => {
                libc::fcntl(b.as_raw_fd(), libc::F_SETPIPE_SZ, one_mib);
            }
            Stream::Socket => {
                for fd in [&a, &b] {
                    for opt in [libc::SO_SNDBUFFORCE, libc::SO_RCVBUFFORCE] {
                        libc::setsockopt(
                            fd.as_raw_fd(),
                            libc::SOL_SOCKET,
                            opt,
                            (&one_mib as *const libc::c_int).cast(),
                            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                        );
                    }
                }
            }
        }
    }
    (a, b)
}

/// `p` independent producer -> consumer pairs, one stream each.
pub fn tp_stream(kind: Stream, size: usize, p: usize, n: u64) -> Duration {
    let each = split(n, p);
    let mut specs = Vec::new();
    let mut fds = Vec::new();
    for _ in 0..p {
        let (r, w) = stream_pair(kind);
        let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
        specs.push((args(&[&"fd-prod", &wfd, &size, &each]), vec![wfd]));
        specs.push((args(&[&"fd-cons", &rfd, &size]), vec![rfd]));
        fds.push((r, w));
    }
    let mut kids = spawn_all(specs);
    drop(fds); // the children hold their ends now
    let start = Instant::now();
    kids.iter_mut().for_each(Kid::go);
    let mut got = 0;
    for pair in kids.chunks_mut(2) {
        got += pair[1].done();
    }
    let elapsed = start.elapsed();
    assert_eq!(got as u64, each * p as u64, "messages lost or duplicated");
    kids.into_iter().for_each(Kid::finish);
    elapsed
}

pub fn pp_stream(kind: Stream, plan: &PingPlan, size: usize) -> Vec<u64> {
    // Parent writes `to_w` and reads `from_r`; the child reads `to_r` and
    // writes `from_w`. A socketpair is one bidirectional stream.
    let (mine_r, mine_w, theirs_r, theirs_w, keep);
    match kind {
        Stream::Pipe => {
            let (to_r, to_w) = stream_pair(Stream::Pipe);
            let (from_r, from_w) = stream_pair(Stream::Pipe);
            (theirs_r, theirs_w) = (to_r.as_raw_fd(), from_w.as_raw_fd());
            mine_w = File::from(to_w);
            mine_r = File::from(from_r);
            keep = vec![to_r, from_w];
        }
        Stream::Socket => {
            let (x, y) = stream_pair(Stream::Socket);
            (theirs_r, theirs_w) = (y.as_raw_fd(), y.as_raw_fd());
            mine_w = File::from(x);
            mine_r = mine_w.try_clone().unwrap();
            keep = vec![y];
        }
    }
    let a = args(&[&"fd-echo", &theirs_r, &theirs_w, &size]);
    let mut kids = spawn_all(vec![(a, vec![theirs_r, theirs_w])]);
    drop(keep);
    kids[0].go();
    let f = frame(size);
    let mut w = mine_w;
    let mut r = BufReader::with_capacity(64 * 1024, mine_r);
    let mut buf = Vec::with_capacity(size);
    let v = sample(plan, || {
        w.write_all(&f).unwrap();
        read_frame(&mut r, &mut buf).unwrap();
    });
    drop(w); // EOF (or for the socket, the stop frame below) ends the echo
    if kind == Stream::Socket {
        r.get_mut().write_all(&0u32.to_le_bytes()).unwrap();
    }
    kids.into_iter().for_each(Kid::finish);
    v
}
