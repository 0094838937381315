//! Channel settings, from the environment or built in code.

use std::path::PathBuf;
use std::sync::Arc;

use crate::chat::{
    DiscordConfig, DiscordSender, SignalConfig, SignalSender, TelegramConfig, TelegramSender,
    DISCORD_API_URL, TELEGRAM_API_URL,
};
use crate::email::{EmailConfig, EmailSender};
use crate::error::NotifyError;
use crate::sender::Senders;

/// Which channels are configured, and how.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelsConfig {
    pub email: Option<EmailConfig>,
    pub discord: Option<DiscordConfig>,
    pub telegram: Option<TelegramConfig>,
    pub signal: Option<SignalConfig>,
}

impl ChannelsConfig {
    /// Reads the process environment; see [`ChannelsConfig::from_lookup`].
    pub fn from_env() -> Result<ChannelsConfig, NotifyError> {
        ChannelsConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (an environment lookup):
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `PDS_EMAIL_SMTP_URL` | `smtp://` / `smtps://` URL (see [`crate::EmailTransportConfig::Smtp`]) |
    /// | `PDS_EMAIL_SENDMAIL_PATH` | instead of SMTP: a sendmail-compatible program |
    /// | `PDS_EMAIL_FROM_ADDRESS` | sender address; required with either of the above |
    /// | `PDS_DISCORD_BOT_TOKEN`, `PDS_DISCORD_API_URL` | Discord bot (API URL optional) |
    /// | `PDS_TELEGRAM_BOT_TOKEN`, `PDS_TELEGRAM_API_URL` | Telegram bot (API URL optional) |
    /// | `PDS_SIGNAL_API_URL`, `PDS_SIGNAL_NUMBER` | signal-cli REST API and the sending number (both or neither) |
    ///
    /// Empty values count as unset.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<ChannelsConfig, NotifyError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let missing = |what: &str, needs: &str| {
            Err(NotifyError::Config(format!(
                "{what} is set but {needs} is not"
            )))
        };

        let from = get("PDS_EMAIL_FROM_ADDRESS");
        let email = match (get("PDS_EMAIL_SMTP_URL"), get("PDS_EMAIL_SENDMAIL_PATH")) {
            (Some(_), Some(_)) => {
                return Err(NotifyError::Config(
                    "set PDS_EMAIL_SMTP_URL or PDS_EMAIL_SENDMAIL_PATH, not both".into(),
                ))
            }
            (Some(url), None) => match from {
                Some(from) => Some(EmailConfig::smtp(url, from)),
                None => return missing("PDS_EMAIL_SMTP_URL", "PDS_EMAIL_FROM_ADDRESS"),
            },
            (None, Some(path)) => match from {
                Some(from) => Some(EmailConfig::sendmail(PathBuf::from(path), from)),
                None => return missing("PDS_EMAIL_SENDMAIL_PATH", "PDS_EMAIL_FROM_ADDRESS"),
            },
            (None, None) => None,
        };

        let discord = match (get("PDS_DISCORD_BOT_TOKEN"), get("PDS_DISCORD_API_URL")) {
            (Some(token), url) => Some(DiscordConfig {
                api_url: url.unwrap_or_else(|| DISCORD_API_URL.to_owned()),
                ..DiscordConfig::new(token)
            }),
            (None, Some(_)) => return missing("PDS_DISCORD_API_URL", "PDS_DISCORD_BOT_TOKEN"),
            (None, None) => None,
        };

        let telegram = match (get("PDS_TELEGRAM_BOT_TOKEN"), get("PDS_TELEGRAM_API_URL")) {
            (Some(token), url) => Some(TelegramConfig {
                api_url: url.unwrap_or_else(|| TELEGRAM_API_URL.to_owned()),
                ..TelegramConfig::new(token)
            }),
            (None, Some(_)) => return missing("PDS_TELEGRAM_API_URL", "PDS_TELEGRAM_BOT_TOKEN"),
            (None, None) => None,
        };

        let signal = match (get("PDS_SIGNAL_API_URL"), get("PDS_SIGNAL_NUMBER")) {
            (Some(url), Some(number)) => Some(SignalConfig::new(url, number)),
            (Some(_), None) => return missing("PDS_SIGNAL_API_URL", "PDS_SIGNAL_NUMBER"),
            (None, Some(_)) => return missing("PDS_SIGNAL_NUMBER", "PDS_SIGNAL_API_URL"),
            (None, None) => None,
        };

