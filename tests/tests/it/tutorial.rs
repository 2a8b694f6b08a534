//! The tutorial (`docs/tutorial/`) cannot rot: every shell session in it is
//! run here, and the English and Chinese editions are kept in step.
//! (Its Rust programs run as doc-tests of queue-core and queue-pool:
//! `queue-core/src/tutorial.rs`, `queue-pool/src/tutorial.rs`.)
//!
//! # The convention for shell sessions
//!
//! A ```` ```console ```` block is a session. In it:
//!
//! * `# terminal N` switches to terminal N (a session starts in the terminal
//!   the previous block of the chapter ended in, at first terminal 1). Any
//!   other line starting with `#` is a comment for the reader.
//! * `$ COMMAND` is a command, run with `bash -c` in the chapter's working
//!   directory (shared by all terminals), with `MQ_DIR` set to a fresh queue
//!   directory and `PATH` starting with the directory of the built `mq` and
//!   demo binaries. stdout and stderr are merged, as in a terminal.
//! * The lines after a command, up to the next `$ ` or `#` line, are its
//!   output. It must match, with these rules: runs of spaces count as one
//!   space and spaces at either end of a line are ignored; the queue directory
//!   is shown as `/dev/shm`; `[..]` in a line stands for any text (process ids,
//!   times); a line `...` stands for any number of lines, none included.
//!   A command with no lines after it must print nothing.
//! * The command must exit with 0, unless its trailing comment says
//!   `# exit N` (anywhere in the comment, e.g. `# exit 1: nothing came`).
//! * A trailing comment starting with `waits` (`# waits for a message`)
//!   marks a command that keeps running while the reader types in another
//!   terminal: it is started in the background, and its exit code and output
//!   are checked when it ends. The harness waits for it (at most 20 s) before
//!   that terminal's next command and at the end of the chapter.
//! * A trailing comment starting with `runs until Ctrl-C` marks a command
//!   the reader stops with Ctrl-C: the harness sends SIGINT before that
//!   terminal's next command or at the end of the chapter, and expects exit
//!   130 (or `# exit N`). Its output is not checked (show none).
//! * A command ending with `&` runs in the background for the rest of the
//!   chapter and is then killed; its output is not checked (show none).
//! * A comment line `# Ctrl-C` sends SIGINT to the current terminal's
//!   `runs until Ctrl-C` command now (the reader presses Ctrl-C there).
//! * A comment line starting with `# wait until terminal` (e.g. `# wait
//!   until terminals 2 and 3 are back at the prompt`) waits for the `waits`
//!   commands of the terminals it names.
//!
//! After starting a background command the harness waits (at most 3 s) until
//! every process of it is asleep or finished, so that the next command sees
//! it blocked, as the reader would a moment later. A `ps` command (which only
//! looks) whose output does not match is run again, up to 20 times: a
//! blocked `mq` wakes up briefly every 100 ms, and on a busy machine a
//! snapshot may catch it running. Each command runs in its
//! own process group, which is killed at the end of the chapter; the chapter
//! must leave no queue behind in its queue directory.
//!
//! `MQ_TUTORIAL_VERBOSE=1 cargo test -p mq-tests --test it tutorial -- --nocapture`
//! prints every command with its exit code and output as it is checked
//! (after `cargo build --workspace --bins`, which `cargo test --workspace`
//! does itself: the binaries are found beside this test's executable).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mq_tests::{TestDir, Watchdog, workspace_bin};

/// The chapters, in reading order (the index is `README.md`).
const CHAPTERS: &[&str] = &[
    "01-processes.md",
    "02-processes-vs-threads.md",
    "03-queue-between-processes.md",
    "04-process-pool.md",
    "05-folder-copier.md",
    "06-python.md",
];

/// The binaries the sessions use, found on `PATH`.
const BINARIES: &[&str] = &[
    "mq",
    "processes",
    "downloader-analyzer",
    "pool-workers",
    "pool-copier",
];

