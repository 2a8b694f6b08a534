//! `mq rm`: refusing non-queues and queues in use, `--stale`.

use std::process::Stdio;
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog, kill9};
use serde_json::Value;

use crate::support::*;

#[test]
fn rm_refuses_non_queues_and_queues_in_use() {
    let _w = Watchdog::new("rm", Duration::from_secs(60));
    let d = TestDir::new("cli-rm");
    std::fs::write(d.path().join("mq.notes"), "my notes, not a queue").unwrap();
    let o = run(&d, &["rm", "notes"], 2);
    assert!(stderr(&o).contains("not a queue segment"), "{}", stderr(&o));
    let o = run(&d, &["rm", "--force", "notes"], 2);
    assert!(stderr(&o).contains("not a queue segment"), "{}", stderr(&o));
    assert!(d.path().join("mq.notes").exists());

    run(&d, &["create", "busy"], 0);
    let getter = ChildGuard::new(
        mq_std(&d, &["get", "busy"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the getter blocks", || getters_waiting(&d, "busy") >= 1);
    let o = run(&d, &["rm", "busy"], 2);
    let err = stderr(&o);
    assert!(
        err.contains("in use by 1 live process") && err.contains(&getter.id().to_string()),
        "{err}"
    );
    assert!(err.contains("mq rm --force busy"), "{err}");
    run(&d, &["rm", "--force", "busy"], 0);
    drop(getter);

    // Several names: the good ones go, the exit code reports the bad one.
    run(&d, &["create", "a"], 0);
    run(&d, &["create", "b"], 0);
    let o = run(&d, &["rm", "a", "missing", "b"], 2);
    assert!(
        stderr(&o).contains("\"missing\" not found"),
        "{}",
        stderr(&o)
    );
    // --force ignores names that do not exist, like rm -f.
    run(&d, &["rm", "--force", "missing"], 0);
    std::fs::remove_file(d.path().join("mq.notes")).unwrap();
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn stale_queues_are_listed_and_removed_with_rm_stale() {
    let _w = Watchdog::new("rm --stale", Duration::from_secs(60));
    let d = TestDir::new("cli-stale");
    run(&d, &["create", "orphan"], 0);
    run(&d, &["create", "used"], 0);
    // A getter attached to "used" stays alive; "orphan"'s user is killed.
    let getter = ChildGuard::new(
        mq_std(&d, &["get", "used"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let crashed = ChildGuard::new(
        mq_std(&d, &["get", "orphan"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("both getters block", || {
        getters_waiting(&d, "used") >= 1 && getters_waiting(&d, "orphan") >= 1
    });
    kill9(crashed.id());
    drop(crashed);
    // An unfinished segment whose creator is gone counts as stale too.
    std::fs::File::create(d.path().join("mq.unfinished")).unwrap();

    let o = run(&d, &["ls", "--json"], 0);
    let rows: Vec<Value> = match serde_json::from_slice(&o.stdout).expect("ls --json parses") {
        Value::Array(a) => a,
        v => vec![v],
    };
    let live = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["live_participants"].as_u64())
    };
    assert_eq!(live("orphan"), Some(0), "{rows:?}");
    assert_eq!(live("used"), Some(1), "{rows:?}");

    let o = run(&d, &["rm", "--stale"], 0);
    let out = stdout(&o);
    assert!(out.contains("removed stale queue \"orphan\""), "{out}");
    assert!(out.contains("removed stale queue \"unfinished\""), "{out}");
    assert!(!out.contains("\"used\""), "{out}");
    assert!(d.path().join("mq.used").exists());
    let o = run(&d, &["rm", "--stale"], 0);
    assert!(stdout(&o).contains("no stale queues"), "{}", stdout(&o));
    run(&d, &["rm", "--force", "used"], 0);
    drop(getter);
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}
