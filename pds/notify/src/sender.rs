//! Delivery channels and the [`Sender`] trait.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{NotifyError, SendError};
use crate::message::Rendered;

/// Where a notification goes, and so what its recipient string means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Recipient: an email address.
    Email,
    /// Recipient: a Discord user id (snowflake).
    Discord,
    /// Recipient: a Telegram chat id.
    Telegram,
    /// Recipient: a Signal phone number (E.164) or username.
    Signal,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Discord,
        Channel::Telegram,
        Channel::Signal,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Discord => "discord",
            Channel::Telegram => "telegram",
            Channel::Signal => "signal",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = NotifyError;
    fn from_str(s: &str) -> Result<Channel, NotifyError> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| NotifyError::Config(format!("unknown notification channel {s:?}")))
    }
}

/// Delivers rendered notifications over one channel.
#[async_trait]
pub trait Sender: Send + Sync {
    /// The channel this sender serves.
    fn channel(&self) -> Channel;

    /// Delivers one message. An error's [`SendError::is_permanent`] decides
    /// whether the worker retries.
    async fn send(&self, recipient: &str, message: &Rendered) -> Result<(), SendError>;
}

/// The senders a worker uses, at most one per channel.
#[derive(Clone, Default)]
pub struct Senders {
    by_channel: HashMap<Channel, Arc<dyn Sender>>,
}

impl Senders {
    pub fn new() -> Senders {
        Senders::default()
    }

    /// Adds (or replaces) the sender for its channel.
    pub fn with(mut self, sender: Arc<dyn Sender>) -> Senders {
        self.insert(sender);
        self
    }

    /// Adds (or replaces) the sender for its channel.
    pub fn insert(&mut self, sender: Arc<dyn Sender>) {
        self.by_channel.insert(sender.channel(), sender);
    }

    /// The sender for `channel`.
    pub fn get(&self, channel: Channel) -> Option<&Arc<dyn Sender>> {
        self.by_channel.get(&channel)
    }

    /// The channels served.
    pub fn channels(&self) -> Vec<Channel> {
        let mut c: Vec<Channel> = self.by_channel.keys().copied().collect();
        c.sort_by_key(|c| c.as_str());
        c
    }

    pub fn is_empty(&self) -> bool {
        self.by_channel.is_empty()
    }
}

impl fmt::Debug for Senders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Senders")
            .field("channels", &self.channels())
            .finish()
    }
}
