//! Chat channels over their HTTP APIs: Discord (bot API), Telegram (bot
//! API) and Signal (signal-cli REST API). Each takes a base URL, so a
//! deployment (or a test) can point it elsewhere.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use crate::error::{NotifyError, SendError};
use crate::message::Rendered;
use crate::sender::{Channel, Sender};

/// Discord's API base.
pub const DISCORD_API_URL: &str = "https://discord.com/api/v10";
/// Telegram's Bot API base.
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// Discord's message length limit (characters).
const DISCORD_MAX_CHARS: usize = 2000;
/// Telegram's message length limit (characters).
const TELEGRAM_MAX_CHARS: usize = 4096;
/// How much of an error answer is kept.
const MAX_ERROR_BODY: usize = 512;

fn http_client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| NotifyError::Config(format!("HTTP client: {e}")))
}

/// Checks an API base URL and drops a trailing slash.
fn base_url(what: &str, url: &str) -> Result<String, NotifyError> {
    let u = url::Url::parse(url)
        .map_err(|e| NotifyError::Config(format!("{what} API URL {url:?}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(NotifyError::Config(format!(
            "{what} API URL {url:?}: expected http(s)://host[/path]"
        )));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(NotifyError::Config(format!(
            "{what} API URL {url:?}: no query or fragment allowed"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Cuts `s` to at most `max` characters, marking the cut.
fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// POSTs JSON and returns the JSON answer of a 2xx response.
async fn post_json(
    service: &'static str,
    request: reqwest::RequestBuilder,
    body: &Value,
) -> Result<Value, SendError> {
    let http = |e: reqwest::Error| SendError::Http {
        service,
        // The URL can hold a bot token (Telegram): keep it out of errors.
        source: e.without_url(),
    };
    let resp = request.json(body).send().await.map_err(http)?;
    let status = resp.status();
    let text = resp.text().await.map_err(http)?;
    if !status.is_success() {
        return Err(SendError::Status {
            service,
            status: status.as_u16(),
            body: truncate_chars(&text, MAX_ERROR_BODY),
        });
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| SendError::BadResponse {
        service,
        detail: format!("not JSON ({e}): {}", truncate_chars(&text, MAX_ERROR_BODY)),
    })
}

fn is_snowflake(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Discord bot settings.
#[derive(Clone, PartialEq, Eq)]
pub struct DiscordConfig {
    pub bot_token: String,
    /// Default [`DISCORD_API_URL`].
    pub api_url: String,
    pub timeout: Duration,
}

impl DiscordConfig {
    pub fn new(bot_token: impl Into<String>) -> DiscordConfig {
        DiscordConfig {
            bot_token: bot_token.into(),
            api_url: DISCORD_API_URL.to_owned(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("bot_token", &"REDACTED")
            .field("api_url", &self.api_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends [`Channel::Discord`] notifications as direct messages from a bot:
/// `POST /users/@me/channels` opens (or finds) the DM channel with the
/// recipient (a user id), then `POST /channels/{id}/messages` posts.
pub struct DiscordSender {
    client: reqwest::Client,
    base: String,
    auth: String,
}

impl DiscordSender {
    pub fn new(config: &DiscordConfig) -> Result<DiscordSender, NotifyError> {
        if config.bot_token.is_empty() {
            return Err(NotifyError::Config("Discord bot token is empty".into()));
        }
        Ok(DiscordSender {
            client: http_client(config.timeout)?,
            base: base_url("Discord", &config.api_url)?,
            auth: format!("Bot {}", config.bot_token),
        })
    }
}

#[async_trait]
impl Sender for DiscordSender {
    fn channel(&self) -> Channel {
        Channel::Discord
    }

    async fn send(&self, recipient: &str, message: &Rendered) -> Result<(), SendError> {
        const SERVICE: &str = "Discord";
        if !is_snowflake(recipient) {
            return Err(SendError::InvalidRecipient {
                recipient: recipient.to_owned(),
                reason: "a Discord user id is a decimal number".into(),
            });
        }
        let dm = post_json(
            SERVICE,
            self.client
                .post(format!("{}/users/@me/channels", self.base))
                .header(AUTHORIZATION, &self.auth),
            &json!({ "recipient_id": recipient }),
        )
        .await?;
        let channel_id = dm
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_snowflake(id))
            .ok_or_else(|| SendError::BadResponse {
                service: SERVICE,
                detail: "DM channel without an id".into(),
            })?;
        post_json(
            SERVICE,
            self.client
                .post(format!("{}/channels/{channel_id}/messages", self.base))
                .header(AUTHORIZATION, &self.auth),
            &json!({ "content": truncate_chars(&message.chat_text(), DISCORD_MAX_CHARS) }),
        )
        .await?;
        Ok(())
    }
}

/// Telegram bot settings.
#[derive(Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    pub bot_token: String,
    /// Default [`TELEGRAM_API_URL`].
    pub api_url: String,
    pub timeout: Duration,
}

impl TelegramConfig {
    pub fn new(bot_token: impl Into<String>) -> TelegramConfig {
        TelegramConfig {
            bot_token: bot_token.into(),
            api_url: TELEGRAM_API_URL.to_owned(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("bot_token", &"REDACTED")
            .field("api_url", &self.api_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends [`Channel::Telegram`] notifications with the Bot API's
/// `POST /bot{token}/sendMessage`; the recipient is a chat id (or
/// `@channelname`).
pub struct TelegramSender {
    client: reqwest::Client,
    send_url: String,
}

impl TelegramSender {
    pub fn new(config: &TelegramConfig) -> Result<TelegramSender, NotifyError> {
        let token = &config.bot_token;
        if token.is_empty()
            || token.contains(['/', '?', '#'])
            || token.contains(char::is_whitespace)
        {
            return Err(NotifyError::Config(
                "Telegram bot token is empty or malformed".into(),
            ));
        }
        let base = base_url("Telegram", &config.api_url)?;
        Ok(TelegramSender {
            client: http_client(config.timeout)?,
            send_url: format!("{base}/bot{token}/sendMessage"),
        })
    }
}

#[async_trait]
impl Sender for TelegramSender {
    fn channel(&self) -> Channel {
        Channel::Telegram
    }

    async fn send(&self, recipient: &str, message: &Rendered) -> Result<(), SendError> {
        const SERVICE: &str = "Telegram";
        let chat_id = if let Ok(n) = recipient.parse::<i64>() {
            json!(n)
        } else if recipient.len() > 1
            && recipient.starts_with('@')
            && recipient[1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            json!(recipient)
        } else {
            return Err(SendError::InvalidRecipient {
                recipient: recipient.to_owned(),
                reason: "a Telegram chat id is a number or @username".into(),
            });
        };
        let answer = post_json(
            SERVICE,
            self.client.post(&self.send_url),
            &json!({
                "chat_id": chat_id,
                "text": truncate_chars(&message.chat_text(), TELEGRAM_MAX_CHARS),
            }),
        )
        .await?;
        if answer.get("ok").and_then(Value::as_bool) != Some(true) {
            return Err(SendError::BadResponse {
                service: SERVICE,
                detail: truncate_chars(&answer.to_string(), MAX_ERROR_BODY),
            });
        }
        Ok(())
    }
}

/// signal-cli REST API settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalConfig {
    /// Where signal-cli-rest-api listens, e.g. `http://127.0.0.1:8080`.
    pub api_url: String,
    /// The registered account that sends, e.g. `+15550100`.
    pub number: String,
    pub timeout: Duration,
}

impl SignalConfig {
    pub fn new(api_url: impl Into<String>, number: impl Into<String>) -> SignalConfig {
        SignalConfig {
            api_url: api_url.into(),
            number: number.into(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Sends [`Channel::Signal`] notifications through signal-cli-rest-api's
/// `POST /v2/send`; the recipient is a phone number or username.
pub struct SignalSender {
    client: reqwest::Client,
    send_url: String,
    number: String,
}

impl SignalSender {
    pub fn new(config: &SignalConfig) -> Result<SignalSender, NotifyError> {
        if config.number.is_empty() {
            return Err(NotifyError::Config("Signal sender number is empty".into()));
        }
        let base = base_url("Signal", &config.api_url)?;
        Ok(SignalSender {
            client: http_client(config.timeout)?,
            send_url: format!("{base}/v2/send"),
            number: config.number.clone(),
        })
    }
}

#[async_trait]
impl Sender for SignalSender {
    fn channel(&self) -> Channel {
        Channel::Signal
    }

    async fn send(&self, recipient: &str, message: &Rendered) -> Result<(), SendError> {
        if recipient.is_empty() || recipient.contains(char::is_whitespace) {
            return Err(SendError::InvalidRecipient {
                recipient: recipient.to_owned(),
                reason: "a Signal recipient is a phone number or username".into(),
            });
        }
        post_json(
            "Signal",
            self.client.post(&self.send_url),
            &json!({
                "message": message.chat_text(),
                "number": self.number,
                "recipients": [recipient],
            }),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_by_character() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("ééééé", 4).chars().count(), 4);
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("x", "http://127.0.0.1:8080/api/").expect("ok"),
            "http://127.0.0.1:8080/api"
        );
        for bad in ["ftp://h", "h", "http://h/?a=b", "http://h/#f"] {
            assert!(base_url("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configs_hide_tokens() {
        let d = format!(
            "{:?} {:?}",
            DiscordConfig::new("secret-discord"),
            TelegramConfig::new("secret-telegram")
        );
        assert!(!d.contains("secret"), "{d}");
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        assert!(TelegramSender::new(&TelegramConfig::new("a/b")).is_err());
        assert!(TelegramSender::new(&TelegramConfig::new("")).is_err());
        assert!(DiscordSender::new(&DiscordConfig::new("")).is_err());
        assert!(SignalSender::new(&SignalConfig::new("http://h", "")).is_err());
    }
}
