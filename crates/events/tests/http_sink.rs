//! The HTTP sink against a real collector on loopback.

use ldguard_events::http::{HttpSink, HttpSinkConfig};
use ldguard_events::{Event, Sink};
use ldguard_source::testing::{Handler, Request, Response, Server, ServerConfig, TestCa};
use ldguard_source::Token;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Collector {
    posts: Arc<Mutex<Vec<Request>>>,
    status: Arc<AtomicU16>,
    tls: Option<Arc<ServerConfig>>,
    server: Option<Server>,
    port: u16,
}

impl Collector {
    fn start(ca: Option<&TestCa>) -> Collector {
        let mut c = Collector {
            posts: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            tls: ca.map(|ca| ca.server_config.clone()),
            server: None,
            port: 0,
        };
        c.restart();
        c
    }

    fn restart(&mut self) {
        let posts = self.posts.clone();
        let status = self.status.clone();
        let handler: Handler = Arc::new(move |req: &Request| {
            let code = status.load(Ordering::SeqCst);
            if code == 200 {
                posts.lock().unwrap().push(req.clone());
            }
            Response::new(code, "")
        });
        let server = Server::start_on(self.port, self.tls.clone(), handler);
        self.port = server.port();
        self.server = Some(server);
    }

    fn stop(&mut self) {
        self.server.take();
    }

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/v1/events", self.port)
    }

    fn batches(&self) -> Vec<Vec<Event>> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).expect("a JSON array of events"))
            .collect()
    }

    fn events(&self) -> Vec<Event> {
        self.batches().into_iter().flatten().collect()
    }
}

const FLUSH: Duration = Duration::from_secs(5);

fn numbered(n: u32) -> Event {
    Event {
        pid: 7,
        call: "open".into(),
        message: format!("{n}"),
        ..Event::default()
    }
}

fn numbers(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter(|e| e.dropped.is_none())
        .map(|e| e.message.parse().unwrap())
        .collect()
}

#[test]
fn delivers_everything_in_order_over_tls_with_the_token() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    ca.write_ca(&dir.path().join("ca.pem"));
    let collector = Collector::start(Some(&ca));
    let mut config = HttpSinkConfig::new(collector.url());
    config.ca_file = Some(dir.path().join("ca.pem"));
    config.token = Token::Value("ev-token".into());
    config.max_batch = 64;
    let mut sink = HttpSink::new(config).unwrap();
    let mut n = 0;
    for size in [1usize, 7, 100, 3, 250, 39] {
        let batch: Vec<Event> = (0..size)
            .map(|_| {
                n += 1;
                numbered(n)
            })
            .collect();
        sink.write_batch(&batch).unwrap();
    }
    sink.drain(FLUSH).unwrap();
    let events = collector.events();
    assert_eq!(numbers(&events), (1..=n).collect::<Vec<_>>());
    assert!(collector.batches().iter().all(|b| b.len() <= 64));
    let posts = collector.posts.lock().unwrap();
    assert!(posts.iter().all(|r| r.method == "POST"
        && r.header("Authorization") == Some("Bearer ev-token")
        && r.header("Content-Type") == Some("application/json")));
    assert_eq!(sink.stats().dropped, 0);
}

#[test]
fn a_batch_leaves_after_max_delay_without_a_flush() {
    let collector = Collector::start(None);
    let mut config = HttpSinkConfig::new(collector.url());
    config.max_delay = Duration::from_millis(100);
    let mut sink = HttpSink::new(config).unwrap();
    sink.write_batch(&[numbered(1), numbered(2)]).unwrap();
    let started = Instant::now();
    while collector.events().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(3), "never sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(collector.batches().len(), 1, "one POST for both events");
}

#[test]
fn counts_and_reports_drops_while_the_collector_is_down() {
    let mut collector = Collector::start(None);
    let mut config = HttpSinkConfig::new(collector.url());
    config.buffer = 50;
    config.max_batch = 20;
    config.retry_base = Duration::from_millis(20);
    config.retry_cap = Duration::from_millis(100);
    let mut sink = HttpSink::new(config).unwrap();
    sink.write_batch(&(1..=30).map(numbered).collect::<Vec<_>>())
        .unwrap();
    sink.drain(FLUSH).unwrap();

    collector.stop();
    for n in 31..=230 {
        sink.write_batch(&[numbered(n)]).unwrap();
    }
    let err = sink.drain(Duration::from_millis(500)).unwrap_err();
    assert!(err.to_string().contains("50 events undelivered"), "{err}");
    assert_eq!(sink.stats().dropped, 150);
    assert!(sink.stats().retries > 0);

    collector.restart();
    sink.drain(FLUSH).unwrap();
    let events = collector.events();
    let reports: Vec<u64> = events.iter().filter_map(|e| e.dropped).collect();
    assert_eq!(reports, [150], "one status event counts the loss");
    // What was buffered arrives, in order, after what came before the outage.
    let expected: Vec<u32> = (1..=30).chain(31..=80).collect();
    assert_eq!(numbers(&events), expected);
    let report = events.iter().find(|e| e.dropped.is_some()).unwrap();
    assert_eq!(
        (report.kind.as_str(), report.call.as_str()),
        ("status", "ldguard")
    );
}

#[test]
fn a_refused_batch_is_dropped_not_retried_forever() {
    let collector = Collector::start(None);
    collector.status.store(400, Ordering::SeqCst);
    let config = HttpSinkConfig::new(collector.url());
    let mut sink = HttpSink::new(config).unwrap();
    sink.write_batch(&[numbered(1), numbered(2)]).unwrap();
    let _ = sink.drain(Duration::from_millis(500));
    assert_eq!(sink.stats().dropped, 2);
    collector.status.store(200, Ordering::SeqCst);
    sink.write_batch(&[numbered(3)]).unwrap();
    sink.drain(FLUSH).unwrap();
    let events = collector.events();
    assert_eq!(
        events.iter().filter_map(|e| e.dropped).collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(numbers(&events), [3]);
}
