//! The put family: six verbs (three at priority 0, three at a given
//! priority) over one [`Queue::put_until`], and six batch verbs (the same
//! split) over one [`Queue::put_many_until`]. Each public verb only picks a
//! [`Deadline`].

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::Duration;

use super::{ByteBudget, FEW, Queue};
use crate::error::PutError;
use crate::ring::{Claim, Publication, PutBlocked, Ring, Run};
use crate::segment::Segment;
use crate::wait::{self, Deadline};

impl Queue {
    /// Puts a message (at priority 0), blocking while the queue is full.
    pub fn put(&self, msg: &[u8]) -> Result<(), PutError> {
        self.put_until(msg, 0, Deadline::Forever)
    }

    /// Puts a message if there is a free slot now.
    pub fn try_put(&self, msg: &[u8]) -> Result<(), PutError> {
        self.put_until(msg, 0, Deadline::Now)
    }

    /// Puts a message, waiting at most `timeout` for a free slot.
    pub fn put_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), PutError> {
        self.put_until(msg, 0, Deadline::after(timeout))
    }

    /// Puts a message at priority `priority` (`0 .. priorities`, higher is
    /// served first; see [`Builder::priorities`](crate::Builder::priorities)),
    /// blocking while that level is full.
    pub fn put_priority(&self, msg: &[u8], priority: usize) -> Result<(), PutError> {
        self.put_until(msg, self.level(priority)?, Deadline::Forever)
    }

    /// Like [`put_priority`](Self::put_priority), but returns
    /// [`PutError::Full`] at once when the level is full.
    pub fn try_put_priority(&self, msg: &[u8], priority: usize) -> Result<(), PutError> {
        self.put_until(msg, self.level(priority)?, Deadline::Now)
    }

    /// Like [`put_priority`](Self::put_priority), waiting at most `timeout`.
    pub fn put_priority_timeout(
        &self,
        msg: &[u8],
        priority: usize,
        timeout: Duration,
    ) -> Result<(), PutError> {
        self.put_until(msg, self.level(priority)?, Deadline::after(timeout))
    }

    /// Like [`put_many`](Self::put_many), at priority `priority`.
    pub fn put_many_priority<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        priority: usize,
    ) -> Result<(), (usize, PutError)> {
        let level = self.level(priority).map_err(|e| (0, e))?;
        self.put_many_until(msgs, level, Deadline::Forever)
    }

    /// Like [`try_put_many`](Self::try_put_many), at priority `priority`.
    pub fn try_put_many_priority<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        priority: usize,
    ) -> Result<(), (usize, PutError)> {
        let level = self.level(priority).map_err(|e| (0, e))?;
        self.put_many_until(msgs, level, Deadline::Now)
    }

    /// Like [`put_many_timeout`](Self::put_many_timeout), at priority `priority`.
    pub fn put_many_priority_timeout<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        priority: usize,
        timeout: Duration,
    ) -> Result<(), (usize, PutError)> {
        let level = self.level(priority).map_err(|e| (0, e))?;
        self.put_many_until(msgs, level, Deadline::after(timeout))
    }

    /// Checks a priority against the queue's levels.
    fn level(&self, priority: usize) -> Result<u64, PutError> {
        if priority as u64 >= self.seg.geometry.priorities {
            return Err(PutError::InvalidPriority {
                priority,
                priorities: self.priorities(),
            });
        }
        Ok(priority as u64)
    }

    /// The one put: claims a slot of `level` (waiting until `deadline`),
    /// copies the message in, publishes it and wakes a sleeping getter.
    fn put_until(&self, msg: &[u8], level: u64, deadline: Deadline) -> Result<(), PutError> {
        if msg.len() as u64 > self.seg.geometry.max_msg_size {
            return Err(PutError::TooLarge {
                len: msg.len(),
                max: self.max_msg_size(),
            });
        }
        let ring = self.seg.level_ring(level);
        // The common case inline: a free slot at once, and the claim stays
        // in registers. Anything else - full, closed, damaged, a lost race -
        // is the blocking path's, one call away, which tries again.
        match ring.claim_write_fast(self.me) {
            Ok(claim) => {
                self.finish_put(ring, claim, msg);
                Ok(())
            }
            Err(_) => self.put_blocking(msg, level, deadline),
        }
    }

    /// [`put_until`](Self::put_until) after its first attempt found no free
    /// slot (or the queue closed or damaged). Takes the level, not the
    /// ring: passing the ring would make the fast path build it in memory.
    #[inline(never)]
    fn put_blocking(&self, msg: &[u8], level: u64, deadline: Deadline) -> Result<(), PutError> {
        let ring = self.seg.level_ring(level);
        let claim = self.claim_write_blocking(ring, deadline)?;
        self.finish_put(ring, claim, msg);
        Ok(())
    }

    /// The rest of a put once `claim` holds a slot of `ring`: copies `msg`
    /// (checked against max_msg_size) in, publishes it, counts it and wakes
    /// a sleeping getter.
    #[inline(always)]
    fn finish_put(&self, ring: Ring<'_, Segment>, claim: Claim, msg: &[u8]) {
        // SAFETY: `claim` holds the slot in WRITING for us; the caller
        // checked the length against max_msg_size.
        unsafe { self.seg.write_payload(claim.idx, msg) };
        ring.publish(claim);
        self.count_puts(1);
        // Only the futex word: building the whole wait point costs more
        // than the look at it.
        wait::notify_one(&self.seg.header().get_seq);
    }

    /// Puts every message in `msgs`, in order, blocking while the queue is
    /// full. Much cheaper per message than a loop of [`put`](Self::put):
    /// the sizes are checked once, and the messages go in runs of
    /// consecutive free slots (of at most 256 KiB of payload, or one larger
    /// message, so consumers start on a run while the next is written), with
    /// the tail, the `closed` check, the handle's counter and the wake-up of
    /// a sleeping consumer once per run. (Fewer than 4 messages go one by
    /// one, as by `put`, while a slot is free at once: a run of so few
    /// would cost more.)
    /// On error, returns it together with how many messages were put.
    ///
    /// Crash contract: the messages are published in order, each one whole
    /// (a run claimed in one step becomes visible all at once, when its
    /// first slot is published), so a producer killed in the middle leaves
    /// a prefix of `msgs` in the queue (each of them once, complete) and
    /// nothing of the rest: what it was still writing is discarded by
    /// recovery, never delivered.
    pub fn put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<(), (usize, PutError)> {
        self.put_many_until(msgs, 0, Deadline::Forever)
    }

    /// Like [`put_many`](Self::put_many), but puts only what fits now: on a
    /// full queue it returns [`PutError::Full`] with how many were put.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("mq-doc-try-put-many-{}", std::process::id()));
    /// use queue_core::{PutError, Queue};
    /// let q = Queue::builder("jobs").dir(&dir).capacity(2).create()?;
    /// assert_eq!(q.try_put_many(&[b"a", b"b", b"c"]), Err((2, PutError::Full)));
    /// assert_eq!(q.len(), 2);
    /// # Queue::remove_in(&dir, "jobs")?;
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<(), (usize, PutError)> {
        self.put_many_until(msgs, 0, Deadline::Now)
    }

    /// Like [`put_many`](Self::put_many), waiting at most `timeout` in all
    /// (one deadline for the whole batch) for free slots: when it passes,
    /// returns [`PutError::Timeout`] with how many were put.
    pub fn put_many_timeout<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        timeout: Duration,
    ) -> Result<(), (usize, PutError)> {
        self.put_many_until(msgs, 0, Deadline::after(timeout))
    }

    /// The one batch put: checks every size first, then claims a run of
    /// free slots (the first claim waiting until `deadline`), copies the
    /// run's messages in, publishes them in order, wakes a sleeping getter,
    /// and goes on with the next run until every message is in.
    fn put_many_until<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        level: u64,
        deadline: Deadline,
    ) -> Result<(), (usize, PutError)> {
        let max = self.seg.geometry.max_msg_size;
        // All the lengths or-ed first (at least the longest; no branch a
        // message), then, only if that passes `max`, which is too long.
        let bits = lengths_or(msgs);
        if bits as u64 > max
            && let Some(m) = msgs.iter().find(|m| m.as_ref().len() as u64 > max)
        {
            let err = PutError::TooLarge {
                len: m.as_ref().len(),
                max: max as usize,
            };
            return Err((0, err));
        }
        let (ring, getters) = (self.seg.level_ring(level), self.getters());
        let mut done = 0;
        // Too few for a recorded run: message by message while `put`'s
        // fast claim finds a free slot at once (a run of them costs more
        // than its messages alone); the rest, if any, as a batch.
        if msgs.len() < FEW {
            while let Some(msg) = msgs.get(done) {
                let Ok(claim) = ring.claim_write_fast(self.me) else {
                    break;
                };
                self.finish_put(ring, claim, msg.as_ref());
                done += 1;
            }
        }
        // (Those were counted one by one.)
        let few = done;
        while done < msgs.len() {
            let most = run_within(&msgs[done..], max);
            let run = match self.claim_write_run(&ring, most, deadline) {
                Ok(run) => run,
                Err(e) => {
                    self.count_puts(done - few);
                    return Err((done, e));
                }
            };
            self.write_run(&ring, run, &msgs[done..]);
            done += run.len as usize;
            // Once per run: a run is written without waiting, so a
            // consumer asleep meanwhile misses nothing for long.
            getters.notify_one();
        }
        self.count_puts(msgs.len() - few);
        Ok(())
    }

    /// Writes `msgs` (at least `run.len` of them) into the slots of `run`
    /// and publishes them. A run claimed slot by slot is published once all
    /// are written (in order: a death in between leaves a published
    /// prefix), so a consumer right behind us finds the whole run ready
    /// instead of reading each slot's line while we write the next one. A
    /// recorded run's slots behind the record are published one by one
    /// right after each copy, since nobody can reach them before the
    /// record, which is published last.
    #[inline(always)]
    fn write_run<M: AsRef<[u8]>>(&self, ring: &Ring<'_, Segment>, run: Run, msgs: &[M]) {
        let mut done = 0;
        if run.recorded {
            // SAFETY: the run holds the record's slot for us (WRITE_RUN);
            // every length was checked against max_msg_size by the caller.
            unsafe { self.seg.write_payload(run.first.idx, msgs[0].as_ref()) };
            done = 1;
            ring.each_range(run, true, |idx, n, lap| {
                let n = n as usize;
                let publication = Publication::of(lap);
                let publish = |state: &AtomicU64| publication.slot(state);
                // SAFETY: the slots behind the record are the run's (nobody
                // else can reach them); lengths checked as above.
                unsafe { self.seg.write_payloads(idx, &msgs[done..done + n], publish) };
                done += n;
            });
            ring.publish_record(run);
            return;
        }
        ring.each_range(run, false, |idx, n, _| {
            let n = n as usize;
            // SAFETY: the run holds these slots for us in WRITING; lengths
            // checked as above.
            unsafe { self.seg.write_payloads(idx, &msgs[done..done + n], |_| {}) };
            done += n;
        });
        ring.publish_run(run);
    }

    /// Counts `n` messages put by this handle: one relaxed add on our own
    /// participant entry's cache line.
    #[inline]
    fn count_puts(&self, n: usize) {
        self.entry().puts.fetch_add(n as u64, Relaxed);
    }

    /// Claims a run of up to `most` free slots at the tail of `ring` (one
    /// priority level), waiting until `deadline` while it is full.
    #[inline]
    fn claim_write_run(
        &self,
        ring: &Ring<'_, Segment>,
        most: u64,
        deadline: Deadline,
    ) -> Result<Run, PutError> {
        // The common case first, without going through `block`: its
        // `attempt` closure has several callers and is not inlined, so
        // calling the ring here saves a call per run.
        if let Ok(run) = ring.try_claim_write_run(self.me, most) {
            return Ok(run);
        }
        let first = self.claim_write_blocking(*ring, deadline)?;
        Ok(ring.extend_write(first, most, self.me))
    }

    /// [`claim_write_run`](Self::claim_write_run) after a first attempt found no
    /// free slot (or the queue closed or damaged): the whole blocking path.
    #[inline(never)]
    fn claim_write_blocking(
        &self,
        ring: Ring<'_, Segment>,
        deadline: Deadline,
    ) -> Result<Claim, PutError> {
        let attempt = || match ring.try_claim_write(self.me) {
            Ok(c) => Some(Ok(c)),
            Err(PutBlocked::Closed) => Some(Err(PutError::Closed)),
            Err(PutBlocked::Corrupt(d)) => Some(Err(PutError::Corrupted(d.into()))),
            Err(PutBlocked::Full) => {
                self.recover_if_due();
                self.scan_producers_if_due();
                None
            }
        };
        self.block(
            deadline,
            self.putters(),
            attempt,
            PutError::Full,
            PutError::Timeout,
        )
    }
}

