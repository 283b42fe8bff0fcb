//! Notifications: the outbox's events delivered to Slack and JSON webhooks.
//!
//! The store records each event in the same transaction as the state change it reports
//! (`store::notices`); [`Notifier`] runs in `drover serve`, one task per sink, and hands
//! the events to each sink in order, marking each one sent once the sink took it. A sink
//! that is down or rate-limits is retried with backoff (honouring `Retry-After`) while
//! the rollout goes on: nothing of a run waits for a notification.

mod delivery_error;
mod notice_text;
mod notifier;
mod retry;
mod sink;
mod slack_message;
mod webhook_signature;

pub use delivery_error::DeliveryError;
pub use notice_text::NoticeText;
pub use notifier::{Notifier, NotifierError};
pub use retry::{parse_retry_after, retry_delay};
pub use sink::Sink;
pub use slack_message::slack_message;
pub use webhook_signature::{SIGNATURE_HEADER, sign};