/// Longest a foreground command may run.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// Longest the harness waits for a `# waits` command to end.
const WAITS_LIMIT: Duration = Duration::from_secs(20);
/// Longest the harness waits for a background command to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(3);
/// How often a `ps` snapshot is taken before its output counts as wrong.
const SNAPSHOT_TRIES: u32 = 20;

fn tutorial_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/tutorial")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// ------------------------------------------------------------ markdown

/// A fenced code block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    /// The info string (`console`, `rust`, `mermaid`, ...).
    info: String,
    /// 1-based line number of the opening fence.
    line: usize,
    /// The lines between the fences.
    body: Vec<String>,
}

/// The fenced code blocks of a Markdown file (fences start in column 0).
fn code_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Block)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match &mut open {
            None => {
                let fence_len = line.chars().take_while(|&c| c == '`').count();
                if fence_len >= 3 {
                    let fence = line[..fence_len].to_owned();
                    let block = Block {
                        info: line[fence_len..].trim().to_owned(),
                        line: i + 1,
                        body: Vec::new(),
                    };
                    open = Some((fence, block));
                }
            }
            Some((fence, block)) => {
                if line.trim_end() == fence.as_str() {
                    blocks.push(open.take().expect("open block").1);
                } else {
                    block.body.push(line.to_owned());
                }
            }
        }
    }
    assert!(open.is_none(), "unclosed code block");
    blocks
}

// ------------------------------------------------------ shell sessions

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Run and wait.
    Foreground,
    /// `# waits`: background, checked when it ends.
    Waits,
    /// `# runs until Ctrl-C`: background, SIGINT later.
    UntilCtrlC,
    /// `&`: background, killed at the end.
    Background,
}

#[derive(Debug, Clone)]
struct Step {
    terminal: u32,
    /// What bash runs (the trailing comment and `&` removed).
    command: String,
    mode: Mode,
    code: i32,
    expected: Vec<String>,
    /// `file:line`, for messages.
    at: String,
}

/// Where a comment starts in a shell line: a `#` outside quotes that begins
/// a word.
fn comment_start(line: &str) -> Option<usize> {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && !single {
            escaped = true;
        } else if c == '\'' && !double {
            single = !single;
        } else if c == '"' && !single {
            double = !double;
        } else if c == '#' && !single && !double && prev_space {
            return Some(i);
        }
        prev_space = c.is_whitespace();
    }
    None
}

/// `exit N` in a comment.
fn exit_code_in(comment: &str) -> Option<i32> {
    let words: Vec<&str> = comment
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|w| w[0] == "exit")
        .and_then(|w| w[1].parse().ok())
}

/// Parses one command line (without the `$ `).
fn parse_command(line: &str, terminal: u32, at: String) -> Step {
    let (code_part, comment) = match comment_start(line) {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line, ""),
    };
    let code_part = code_part.trim_end();
    let (mode, command) = if let Some(rest) = code_part.strip_suffix('&') {
        assert!(!rest.ends_with('&'), "{at}: a command may not end with &&");
        (Mode::Background, rest.trim_end().to_owned())
    } else if comment.starts_with("waits") {
        (Mode::Waits, code_part.to_owned())
    } else if comment.starts_with("runs until Ctrl-C") {
        (Mode::UntilCtrlC, code_part.to_owned())
    } else {
        (Mode::Foreground, code_part.to_owned())
    };
    let default_code = if mode == Mode::UntilCtrlC { 130 } else { 0 };
    Step {
        terminal,
        command,
        mode,
        code: exit_code_in(comment).unwrap_or(default_code),
        expected: Vec::new(),
        at,
    }
}

/// What a session line asks for.
#[derive(Debug, Clone)]
enum Action {
    /// `$ command`.
    Run(Step),
    /// `# Ctrl-C` in a terminal.
    CtrlC { terminal: u32, at: String },
    /// `# wait until terminals 2 and 3 ...`.
    WaitFor { terminals: Vec<u32>, at: String },
}

