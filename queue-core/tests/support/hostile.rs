//! Hostile-segment harness shared by the property test (`tests/hostile.rs`)
//! and the `cargo fuzz` target (`fuzz/fuzz_targets/segment.rs`, which
//! includes this file with `#[path]`): build a real segment in some state,
//! damage its bytes, write the result as another queue's file, then open it
//! and call every operation that cannot block for good. Whatever the bytes,
//! each call must return (`Ok` or a clean error): no panic, no hang, no
//! out-of-bounds access, no allocation sized by a length read from the
//! segment.
//!
//! Only the public API and the documented layout (`docs/design.md`) are used.

#![allow(dead_code)] // each includer uses a different part

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use queue_core::{Batch, Queue};

/// Header fields the mutations aim at, by byte offset (docs/design.md).
pub const HEADER_SIZE: usize = 512;
/// Size of one participant entry.
pub const PARTICIPANT_SIZE: usize = 64;
const CAPACITY_AT: usize = 16;
const STRIDE_AT: usize = 32;
const PARTICIPANTS_AT: usize = 40;
const SLOTS_AT: usize = 56;
const META_AT: usize = 104;
const PRIORITIES_AT: usize = 112;
const LEVELS_AT: usize = 120;
/// Size of one slot record and of one level's cursors.
const META_SIZE: usize = 32;
const LEVEL_SIZE: usize = 128;

/// The first value that is not a slot kind (EMPTY 0 to WRITE_RUN 6, as in
/// `ring/mod.rs`): states are drawn with kinds `0..=KINDS`.
pub const KINDS: u8 = 7;

/// Packs a slot state word `{ lap: u32, gen: 0, kind: u8, owner: u16 }`.
pub fn pack(lap: u32, kind: u8, owner: u16) -> u64 {
    (u64::from(lap) << 32) | (u64::from(kind) << 16) | u64::from(owner)
}

/// The state a real queue is brought into before its bytes are taken.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Slots (1..).
    pub capacity: usize,
    /// Largest message.
    pub max_msg_size: usize,
    /// Participant table size (1..).
    pub max_participants: usize,
    /// Messages put.
    pub puts: usize,
    /// Of those, taken with `get`.
    pub gets: usize,
    /// Of the rest, held under a lease while the bytes are taken (the
    /// slots are READING, owned by an entry that is in use).
    pub leases: usize,
    /// A second handle is attached while the bytes are taken.
    pub second_handle: bool,
    /// The queue was closed.
    pub closed: bool,
    /// Priority levels (1..=3); messages are put round-robin over them.
    pub priorities: usize,
    /// Delivery control on: a lease timeout and `max_deliveries(2)`, and
    /// every lease is taken twice (so slot records hold counts).
    pub delivery: bool,
}

/// One change to the segment image.
#[derive(Debug, Clone, Copy)]
pub enum Mutation {
    /// Flip one bit at `offset % len`.
    Flip { offset: u32, bit: u8 },
    /// Overwrite one byte at `offset % len`.
    SetByte { offset: u32, value: u8 },
    /// Overwrite the 8-byte field `target` with `value`.
    SetU64 { target: Target, value: Value },
    /// Truncate or extend (with zeros) the file to `len % (image + 4096)` bytes.
    Resize { len: u32 },
}

/// An 8-byte field of the segment.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Header word `i % 64` (offset `8 * i`).
    Header(u8),
    /// Word `field % 8` of participant entry `entry % max_participants`.
    Participant { entry: u8, field: u8 },
    /// Slot `idx % capacity`: word 0 is the state, word 1 the length, the
    /// others are payload.
    Slot { idx: u8, field: u8 },
    /// Word `field % 4` of the slot record of slot `idx % slots`
    /// (deliveries, lease word, lease deadline, reserved).
    Meta { idx: u8, field: u8 },
    /// Word `field % 16` of the cursors of level `1 + level % (levels - 1)`
    /// (tail at 0, head at 8, requeued at 9); header word 8 when there is
    /// one level only.
    Level { level: u8, field: u8 },
}

