//! Where events go: Slack (incoming webhook or `chat.postMessage`) or a JSON webhook,
//! with its secrets read once at start.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::delivery_error::DeliveryError;
use super::notice_text::NoticeText;
use super::retry::parse_retry_after;
use super::slack_message::slack_message;
use super::webhook_signature::{SIGNATURE_HEADER, sign};
use crate::site::{NotificationSettings, SlackDelivery};
use crate::store::{Notice, NoticeKind};

#[derive(Clone)]
enum Target {
    SlackWebhook {
        url: String,
        channel: Option<String>,
    },
    SlackBot {
        token: String,
        channel: String,
        api_url: String,
    },
    Webhook {
        url: String,
        secret: Option<String>,
    },
}

/// One place events go. `Debug` shows the sink's id, never its URL or token.
#[derive(Clone)]
pub struct Sink {
    /// Names the sink in the outbox (`outbox_sent.sink`) and in logs. A webhook's id
    /// hashes its URL, so pointing it elsewhere starts afresh.
    pub id: String,
    events: Option<Vec<NoticeKind>>,
    target: Target,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// The site's sinks, their secrets read; the error names the secret's source only.
    pub fn from_settings(n: &NotificationSettings) -> Result<Vec<Sink>, String> {
        let mut out = Vec::new();
        if let Some(slack) = &n.slack {
            let target = match &slack.delivery {
                SlackDelivery::Webhook { url, channel } => Target::SlackWebhook {
                    url: url
                        .read()
                        .map_err(|e| format!("notifications.slack.webhook_url: {e}"))?,
                    channel: channel.clone(),
                },
                SlackDelivery::Bot {
                    token,
                    channel,
                    api_url,
                } => Target::SlackBot {
                    token: token
                        .read()
                        .map_err(|e| format!("notifications.slack.bot_token: {e}"))?,
                    channel: channel.clone(),
                    api_url: api_url.clone(),
                },
            };
            out.push(Sink {
                id: "slack".into(),
                events: slack.events.clone(),
                target,
            });
        }
        for (i, w) in n.webhooks.iter().enumerate() {
            let secret = w
                .secret
                .as_ref()
                .map(|s| {
                    s.read()
                        .map_err(|e| format!("notifications.webhooks[{i}].secret: {e}"))
                })
                .transpose()?;
            let hash = hex::encode(Sha256::digest(w.url.as_bytes()));
            out.push(Sink {
                id: format!("webhook:{}", &hash[..12]),
                events: w.events.clone(),
                target: Target::Webhook {
                    url: w.url.clone(),
                    secret,
                },
            });
        }
        Ok(out)
    }

    pub fn wants(&self, kind: NoticeKind) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&kind))
    }

    /// Whether later events of a run reply in the thread of its first.
    pub fn threads(&self) -> bool {
        matches!(self.target, Target::SlackBot { .. })
    }

    /// Hands `n` to the sink; `thread` is the reply of the run's first event (a Slack
    /// `ts`). Answers what later events need of this one (its `ts`).
    pub async fn deliver(
        &self,
        client: &reqwest::Client,
        n: &Notice,
        thread: Option<&str>,
    ) -> Result<Option<String>, DeliveryError> {
        match &self.target {
            Target::SlackWebhook { url, channel } => {
                let mut body = slack_message(n);
                if let Some(c) = channel {
                    body["channel"] = json!(c);
                }
                let r = send(client.post(url).json(&body)).await?;
                check(r).await.map(|_| None)
            }
            Target::SlackBot {
                token,
                channel,
                api_url,
            } => {
                let mut body = slack_message(n);
                body["channel"] = json!(channel);
                if let Some(ts) = thread {
                    body["thread_ts"] = json!(ts);
                }
                let r = send(
                    client
                        .post(format!("{api_url}/chat.postMessage"))
                        .header(AUTHORIZATION, format!("Bearer {token}"))
                        .json(&body),
                )
                .await?;
                let answer: Value = check(r).await?;
                if answer.get("ok").and_then(Value::as_bool) != Some(true) {
                    let error = answer
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("no `ok` in the answer");
                    return Err(DeliveryError::Slack(error.to_string()));
                }
                Ok(answer.get("ts").and_then(Value::as_str).map(str::to_string))
            }
            Target::Webhook { url, secret } => {
                let body = webhook_body(n);
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                let mut req = client
                    .post(url)
                    .header(CONTENT_TYPE, "application/json")
                    .header("X-Drover-Event", n.kind.as_str())
                    .header("X-Drover-Delivery", &n.key);
                if let Some(s) = secret {
                    req = req.header(SIGNATURE_HEADER, sign(s.as_bytes(), &bytes));
                }
                let r = send(req.body(bytes)).await?;
                check(r).await.map(|_| None)
            }
        }
    }
}

/// A JSON webhook's body: the event's facts and its text.
pub fn webhook_body(n: &Notice) -> Value {
    json!({
        "id": n.id,
        "key": n.key,
        "event": n.kind.as_str(),
        "run": n.run,
        "at": n.at.to_string(),
        "text": NoticeText::of(n).plain(),
        "data": n.payload,
    })
}

async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, DeliveryError> {
    // `without_url`: a Slack webhook's URL is its secret.
    req.send()
        .await
        .map_err(|e| DeliveryError::Unreachable(e.without_url().to_string()))
}

/// A 2xx answer's JSON body (`Null` when it is not JSON, as Slack's webhook `ok`), else
/// the status with its `Retry-After`.
async fn check(r: reqwest::Response) -> Result<Value, DeliveryError> {
    let status = r.status();
    let retry_after = r
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let text = r.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    let body = text
        .lines()
        .next()
        .map(|l| l.chars().take(200).collect::<String>());
    Err(DeliveryError::Status {
        status: status.as_u16(),
        retry_after,
        body: body.filter(|b| !b.is_empty()),
    })
}
