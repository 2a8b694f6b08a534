//! `mq put NAME [MESSAGE...] [--lines] [--file PATH] [--timeout D | --no-wait]
//! [--priority N] [--create]`
//!
//! Message arguments and files are all checked against the queue's maximum
//! message size before the first is put, so a bad one puts nothing. Stdin
//! with `--lines` is streamed: each line is put as soon as it is read (so
//! `tail -f log | mq put q --lines` works), and an oversized line stops the
//! stream after the lines before it were put. A line is read only up to one
//! byte past the maximum message size, so a huge line without a newline
//! fails at once instead of being read into memory.
//!
//! Into a remote queue the messages go in batches (`put_many`: up to 256
//! publishes in flight, not one round trip each): the arguments or files
//! all at once, and `--lines` whatever stdin has ready (up to
//! [`REMOTE_BATCH`] lines), sent before the next read could block (when no
//! whole line is buffered).

use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use queue_core::Queue;
use queue_net::{AnyQueue, PutError, RemoteQueue, Target};

use super::Ctx;
use crate::cli::{PutArgs, WaitMode};
use crate::exit::Exit;

/// Most lines of `--lines` sent to a remote queue in one `put_many`.
const REMOTE_BATCH: usize = 256;

pub fn run(ctx: &Ctx, a: PutArgs) -> Result<Exit> {
    let q: AnyQueue = match (ctx.target(&a.name)?, a.create) {
        (Target::Local(name), true) => Queue::builder(&name).dir(&ctx.dir).open_or_create()?.into(),
        (Target::Remote(_), true) => match RemoteQueue::open(&a.name) {
            Err(queue_net::NetError::NotFound { .. }) => {
                match RemoteQueue::create(&a.name, &Default::default()) {
                    // Created by another `mq put --create` meanwhile.
                    Err(queue_net::NetError::AlreadyExists { .. }) => RemoteQueue::open(&a.name)?,
                    r => r?,
                }
            }
            r => r?,
        }
        .into(),
        (_, false) => ctx.open_any(&a.name)?,
    };
    let priority = usize::try_from(a.priority).unwrap_or(usize::MAX);
    if priority >= q.priorities() {
        bail!(
            "priority {} is out of range for queue {:?}: it has {} level(s), 0 to {} (create it with 'mq create --priorities N')",
            a.priority,
            a.name,
            q.priorities(),
            q.priorities() - 1
        );
    }
    let mut p = Putter {
        q: &q,
        name: &a.name,
        wait: a.wait.mode_or(WaitMode::Forever),
        priority,
        done: 0,
    };
    let max = q.max_msg_size();
    let outcome = if !a.messages.is_empty() {
        for (i, m) in a.messages.iter().enumerate() {
            if m.len() > max {
                let which = (a.messages.len() > 1).then(|| format!("message {}", i + 1));
                return Err(too_large(which, m.len(), &a.name, max));
            }
        }
        p.put_all(
            a.messages.iter().map(|m| m.as_bytes()),
            Some(a.messages.len()),
        )?
    } else if !a.file.is_empty() {
        let files = a
            .file
            .iter()
            .map(|path| read_file(path, &a.name, max))
            .collect::<Result<Vec<_>>>()?;
        p.put_all(files.iter().map(Vec::as_slice), Some(files.len()))?
    } else if a.lines {
        if io::stdin().is_terminal() {
            ctx.note("reading messages from the terminal, one per line (end with Ctrl-D)");
        }
        p.put_lines(BufReader::new(io::stdin().lock()), max)?
    } else {
        if io::stdin().is_terminal() {
            ctx.note("reading one message from the terminal (end it with Ctrl-D)");
        }
        let msg = read_limited(io::stdin().lock(), max)
            .context("cannot read the message from stdin")?
            .map_err(|len| too_large(Some("stdin".into()), len, &a.name, max))?;
        p.put_all(std::iter::once(msg.as_slice()), Some(1))?
    };
    match outcome {
        Outcome::Done => Ok(Exit::Ok),
        Outcome::Stopped(why) => {
            ctx.note(why);
            Ok(Exit::Nothing)
        }
    }
}

/// The error for a message that does not fit the queue.
fn too_large(which: Option<String>, len: usize, name: &str, max: usize) -> anyhow::Error {
    too_large_as(which, &format!("{len} bytes"), name, max)
}

/// [`too_large`] with the size in words (`"over 4096 bytes"` for a line
/// whose end was not read).
fn too_large_as(which: Option<String>, size: &str, name: &str, max: usize) -> anyhow::Error {
    let which = which.map(|w| format!("{w}: ")).unwrap_or_default();
    anyhow!(
        "{which}message is {size}, queue {name:?} takes at most {max} (create it with --max-msg-size)"
    )
}

/// Reads a file that must fit the queue, checking its size before reading.
fn read_file(path: &Path, name: &str, max: usize) -> Result<Vec<u8>> {
    let which = Some(format!("{}", path.display()));
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read_limited(file, max)
        .with_context(|| format!("cannot read {}", path.display()))?
        .map_err(|len| too_large(which, len, name, max))
}

/// Reads everything, keeping at most `max` bytes: `Ok(Err(len))` if there
/// were more (`len` is the full length, counted without keeping it).
fn read_limited(r: impl Read, max: usize) -> io::Result<Result<Vec<u8>, usize>> {
    let mut r = r;
    let mut buf = Vec::new();
    (&mut r).take(max as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() <= max {
        return Ok(Ok(buf));
    }
    let rest = io::copy(&mut r, &mut io::sink())?;
    Ok(Err(buf.len() + rest as usize))
}

/// Why putting stopped early (exit 1).
enum Outcome {
    Done,
    Stopped(String),
}

struct Putter<'a> {
    q: &'a AnyQueue,
    name: &'a str,
    wait: WaitMode,
    priority: usize,
    done: usize,
}