/// The actions of every console block of a chapter, in order.
fn sessions(file: &str, markdown: &str) -> Vec<Action> {
    let mut actions: Vec<Action> = Vec::new();
    let mut terminal = 1;
    for block in code_blocks(markdown) {
        if block.info != "console" {
            continue;
        }
        let mut current: Option<Step> = None;
        for (k, line) in block.body.iter().enumerate() {
            let at = format!("{file}:{}", block.line + 1 + k);
            if let Some(cmd) = line.strip_prefix("$ ") {
                actions.extend(current.take().map(Action::Run));
                current = Some(parse_command(cmd, terminal, at));
            } else if line.starts_with('#') {
                actions.extend(current.take().map(Action::Run));
                let numbers = || -> Vec<u32> {
                    line.split(|c: char| !c.is_ascii_digit())
                        .filter_map(|n| n.parse().ok())
                        .collect()
                };
                if line.starts_with("# terminal ") {
                    terminal = *numbers()
                        .first()
                        .unwrap_or_else(|| panic!("{at}: bad terminal line {line:?}"));
                } else if line.starts_with("# Ctrl-C") {
                    actions.push(Action::CtrlC { terminal, at });
                } else if line.starts_with("# wait until terminal") {
                    let terminals = numbers();
                    assert!(!terminals.is_empty(), "{at}: which terminals?");
                    actions.push(Action::WaitFor { terminals, at });
                }
            } else {
                match &mut current {
                    Some(step) => step.expected.push(line.clone()),
                    None => assert!(
                        line.trim().is_empty(),
                        "{at}: output line {line:?} follows no command"
                    ),
                }
            }
        }
        actions.extend(current.take().map(Action::Run));
    }
    for action in &mut actions {
        let Action::Run(step) = action else { continue };
        while step.expected.last().is_some_and(|l| l.trim().is_empty()) {
            step.expected.pop();
        }
        if matches!(step.mode, Mode::UntilCtrlC | Mode::Background) {
            assert!(
                step.expected.is_empty(),
                "{}: the output of a background command is not checked, so show none",
                step.at
            );
        }
    }
    actions
}

// ----------------------------------------------------- output matching

/// Runs of whitespace as one space, no spaces at the ends.
fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `actual` matches `pattern`, where `[..]` stands for any text.
fn line_matches(pattern: &str, actual: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Whether the lines match, `...` standing for any number of lines.
fn lines_match(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(e, a) && lines_match(rest, more)),
    }
}

/// The output as the reader would see it.
fn normalise(output: &str, queue_dir: &Path) -> Vec<String> {
    let dir = queue_dir.to_string_lossy();
    let mut lines: Vec<String> = output
        .replace(dir.as_ref(), "/dev/shm")
        .lines()
        .map(squeeze)
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

// ------------------------------------------------------------ binaries

/// The directory holding `mq` and the demo binaries.
///
/// They belong to other packages, so cargo tells this test nothing about
/// them; `cargo test --workspace` builds them (every binary of a package with
/// integration tests) into the same `target/<profile>/` as this test, where
/// `mq_tests::workspace_bin` finds them or fails naming the missing one.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut dir = None;
        for bin in BINARIES {
            let path = workspace_bin(bin);
            dir = path.parent().map(Path::to_path_buf);
        }
        dir.expect("at least one binary")
    })
}

// ----------------------------------------------------------- processes

/// A command running in its own process group.
struct Job {
    step: Step,
    child: Child,
    output: mpsc::Receiver<Vec<u8>>,
    /// Whether the group leader (bash) has been waited for.
    reaped: bool,
}

impl Job {
    fn pgid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Signals every process of the job. Once the leader is reaped, the
    /// group's number stays ours only while members are left, so then only
    /// if there are any.
    fn signal_group(&self, signal: i32) {
        if self.reaped && processes_in_group(self.pgid()).is_empty() {
            return;
        }
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid
        // names the process group this job leads.
        unsafe {
            libc::kill(-self.pgid(), signal);
        }
    }