/// What is written into a field.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// These exact bits.
    Raw(u64),
    /// A slot state word.
    State { lap: u32, kind: u8, owner: u16 },
    /// The old value plus a small delta (cursors off by a few).
    Delta(i16),
    /// The old value plus `laps` times the capacity (cursors off by laps).
    Laps(i8),
}

fn read_u64(image: &[u8], at: usize) -> u64 {
    image
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .unwrap_or(0)
}

/// Creates queue `name` in `dir` in the state `sc` describes, returns the
/// bytes of its segment (taken while its handles and leases are alive) and
/// removes it again.
pub fn base_image(dir: &Path, name: &str, sc: &Scenario) -> Vec<u8> {
    let mut builder = Queue::builder(name)
        .dir(dir)
        .capacity(sc.capacity.max(1))
        .max_msg_size(sc.max_msg_size)
        .max_participants(sc.max_participants.max(1))
        .priorities(sc.priorities.clamp(1, 3));
    if sc.delivery {
        builder = builder
            .lease_timeout(Duration::from_secs(60))
            .max_deliveries(2);
    }
    let q = builder.create().expect("create the base queue");
    let levels = q.priorities();
    let second = if sc.second_handle && sc.max_participants > 1 {
        Some(Queue::open_in(dir, name).expect("open a second handle"))
    } else {
        None
    };
    let puts = sc.puts.min(sc.capacity);
    for i in 0..puts {
        let len = (i * 7 + 3) % (sc.max_msg_size + 1);
        q.try_put_priority(&vec![i as u8 ^ 0xa5; len], i % levels)
            .expect("put");
    }
    if sc.delivery && puts > sc.gets.min(puts) {
        // A second delivery of one message: its slot record holds a count.
        drop(q.try_get_lease().expect("lease"));
    }
    let gets = sc.gets.min(puts);
    for _ in 0..gets {
        q.try_get().expect("get");
    }
    let taker = second.as_ref().unwrap_or(&q);
    let leases: Vec<_> = (0..sc.leases.min(puts - gets))
        .map(|_| taker.try_get_lease().expect("lease"))
        .collect();
    if sc.closed {
        q.close().expect("close");
    }
    let image = std::fs::read(q.path()).expect("read the segment");
    drop(leases);
    drop(second);
    drop(q);
    Queue::remove_in(dir, name).expect("remove the base queue");
    image
}

/// Applies `mutations` to `image` in order.
pub fn apply(image: &mut Vec<u8>, mutations: &[Mutation]) {
    // Aim with the geometry of the undamaged image.
    let capacity = read_u64(image, CAPACITY_AT).max(1);
    let stride = read_u64(image, STRIDE_AT) as usize;
    let participants = read_u64(image, PARTICIPANTS_AT).max(1);
    let slots = read_u64(image, SLOTS_AT) as usize;
    let meta = read_u64(image, META_AT) as usize;
    let levels = read_u64(image, PRIORITIES_AT).max(1);
    let level_table = read_u64(image, LEVELS_AT) as usize;
    let base_len = image.len();
    for m in mutations {
        if image.is_empty() {
            image.push(0);
        }
        let len = image.len();
        match *m {
            Mutation::Flip { offset, bit } => image[offset as usize % len] ^= 1 << (bit % 8),
            Mutation::SetByte { offset, value } => image[offset as usize % len] = value,
            Mutation::Resize { len: new } => {
                let new = new as usize % (base_len + 4096);
                image.resize(new, 0);
            }
            Mutation::SetU64 { target, value } => {
                let at = match target {
                    Target::Header(i) => 8 * usize::from(i % 64),
                    Target::Participant { entry, field } => {
                        HEADER_SIZE
                            + PARTICIPANT_SIZE * (u64::from(entry) % participants) as usize
                            + 8 * usize::from(field % 8)
                    }
                    Target::Slot { idx, field } => {
                        slots
                            + stride * (u64::from(idx) % (capacity * levels)) as usize
                            + 8 * usize::from(field) % stride.max(8)
                    }
                    Target::Meta { idx, field } => {
                        meta + META_SIZE * (u64::from(idx) % (capacity * levels)) as usize
                            + 8 * usize::from(field % 4)
                    }
                    Target::Level { level, field } if levels > 1 => {
                        level_table
                            + LEVEL_SIZE * (u64::from(level) % (levels - 1)) as usize
                            + 8 * usize::from(field % 16)
                    }
                    Target::Level { .. } => 8 * 8,
                };
                if at + 8 > image.len() {
                    continue;
                }
                let old = read_u64(image, at);
                let new = match value {
                    Value::Raw(v) => v,
                    Value::State { lap, kind, owner } => pack(lap, kind, owner),
                    Value::Delta(d) => old.wrapping_add(d as i64 as u64),
                    Value::Laps(k) => old.wrapping_add((i64::from(k) * capacity as i64) as u64),
                };
                image[at..at + 8].copy_from_slice(&new.to_le_bytes());
            }
        }
    }
}

