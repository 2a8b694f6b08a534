//! The queue verbs on a remote queue, against a real `nats-server -js`
//! started per test (see `support`).

mod support;

use std::time::{Duration, Instant};

use queue_net::{AnyQueue, CloseError, CreateOptions, GetError, NetError, PutError, RemoteQueue};
use support::{NatsServer, Watchdog, unique};

fn create(server: &NatsServer, opts: &CreateOptions) -> (String, RemoteQueue) {
    let url = server.queue_url(&unique("q"));
    let q = RemoteQueue::create(&url, opts).expect("create remote queue");
    (url, q)
}

#[test]
fn the_verbs_work_on_a_remote_queue() {
    let _w = Watchdog::new("verbs", Duration::from_secs(120));
    let server = NatsServer::start();
    let opts = CreateOptions::default().capacity(8).max_msg_size(64);
    let (url, q) = create(&server, &opts);
    assert!(matches!(
        RemoteQueue::create(&url, &opts),
        Err(NetError::AlreadyExists { .. })
    ));
    assert_eq!(q.capacity(), 8);
    assert_eq!(q.max_msg_size(), 64);
    assert_eq!(q.ack_wait(), queue_net::DEFAULT_ACK_WAIT);
    assert_eq!(q.try_get(), Err(GetError::Empty));
    assert_eq!(
        q.get_timeout(Duration::from_millis(100)),
        Err(GetError::Timeout)
    );
    assert_eq!(
        q.put(&[0; 65]),
        Err(PutError::TooLarge { len: 65, max: 64 })
    );
    q.put(b"one").unwrap();
    q.try_put(b"two").unwrap();
    q.put_timeout(b"three", Duration::from_secs(5)).unwrap();
    assert_eq!(q.len().unwrap(), 3);
    assert_eq!(q.peek().unwrap().as_deref(), Some(&b"one"[..]));

    // A second handle (another machine, say) sees the same queue.
    let other = AnyQueue::open(&url).unwrap();
    assert_eq!(other.get().unwrap(), b"one");
    let lease = q.get_lease().unwrap();
    assert_eq!(&*lease, b"two");
    assert_eq!(q.stats().unwrap().in_flight, 1);
    drop(lease); // put back at once
    let again = q.get_lease_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(&*again, b"two");
    assert_eq!(again.deliveries(), 2);
    let s = q.stats().unwrap();
    assert_eq!((s.len, s.in_flight, s.redelivered), (2, 1, 1), "{s:?}");
    assert_eq!(s.capacity, 8);
    again.ack().unwrap();
    assert_eq!(q.len().unwrap(), 1);

    let listed = RemoteQueue::list(&server.url()).unwrap();
    assert!(listed.iter().any(|s| s.url == url), "{listed:?}");

    q.close().unwrap();
    assert_eq!(q.put(b"late"), Err(PutError::Closed));
    assert_eq!(q.try_put(b"late"), Err(PutError::Closed));
    assert_eq!(q.close(), Err(CloseError::AlreadyClosed));
    assert!(q.is_closed().unwrap());
    assert_eq!(q.get().unwrap(), b"three");
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(q.try_get(), Err(GetError::Closed));
    assert_eq!(other.get(), Err(GetError::Closed));
    let s = q.stats().unwrap();
    assert!(s.closed);
    assert_eq!(s.len, 0);
    assert_eq!(s.total_put, 3);

    RemoteQueue::remove(&url).unwrap();
    // A handle on a removed queue says so instead of waiting.
    assert!(matches!(
        q.get_timeout(Duration::from_secs(10)),
        Err(GetError::Net(NetError::NotFound { .. }))
    ));
    assert!(matches!(
        q.put(b"x"),
        Err(PutError::Net(NetError::NotFound { .. }))
    ));
    assert!(matches!(
        RemoteQueue::open(&url),
        Err(NetError::NotFound { .. })
    ));
    assert!(matches!(
        RemoteQueue::remove(&url),
        Err(NetError::NotFound { .. })
    ));
}

