//! `notifications:` as checked: where `drover serve` delivers the outbox's events.

use std::time::Duration;

use super::raw_site::RawNotifications;
use crate::diag::Problem;
use crate::store::NoticeKind;
use crate::units::SecretRef;
use crate::yaml::Path;

/// Slack's Web API, for `chat.postMessage`.
pub const SLACK_API_URL: &str = "https://slack.com/api";

#[derive(Debug, Clone)]
pub struct NotificationSettings {
    pub slack: Option<SlackSettings>,
    pub webhooks: Vec<WebhookSettings>,
    pub poll_interval: Duration,
    pub max_retry_delay: Duration,
}

impl Default for NotificationSettings {
    fn default() -> NotificationSettings {
        NotificationSettings {
            slack: None,
            webhooks: Vec::new(),
            poll_interval: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(300),
        }
    }
}

/// How messages reach Slack.
#[derive(Debug, Clone)]
pub enum SlackDelivery {
    /// An incoming webhook: one channel, no threads (it answers no message id).
    Webhook { url: SecretRef, channel: Option<String> },
    /// `chat.postMessage` with a bot token: a run's start opens a thread, its other
    /// events reply in it.
    Bot {
        token: SecretRef,
        channel: String,
        api_url: String,
    },
}

#[derive(Debug, Clone)]
pub struct SlackSettings {
    pub delivery: SlackDelivery,
    /// `None`: every event.
    pub events: Option<Vec<NoticeKind>>,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub events: Option<Vec<NoticeKind>>,
    pub secret: Option<SecretRef>,
}

impl NotificationSettings {
    pub fn from_raw(raw: &RawNotifications, at: &Path, p: &mut Vec<Problem>) -> NotificationSettings {
        let mut out = NotificationSettings::default();
        if let Some(s) = &raw.slack {
            let here = at.key("slack");
            let delivery = match (&s.webhook_url, &s.bot_token, &s.channel) {
                (Some(url), None, channel) => Some(SlackDelivery::Webhook {
                    url: url.clone(),
                    channel: channel.clone(),
                }),
                (None, Some(token), Some(channel)) => Some(SlackDelivery::Bot {
                    token: token.clone(),
                    channel: channel.clone(),
                    api_url: s
                        .api_url
                        .clone()
                        .unwrap_or_else(|| SLACK_API_URL.to_string())
                        .trim_end_matches('/')
                        .to_string(),
                }),
                (None, Some(_), None) => {
                    p.push(Problem::key(
                        here.clone(),
                        "`bot_token` needs `channel`: the channel to post to (its id, like `C0123456`, or `#name`)",
                    ));
                    None
                }
                (Some(_), Some(_), _) => {
                    p.push(Problem::key(
                        here.clone(),
                        "give either `webhook_url` (an incoming webhook) or `bot_token` with `channel` (threads per run), not both",
                    ));
                    None
                }
                (None, None, _) => {
                    p.push(Problem::key(
                        here.clone(),
                        "Slack needs `webhook_url` (an incoming webhook) or `bot_token` with `channel`",
                    ));
                    None
                }
            };
            if let Some(u) = &s.api_url {
                check_url(u, &here.key("api_url"), p);
            }
            out.slack = delivery.map(|delivery| SlackSettings {
                delivery,
                events: s.events.clone(),
            });
        }
        for (i, w) in raw.webhooks.iter().enumerate() {
            if check_url(&w.url, &at.key("webhooks").index(i).key("url"), p) {
                out.webhooks.push(WebhookSettings {
                    url: w.url.clone(),
                    events: w.events.clone(),
                    secret: w.secret.clone(),
                });
            }
        }
        if let Some(d) = raw.poll_interval {
            if d.get().is_zero() {
                p.push(Problem::value(
                    at.key("poll_interval"),
                    "a poll interval of zero would busy-loop the state database",
                ));
            } else {
                out.poll_interval = d.get();
            }
        }
        if let Some(d) = raw.max_retry_delay {
            out.max_retry_delay = d.get().max(Duration::from_secs(1));
        }
        out
    }

    /// Whether there is anywhere to send to.
    pub fn any(&self) -> bool {
        self.slack.is_some() || !self.webhooks.is_empty()
    }
}

fn check_url(url: &str, at: &Path, p: &mut Vec<Problem>) -> bool {
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "https://".len();
    if !ok {
        p.push(Problem::value(
            at.clone(),
            format!("`{url}` is not a URL: expected `https://...` (or `http://...`)"),
        ));
    }
    ok
}
