//! `mq watch NAME [--interval D] [--count N]`: a live view.
//!
//! On a terminal the view is redrawn in place a few times a second (cursor
//! hidden, shown again on exit, on error and on Ctrl-C). When stdout is not
//! a terminal it prints one `key=value` line per refresh instead, for logs
//! and scripts. It stops after `--count` refreshes, on Ctrl-C, or when the
//! queue is removed.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use queue_core::Stats;

use super::Ctx;
use crate::cli::WatchArgs;
use crate::exit::Exit;
use crate::interrupt;
use crate::output::{human_rate, stdout_is_tty};
use crate::render;

const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";
const HOME: &str = "\x1b[H";
const CLEAR_EOL: &str = "\x1b[K";
const CLEAR_BELOW: &str = "\x1b[J";

/// Rates are measured over about this much of the recent past.
const RATE_WINDOW: Duration = Duration::from_millis(1500);

/// Shows the cursor again when the view ends, however it ends.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = out.write_all(SHOW_CURSOR.as_bytes());
        let _ = out.flush();
        interrupt::set_terminal_reset(None);
    }
}

pub fn run(ctx: &Ctx, a: WatchArgs) -> Result<Exit> {
    let q = ctx.observe(&a.name)?;
    let tty = stdout_is_tty();
    let interval = a.interval.unwrap_or(if tty {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(1)
    });
    let inode = std::fs::metadata(q.path()).map(|m| m.ino()).ok();
    let mut out = std::io::stdout();
    let _restore = if tty {
        interrupt::set_terminal_reset(Some("\x1b[?25h\n"));
        out.write_all(format!("{HIDE_CURSOR}{CLEAR_SCREEN}").as_bytes())?;
        Some(Restore)
    } else {
        None
    };
    let mut history: VecDeque<Sample> = VecDeque::new();
    let mut refreshes = 0u64;
    loop {
        let stats = q.stats();
        let slots = q.slots();
        let now = Instant::now();
        history.push_back(Sample {
            at: now,
            total_put: stats.total_put,
            total_got: stats.total_got,
        });
        while history.len() > 2 && now - history[1].at >= RATE_WINDOW {
            history.pop_front();
        }
        let rates = rates(&history);
        if tty {
            let (rows, cols) = terminal_size();
            let frame = frame(&stats, &slots, rates, interval);
            let mut text = String::from(HOME);
            for line in frame.lines().take(rows.saturating_sub(1).max(1)) {
                text.extend(line.chars().take(cols));
                text.push_str(CLEAR_EOL);
                text.push('\n');
            }
            text.push_str(CLEAR_BELOW);
            out.write_all(text.as_bytes())?;
        } else {
            writeln!(out, "{}", plain_line(&stats, rates))?;
        }
        out.flush()?;
        refreshes += 1;
        if a.count.is_some_and(|n| refreshes >= n) {
            break;
        }
        if std::fs::metadata(q.path()).map(|m| m.ino()).ok() != inode {
            drop(_restore);
            ctx.note(format_args!("queue {:?} was removed", a.name));
            break;
        }
        std::thread::sleep(interval);
    }
    Ok(Exit::Ok)
}

/// The counters at one refresh.
struct Sample {
    at: Instant,
    total_put: usize,
    total_got: usize,
}

/// (puts per second, gets per second) over the samples, once there are two.
fn rates(h: &VecDeque<Sample>) -> Option<(f64, f64)> {
    let (first, last) = (h.front()?, h.back()?);
    let dt = (last.at - first.at).as_secs_f64();
    (dt > 0.0).then(|| {
        (
            last.total_put.saturating_sub(first.total_put) as f64 / dt,
            last.total_got.saturating_sub(first.total_got) as f64 / dt,
        )
    })
}

fn frame(
    s: &Stats,
    slots: &[queue_core::SlotView],
    rates: Option<(f64, f64)>,
    every: Duration,
) -> String {
    let pct = s.len as f64 * 100.0 / s.capacity.max(1) as f64;
    let (put, get) = rates
        .map(|(p, g)| (human_rate(p), human_rate(g)))
        .unwrap_or_else(|| ("-".into(), "-".into()));
    format!(
        "mq watch {:?}: every {}, Ctrl-C to quit      {}\n\
         fill   {} {}/{} ({pct:.0}%){}\n\
         rates  put {put}   get {get}\n\n{}",
        s.name,
        humantime::format_duration(every),
        humantime::format_rfc3339_seconds(SystemTime::now()),
        render::fill_bar(s.len as u64, s.capacity as u64, 40),
        s.len,
        s.capacity,
        if s.closed { "   CLOSED" } else { "" },
        render::inspect_text(s, slots, "watch"),
    )
}

/// One `key=value` line, for logs and scripts.
fn plain_line(s: &Stats, rates: Option<(f64, f64)>) -> String {
    let (put, get) = rates.unwrap_or((0.0, 0.0));
    let pids = |f: fn(&queue_core::Participant) -> usize| {
        let v: Vec<String> = render::others(s)
            .filter(|p| f(p) > 0)
            .map(|p| p.pid.to_string())
            .collect();
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(",")
        }
    };
    format!(
        "{} queue={} len={} capacity={} in_flight={} put_per_s={put:.0} get_per_s={get:.0} total_put={} total_got={} blocked_put={} blocked_get={} live={} redelivered={} closed={} expired={} dropped_poison={} dead_lettered={} priorities={}",
        humantime::format_rfc3339_millis(SystemTime::now()),
        s.name,
        s.len,
        s.capacity,
        s.in_flight,
        s.total_put,
        s.total_got,
        pids(|p| p.waiting_put),
        pids(|p| p.waiting_get),
        render::live_others(s),
        s.redelivered,
        s.closed,
        s.expired,
        s.dropped_poison,
        s.dead_lettered,
        s.priorities,
    )
}

/// (rows, columns) of the terminal on stdout, or 24x80.
fn terminal_size() -> (usize, usize) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointer given.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_row > 0 && ws.ws_col > 0 {
        (ws.ws_row as usize, ws.ws_col as usize)
    } else {
        (24, 80)
    }
}