#[test]
fn errors_name_the_url_and_give_a_hint() {
    let _w = Watchdog::new("errors", Duration::from_secs(60));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}/jobs");
    let e = RemoteQueue::open(&url).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot reach nats://127.0.0.1:{port} (is nats-server -js running?)")
    );
    let e = RemoteQueue::open("nats://127.0.0.1:4222/bad name").unwrap_err();
    assert!(
        e.to_string().starts_with("invalid queue name \"bad name\""),
        "{e}"
    );
    let e = RemoteQueue::open("nats://127.0.0.1:4222").unwrap_err();
    assert!(e.to_string().contains("names no queue"), "{e}");

    let server = NatsServer::start();
    let missing = server.queue_url("missing");
    let e = RemoteQueue::open(&missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("queue {missing} not found (create it with 'mq create {missing}')")
    );
    let e = RemoteQueue::create(&missing, &CreateOptions::default().capacity(0)).unwrap_err();
    assert!(e.to_string().contains("capacity is 0"), "{e}");
}

#[test]
fn a_full_remote_queue_blocks_a_put_until_a_get() {
    let _w = Watchdog::new("full", Duration::from_secs(120));
    let server = NatsServer::start();
    let (url, q) = create(&server, &CreateOptions::default().capacity(2));
    q.put(b"1").unwrap();
    q.put(b"2").unwrap();
    assert_eq!(q.try_put(b"3"), Err(PutError::Full));
    assert_eq!(
        q.put_timeout(b"3", Duration::from_millis(200)),
        Err(PutError::Timeout)
    );
    let getter = std::thread::spawn(move || {
        let g = RemoteQueue::open(&url).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let got = g.get().unwrap();
        (Instant::now(), got)
    });
    q.put(b"3").unwrap(); // blocks until the getter makes room
    let put_done = Instant::now();
    let (got_at, got) = getter.join().unwrap();
    assert_eq!(got, b"1");
    assert!(
        got_at <= put_done,
        "the put returned before the get made room"
    );
    assert_eq!(q.get().unwrap(), b"2");
    assert_eq!(q.get().unwrap(), b"3");
}

