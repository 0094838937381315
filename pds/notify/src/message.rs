//! Typed notifications and their rendering (subject, plain text, HTML).
//!
//! Subjects follow the reference PDS's mailer; the bodies are this crate's
//! own short templates. Values from the payload are HTML-escaped in the HTML
//! part.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::RenderError;

/// A notification's content: what happened and the token the user needs.
///
/// Stored as its `kind` plus a JSON payload (see [`Message::kind`] and
/// [`Message::to_payload`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// `com.atproto.server.requestEmailConfirmation`.
    ConfirmEmail { token: String },
    /// `com.atproto.server.requestPasswordReset`; `identifier` is the handle
    /// (or the email address when the account has no handle).
    ResetPassword { identifier: String, token: String },
    /// `com.atproto.server.requestEmailUpdate`.
    UpdateEmail { token: String },
    /// `com.atproto.server.requestAccountDelete`.
    DeleteAccount { token: String },
    /// `com.atproto.identity.requestPlcOperationSignature`.
    PlcOperation { token: String },
    /// Sent once an account is created.
    Welcome { handle: String },
    /// An operator's test message (checks a channel's configuration).
    Test { text: String },
    /// A moderator's message to an account (`com.atproto.admin.sendEmail`):
    /// the subject and plain-text content as the moderator wrote them, and
    /// a line naming the service.
    Moderation { subject: String, content: String },
}

/// A message rendered for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    /// Plain text body (email text part; the whole message on chat channels).
    pub text: String,
    /// HTML body (email HTML part).
    pub html: String,
}

impl Rendered {
    /// Subject and text in one block, for chat channels.
    pub fn chat_text(&self) -> String {
        format!("{}\n\n{}", self.subject, self.text)
    }
}

/// What templates know about the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderContext {
    /// How the service names itself, e.g. its hostname.
    pub service_name: String,
}

impl Default for RenderContext {
    fn default() -> Self {
        RenderContext {
            service_name: "your Personal Data Server".to_owned(),
        }
    }
}

impl Message {
    /// Every kind, as stored.
    pub const KINDS: [&'static str; 8] = [
        "confirm_email",
        "reset_password",
        "update_email",
        "delete_account",
        "plc_operation",
        "welcome",
        "test",
        "moderation",
    ];

