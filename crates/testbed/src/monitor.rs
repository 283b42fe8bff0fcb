//! Sampling how many nodes are out of service while a rollout runs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::fake_scheduler::FakeScheduler;
use super::monitor_report::MonitorReport;
use super::testbed_error::TestbedError;

/// A thread reading every node's state from a [`FakeScheduler`] every `interval`, keeping
/// the most nodes unavailable at once, overall and per group. A node is unavailable while
/// `draining`, `drained` or `resuming`: it takes no new work from the moment drover drains it until
/// it is resumed, whatever happens to it in between.
///
/// Sampling misses states shorter than the interval, so tests keep nodes out for many
/// intervals (jobs or reboots of tens of milliseconds against a 2–5 ms interval), or wait
/// for samples with [`Monitor::wait_samples`] rather than sleep, since a busy machine may
/// not run the thread for a while. Each state file is read on its own, so one sample is
/// not a single instant; the scheduler writes them atomically, so no read sees a
/// half-written state.
#[derive(Debug)]
pub struct Monitor {
    /// Samples completed so far, counted by the thread.
    samples: Arc<AtomicU64>,
    /// Dropping it tells the thread to stop.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<MonitorReport>>,
}

impl Monitor {
    /// Starts sampling now. `groups` are named node lists (inventory groups, HA groups)
    /// whose own maxima are reported; nodes the scheduler does not know are never
    /// unavailable.
    pub fn start(
        scheduler: &FakeScheduler,
        groups: Vec<(String, Vec<String>)>,
        interval: Duration,
    ) -> Result<Monitor, TestbedError> {
        let (stop, stopped) = mpsc::channel();
        let samples = Arc::new(AtomicU64::new(0));
        let mut sampler = Sampler {
            scheduler: scheduler.clone(),
            samples: Arc::clone(&samples),
            report: MonitorReport {
                max_per_group: groups.iter().map(|(name, _)| (name.clone(), 0)).collect(),
                ..MonitorReport::default()
            },
            groups,
        };
        let thread = std::thread::Builder::new()
            .name("testbed-monitor".to_string())
            .spawn(move || {
                sampler.run(&stopped, interval);
                sampler.report
            })
            .map_err(|source| TestbedError::Thread {
                what: "monitor",
                source,
            })?;
        Ok(Monitor {
            samples,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// How many samples have been completed so far.
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Acquire)
    }

    /// Waits until `more` samples have been completed after this call, so that at least
    /// `more - 1` of them began after it: `wait_samples(2, ..)` after changing a state
    /// makes sure the change was seen. Returns false if `limit` passes first.
    pub fn wait_samples(&self, more: u64, limit: Duration) -> bool {
        let target = self.samples().saturating_add(more);
        let started = Instant::now();
        while self.samples() < target {
            if started.elapsed() > limit || self.thread.as_ref().is_none_or(JoinHandle::is_finished) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Takes a last sample, stops the thread and returns what it saw.
    pub fn stop(mut self) -> MonitorReport {
        drop(self.stop.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(report)) => report,
            // The sampler has no panicking paths; should it panic anyway, the test that
            // relies on it must fail, with the sampler's own message.
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => MonitorReport::default(),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Sampler {
    scheduler: FakeScheduler,
    samples: Arc<AtomicU64>,
    groups: Vec<(String, Vec<String>)>,
    report: MonitorReport,
}

impl Sampler {
    /// Samples at once, then every `interval`, and once more when told to stop, so the
    /// state at both ends of the test is counted.
    fn run(&mut self, stopped: &Receiver<()>, interval: Duration) {
        loop {
            self.sample();
            match stopped.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.sample();
    }

    fn sample(&mut self) {
        let out: BTreeSet<&str> = self
            .scheduler
            .nodes()
            .iter()
            .filter(|n| {
                matches!(
                    self.scheduler.state(n).as_str(),
                    "draining" | "drained" | "resuming"
                )
            })
            .map(String::as_str)
            .collect();
        let report = &mut self.report;
        report.samples += 1;
        if out.len() > report.max_unavailable {
            report.max_unavailable = out.len();
            // In the scheduler's node order, which the set's sorting by name may not be.
            report.worst = self
                .scheduler
                .nodes()
                .iter()
                .filter(|n| out.contains(n.as_str()))
                .cloned()
                .collect();
        }
        for (name, members) in &self.groups {
            let count = members.iter().filter(|m| out.contains(m.as_str())).count();
            let max = report.max_per_group.entry(name.clone()).or_default();
            *max = (*max).max(count);
        }
        self.samples.store(report.samples, Ordering::Release);
    }
}