        Ok(ChannelsConfig {
            email,
            discord,
            telegram,
            signal,
        })
    }

    /// Builds a sender for each configured channel.
    pub fn build(&self) -> Result<Senders, NotifyError> {
        let mut s = Senders::new();
        if let Some(c) = &self.email {
            s.insert(Arc::new(EmailSender::new(c)?));
        }
        if let Some(c) = &self.discord {
            s.insert(Arc::new(DiscordSender::new(c)?));
        }
        if let Some(c) = &self.telegram {
            s.insert(Arc::new(TelegramSender::new(c)?));
        }
        if let Some(c) = &self.signal {
            s.insert(Arc::new(SignalSender::new(c)?));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::email::EmailTransportConfig;
    use crate::sender::Channel;

    fn read(vars: &[(&str, &str)]) -> Result<ChannelsConfig, NotifyError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ChannelsConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn nothing_configured() {
        let c = read(&[]).expect("empty");
        assert_eq!(c, ChannelsConfig::default());
        assert!(c.build().expect("build").is_empty());
        assert_eq!(
            read(&[("PDS_EMAIL_SMTP_URL", " ")]).expect("blank"),
            ChannelsConfig::default()
        );
    }

    #[test]
    fn everything_configured() {
        let c = read(&[
            ("PDS_EMAIL_SMTP_URL", "smtps://u:p@mail.example.com"),
            ("PDS_EMAIL_FROM_ADDRESS", "PDS <pds@example.com>"),
            ("PDS_DISCORD_BOT_TOKEN", "dtok"),
            ("PDS_TELEGRAM_BOT_TOKEN", "123:abc"),
            ("PDS_TELEGRAM_API_URL", "http://127.0.0.1:9/tg"),
            ("PDS_SIGNAL_API_URL", "http://127.0.0.1:8080"),
            ("PDS_SIGNAL_NUMBER", "+15550100"),
        ])
        .expect("config");
        let email = c.email.as_ref().expect("email");
        assert_eq!(
            email.transport,
            EmailTransportConfig::Smtp {
                url: "smtps://u:p@mail.example.com".into()
            }
        );
        assert_eq!(email.from_address, "PDS <pds@example.com>");
        assert_eq!(
            c.discord.as_ref().map(|d| d.api_url.as_str()),
            Some(DISCORD_API_URL)
        );
        assert_eq!(
            c.telegram.as_ref().map(|t| t.api_url.as_str()),
            Some("http://127.0.0.1:9/tg")
        );
        assert_eq!(
            c.signal.as_ref().map(|s| s.number.as_str()),
            Some("+15550100")
        );
        assert_eq!(
            c.build().expect("build").channels(),
            [
                Channel::Discord,
                Channel::Email,
                Channel::Signal,
                Channel::Telegram
            ]
        );
    }

    #[test]
    fn sendmail() {
        let c = read(&[
            ("PDS_EMAIL_SENDMAIL_PATH", "/usr/sbin/sendmail"),
            ("PDS_EMAIL_FROM_ADDRESS", "pds@example.com"),
        ])
        .expect("config");
        assert_eq!(
            c.email.map(|e| e.transport),
            Some(EmailTransportConfig::Sendmail {
                program: "/usr/sbin/sendmail".into()
            })
        );
    }

    #[test]
    fn incomplete_settings_are_errors() {
        for vars in [
            &[("PDS_EMAIL_SMTP_URL", "smtp://h")][..],
            &[("PDS_EMAIL_SENDMAIL_PATH", "/bin/true")][..],
            &[
                ("PDS_EMAIL_SMTP_URL", "smtp://h"),
                ("PDS_EMAIL_SENDMAIL_PATH", "/bin/true"),
                ("PDS_EMAIL_FROM_ADDRESS", "a@b.c"),
            ][..],
            &[("PDS_DISCORD_API_URL", "http://h")][..],
            &[("PDS_TELEGRAM_API_URL", "http://h")][..],
            &[("PDS_SIGNAL_API_URL", "http://h")][..],
            &[("PDS_SIGNAL_NUMBER", "+1555")][..],
        ] {
            assert!(
                matches!(read(vars), Err(NotifyError::Config(_))),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn bad_values_fail_at_build() {
        let c = read(&[
            ("PDS_EMAIL_SMTP_URL", "http://mail.example.com"),
            ("PDS_EMAIL_FROM_ADDRESS", "a@b.c"),
        ])
        .expect("read");
        assert!(matches!(c.build(), Err(NotifyError::Config(_))));
    }
}