    /// Waits for the command (at most `limit`) and returns its exit code
    /// (128 + signal if killed) and its output.
    fn finish(&mut self, limit: Duration) -> Result<(i32, String), String> {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    break status;
                }
                Ok(None) if Instant::now() >= deadline => {
                    self.signal_group(libc::SIGKILL);
                    let _ = self.child.wait();
                    self.reaped = true;
                    return Err(format!("still running after {limit:?}: killed"));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(format!("cannot wait: {e}")),
            }
        };
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        // Processes it left in the background may hold the pipe open.
        let output = match self.output.recv_timeout(Duration::from_secs(2)) {
            Ok(bytes) => bytes,
            Err(_) => {
                self.signal_group(libc::SIGKILL);
                self.output
                    .recv_timeout(Duration::from_secs(2))
                    .unwrap_or_default()
            }
        };
        Ok((code, String::from_utf8_lossy(&output).into_owned()))
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.signal_group(libc::SIGKILL);
        if !self.reaped {
            let _ = self.child.wait();
        }
    }
}

/// Process groups and states of all processes, from `/proc`.
fn processes_in_group(pgid: i32) -> Vec<char> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            // "pid (name) S ppid pgrp ...": the name may contain anything.
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let group: i32 = fields.nth(1)?.parse().ok()?;
            (group == pgid).then_some(state)
        })
        .collect()
}

/// One chapter's terminals.
struct Session<'a> {
    queue_dir: &'a Path,
    work_dir: &'a Path,
    path: String,
    /// Background commands, oldest first.
    jobs: Vec<Job>,
    /// What went wrong.
    failures: Vec<String>,
}

