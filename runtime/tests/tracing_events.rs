//! `tracing` events at the scheduler's decision points, captured by a tiny
//! hand-written global subscriber in a child process (the events come from
//! M threads, so a thread-local default would miss them).

mod common;

use std::fmt::Write as _;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records every event as `LEVEL target message k=v …`.
struct Recorder;

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut fields = Fields(format!("{} {}", meta.level(), meta.target()));
        event.record(&mut fields);
        EVENTS.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn a_subscriber_sees_spawn_park_and_exit_with_their_fields() {
    let name = "a_subscriber_sees_spawn_park_and_exit_with_their_fields";
    if !common::is_child(name) {
        return common::assert_child_ok(name);
    }
    tracing::subscriber::set_global_default(Recorder).unwrap();
    let id = goro_runtime::run(|| {
        let (tx, rx) = goro_runtime::chan::bounded::<u32>(0);
        let handle = goro_runtime::Builder::new()
            .name("traced")
            .spawn(move || rx.recv().unwrap())
            .unwrap();
        let id = handle.id();
        common::let_others_run();
        tx.send(1).unwrap();
        handle.join().unwrap();
        id
    });
    let events = EVENTS.lock().unwrap().clone();
    let find = |needle: &str| {
        events
            .iter()
            .find(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("no event with {needle:?} in {events:#?}"))
            .clone()
    };
    let spawn = find(&format!("message=spawn goroutine={id}"));
    assert!(spawn.starts_with("DEBUG goro::sched"), "{spawn}");
    assert!(spawn.contains("name=\"traced\""), "{spawn}");
    assert!(spawn.contains("tests/tracing_events.rs:"), "{spawn}");
    let park = find(&format!("message=park goroutine={id}"));
    assert!(park.starts_with("TRACE goro::sched"), "{park}");
    assert!(park.contains("reason=\"chan receive\""), "{park}");
    let exit = find(&format!("message=exit goroutine={id}"));
    assert!(exit.starts_with("DEBUG goro::sched"), "{exit}");
    println!("CHILD-OK");
}
