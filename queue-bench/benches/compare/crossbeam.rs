//! `crossbeam_channel::bounded` between threads of one process as a peer,
//! carrying `[u8; N]` by value or a `Vec<u8>` allocated per message: the
//! in-process ceiling.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::pin::PinSelf;
use crate::stats::{PingPlan, sample};
use crate::{capacity_for, split};

/// A message for the crossbeam rows, made by copying the template: a
/// `[u8; N]` travels by value (copied into the channel's slot and out, like
/// this queue's payload); a `Vec<u8>` is allocated and filled per message,
/// and only its pointer travels.
trait CbMsg: Send + 'static {
    fn make(template: &[u8]) -> Self;
}

impl<const N: usize> CbMsg for [u8; N] {
    #[inline]
    fn make(template: &[u8]) -> Self {
        template.try_into().expect("template of N bytes")
    }
}

impl CbMsg for Vec<u8> {
    #[inline]
    fn make(template: &[u8]) -> Self {
        template.to_vec()
    }
}

fn tp_crossbeam<M: CbMsg>(size: usize, p: usize, n: u64) -> Duration {
    let each = split(n, p);
    let (tx, rx) = crossbeam_channel::bounded::<M>(capacity_for(size));
    let barrier = Barrier::new(2 * p + 1);
    let template = vec![0xabu8; size];
    std::thread::scope(|sc| {
        let mut consumers = Vec::new();
        for _ in 0..p {
            let tx = tx.clone();
            let (barrier, template) = (&barrier, &template);
            sc.spawn(move || {
                let _pin = PinSelf::new(false);
                barrier.wait();
                for _ in 0..each {
                    tx.send(M::make(std::hint::black_box(template))).unwrap();
                }
            });
            let rx = rx.clone();
            consumers.push(sc.spawn(move || {
                let _pin = PinSelf::new(true);
                barrier.wait();
                let mut n = 0u64;
                while let Ok(m) = rx.recv() {
                    std::hint::black_box(&m);
                    n += 1;
                }
                n
            }));
        }
        drop((tx, rx));
        barrier.wait();
        let start = Instant::now();
        let got: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
        let elapsed = start.elapsed();
        assert_eq!(got, each * p as u64);
        elapsed
    })
}

pub fn tp_crossbeam_sized(size: usize, by_value: bool, p: usize, n: u64) -> Duration {
    match (by_value, size) {
        (false, _) => tp_crossbeam::<Vec<u8>>(size, p, n),
        (true, 64) => tp_crossbeam::<[u8; 64]>(size, p, n),
        (true, 1024) => tp_crossbeam::<[u8; 1024]>(size, p, n),
        (true, 65536) => tp_crossbeam::<[u8; 65536]>(size, p, n),
        _ => panic!("crossbeam [u8; N] rows exist for 64, 1024 and 65536 bytes only"),
    }
}

fn pp_crossbeam<M: CbMsg>(plan: &PingPlan, size: usize) -> Vec<u64> {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<M>(capacity_for(size));
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<M>(capacity_for(size));
    let template = vec![0xabu8; size];
    std::thread::scope(|sc| {
        sc.spawn(move || {
            let _pin = PinSelf::new(true);
            while let Ok(m) = ping_rx.recv() {
                pong_tx.send(m).unwrap();
            }
        });
        let v = sample(plan, || {
            ping_tx
                .send(M::make(std::hint::black_box(&template)))
                .unwrap();
            std::hint::black_box(pong_rx.recv().unwrap());
        });
        drop(ping_tx);
        v
    })
}

pub fn pp_crossbeam_sized(plan: &PingPlan, size: usize, by_value: bool) -> Vec<u64> {
    match (by_value, size) {
        (false, _) => pp_crossbeam::<Vec<u8>>(plan, size),
        (true, 64) => pp_crossbeam::<[u8; 64]>(plan, size),
        (true, 1024) => pp_crossbeam::<[u8; 1024]>(plan, size),
        (true, 65536) => pp_crossbeam::<[u8; 65536]>(plan, size),
        _ => panic!("crossbeam [u8; N] rows exist for 64, 1024 and 65536 bytes only"),
    }
}