impl<'a> Session<'a> {
    fn new(queue_dir: &'a Path, work_dir: &'a Path) -> Session<'a> {
        let path = match std::env::var("PATH") {
            Ok(p) => format!("{}:{p}", bin_dir().display()),
            Err(_) => format!("{}:/usr/bin:/bin", bin_dir().display()),
        };
        Session {
            queue_dir,
            work_dir,
            path,
            jobs: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn spawn(&self, step: &Step) -> Job {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let mut cmd = Command::new("bash");
        mq_tests::die_with_test(&mut cmd)
            .args(["--noprofile", "--norc", "-c", &step.command])
            .current_dir(self.work_dir)
            .env("MQ_DIR", self.queue_dir)
            .env("PATH", &self.path)
            .env("LC_ALL", "C")
            .env_remove("MQ_POOL_WORKER")
            .env_remove("MQ_POOL_DIR")
            .env_remove("COLUMNS")
            .stdin(Stdio::null())
            .stdout(writer.try_clone().expect("dup pipe"))
            .stderr(writer)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start bash: {e}", step.at));
        drop(cmd); // closes our copies of the pipe's write end
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut bytes = Vec::new();
            let _ = reader.read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        });
        Job {
            step: step.clone(),
            child,
            output: rx,
            reaped: false,
        }
    }

    /// Checks a finished command against what the chapter shows.
    fn check(&mut self, step: &Step, result: Result<(i32, String), String>) {
        if let Some(failure) = self.verify(step, result) {
            self.failures.push(failure);
        }
    }

    /// What is wrong with a finished command, if anything.
    fn verify(&self, step: &Step, result: Result<(i32, String), String>) -> Option<String> {
        let (code, output) = match result {
            Ok(r) => r,
            Err(e) => return Some(format!("{}: `{}`: {e}", step.at, step.command)),
        };
        let actual = normalise(&output, self.queue_dir);
        if std::env::var_os("MQ_TUTORIAL_VERBOSE").is_some() {
            eprintln!(
                "{}: `{}` -> exit {code}\n{}",
                step.at,
                step.command,
                indent(&actual)
            );
        }
        let expected: Vec<String> = step.expected.iter().map(|l| squeeze(l)).collect();
        let output_ok = matches!(step.mode, Mode::UntilCtrlC | Mode::Background)
            || lines_match(&expected, &actual);
        (code != step.code || !output_ok).then(|| {
            format!(
                "{}: `{}`\n  exit code {code} (expected {})\n  output:\n{}\n  expected:\n{}",
                step.at,
                step.command,
                step.code,
                indent(&actual),
                indent(&expected)
            )
        })
    }

    /// Ends the background commands of `terminal` in `modes`: `waits`
    /// commands are waited for, `runs until Ctrl-C` ones get SIGINT first.
    /// Returns how many there were.
    fn settle_terminal(&mut self, terminal: u32, modes: &[Mode]) -> usize {
        let mut settled = 0;
        let mut i = 0;
        while i < self.jobs.len() {
            let job = &self.jobs[i];
            if job.step.terminal != terminal || !modes.contains(&job.step.mode) {
                i += 1;
                continue;
            }
            settled += 1;
            let mut job = self.jobs.remove(i);
            if job.step.mode == Mode::UntilCtrlC {
                job.signal_group(libc::SIGINT);
            }
            let result = job.finish(WAITS_LIMIT);
            let step = job.step.clone();
            self.check(&step, result);
        }
        settled
    }

    /// Waits until every process of the newest job sleeps or has ended.
    fn wait_until_blocked(&self, job: &Job) {
        let deadline = Instant::now() + SETTLE_LIMIT;
        std::thread::sleep(Duration::from_millis(50));
        let mut quiet = 0;
        while Instant::now() < deadline {
            let states = processes_in_group(job.pgid());
            if states
                .iter()
                .all(|s| matches!(s, 'S' | 'Z' | 'T' | 't' | 'X'))
            {
                quiet += 1;
                if quiet >= 3 {
                    return;
                }
            } else {
                quiet = 0;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn act(&mut self, action: &Action) {
        match action {
            Action::Run(step) => self.run(step),
            Action::CtrlC { terminal, at } => {
                if self.settle_terminal(*terminal, &[Mode::UntilCtrlC]) == 0 {
                    self.failures.push(format!(
                        "{at}: Ctrl-C, but nothing runs until Ctrl-C in terminal {terminal}"
                    ));
                }
            }
            Action::WaitFor { terminals, at } => {
                for &t in terminals {
                    if self.settle_terminal(t, &[Mode::Waits]) == 0 {
                        self.failures
                            .push(format!("{at}: nothing to wait for in terminal {t}"));
                    }
                }
            }
        }
    }

    fn run(&mut self, step: &Step) {
        self.settle_terminal(step.terminal, &[Mode::Waits, Mode::UntilCtrlC]);
        let mut job = self.spawn(step);
        match step.mode {
            Mode::Foreground => {
                let mut result = job.finish(COMMAND_LIMIT);
                // `ps` shows one instant, and a blocked process still wakes up
                // now and then (mq's waits re-check every 100 ms): on a busy
                // machine look again, as the reader would. `ps` changes nothing.
                let mut tries = 1;
                while step.command.starts_with("ps ")
                    && tries < SNAPSHOT_TRIES
                    && self.verify(step, result.clone()).is_some()
                {
                    std::thread::sleep(Duration::from_millis(50));
                    result = self.spawn(step).finish(COMMAND_LIMIT);
                    tries += 1;
                }
                self.check(step, result);
            }
            Mode::Waits | Mode::UntilCtrlC | Mode::Background => {
                self.wait_until_blocked(&job);
                self.jobs.push(job);
            }
        }
    }

    /// The end of the chapter: every terminal's commands end.
    fn finish(&mut self) {
        let terminals: Vec<u32> = self.jobs.iter().map(|j| j.step.terminal).collect();
        for t in terminals {
            self.settle_terminal(t, &[Mode::Waits, Mode::UntilCtrlC]);
        }
        self.jobs.clear(); // kills `&` commands
    }
}

fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs every shell session of one chapter.
fn run_chapter(file: &str) {
    let markdown = read(&tutorial_dir().join(file));
    let actions = sessions(file, &markdown);
    assert!(!actions.is_empty(), "{file} has no shell session");
    let _dog = Watchdog::new(&format!("tutorial {file}"), Duration::from_secs(180));
    bin_dir();
    let queues = TestDir::new("tut-q");
    let work = TestDir::new("tut-w");
    let mut session = Session::new(queues.path(), work.path());
    for action in &actions {
        session.act(action);
        if !session.failures.is_empty() {
            break;
        }
    }
    if session.failures.is_empty() {
        session.finish();
    } // else: dropping the session kills everything still running
    let failures = std::mem::take(&mut session.failures);
    drop(session);
    let left = queues.leftovers();
    assert!(
        failures.is_empty(),
        "{file}: the tutorial and the programs disagree:\n\n{}",
        failures.join("\n\n")
    );
    assert!(
        left.is_empty(),
        "{file}: the chapter leaves queues behind (end it with 'mq rm'): {left:?}"
    );
}

#[test]
fn tutorial_index() {
    run_chapter("README.md");
}

#[test]
fn tutorial_chapter_01_processes() {
    run_chapter(CHAPTERS[0]);
}

#[test]
fn tutorial_chapter_02_processes_vs_threads() {
    run_chapter(CHAPTERS[1]);
}

#[test]
fn tutorial_chapter_03_queue_between_processes() {
    run_chapter(CHAPTERS[2]);
}

#[test]
fn tutorial_chapter_04_process_pool() {
    run_chapter(CHAPTERS[3]);
}

#[test]
fn tutorial_chapter_05_folder_copier() {
    run_chapter(CHAPTERS[4]);
}

// ------------------------------------------------------------ editions

fn markdown_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    names
}

#[test]
fn tutorial_lists_every_chapter() {
    let mut expected: Vec<String> = CHAPTERS.iter().map(|c| c.to_string()).collect();
    expected.push("README.md".into());
    expected.sort();
    assert_eq!(
        markdown_files(&tutorial_dir()),
        expected,
        "docs/tutorial: add new chapters to CHAPTERS in tests/tests/it/tutorial.rs"
    );
    let index = read(&tutorial_dir().join("README.md"));
    for chapter in CHAPTERS {
        assert!(
            index.contains(&format!("]({chapter})")),
            "docs/tutorial/README.md does not link to {chapter}"
        );
    }
    // Doc-tests: queue-core includes the chapters that use only the queue,
    // queue-pool the pool chapters; between them, every chapter.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doctests = read(&root.join("queue-core/src/tutorial.rs"))
        + &read(&root.join("queue-pool/src/tutorial.rs"));
    for chapter in CHAPTERS {
        assert!(
            doctests.contains(&format!("docs/tutorial/{chapter}\")")),
            "neither queue-core/src/tutorial.rs nor queue-pool/src/tutorial.rs includes {chapter}, so its Rust code is not tested"
        );
    }
}

/// Code blocks must be the same in both editions; diagrams (`mermaid`)
/// are translated, so only their number is compared.
#[test]
fn tutorial_editions_have_the_same_chapters_and_code() {
    let en = tutorial_dir();
    let zh = en.join("zh");
    assert_eq!(
        markdown_files(&en),
        markdown_files(&zh),
        "docs/tutorial and docs/tutorial/zh must have the same files"
    );
    for file in markdown_files(&en) {
        let en_blocks = code_blocks(&read(&en.join(&file)));
        let zh_blocks = code_blocks(&read(&zh.join(&file)));
        let code = |blocks: &[Block]| -> Vec<(String, Vec<String>)> {
            blocks
                .iter()
                .filter(|b| b.info != "mermaid")
                .map(|b| (b.info.clone(), b.body.clone()))
                .collect()
        };
        let diagrams = |blocks: &[Block]| blocks.iter().filter(|b| b.info == "mermaid").count();
        let (en_code, zh_code) = (code(&en_blocks), code(&zh_blocks));
        for (i, (e, z)) in en_code.iter().zip(&zh_code).enumerate() {
            assert_eq!(
                e,
                z,
                "{file}: code block {} differs between the English and the Chinese edition",
                i + 1
            );
        }
        assert_eq!(
            en_code.len(),
            zh_code.len(),
            "{file}: the editions have different numbers of code blocks"
        );
        assert_eq!(
            diagrams(&en_blocks),
            diagrams(&zh_blocks),
            "{file}: the editions have different numbers of diagrams"
        );
    }
}

// ------------------------------------------------ the harness itself

#[test]
fn tutorial_harness_parses_the_convention() {
    let md = "text\n\n```console\n# terminal 2\n$ mq get jobs  # waits for a message\nhello\n\
              # terminal 1\n$ mq put jobs hello\n$ mq get jobs --no-wait  # exit 1: empty\n\
              mq: queue \"jobs\" is empty\n$ mq watch jobs  # runs until Ctrl-C\n\
              $ sleep 9 | cat &\n$ echo '# not a comment' \"#\" # but this is: exit 3\n```\n\n\
              ```console\n# Ctrl-C\n# wait until terminals 2 and 3 are back\n```\n";
    let actions = sessions("t.md", md);
    let summary: Vec<(u32, &str, Mode, i32, usize)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Run(s) => Some(s),
            _ => None,
        })
        .map(|s| {
            (
                s.terminal,
                s.command.as_str(),
                s.mode,
                s.code,
                s.expected.len(),
            )
        })
        .collect();
    assert!(matches!(&actions[6], Action::CtrlC { terminal: 1, .. }));
    assert!(matches!(&actions[7], Action::WaitFor { terminals, .. } if terminals == &[2, 3]));
    assert_eq!(
        summary,
        [
            (2, "mq get jobs", Mode::Waits, 0, 1),
            (1, "mq put jobs hello", Mode::Foreground, 0, 0),
            (1, "mq get jobs --no-wait", Mode::Foreground, 1, 1),
            (1, "mq watch jobs", Mode::UntilCtrlC, 130, 0),
            (1, "sleep 9 | cat", Mode::Background, 0, 0),
            (1, "echo '# not a comment' \"#\"", Mode::Foreground, 3, 0),
        ]
    );
}