#[test]
fn a_put_blocked_on_a_full_queue_fails_with_closed_when_it_is_closed() {
    let _w = Watchdog::new("full and closed", Duration::from_secs(120));
    let server = NatsServer::start();
    let (url, q) = create(&server, &CreateOptions::default().capacity(2));
    q.put_many(&[b"1", b"2"]).unwrap();
    // Blocked while the queue is full: one put, one put_many. (A put that
    // starts after the close fails the same way.) The timeouts only turn a
    // put that kept waiting for room into a failure instead of a hang.
    let wait = Duration::from_secs(30);
    let blocked: Vec<_> = [false, true]
        .into_iter()
        .map(|many| {
            let url = url.clone();
            std::thread::spawn(move || {
                let q = RemoteQueue::open(&url).unwrap();
                if many {
                    q.put_many_timeout(&[b"3", b"4"], wait).map_err(|(n, e)| {
                        assert_eq!(n, 0);
                        e
                    })
                } else {
                    q.put_timeout(b"3", wait)
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    q.close().unwrap();
    for t in blocked {
        assert_eq!(t.join().unwrap(), Err(PutError::Closed));
    }
    assert_eq!(q.try_put_many(&[b"5"]), Err((0, PutError::Closed)));
    assert_eq!(q.get_many(10).unwrap(), [b"1", b"2"]);
    assert_eq!(q.get(), Err(GetError::Closed));
}

#[test]
fn close_wakes_every_getter_once_the_messages_before_it_are_taken() {
    let _w = Watchdog::new("close", Duration::from_secs(120));
    let server = NatsServer::start();
    let (url, q) = create(&server, &CreateOptions::default().capacity(100));
    let getters: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let g = RemoteQueue::open(&url).unwrap();
                let mut got = Vec::new();
                loop {
                    match g.get() {
                        Ok(m) => got.push(String::from_utf8(m).unwrap()),
                        Err(GetError::Closed) => return got,
                        Err(e) => panic!("getter: {e}"),
                    }
                }
            })
        })
        .collect();
    for i in 0..30 {
        q.put(format!("m{i}").as_bytes()).unwrap();
    }
    q.close().unwrap();
    let mut all: Vec<String> = getters
        .into_iter()
        .flat_map(|g| g.join().unwrap())
        .collect();
    all.sort_by_key(|m| m[1..].parse::<u32>().unwrap());
    let want: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    assert_eq!(all, want);
}

#[test]
fn a_broker_restart_on_the_same_dir_pauses_and_loses_nothing() {
    let _w = Watchdog::new("restart", Duration::from_secs(180));
    let mut server = NatsServer::start();
    let (url, q) = create(&server, &CreateOptions::default().capacity(1000));
    for i in 0..100 {
        q.put(format!("{i}").as_bytes()).unwrap();
    }
    for i in 0..30 {
        assert_eq!(q.get().unwrap(), format!("{i}").as_bytes());
    }
    server.kill();
    let putter = std::thread::spawn(move || {
        let mut put = 0;
        for i in 100..150 {
            q.put(format!("{i}").as_bytes()).unwrap(); // waits for the server
            put += 1;
        }
        (q, put)
    });
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    let (q, put) = putter.join().unwrap();
    assert_eq!(put, 50);
    let g = RemoteQueue::open(&url).unwrap();
    let mut got = Vec::new();
    while let Ok(m) = g.get_timeout(Duration::from_secs(2)) {
        got.push(String::from_utf8(m).unwrap().parse::<u32>().unwrap());
    }
    let want: Vec<u32> = (30..150).collect();
    assert_eq!(got, want);
    drop(q);
}

#[test]
fn put_many_and_get_many_keep_order_bound_and_close() {
    let _w = Watchdog::new("batch verbs", Duration::from_secs(120));
    let server = NatsServer::start();
    let opts = CreateOptions::default().capacity(600).max_msg_size(64);
    let (url, q) = create(&server, &opts);
    assert_eq!(
        q.put_many(&[&b"ok"[..], &[0; 65]]),
        Err((0, PutError::TooLarge { len: 65, max: 64 }))
    );
    // More than one window (256) in flight, in order.
    let msgs: Vec<String> = (0..500).map(|i| format!("m{i}")).collect();
    q.put_many(&msgs).unwrap();
    assert_eq!(q.len().unwrap(), 500);
    // Only what fits: 100 of 150.
    let more: Vec<String> = (500..650).map(|i| format!("m{i}")).collect();
    assert_eq!(q.try_put_many(&more), Err((100, PutError::Full)));
    assert_eq!(
        q.put_many_timeout(&more[100..], Duration::from_millis(200)),
        Err((0, PutError::Timeout))
    );
    let other = AnyQueue::open(&url).unwrap();
    let mut got = Vec::new();
    while got.len() < 600 {
        let batch = other.get_many(256).unwrap();
        assert!(!batch.is_empty() && batch.len() <= 256);
        got.extend(batch);
    }
    let want: Vec<Vec<u8>> = (0..600).map(|i| format!("m{i}").into_bytes()).collect();
    assert_eq!(got, want);
    // Acked together: nothing left, nothing in flight.
    let s = q.stats().unwrap();
    assert_eq!((s.len, s.in_flight), (0, 0), "{s:?}");
    assert_eq!(q.try_get_many(10), Err(GetError::Empty));
    assert_eq!(
        q.get_many_timeout(10, Duration::from_millis(100)),
        Err(GetError::Timeout)
    );
    q.put_many(&["last 1", "last 2"]).unwrap();
    q.close().unwrap();
    assert_eq!(q.put_many(&["late"]), Err((0, PutError::Closed)));
    assert_eq!(
        q.get_many(10).unwrap(),
        vec![b"last 1".to_vec(), b"last 2".to_vec()]
    );
    assert_eq!(q.get_many(10), Err(GetError::Closed));
    assert_eq!(other.get_many(10), Err(GetError::Closed));
    RemoteQueue::remove(&url).unwrap();
}