/// What happened to one damaged segment.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// `open` accepted it.
    pub opened: bool,
    /// Operations that returned `Ok`.
    pub ok: u32,
    /// Operations that returned an error.
    pub errors: u32,
}

/// Writes `image` as queue `name` in `dir`, opens it and runs every
/// operation that cannot block for good (timeouts are a few milliseconds),
/// then removes the file. Panics only if the library panics.
pub fn exercise(dir: &Path, name: &str, image: &[u8]) -> Outcome {
    let path = dir.join(format!("mq.{name}"));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(image))
        .expect("write the damaged segment");
    let mut out = Outcome::default();
    let mut note = |ok: bool, text: String| {
        // Formatting the error exercises its Display with hostile values.
        std::hint::black_box(text);
        if ok {
            out.ok += 1;
        } else {
            out.errors += 1;
        }
    };
    macro_rules! run {
        ($e:expr) => {
            match $e {
                Ok(v) => {
                    std::hint::black_box(&v);
                    note(true, String::new())
                }
                Err(e) => note(false, e.to_string()),
            }
        };
    }
    match Queue::open_in(dir, name) {
        Err(e) => note(false, e.to_string()),
        Ok(q) => {
            out.opened = true;
            let short = Duration::from_millis(3);
            let max = q.max_msg_size();
            let stats = q.stats();
            std::hint::black_box((&stats, q.slots(), q.peek()));
            std::hint::black_box((q.len(), q.is_empty(), q.is_full(), q.is_closed()));
            std::hint::black_box((q.priorities(), q.lease_timeout(), q.max_deliveries()));
            run!(q.try_get());
            run!(q.try_put(&[0x5a; 3][..3.min(max)]));
            run!(q.try_put_priority(&[0x5b; 2][..2.min(max)], q.priorities() - 1));
            run!(q.try_put_priority(b"", q.priorities()));
            std::hint::black_box(q.recover());
            match q.try_get_lease() {
                Ok(lease) => {
                    std::hint::black_box((lease.len(), lease.deliveries()));
                    run!(lease.renew());
                    drop(lease); // back into the queue
                    match q.try_get_lease() {
                        Ok(lease) => run!(lease.ack()),
                        Err(e) => note(false, e.to_string()),
                    }
                }
                Err(e) => note(false, e.to_string()),
            }
            run!(q.get_timeout(short));
            run!(q.put_timeout(&vec![0xa5; max.min(64)], short));
            run!(q.try_get_many(3));
            run!(q.try_get_many_into(&mut Batch::new(), 3));
            run!(q.get_lease_timeout(short).map(|l| l.to_vec()));
            // A second handle: attach, recovery and detach on damaged bytes.
            match Queue::open_in(dir, name) {
                Ok(other) => {
                    run!(other.try_put(b"x"));
                    run!(other.try_get());
                    std::hint::black_box(other.stats());
                }
                Err(e) => note(false, e.to_string()),
            }
            run!(q.close());
            // Liveness: once closed, *blocking* gets drain what is left and
            // then end (with Closed, or an error for what cannot be read).
            // A slot held by an owner that is not attached must not keep
            // them waiting: every such slot is repaired by the open above.
            // Each get takes a message out for good, so the loop is short;
            // a hang here is caught by the caller's watchdog.
            let mut ended = false;
            for _ in 0..2 * q.capacity() + 4 {
                match q.get() {
                    Ok(_) => note(true, String::new()),
                    Err(e) => {
                        note(false, e.to_string());
                        ended = true;
                        break;
                    }
                }
            }
            assert!(ended, "a closed queue kept delivering messages");
            run!(q.try_put(b"after close"));
            std::hint::black_box((q.stats(), q.slots(), q.peek()));
        }
    }
    if Queue::remove_in(dir, name).is_err() {
        let _ = std::fs::remove_file(&path);
    }
    out
}