impl<'a> Putter<'a> {
    /// Puts one message; `Ok(Some(reason))` if it could not wait any longer.
    fn put(&mut self, msg: &[u8]) -> Result<Option<String>> {
        let r = match self.wait {
            WaitMode::Forever => self.q.put_priority(msg, self.priority),
            WaitMode::Timeout(d) => self.q.put_priority_timeout(msg, self.priority, d),
            WaitMode::NoWait => self.q.try_put_priority(msg, self.priority),
        };
        match r {
            Ok(()) => {
                self.done += 1;
                Ok(None)
            }
            Err(e) => self.failed(e),
        }
    }

    /// Puts a batch into a remote queue with one `put_many` (the caller
    /// checked the sizes); as [`put`](Self::put) for the outcome.
    fn put_batch(&mut self, q: &RemoteQueue, msgs: &[&[u8]]) -> Result<Option<String>> {
        let r = match self.wait {
            WaitMode::Forever => q.put_many(msgs),
            WaitMode::Timeout(d) => q.put_many_timeout(msgs, d),
            WaitMode::NoWait => q.try_put_many(msgs),
        };
        match r {
            Ok(()) => {
                self.done += msgs.len();
                Ok(None)
            }
            Err((n, e)) => {
                self.done += n;
                self.failed(e)
            }
        }
    }

    /// What a put that failed with `e` means: `Ok(Some(reason))` if it could
    /// not wait any longer (exit 1), an error otherwise.
    fn failed(&self, e: PutError) -> Result<Option<String>> {
        let name = self.name;
        match e {
            PutError::Timeout => {
                let waited = match self.wait {
                    WaitMode::Timeout(d) => humantime::format_duration(d).to_string(),
                    _ => "waiting".into(),
                };
                Ok(Some(format!(
                    "timed out after {waited}: queue {name:?} stayed full (all {} slots taken)",
                    self.q.capacity()
                )))
            }
            PutError::Full => Ok(Some(format!(
                "queue {name:?} is full (all {} slots taken)",
                self.q.capacity()
            ))),
            PutError::TooLarge { len, max } => Err(too_large(None, len, name, max)),
            PutError::Closed => bail!(
                "queue {name:?} is closed: it accepts no more messages (remove it and create it again to start a new stream)"
            ),
            e => Err(anyhow!(e).context(format!("cannot put into queue {name:?}"))),
        }
    }

    /// The remote queue to batch into (priority 0 is its only level).
    fn remote(&self) -> Option<&'a RemoteQueue> {
        let q: &'a AnyQueue = self.q;
        q.as_remote().filter(|_| self.priority == 0)
    }

    fn stopped(&self, reason: String, total: Option<usize>) -> Outcome {
        Outcome::Stopped(match total {
            Some(1) => reason,
            Some(n) => format!("{reason}; put {} of {n} messages", self.done),
            None => format!("{reason}; put {} messages before that", self.done),
        })
    }

    fn put_all<'m>(
        &mut self,
        msgs: impl Iterator<Item = &'m [u8]>,
        total: Option<usize>,
    ) -> Result<Outcome> {
        if let Some(q) = self.remote() {
            let msgs: Vec<&[u8]> = msgs.collect();
            if let Some(reason) = self.put_batch(q, &msgs)? {
                return Ok(self.stopped(reason, total));
            }
            return Ok(Outcome::Done);
        }
        for m in msgs {
            if let Some(reason) = self.put(m)? {
                return Ok(self.stopped(reason, total));
            }
        }
        Ok(Outcome::Done)
    }

    fn put_lines<R: Read>(&mut self, mut r: BufReader<R>, max: usize) -> Result<Outcome> {
        let mut line = Vec::new();
        // Lines read for a remote queue and not yet sent.
        let mut batch: Vec<Vec<u8>> = Vec::new();
        for n in 1.. {
            // A remote batch goes out when full, or before a read that
            // could block (no whole line buffered), so `tail -f` lines
            // still go out as they come.
            if !batch.is_empty()
                && (batch.len() == REMOTE_BATCH || !r.buffer().contains(&b'\n'))
                && let Some(reason) = self.send_lines(&mut batch)?
            {
                return Ok(self.stopped(reason, None));
            }
            line.clear();
            // At most `max` bytes and the newline: a longer line is known
            // to be too large without reading (and holding) the rest of it.
            let read = (&mut r)
                .take(max as u64 + 1)
                .read_until(b'\n', &mut line)
                .context("cannot read stdin")?;
            if read == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if line.len() > max {
                let size = format!("over {max} bytes (read no further)");
                let err = too_large_as(Some(format!("line {n}")), &size, self.name, max);
                if let Some(reason) = self.send_lines(&mut batch)? {
                    return Ok(self.stopped(reason, None));
                }
                if self.done > 0 {
                    bail!("{err}; the {} lines before it were put", self.done);
                }
                return Err(err);
            }
            if self.remote().is_some() {
                batch.push(line.clone());
            } else if let Some(reason) = self.put(&line)? {
                return Ok(self.stopped(reason, None));
            }
        }
        if let Some(reason) = self.send_lines(&mut batch)? {
            return Ok(self.stopped(reason, None));
        }
        Ok(Outcome::Done)
    }

    /// Sends (and empties) the lines batched for a remote queue.
    fn send_lines(&mut self, batch: &mut Vec<Vec<u8>>) -> Result<Option<String>> {
        let Some(q) = self.remote().filter(|_| !batch.is_empty()) else {
            return Ok(None);
        };
        let msgs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        let outcome = self.put_batch(q, &msgs);
        batch.clear();
        outcome
    }
}