/// The lengths of `msgs` or-ed together: at least the longest. Four a
/// step (a loop the compiler vectorizes instead spends about 40
/// instructions a call on its set-up).
#[inline]
fn lengths_or<M: AsRef<[u8]>>(msgs: &[M]) -> usize {
    let len = |m: &M| m.as_ref().len();
    let mut fours = msgs.chunks_exact(4);
    let bits = fours.by_ref().fold(0, |bits, four| match four {
        [a, b, c, d] => bits | len(a) | len(b) | len(c) | len(d),
        _ => unreachable!("chunks of four"),
    });
    fours.remainder().iter().fold(bits, |bits, m| bits | len(m))
}

/// How many of `msgs` (at least one) go in one run: all of them, unless
/// messages of up to `max` bytes could pass
/// [`BATCH_BYTES`](super::BATCH_BYTES); then as many as fit in it.
#[inline]
fn run_within<M: AsRef<[u8]>>(msgs: &[M], max: u64) -> u64 {
    let Some(mut budget) = ByteBudget::needed(max, msgs.len() as u64) else {
        return msgs.len() as u64;
    };
    let fit = msgs
        .iter()
        .take_while(|m| budget.admit(m.as_ref().len() as u64))
        .count();
    fit.max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_hold_at_most_batch_bytes_or_one_message() {
        let k = |n: usize| vec![0u8; n << 10];
        let many = |n: usize, kib: usize| vec![k(kib); n];
        // Small enough whatever they hold: all, without looking at them.
        assert_eq!(run_within(&many(64, 1), 4 << 10), 64);
        assert_eq!(run_within(&many(10, 64), 64 << 10), 4);
        assert_eq!(run_within(&many(10, 60), 64 << 10), 4);
        assert_eq!(run_within(&[k(1), k(300), k(1)], 300 << 10), 1);
        assert_eq!(
            run_within(&[k(300), k(1)], 300 << 10),
            1,
            "one larger message"
        );
        assert_eq!(
            run_within(&many(10, 1), 64 << 10),
            10,
            "small ones on a large queue"
        );
    }
}