/// Decodes fuzzer bytes into a scenario and a list of mutations (the
/// `cargo fuzz` target's input format; every byte string is valid).
pub fn decode(data: &[u8]) -> (Scenario, Vec<Mutation>) {
    let mut bytes = data.iter().copied();
    let mut byte = || bytes.next().unwrap_or(0);
    let sc = Scenario {
        capacity: 1 + usize::from(byte() % 6),
        max_msg_size: usize::from(byte() % 97),
        max_participants: 1 + usize::from(byte() % 4),
        puts: usize::from(byte() % 7),
        gets: usize::from(byte() % 4),
        leases: usize::from(byte() % 3),
        second_handle: byte() & 1 == 1,
        closed: byte() % 4 == 0,
        priorities: 1 + usize::from(byte() % 3),
        delivery: byte() & 1 == 1,
    };
    let mut muts = Vec::new();
    let mut rest = data.get(10..).unwrap_or(&[]);
    let take = |rest: &mut &[u8], n: usize| -> [u8; 8] {
        let mut b = [0u8; 8];
        let k = n.min(rest.len());
        b[..k].copy_from_slice(&rest[..k]);
        *rest = &rest[k..];
        b
    };
    while !rest.is_empty() && muts.len() < 16 {
        let op = take(&mut rest, 1)[0];
        let a = u32::from_le_bytes(take(&mut rest, 4)[..4].try_into().unwrap());
        let m = match op % 8 {
            0 => Mutation::Flip {
                offset: a,
                bit: op >> 3,
            },
            1 => Mutation::SetByte {
                offset: a,
                value: op,
            },
            2 => Mutation::Resize { len: a },
            _ => {
                let target = match op % 8 {
                    3 => Target::Header(a as u8),
                    4 => Target::Participant {
                        entry: a as u8,
                        field: (a >> 8) as u8,
                    },
                    5 => Target::Meta {
                        idx: a as u8,
                        field: (a >> 8) as u8,
                    },
                    6 => Target::Level {
                        level: a as u8,
                        field: (a >> 8) as u8,
                    },
                    _ => Target::Slot {
                        idx: a as u8,
                        field: ((a >> 8) % 3) as u8,
                    },
                };
                let v = u64::from_le_bytes(take(&mut rest, 8));
                let value = match (a >> 16) % 4 {
                    0 => Value::Raw(v),
                    1 => Value::State {
                        lap: (v >> 32) as u32 % 4,
                        kind: (v >> 16) as u8 % (KINDS + 1),
                        owner: v as u16,
                    },
                    2 => Value::Delta(v as i16),
                    _ => Value::Laps(v as i8),
                };
                Mutation::SetU64 { target, value }
            }
        };
        muts.push(m);
    }
    (sc, muts)
}
