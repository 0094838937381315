//! Email over SMTP (lettre, rustls) or a local `sendmail` program.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSendmailTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::error::{NotifyError, SendError};
use crate::message::Rendered;
use crate::sender::{Channel, Sender};

/// How email leaves the server.
#[derive(Clone, PartialEq, Eq)]
pub enum EmailTransportConfig {
    /// An SMTP server, as a URL in the reference PDS's `PDS_EMAIL_SMTP_URL`
    /// form:
    ///
    /// * `smtps://user:pass@host[:465]` — TLS from the first byte;
    /// * `smtp://user:pass@host[:587]` — STARTTLS when the server offers it
    ///   (as nodemailer does); `?tls=required` insists on STARTTLS;
    ///   `?tls=none` never uses TLS (port 25 by default).
    ///
    /// User and password are percent-decoded; a path names the HELO domain.
    Smtp { url: String },
    /// A sendmail-compatible program, run as `PROGRAM -i -f FROM -- TO`
    /// with the message on its standard input.
    Sendmail { program: PathBuf },
}

impl fmt::Debug for EmailTransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmailTransportConfig::Smtp { url } => f
                .debug_struct("Smtp")
                .field("url", &redact_url(url))
                .finish(),
            EmailTransportConfig::Sendmail { program } => f
                .debug_struct("Sendmail")
                .field("program", program)
                .finish(),
        }
    }
}

fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("REDACTED"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// Email settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    pub transport: EmailTransportConfig,
    /// `PDS_EMAIL_FROM_ADDRESS`: `addr@host` or `Name <addr@host>`.
    pub from_address: String,
    /// Extra certificate authorities (PEM) trusted for SMTP TLS, beside the
    /// built-in web PKI roots.
    pub root_certificates_pem: Vec<Vec<u8>>,
    /// SMTP connection and command timeout.
    pub timeout: Duration,
}

