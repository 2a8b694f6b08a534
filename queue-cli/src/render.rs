//! Drawing a queue for people: the ring of slots with head and tail marked,
//! the participants with their pids, who is blocked where, and the same
//! facts as JSON. Shared by `inspect`, `watch` and `demo`.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytesize::ByteSize;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use queue_core::{Participant, SlotView, Stats};
use serde_json::{Value, json};

/// At most this many cells are drawn; bigger rings draw several slots per cell.
pub const MAX_CELLS: usize = 1024;

/// One character per slot state.
pub fn slot_char(s: SlotView) -> char {
    match s {
        SlotView::Empty => '.',
        SlotView::Ready => '#',
        SlotView::Writing(_) => 'w',
        SlotView::Reading(_) => 'r',
        SlotView::Requeued => 'R',
        _ => '!',
    }
}

/// The state name used in JSON.
pub fn slot_name(s: SlotView) -> &'static str {
    match s {
        SlotView::Empty => "empty",
        SlotView::Ready => "ready",
        SlotView::Writing(_) => "writing",
        SlotView::Reading(_) => "reading",
        SlotView::Requeued => "requeued",
        _ => "invalid",
    }
}

fn owner_of(s: SlotView) -> Option<usize> {
    match s {
        SlotView::Writing(o) | SlotView::Reading(o) => Some(o),
        _ => None,
    }
}

/// The character of a cell covering several slots: the most notable state.
fn cell_char(slots: &[SlotView]) -> char {
    let has = |f: fn(&SlotView) -> bool| slots.iter().any(f);
    if has(|s| slot_char(*s) == '!') {
        '!'
    } else if has(|s| matches!(s, SlotView::Writing(_))) {
        'w'
    } else if has(|s| matches!(s, SlotView::Reading(_))) {
        'r'
    } else if has(|s| matches!(s, SlotView::Requeued)) {
        'R'
    } else if slots.iter().all(|s| matches!(s, SlotView::Ready)) {
        '#'
    } else if has(|s| matches!(s, SlotView::Ready)) {
        '+'
    } else {
        '.'
    }
}

/// Counts of slots per state: (empty, ready, writing, reading, requeued, invalid).
pub fn slot_counts(slots: &[SlotView]) -> [u64; 6] {
    let mut c = [0u64; 6];
    for s in slots {
        let i = match s {
            SlotView::Empty => 0,
            SlotView::Ready => 1,
            SlotView::Writing(_) => 2,
            SlotView::Reading(_) => 3,
            SlotView::Requeued => 4,
            _ => 5,
        };
        c[i] += 1;
    }
    c
}