    /// The stored kind, e.g. `confirm_email`.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::ConfirmEmail { .. } => "confirm_email",
            Message::ResetPassword { .. } => "reset_password",
            Message::UpdateEmail { .. } => "update_email",
            Message::DeleteAccount { .. } => "delete_account",
            Message::PlcOperation { .. } => "plc_operation",
            Message::Welcome { .. } => "welcome",
            Message::Test { .. } => "test",
            Message::Moderation { .. } => "moderation",
        }
    }

    /// The stored payload (JSON text, including the kind).
    pub fn to_payload(&self) -> Result<String, RenderError> {
        serde_json::to_string(self).map_err(RenderError::Encode)
    }

    /// Reads a stored notification back; the payload's kind must match.
    pub fn from_stored(kind: &str, payload: &str) -> Result<Message, RenderError> {
        let msg: Message = serde_json::from_str(payload).map_err(|e| RenderError::Payload {
            kind: kind.to_owned(),
            source: e,
        })?;
        if msg.kind() != kind {
            return Err(RenderError::KindMismatch {
                kind: kind.to_owned(),
                payload_kind: msg.kind().to_owned(),
            });
        }
        Ok(msg)
    }

    /// The token carried, if any.
    pub fn token(&self) -> Option<&str> {
        match self {
            Message::ConfirmEmail { token }
            | Message::ResetPassword { token, .. }
            | Message::UpdateEmail { token }
            | Message::DeleteAccount { token }
            | Message::PlcOperation { token } => Some(token),
            Message::Welcome { .. } | Message::Test { .. } | Message::Moderation { .. } => None,
        }
    }

    /// Renders subject, text and HTML.
    pub fn render(&self, ctx: &RenderContext) -> Rendered {
        let service = ctx.service_name.as_str();
        match self {
            Message::ConfirmEmail { token } => with_token(
                "Email Confirmation",
                "Confirm your email",
                &[&format!(
                    "Please confirm your email address for your account on {service}. \
                     Enter this code in your app:"
                )],
                token,
                "If you did not request this, you can ignore this message.",
            ),
            Message::ResetPassword { identifier, token } => with_token(
                "Password Reset Requested",
                "Reset your password",
                &[
                    &format!("Hi {identifier},"),
                    &format!(
                        "We received a request to reset the password of your account on \
                         {service}. Enter this reset code in your app to choose a new password:"
                    ),
                ],
                token,
                "If you did not request a password reset, you can ignore this message: \
                 your password has not been changed.",
            ),
            Message::UpdateEmail { token } => with_token(
                "Email Update Requested",
                "Update your email",
                &[&format!(
                    "We received a request to change the email address of your account on \
                     {service}. Enter this code in your app to confirm the change:"
                )],
                token,
                "If you did not request this change, you can ignore this message and \
                 consider changing your password.",
            ),
            Message::DeleteAccount { token } => with_token(
                "Account Deletion Requested",
                "Delete your account",
                &[&format!(
                    "We received a request to permanently delete your account on {service}. \
                     Enter this code in your app to confirm the deletion:"
                )],
                token,
                "If you did not request this, do not share this code; you can ignore this \
                 message and consider changing your password.",
            ),
            Message::PlcOperation { token } => with_token(
                "PLC Update Operation Requested",
                "Confirm an identity update",
                &[&format!(
                    "We received a request to sign an update to the identity (DID PLC \
                     operation) of your account on {service}. Enter this code in your app \
                     to confirm it:"
                )],
                token,
                "If you did not request this, do not share this code: it lets the holder \
                 change where your account lives.",
            ),
            Message::Welcome { handle } => {
                let subject = format!("Welcome to {service}");
                let line = format!("Your account @{handle} has been created on {service}.");
                let text = format!("Welcome!\n\n{line}\n");
                let html = html_page(
                    &subject,
                    &format!("<h1>Welcome!</h1>\n<p>{}</p>", escape_html(&line)),
                );
                Rendered {
                    subject,
                    text,
                    html,
                }
            }
            Message::Test { text } => {
                let subject = "Test notification".to_owned();
                let body = format!("This is a test notification from {service}.\n\n{text}\n");
                let html = html_page(
                    &subject,
                    &format!(
                        "<p>{}</p>\n<p>{}</p>",
                        escape_html(&format!("This is a test notification from {service}.")),
                        escape_html(text)
                    ),
                );
                Rendered {
                    subject,
                    text: body,
                    html,
                }
            }
            Message::Moderation { subject, content } => {
                let paragraphs: Vec<String> = content
                    .split("\n\n")
                    .map(|p| format!("<p>{}</p>", escape_html(p).replace('\n', "<br>")))
                    .collect();
                let footer = format!("Sent by the moderators of {service}.");
                Rendered {
                    subject: subject.clone(),
                    text: format!("{content}\n\n{footer}\n"),
                    html: html_page(
                        subject,
                        &format!(
                            "{}\n<p><small>{}</small></p>",
                            paragraphs.join("\n"),
                            escape_html(&footer)
                        ),
                    ),
                }
            }
        }
    }
}