impl EmailConfig {
    pub fn smtp(url: impl Into<String>, from_address: impl Into<String>) -> EmailConfig {
        EmailConfig {
            transport: EmailTransportConfig::Smtp { url: url.into() },
            from_address: from_address.into(),
            root_certificates_pem: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }

    pub fn sendmail(program: impl Into<PathBuf>, from_address: impl Into<String>) -> EmailConfig {
        EmailConfig {
            transport: EmailTransportConfig::Sendmail {
                program: program.into(),
            },
            from_address: from_address.into(),
            root_certificates_pem: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Sendmail(AsyncSendmailTransport<Tokio1Executor>),
}

/// Sends [`Channel::Email`] notifications as multipart (text + HTML) mail.
pub struct EmailSender {
    transport: Transport,
    from: Mailbox,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsMode {
    None,
    Opportunistic,
    Required,
    Wrapper,
}

/// Rewrites an SMTP URL into the form lettre reads, and tells its TLS mode.
fn normalize_smtp_url(url: &str) -> Result<(String, TlsMode), NotifyError> {
    let bad = |why: String| NotifyError::Config(format!("SMTP URL {}: {why}", redact_url(url)));
    let mut u = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    let mut tls: Option<String> = None;
    let mut rest: Vec<(String, String)> = Vec::new();
    for (k, v) in u.query_pairs() {
        if k == "tls" {
            tls = Some(v.into_owned());
        } else {
            rest.push((k.into_owned(), v.into_owned()));
        }
    }
    let mode = match (u.scheme(), tls.as_deref()) {
        ("smtps", None) => TlsMode::Wrapper,
        ("smtp", None | Some("opportunistic")) => TlsMode::Opportunistic,
        ("smtp", Some("required")) => TlsMode::Required,
        ("smtp", Some("none")) => TlsMode::None,
        ("smtp" | "smtps", Some(other)) => {
            return Err(bad(format!(
                "tls={other:?} (expected required, opportunistic or none; only with smtp://)"
            )))
        }
        (scheme, _) => return Err(bad(format!("scheme {scheme:?} (expected smtp or smtps)"))),
    };
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &rest {
            q.append_pair(k, v);
        }
        match mode {
            TlsMode::Opportunistic => {
                q.append_pair("tls", "opportunistic");
            }
            TlsMode::Required => {
                q.append_pair("tls", "required");
            }
            TlsMode::None | TlsMode::Wrapper => {}
        }
    }
    if u.query() == Some("") {
        u.set_query(None);
    }
    Ok((u.to_string(), mode))
}

impl EmailSender {
    /// Builds the sender; fails on a bad URL, from address or certificate.
    pub fn new(config: &EmailConfig) -> Result<EmailSender, NotifyError> {
        let from: Mailbox = config.from_address.parse().map_err(|e| {
            NotifyError::Config(format!("email from address {:?}: {e}", config.from_address))
        })?;
        let transport = match &config.transport {
            EmailTransportConfig::Smtp { url } => {
                let (url, mode) = normalize_smtp_url(url)?;
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                    .map_err(|e| NotifyError::Config(format!("SMTP URL: {e}")))?
                    .timeout(Some(config.timeout));
                if !config.root_certificates_pem.is_empty() && mode != TlsMode::None {
                    let host = url::Url::parse(&url)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_owned))
                        .ok_or_else(|| NotifyError::Config("SMTP URL: no host".into()))?;
                    let mut params = TlsParameters::builder(host);
                    for pem in &config.root_certificates_pem {
                        let cert = Certificate::from_pem(pem).map_err(|e| {
                            NotifyError::Config(format!("SMTP root certificate: {e}"))
                        })?;
                        params = params.add_root_certificate(cert);
                    }
                    let params = params
                        .build()
                        .map_err(|e| NotifyError::Config(format!("SMTP TLS parameters: {e}")))?;
                    builder = builder.tls(match mode {
                        TlsMode::Opportunistic => Tls::Opportunistic(params),
                        TlsMode::Required => Tls::Required(params),
                        TlsMode::Wrapper | TlsMode::None => Tls::Wrapper(params),
                    });
                }
                Transport::Smtp(builder.build())
            }
            EmailTransportConfig::Sendmail { program } => Transport::Sendmail(
                AsyncSendmailTransport::<Tokio1Executor>::new_with_command(program.as_os_str()),
            ),
        };
        Ok(EmailSender { transport, from })
    }

    /// Checks that the SMTP server accepts a connection (and, with
    /// credentials, a login). Always true for sendmail.
    pub async fn test_connection(&self) -> Result<bool, SendError> {
        match &self.transport {
            Transport::Smtp(t) => Ok(t.test_connection().await?),
            Transport::Sendmail(_) => Ok(true),
        }
    }
}

#[async_trait]
impl Sender for EmailSender {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn send(&self, recipient: &str, message: &Rendered) -> Result<(), SendError> {
        let to: Mailbox = recipient
            .parse()
            .map_err(
                |e: lettre::address::AddressError| SendError::InvalidRecipient {
                    recipient: recipient.to_owned(),
                    reason: e.to_string(),
                },
            )?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))?;
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(email).await?;
            }
            Transport::Sendmail(t) => {
                t.send(email).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let n = |u: &str| normalize_smtp_url(u).expect(u);
        assert_eq!(
            n("smtps://user:pa%40ss@mail.example.com"),
            (
                "smtps://user:pa%40ss@mail.example.com".into(),
                TlsMode::Wrapper
            )
        );
        assert_eq!(
            n("smtp://u:p@mail.example.com:2525"),
            (
                "smtp://u:p@mail.example.com:2525?tls=opportunistic".into(),
                TlsMode::Opportunistic
            )
        );
        assert_eq!(
            n("smtp://mail.example.com/helo.example?tls=required"),
            (
                "smtp://mail.example.com/helo.example?tls=required".into(),
                TlsMode::Required
            )
        );
        assert_eq!(
            n("smtp://mail.example.com?tls=none"),
            ("smtp://mail.example.com".into(), TlsMode::None)
        );
        for bad in [
            "http://mail.example.com",
            "smtps://mail.example.com?tls=none",
            "smtp://mail.example.com?tls=maybe",
            "smtp://",
            "not a url",
        ] {
            assert!(
                matches!(normalize_smtp_url(bad), Err(NotifyError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_redacts_password() {
        let c = EmailConfig::smtp("smtps://user:hunter2@mail.example.com", "a@b.c");
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("user:REDACTED@mail.example.com"), "{d}");
    }

    #[test]
    fn bad_from_address_is_a_config_error() {
        assert!(matches!(
            EmailSender::new(&EmailConfig::smtp("smtp://localhost", "not an address")),
            Err(NotifyError::Config(_))
        ));
    }

    #[tokio::test]
    async fn bad_recipient_is_permanent() {
        let s = EmailSender::new(&EmailConfig::smtp("smtp://127.0.0.1:1", "pds@example.com"))
            .expect("sender");
        let r = Rendered {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        };
        let err = s.send("no-at-sign", &r).await.expect_err("must fail");
        assert!(matches!(err, SendError::InvalidRecipient { .. }));
        assert!(err.is_permanent());
    }
}
