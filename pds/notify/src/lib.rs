//! Outgoing notifications of the PDS.
//!
//! * [`Notifier`] queues typed [`Message`]s (email confirmation, password
//!   reset, email update, account deletion, PLC operation signature,
//!   welcome, test) for a recipient on a [`Channel`]. The queue is the
//!   store's `notification` table, so it survives restarts.
//! * [`Worker`] claims due entries with a lease, renders them
//!   ([`Message::render`]: subject, plain text, HTML), sends them through the
//!   channel's [`Sender`], and marks them sent, or failed with exponential
//!   backoff up to a maximum attempt count.
//! * Senders: [`EmailSender`] (SMTP URL or sendmail), [`DiscordSender`],
//!   [`TelegramSender`], [`SignalSender`]; [`ChannelsConfig`] builds them from
//!   the environment.
//!
//! ```no_run
//! # async fn f(store: pds_store::Store) -> Result<(), pds_notify::NotifyError> {
//! use pds_notify::*;
//! let senders = ChannelsConfig::from_env()?.build()?;
//! let worker = Worker::new(store, senders, WorkerConfig::default())?;
//! let notifier = worker.notifier();
//! let handle = worker.spawn();
//! notifier
//!     .enqueue(Channel::Email, "alice@example.com", &Message::ConfirmEmail { token: "ABCDE-12345".into() })
//!     .await?;
//! // ...
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod chat;
mod config;
mod email;
mod error;
mod message;
mod sender;
mod worker;

pub use chat::{
    DiscordConfig, DiscordSender, SignalConfig, SignalSender, TelegramConfig, TelegramSender,
    DISCORD_API_URL, TELEGRAM_API_URL,
};
pub use config::ChannelsConfig;
pub use email::{EmailConfig, EmailSender, EmailTransportConfig};
pub use error::{NotifyError, RenderError, SendError};
pub use message::{escape_html, Message, RenderContext, Rendered};
pub use pds_store::{Notification, NotificationStatus};
pub use sender::{Channel, Sender, Senders};
pub use worker::{now_ms, BatchReport, Notifier, Worker, WorkerConfig, WorkerHandle};
