//! Durable run state: what a run planned, where each node stands, what each step
//! printed, and which run holds which node, in one embedded SQLite database
//! (`<state_dir>/drover.db`).
//!
//! A controller may be killed at any instant; a later one resumes from what is stored.
//! So every write is acknowledged only once it is on disk (`synchronous=FULL` in WAL
//! mode), and a writer thread groups concurrent writes into one transaction to keep
//! that affordable with hundreds of node tasks. SQLite (rusqlite, bundled) rather than
//! files of JSON: atomic multi-row updates, safe concurrent access from several drover
//! processes (leases), and queries for `drover runs` without loading every run.

mod alarm_cooldown;
mod columns;
mod controller;
mod discovered_host;
mod fault;
mod generation;
mod held_node;
mod lease;
mod lease_conflict;
mod node_counts;
mod node_lifecycle;
mod node_row;
mod node_state;
mod node_version;
mod notice_kind;
mod notices;
mod op;
mod outbox;
mod pause;
mod run_detail;
mod run_row;
mod run_status;
mod schema;
mod source_commit;
mod step_row;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod store;
mod store_error;
mod wanted_rollout;
mod write;
mod writer;

pub use alarm_cooldown::AlarmCooldown;
pub use controller::Controller;
pub use discovered_host::DiscoveredHost;
pub use generation::Generation;
pub use held_node::HeldNode;
pub use lease::Lease;
pub use lease_conflict::LeaseConflict;
pub use node_counts::NodeCounts;
pub use node_lifecycle::{LifecycleState, NodeLifecycle};
pub use node_row::NodeRow;
pub use node_state::NodeState;
pub use node_version::NodeVersion;
pub use notice_kind::NoticeKind;
pub use outbox::Notice;
pub use pause::{Pause, PauseScope};
pub use run_detail::RunDetail;
pub use run_row::RunRow;
pub use run_status::RunStatus;
pub use source_commit::{SourceCommitRow, SourceHead, SourceVerdict};
pub use step_row::StepRow;
pub use store::Store;
pub use store_error::StoreError;
pub use wanted_rollout::WantedRollout;
pub use write::Write;