#[test]
fn tutorial_harness_matches_output() {
    let lines = |s: &str| s.lines().map(squeeze).collect::<Vec<_>>();
    assert!(lines_match(&lines("a\nb"), &lines("a\n  b  ")));
    assert!(!lines_match(&lines("a\nb"), &lines("a\nb\nc")));
    assert!(lines_match(&lines("a\n...\nc"), &lines("a\nb\nb2\nc")));
    assert!(lines_match(&lines("a\n...\nc"), &lines("a\nc")));
    assert!(lines_match(
        &lines("...\n[..] S[..] mq get jobs\n..."),
        &lines("  PID STAT CMD\n 4242 Sl   mq get jobs\n 4243 S    mq watch jobs")
    ));
    assert!(!lines_match(
        &lines("[..] S[..] mq get jobs"),
        &lines("4242 R mq get jobs")
    ));
    assert!(line_matches("pid [..] done", "pid 12 done"));
    assert!(!line_matches("pid [..] done", "pid 12 gone"));
    assert!(!line_matches("ab[..]ba", "aba"));
    let dir = Path::new("/dev/shm/mq-test-1-0-tut-q");
    assert_eq!(
        normalise("(/dev/shm/mq-test-1-0-tut-q/mq.jobs)\n\n", dir),
        ["(/dev/shm/mq.jobs)"]
    );
}
