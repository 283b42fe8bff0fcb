//! The daemon's Prometheus metrics: what `/metrics` serves.
//!
//! Runs and nodes by state are read from the state store at each scrape (the store is
//! the truth, and a scrape is rare); step durations are observed as the daemon's runs
//! report them; the commit in force and the last fetch are set by whoever follows the
//! site's git repository (`Metrics::set_commit`, `Metrics::fetched`).

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::{NodeState, RunStatus, Store};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitLabel {
    commit: String,
}

/// Upper bounds of the step duration histogram, in seconds: from a quick `true` to a
/// long reboot.
const STEP_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

pub struct Metrics {
    registry: Registry,
    runs: Family<StateLabel, Gauge>,
    nodes: Family<StateLabel, Gauge>,
    step_seconds: Histogram,
    commit: Family<CommitLabel, Gauge>,
    /// The commit set last, so a new one replaces it (one series at 1).
    commit_now: Mutex<Option<String>>,
    last_fetch_time: Gauge<f64, AtomicU64>,
    last_fetch_ok: Gauge,
    fetches: Counter,
    /// Notification events each sink has not taken yet: a sink that is down keeps its
    /// events and this grows, rather than losing them.
    backlog: Family<SinkLabel, Gauge>,
    sinks: Mutex<Vec<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let runs = Family::<StateLabel, Gauge>::default();
        let nodes = Family::<StateLabel, Gauge>::default();
        let step_seconds = Histogram::new(STEP_BUCKETS);
        let commit = Family::<CommitLabel, Gauge>::default();
        let last_fetch_time = Gauge::<f64, AtomicU64>::default();
        let last_fetch_ok = Gauge::default();
        let fetches = Counter::default();
        let backlog = Family::<SinkLabel, Gauge>::default();
        registry.register("drover_runs", "Runs in the state store, by state", runs.clone());
        registry.register(
            "drover_nodes",
            "Nodes of the runs still running (being driven, or left by a dead controller), by state",
            nodes.clone(),
        );
        registry.register(
            "drover_step_duration_seconds",
            "Duration of the steps the daemon's runs ran",
            step_seconds.clone(),
        );
        registry.register(
            "drover_commit_in_force",
            "The site's git commit in force (1 for that commit)",
            commit.clone(),
        );
        registry.register(
            "drover_last_fetch_timestamp_seconds",
            "When the site's git remote was last fetched (unix time; 0: never)",
            last_fetch_time.clone(),
        );
        registry.register(
            "drover_last_fetch_success",
            "Whether the last fetch of the site's git remote succeeded (1) or failed (0)",
            last_fetch_ok.clone(),
        );
        registry.register(
            "drover_fetches",
            "Fetches of the site's git remote (polls and pushes), well or not",
            fetches.clone(),
        );
        registry.register(
            "drover_notifications_pending",
            "Notification events a sink has not taken yet (it is down or refusing), by sink",
            backlog.clone(),
        );
        // Every state is a series from the start, so a dashboard sees zeros, not gaps.
        for s in RunStatus::ALL {
            runs.get_or_create(&StateLabel {
                state: s.as_str().into(),
            })
            .set(0);
        }
        for s in NodeState::ALL {
            nodes
                .get_or_create(&StateLabel {
                    state: s.as_str().into(),
                })
                .set(0);
        }
        Metrics {
            registry,
            runs,
            nodes,
            step_seconds,
            commit,
            commit_now: Mutex::new(None),
            last_fetch_time,
            last_fetch_ok,
            fetches,
            backlog,
            sinks: Mutex::new(Vec::new()),
        }
    }

    pub fn observe_step(&self, d: Duration) {
        self.step_seconds.observe(d.as_secs_f64());
    }

    /// The commit now in force (the last one that validated).
    pub fn set_commit(&self, sha: &str) {
        let mut now = self.commit_now.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = now.take() {
            self.commit.remove(&CommitLabel { commit: old });
        }
        self.commit
            .get_or_create(&CommitLabel { commit: sha.into() })
            .set(1);
        *now = Some(sha.to_string());
    }

    /// A fetch of the site's remote ended, at `at`, well or not.
    pub fn fetched(&self, at: jiff::Timestamp, ok: bool) {
        self.last_fetch_time.set(at.as_millisecond() as f64 / 1000.0);
        self.last_fetch_ok.set(i64::from(ok));
        self.fetches.inc();
    }

    /// The notification sinks whose backlog is shown (their outbox ids).
    pub fn set_sinks(&self, ids: Vec<String>) {
        for id in &ids {
            self.backlog.get_or_create(&SinkLabel { sink: id.clone() }).set(0);
        }
        *self.sinks.lock().unwrap_or_else(PoisonError::into_inner) = ids;
    }

    /// Runs and nodes by state, and each sink's backlog, as the store has them now.
    pub fn refresh(&self, store: &Store) {
        let sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for id in sinks {
            if let Ok(n) = store.outbox_backlog(&id) {
                self.backlog
                    .get_or_create(&SinkLabel { sink: id })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        let Ok(runs) = store.runs() else { return };
        let mut by_status = [0i64; RunStatus::ALL.len()];
        let mut by_node = [0i64; NodeState::ALL.len()];
        for r in &runs {
            if let Some(i) = RunStatus::ALL.iter().position(|s| *s == r.status) {
                by_status[i] += 1;
            }
            if r.status == RunStatus::Running {
                for (i, s) in NodeState::ALL.iter().enumerate() {
                    by_node[i] += i64::try_from(r.counts.get(*s)).unwrap_or(i64::MAX);
                }
            }
        }
        for (s, n) in RunStatus::ALL.iter().zip(by_status) {
            self.runs
                .get_or_create(&StateLabel {
                    state: s.as_str().into(),
                })
                .set(n);
        }
        for (s, n) in NodeState::ALL.iter().zip(by_node) {
            self.nodes
                .get_or_create(&StateLabel {
                    state: s.as_str().into(),
                })
                .set(n);
        }
    }

    /// The exposition (OpenMetrics text).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
