//! Fake reboots of testbed nodes, asked for from the nodes themselves.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::boot_files::BootFiles;
use super::reboot::Reboot;
use super::sshd_fleet::SshdFleet;
use super::testbed_error::TestbedError;

/// How often every node's state dir is checked for a request. A real reboot takes its
/// node away a moment after the command returns, so a short delay is realistic too.
const REQUEST_POLL: Duration = Duration::from_millis(20);

/// How often [`RebootService::wait_for`] looks at the records.
const WAIT_POLL: Duration = Duration::from_millis(10);

/// A thread that reboots nodes when they ask (see
/// [`Testbed::reboot_service`](super::Testbed::reboot_service)), so that drover's reboot
/// step meets what a real reboot does: the command's session is cut, the node refuses
/// connections for a while, and it comes back with a new boot id. The request comes from
/// the node (a file in its state dir) rather than from the test, because drover decides
/// when to reboot.
///
/// A request found while its node is still down is dropped: a down node runs no commands.
/// Dropping the service (or [`RebootService::stop`]) ends the thread after bringing up
/// every node still down, at once. Dropping the testbed stops its nodes for good, and the
/// service then records the reboots it could not finish as failed.
#[derive(Debug)]
pub struct RebootService {
    records: Arc<Mutex<Vec<Reboot>>>,
    /// Dropping it tells the thread to stop.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RebootService {
    pub(crate) fn start(fleet: Arc<SshdFleet>, down_for: Duration) -> Result<RebootService, TestbedError> {
        let records = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = mpsc::channel();
        let worker = Worker {
            boots: fleet
                .nodes()
                .iter()
                .map(|n| BootFiles::new(&n.state_dir))
                .collect(),
            fleet,
            down_for,
            records: Arc::clone(&records),
            down: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("testbed-reboots".to_string())
            .spawn(move || worker.run(&stopped))
            .map_err(|source| TestbedError::Thread {
                what: "reboot service",
                source,
            })?;
        Ok(RebootService {
            records,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Every reboot so far, in the order they began, finished or not.
    pub fn reboots(&self) -> Vec<Reboot> {
        lock(&self.records).clone()
    }

    /// Waits until at least `count` reboots are done (up again, or failed) and returns
    /// every reboot so far; fails when `limit` passes first.
    pub fn wait_for(&self, count: usize, limit: Duration) -> Result<Vec<Reboot>, TestbedError> {
        let started = Instant::now();
        loop {
            let reboots = self.reboots();
            let done = reboots.iter().filter(|r| r.is_done()).count();
            if done >= count {
                return Ok(reboots);
            }
            if started.elapsed() > limit {
                return Err(TestbedError::RebootsPending {
                    expected: count,
                    done,
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(WAIT_POLL);
        }
    }

    /// Stops the service, bringing up every node still down at once, and returns every
    /// reboot it did.
    pub fn stop(mut self) -> Vec<Reboot> {
        self.shut_down();
        self.reboots()
    }

    fn shut_down(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The worker does not panic; if it did, its records still say how far it got.
            let _ = thread.join();
        }
    }
}

impl Drop for RebootService {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The service's thread: it owns the schedule of nodes that are down.
struct Worker {
    fleet: Arc<SshdFleet>,
    boots: Vec<BootFiles>,
    down_for: Duration,
    records: Arc<Mutex<Vec<Reboot>>>,
    /// Nodes down: (node index, index of its record, when it comes back).
    down: Vec<(usize, usize, Instant)>,
}

impl Worker {
    fn run(mut self, stopped: &Receiver<()>) {
        loop {
            let next_up = self.down.iter().map(|d| d.2).min();
            let wait = next_up.map_or(REQUEST_POLL, |t| {
                t.saturating_duration_since(Instant::now()).min(REQUEST_POLL)
            });
            match stopped.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                // Stopped, or the service was dropped.
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.fleet.is_shut_down() {
                break;
            }
            self.take_requests();
            self.bring_up(Some(Instant::now()));
        }
        self.bring_up(None);
    }

    /// Takes every node down that asked for it, in one sweep.
    fn take_requests(&mut self) {
        let requested: Vec<usize> = (0..self.boots.len())
            // An unreadable state dir is no request: it would fail again every poll.
            .filter(|&i| self.boots[i].take_request().unwrap_or(false))
            .filter(|&i| !self.down.iter().any(|d| d.0 == i))
            .collect();
        if requested.is_empty() {
            return;
        }
        let down = SystemTime::now();
        let stopped = self.fleet.stop(&requested);
        let due = Instant::now() + self.down_for;
        let mut records = lock(&self.records);
        for i in requested {
            records.push(Reboot {
                index: i,
                node: self.fleet.nodes()[i].name.clone(),
                down,
                up: None,
                boot_id: None,
                error: stopped.as_ref().err().map(ToString::to_string),
            });
            if stopped.is_ok() {
                self.down.push((i, records.len() - 1, due));
            }
        }
    }

    /// Boots the nodes down until `due` or earlier (all of them for `None`): new boot ids
    /// first, so a node is never reachable with its old one, then their sshds together.
    fn bring_up(&mut self, due: Option<Instant>) {
        let (ready, later): (Vec<_>, Vec<_>) =
            self.down.drain(..).partition(|d| due.is_none_or(|t| d.2 <= t));
        self.down = later;
        if ready.is_empty() {
            return;
        }
        if self.fleet.is_shut_down() {
            let mut records = lock(&self.records);
            for &(_, record, _) in &ready {
                records[record].error = Some(TestbedError::ShutDown.to_string());
            }
            return;
        }
        let mut booted = Vec::new();
        for &(i, record, _) in &ready {
            match self.boots[i].boot() {
                Ok(id) => {
                    lock(&self.records)[record].boot_id = Some(id);
                    booted.push(i);
                }
                Err(e) => lock(&self.records)[record].error = Some(e.to_string()),
            }
        }
        let started = self.fleet.start(&booted);
        let up = SystemTime::now();
        let mut records = lock(&self.records);
        for &(i, record, _) in &ready {
            if !booted.contains(&i) {
                continue;
            }
            match &started {
                Ok(()) => records[record].up = Some(up),
                Err(e) => records[record].error = Some(e.to_string()),
            }
        }
    }
}

/// A panic while holding the lock cannot leave a record half written (each change is one
/// assignment), so a poisoned lock is used as is.
fn lock(records: &Mutex<Vec<Reboot>>) -> MutexGuard<'_, Vec<Reboot>> {
    records.lock().unwrap_or_else(PoisonError::into_inner)
}