/// The ring drawn as rows of cells, head (H) and tail (T) marked below; a
/// queue with priorities is drawn as one ring per level, the highest (served
/// first) on top.
pub fn ring(s: &Stats, slots: &[SlotView]) -> String {
    let levels = s.levels.len();
    if levels <= 1 {
        return ring_of(s.head, s.tail, slots, "ring");
    }
    let cap = s.capacity.max(1);
    let mut out = String::new();
    for (l, level) in s.levels.iter().enumerate().rev() {
        let first = (l * cap).min(slots.len());
        let last = ((l + 1) * cap).min(slots.len());
        let served = if l + 1 == levels {
            ", served first"
        } else {
            ""
        };
        let title = format!("priority {l} ({} waiting{served}): ring", level.len);
        let block = ring_of(level.head, level.tail, &slots[first..last], &title);
        // The legend (the line before the cursors) once, after the last level.
        let lines: Vec<&str> = block.lines().collect();
        let legend = lines.len().saturating_sub(2);
        for (i, line) in lines.iter().enumerate() {
            if l == 0 || i != legend {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

/// One ring (or one priority level's) drawn with its cursors.
fn ring_of(head: usize, tail: usize, slots: &[SlotView], title: &str) -> String {
    let cap = slots.len().max(1);
    let per_cell = cap.div_ceil(MAX_CELLS);
    let cells: Vec<char> = slots.chunks(per_cell).map(cell_char).collect();
    let width = cells.len().min(64);
    let head_slot = head % cap;
    let tail_slot = tail % cap;
    let (head_cell, tail_cell) = (head_slot / per_cell, tail_slot / per_cell);
    let mut out = String::new();
    let unit = if per_cell == 1 {
        String::new()
    } else {
        format!(", {per_cell} slots per cell ('+' partly full)")
    };
    let _ = writeln!(out, "{title} of {} slots{unit}:", slots.len());
    for (r, row) in cells.chunks(width).enumerate() {
        let first = r * width;
        let _ = writeln!(
            out,
            "  {:>7} |{}|",
            first * per_cell,
            row.iter().collect::<String>()
        );
        let mark = |c: usize| match (c == head_cell, c == tail_cell) {
            (true, true) => Some('X'),
            (true, false) => Some('H'),
            (false, true) => Some('T'),
            _ => None,
        };
        let marks: String = (first..first + row.len())
            .map(|c| mark(c).unwrap_or(' '))
            .collect();
        if !marks.trim().is_empty() {
            let _ = writeln!(out, "           {}", marks.trim_end());
        }
    }
    let _ = writeln!(
        out,
        "  . empty  # message  w being written  r being read or leased  R put back for redelivery"
    );
    let both = if head_cell == tail_cell {
        "  (X: both)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  H head = next get: position {head} (slot {head_slot})   T tail = next put: position {tail} (slot {tail_slot}){both}",
    );
    out
}

/// The queue's delivery rules in words (`None` when it has none).
pub fn delivery_rules(s: &Stats) -> Option<String> {
    let mut rules = Vec::new();
    if let Some(t) = s.lease_timeout {
        rules.push(format!(
            "leases expire after {} without ack or renew",
            humantime::format_duration(t)
        ));
    }
    if let Some(n) = s.max_deliveries {
        rules.push(match &s.dead_letter {
            Some(dlq) => format!(
                "a message is moved to dead-letter queue {dlq:?} instead of being delivered {} times",
                n + 1
            ),
            None => format!(
                "a message is dropped instead of being delivered {} times",
                n + 1
            ),
        });
    }
    if let Some(source) = &s.dead_letters_of {
        rules.push(format!("dead letters of {source:?}"));
    }
    (!rules.is_empty()).then(|| rules.join("; "))
}

/// The leases held now, with their deliveries and deadlines (at most 6).
fn leases_text(s: &Stats) -> String {
    let pid_of = |o: usize| s.participants.iter().find(|p| p.index == o).map(|p| p.pid);
    let mut v: Vec<String> = s
        .leases
        .iter()
        .take(6)
        .map(|l| {
            let who = match pid_of(l.owner) {
                Some(pid) => format!("pid {pid}"),
                None => format!("#{}", l.owner),
            };
            let when = match l.expires_in_ms {
                Some(ms) if ms >= 0 => format!(", expires in {:.1}s", ms as f64 / 1000.0),
                Some(ms) => format!(", OVERDUE by {:.1}s", -ms as f64 / 1000.0),
                None => String::new(),
            };
            format!("slot {} by {who} (delivery {}{when})", l.slot, l.deliveries)
        })
        .collect();
    if s.leases.len() > 6 {
        v.push(format!("and {} more", s.leases.len() - 6));
    }
    v.join("\n             ")
}

/// A fill bar: `[#######.............]`.
pub fn fill_bar(len: u64, cap: u64, width: usize) -> String {
    let filled = if cap == 0 {
        0
    } else {
        ((len.min(cap) as f64 / cap as f64) * width as f64).round() as usize
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// `argv` of a process, joined by spaces and shortened (None if unknown).
pub fn process_name(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut parts = raw
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let argv0 = parts.next()?;
    let argv0 = argv0.rsplit('/').next().unwrap_or(&argv0).to_owned();
    let mut text = std::iter::once(argv0)
        .chain(parts)
        .collect::<Vec<_>>()
        .join(" ");
    if text.chars().count() > 40 {
        text = text.chars().take(39).collect::<String>() + "…";
    }
    Some(text)
}

/// The user name of `uid` from /etc/passwd, else the number.
pub fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id = f.nth(1)?.parse::<u32>().ok()?;
                (id == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// `3m 12s ago`.
pub fn ago(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!(
            "{} ago",
            humantime::format_duration(Duration::from_secs(d.as_secs()))
        ),
        Err(_) => "just now".into(),
    }
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `pid 123 (mq get jobs)`.
pub fn describe_pid(p: &Participant) -> String {
    match (p.alive, process_name(p.pid)) {
        (true, Some(name)) => format!("pid {} ({name})", p.pid),
        (true, None) => format!("pid {}", p.pid),
        (false, _) => format!("pid {} (dead)", p.pid),
    }
}

/// Processes blocked in put and in get, as text.
pub fn blocked(s: &Stats) -> (String, String) {
    let list = |f: fn(&Participant) -> usize| {
        let v: Vec<String> = s
            .participants
            .iter()
            .filter(|p| !p.is_self && f(p) > 0)
            .map(|p| match f(p) {
                1 => describe_pid(p),
                n => format!("{} x{n}", describe_pid(p)),
            })
            .collect();
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    (list(|p| p.waiting_put), list(|p| p.waiting_get))
}

/// Participants other than the asking handle.
pub fn others(s: &Stats) -> impl Iterator<Item = &Participant> {
    s.participants.iter().filter(|p| !p.is_self)
}

/// Live participants other than the asking handle.
pub fn live_others(s: &Stats) -> usize {
    others(s).filter(|p| p.alive).count()
}

/// What each participant holds: slots it is writing or reading.
fn holdings(slots: &[SlotView], index: usize) -> String {
    let mut writing = Vec::new();
    let mut reading = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        match s {
            SlotView::Writing(o) if *o == index => writing.push(i),
            SlotView::Reading(o) if *o == index => reading.push(i),
            _ => {}
        }
    }
    let show = |what: &str, v: &[usize]| {
        let mut t = format!("{what} slot{} ", if v.len() == 1 { "" } else { "s" });
        t += &v
            .iter()
            .take(4)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        if v.len() > 4 {
            t += ",…";
        }
        t
    };
    let mut parts = Vec::new();
    if !writing.is_empty() {
        parts.push(show("writing", &writing));
    }
    if !reading.is_empty() {
        parts.push(show("reading", &reading));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

/// The participants table (the asking handle left out).
pub fn participants_table(s: &Stats, slots: &[SlotView]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header([
            "#",
            "PID",
            "PROCESS",
            "STATE",
            "PUTS",
            "GETS",
            "BLOCKED IN",
            "HOLDS",
            "ATTACHED",
        ]);
    for p in others(s) {
        let blocked = match (p.waiting_put, p.waiting_get) {
            (0, 0) => "-".to_owned(),
            (w, 0) => format!("put{}", if w > 1 { format!(" x{w}") } else { "".into() }),
            (0, r) => format!("get{}", if r > 1 { format!(" x{r}") } else { "".into() }),
            (w, r) => format!("put x{w}, get x{r}"),
        };
        t.add_row([
            Cell::new(p.index).set_alignment(CellAlignment::Right),
            Cell::new(p.pid).set_alignment(CellAlignment::Right),
            Cell::new(if p.alive {
                process_name(p.pid).unwrap_or_else(|| "?".into())
            } else {
                "-".into()
            }),
            Cell::new(if p.alive {
                "alive"
            } else {
                "dead, awaiting cleanup"
            }),
            Cell::new(p.puts).set_alignment(CellAlignment::Right),
            Cell::new(p.gets).set_alignment(CellAlignment::Right),
            Cell::new(blocked),
            Cell::new(holdings(slots, p.index)),
            Cell::new(ago(p.attached)),
        ]);
    }
    t
}

/// A table as text without the trailing blanks of its padding.
pub fn table_text(t: &Table) -> String {
    t.lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything `mq inspect` shows, as text.
pub fn inspect_text(s: &Stats, slots: &[SlotView], who: &str) -> String {
    let mut out = String::new();
    let counts = slot_counts(slots);
    let room = s.capacity.saturating_mul(s.priorities.max(1));
    let pct = if room > 0 {
        s.len as f64 * 100.0 / room as f64
    } else {
        0.0
    };
    let _ = writeln!(out, "queue {:?}  ({})", s.name, s.path.display());
    let _ = writeln!(
        out,
        "  state      {}",
        if s.closed {
            "CLOSED: puts fail; gets take what is left, then report the end"
        } else {
            "open"
        }
    );
    let _ = writeln!(
        out,
        "  messages   {} waiting of {} ({pct:.0}%), {} being read or leased, {} being written, {} free slots",
        s.len, room, s.in_flight, counts[2], counts[0]
    );
    let levels = if s.priorities > 1 {
        format!(" in each of {} priority levels", s.priorities)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  sizes      {} slots{levels} x {} bytes max = {} segment",
        s.capacity,
        s.max_msg_size,
        ByteSize(s.segment_size as u64)
    );
    let _ = writeln!(
        out,
        "  totals     {} put, {} got, {} redelivered, {} half-written discarded",
        s.total_put, s.total_got, s.redelivered, s.discarded_partial
    );
    if let Some(rules) = delivery_rules(s) {
        let _ = writeln!(out, "  delivery   {rules}");
        let poison = match s.dead_letter {
            Some(_) => format!("{} poison messages dead-lettered", s.dead_lettered),
            None => format!("{} poison messages dropped", s.dropped_poison),
        };
        let _ = writeln!(
            out,
            "             {} leases expired and put back, {poison}",
            s.expired
        );
    }
    if !s.leases.is_empty() {
        let _ = writeln!(out, "  leases     {}", leases_text(s));
    }
    let (in_put, in_get) = blocked(s);
    let _ = writeln!(
        out,
        "  blocked    in put: {in_put}\n             in get: {in_get}"
    );
    let _ = writeln!(
        out,
        "  owner      {} (uid {}), mode {:o}",
        user_name(s.owner_uid),
        s.owner_uid,
        s.mode
    );
    let _ = writeln!(
        out,
        "  created    {} ({}) by pid {}",
        humantime::format_rfc3339_seconds(s.created),
        ago(s.created),
        s.creator_pid
    );
    if counts[5] > 0 {
        let _ = writeln!(
            out,
            "  WARNING    {} slots hold states the protocol never writes (corrupted)",
            counts[5]
        );
    }
    let _ = writeln!(out);
    out.push_str(&ring(s, slots));
    let _ = writeln!(out);
    let n = others(s).count();
    if n == 0 {
        let _ = writeln!(out, "participants: none besides this {who}");
    } else {
        let _ = writeln!(
            out,
            "participants: {n} besides this {who} ({} alive; room for {}):",
            live_others(s),
            s.max_participants
        );
        let _ = writeln!(out, "{}", table_text(&participants_table(s, slots)));
    }
    out
}

/// Everything `mq inspect --json` shows.
pub fn inspect_json(s: &Stats, slots: &[SlotView]) -> Value {
    let counts = slot_counts(slots);
    let participants: Vec<Value> = s
        .participants
        .iter()
        .map(|p| {
            json!({
                "index": p.index,
                "pid": p.pid,
                "alive": p.alive,
                "is_self": p.is_self,
                "process": if p.alive { process_name(p.pid) } else { None },
                "attached": humantime::format_rfc3339_seconds(p.attached).to_string(),
                "attached_unix": unix_secs(p.attached),
                "puts": p.puts,
                "gets": p.gets,
                "waiting_put": p.waiting_put,
                "waiting_get": p.waiting_get,
            })
        })
        .collect();
    let pid_of = |o: usize| s.participants.iter().find(|p| p.index == o).map(|p| p.pid);
    let held: Vec<Value> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            owner_of(*v).map(|o| {
                json!({ "slot": i, "state": slot_name(*v), "participant": o, "pid": pid_of(o) })
            })
        })
        .collect();
    let cap = s.capacity.max(1);
    json!({
        "name": s.name,
        "path": s.path,
        "segment_size": s.segment_size,
        "capacity": s.capacity,
        "max_msg_size": s.max_msg_size,
        "len": s.len,
        "head": s.head,
        "tail": s.tail,
        "head_slot": s.head % cap,
        "tail_slot": s.tail % cap,
        "total_put": s.total_put,
        "total_got": s.total_got,
        "producers_waiting": s.producers_waiting,
        "consumers_waiting": s.consumers_waiting,
        "redelivered": s.redelivered,
        "discarded_partial": s.discarded_partial,
        "in_flight": s.in_flight,
        "priorities": s.priorities,
        "levels": s.levels.iter().map(|l| json!({ "len": l.len, "head": l.head, "tail": l.tail })).collect::<Vec<_>>(),
        "lease_timeout_ms": s.lease_timeout.map(|t| t.as_millis() as u64),
        "max_deliveries": s.max_deliveries,
        "expired": s.expired,
        "dropped_poison": s.dropped_poison,
        "dead_lettered": s.dead_lettered,
        "dead_letter": s.dead_letter,
        "dead_letters_of": s.dead_letters_of,
        "leases": s.leases.iter().map(|l| json!({
            "slot": l.slot,
            "participant": l.owner,
            "pid": pid_of(l.owner),
            "deliveries": l.deliveries,
            "expires_in_ms": l.expires_in_ms,
        })).collect::<Vec<_>>(),
        "closed": s.closed,
        "created": humantime::format_rfc3339_seconds(s.created).to_string(),
        "created_unix": unix_secs(s.created),
        "creator_pid": s.creator_pid,
        "mode": format!("{:o}", s.mode),
        "owner_uid": s.owner_uid,
        "owner": user_name(s.owner_uid),
        "max_participants": s.max_participants,
        "live_participants": live_others(s),
        "participants": participants,
        "slot_counts": {
            "empty": counts[0], "ready": counts[1], "writing": counts[2],
            "reading": counts[3], "requeued": counts[4], "invalid": counts[5],
        },
        "slots": slots.iter().map(|v| slot_char(*v)).collect::<String>(),
        "held_slots": held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        use SlotView::*;
        assert_eq!(cell_char(&[Empty, Empty]), '.');
        assert_eq!(cell_char(&[Ready, Ready]), '#');
        assert_eq!(cell_char(&[Ready, Empty]), '+');
        assert_eq!(cell_char(&[Ready, Reading(1)]), 'r');
        assert_eq!(cell_char(&[Writing(2), Reading(1)]), 'w');
        assert_eq!(fill_bar(1, 4, 8), "[##......]");
    }
}