fn with_token(subject: &str, heading: &str, intro: &[&str], token: &str, outro: &str) -> Rendered {
    let mut text = String::new();
    for p in intro {
        text.push_str(p);
        text.push_str("\n\n");
    }
    // Writing to a String cannot fail.
    let _ = write!(text, "    {token}\n\n{outro}\n");
    let mut body = format!("<h1>{}</h1>\n", escape_html(heading));
    for p in intro {
        let _ = writeln!(body, "<p>{}</p>", escape_html(p));
    }
    let _ = write!(
        body,
        "<p style=\"font-size:1.5em;font-family:monospace;letter-spacing:0.1em\">\
         <strong>{}</strong></p>\n<p>{}</p>",
        escape_html(token),
        escape_html(outro)
    );
    Rendered {
        subject: subject.to_owned(),
        text,
        html: html_page(subject, &body),
    }
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;line-height:1.5\">\n{body}\n</body>\n</html>\n",
        escape_html(title)
    )
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Message> {
        vec![
            Message::ConfirmEmail {
                token: "TOK-CONFIRM".into(),
            },
            Message::ResetPassword {
                identifier: "alice.test".into(),
                token: "TOK-RESET".into(),
            },
            Message::UpdateEmail {
                token: "TOK-UPDATE".into(),
            },
            Message::DeleteAccount {
                token: "TOK-DELETE".into(),
            },
            Message::PlcOperation {
                token: "TOK-PLC".into(),
            },
            Message::Welcome {
                handle: "alice.test".into(),
            },
            Message::Test {
                text: "hello".into(),
            },
            Message::Moderation {
                subject: "A note".into(),
                content: "hello <b>\n\nbye".into(),
            },
        ]
    }

    #[test]
    fn kinds_round_trip_through_storage() {
        let msgs = all();
        assert_eq!(msgs.len(), Message::KINDS.len());
        for (m, kind) in msgs.iter().zip(Message::KINDS) {
            assert_eq!(m.kind(), kind);
            let payload = m.to_payload().expect("encode");
            assert_eq!(&Message::from_stored(kind, &payload).expect("decode"), m);
        }
    }

    #[test]
    fn stored_kind_must_match_payload() {
        let payload = Message::UpdateEmail { token: "x".into() }
            .to_payload()
            .expect("encode");
        assert!(matches!(
            Message::from_stored("delete_account", &payload),
            Err(RenderError::KindMismatch { .. })
        ));
        assert!(matches!(
            Message::from_stored("confirm_email", "{\"kind\":\"confirm_email\"}"),
            Err(RenderError::Payload { .. })
        ));
        assert!(matches!(
            Message::from_stored("confirm_email", "not json"),
            Err(RenderError::Payload { .. })
        ));
        assert!(matches!(
            Message::from_stored(
                "confirm_email",
                "{\"kind\":\"confirm_email\",\"token\":\"a\",\"extra\":1}"
            ),
            Err(RenderError::Payload { .. })
        ));
    }

    #[test]
    fn reference_subjects() {
        let ctx = RenderContext::default();
        let subjects: Vec<String> = all().iter().map(|m| m.render(&ctx).subject).collect();
        assert_eq!(
            subjects,
            [
                "Email Confirmation",
                "Password Reset Requested",
                "Email Update Requested",
                "Account Deletion Requested",
                "PLC Update Operation Requested",
                "Welcome to your Personal Data Server",
                "Test notification",
                "A note",
            ]
        );
    }

    #[test]
    fn moderation_message_keeps_content_and_escapes_html() {
        let m = Message::Moderation {
            subject: "A note".into(),
            content: "hello <b>\n\nbye".into(),
        };
        let r = m.render(&RenderContext::default());
        assert!(r.text.starts_with("hello <b>\n\nbye\n"), "{}", r.text);
        assert!(r.html.contains("<p>hello &lt;b&gt;</p>"), "{}", r.html);
        assert!(r.html.contains("<p>bye</p>"), "{}", r.html);
    }

    #[test]
    fn tokens_appear_in_both_parts() {
        let ctx = RenderContext {
            service_name: "pds.example".into(),
        };
        for m in all() {
            let r = m.render(&ctx);
            if let Some(token) = m.token() {
                assert!(r.text.contains(token), "{}: {}", m.kind(), r.text);
                assert!(r.html.contains(token), "{}: {}", m.kind(), r.html);
                assert!(r.chat_text().contains(token));
            }
            assert!(r.text.contains("pds.example"), "{}", r.text);
            assert!(r.html.starts_with("<!DOCTYPE html>"));
        }
        let r = Message::ResetPassword {
            identifier: "bob.test".into(),
            token: "T".into(),
        }
        .render(&ctx);
        assert!(r.text.contains("Hi bob.test,"));
    }

    #[test]
    fn html_is_escaped() {
        let r = Message::ResetPassword {
            identifier: "<script>alert('x')</script>".into(),
            token: "A&B\"C".into(),
        }
        .render(&RenderContext {
            service_name: "a<b".into(),
        });
        assert!(!r.html.contains("<script>"));
        assert!(r
            .html
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(r.html.contains("A&amp;B&quot;C"));
        assert!(r.html.contains("a&lt;b"));
        // The text part is verbatim.
        assert!(r.text.contains("A&B\"C"));
    }
}
