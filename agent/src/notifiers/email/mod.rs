//! `kind: email` — SMTP with lettre: plain (tests, a local relay), STARTTLS
//! or implicit TLS; optional authentication with a password from an
//! environment variable or a file (never logged). Every recipient gets their
//! own message, so the acknowledgement link in it names them.

use std::path::PathBuf;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Notification, Notifier, SendFuture, check_template, read_secret};
use crate::executors::template;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// No TLS at all (a relay on localhost, tests).
    Plain,
    /// Upgrade with STARTTLS; refuse to go on without it (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Settings of an email notifier.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name.
    pub host: String,
    /// Port (default: 25 plain, 587 STARTTLS, 465 TLS).
    #[serde(default)]
    pub port: Option<u16>,
    /// `plain`, `starttls` (default) or `tls`.
    #[serde(default)]
    pub security: Security,
    /// SMTP user name, if the server wants authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (relative to medic.yaml).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Sender, e.g. `medic <medic@example.com>`.
    pub from: String,
    /// Recipients; each gets a message with their own acknowledgement link.
    pub to: Vec<String>,
    /// Subject template (default: the one-line title).
    #[serde(default)]
    pub subject: Option<String>,
    /// Plain-text body template.
    #[serde(default)]
    pub text: Option<String>,
    /// HTML body template (values are HTML-escaped).
    #[serde(default)]
    pub html: Option<String>,
}

impl EmailConfig {
    /// Problems found at load time.
    pub fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = self.from.parse::<Mailbox>() {
            out.push(format!("from {:?} is not an address: {e}", self.from));
        }
        if self.to.is_empty() {
            out.push("to must not be empty".into());
        }
        for t in &self.to {
            if let Err(e) = t.parse::<Mailbox>() {
                out.push(format!("to {t:?} is not an address: {e}"));
            }
        }
        for (name, t) in [
            ("subject", &self.subject),
            ("text", &self.text),
            ("html", &self.html),
        ] {
            if let Some(e) = t.as_deref().and_then(check_template) {
                out.push(format!("{name}: {e}"));
            }
        }
        if self.password_env.is_some() && self.password_file.is_some() {
            out.push("give at most one of password_env and password_file".into());
        }
        if (self.password_env.is_some() || self.password_file.is_some()) && self.username.is_none()
        {
            out.push("a password needs a username".into());
        }
        out
    }
}

/// The email notifier.
pub struct Email {
    cfg: EmailConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Email {
    /// Build the (pooled) transport; reads the password.
    pub fn new(cfg: &EmailConfig, base_dir: &std::path::Path) -> Result<Self, String> {
        type T = AsyncSmtpTransport<Tokio1Executor>;
        let (builder, port) = match cfg.security {
            Security::Plain => (T::builder_dangerous(&cfg.host), 25),
            Security::Starttls => (
                T::starttls_relay(&cfg.host).map_err(|e| format!("smtp {}: {e}", cfg.host))?,
                587,
            ),
            Security::Tls => (
                T::relay(&cfg.host).map_err(|e| format!("smtp {}: {e}", cfg.host))?,
                465,
            ),
        };
        let mut builder = builder.port(cfg.port.unwrap_or(port));
        let password = read_secret(
            "password",
            cfg.password_env.as_deref(),
            cfg.password_file.as_deref(),
            base_dir,
        )?;
        if let (Some(user), Some(pass)) = (&cfg.username, password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass));
        }
        Ok(Email {
            cfg: cfg.clone(),
            transport: builder.build(),
        })
    }
}

/// Subject, text and HTML of the message for `to`.
pub fn render(cfg: &EmailConfig, n: &Notification, to: &str) -> (String, String, String) {
    let subject = match &cfg.subject {
        Some(t) => n.render(t, to, template::raw),
        None => n.title(),
    };
    let ack = n.ack_url(to);
    let text = match &cfg.text {
        Some(t) => n.render(t, to, template::raw),
        None => {
            let i = &n.incident;
            let mut t = format!(
                "{}\n\nIncident #{} ({}), state {}\nLabels: {}\n",
                n.title(),
                i.id,
                i.severity,
                i.state.as_str(),
                crate::incidents::labels_text(&i.labels)
            );
            if let Some(by) = &i.acked_by {
                t.push_str(&format!("Acknowledged by {by}\n"));
            }
            if let Some(u) = &ack {
                t.push_str(&format!("\nAcknowledge (I have it): {u}\n"));
            }
            t.push_str(&format!("Details: {}\n", n.incident_url()));
            if !n.group.is_empty() {
                t.push_str(&format!(
                    "\nAlso in this notification ({} more, {}):\n{}",
                    n.group.len(),
                    crate::incidents::labels_text(&n.group_labels),
                    n.group_text(to)
                ));
            }
            t
        }
    };
    let html = match &cfg.html {
        Some(t) => n.render(t, to, template::html),
        None => {
            let h = template::html;
            let mut t = format!(
                "<p><b>{}</b></p><p>Labels: <code>{}</code></p>",
                h(&n.title()),
                h(&crate::incidents::labels_text(&n.incident.labels))
            );
            if let Some(u) = &ack {
                t.push_str(&format!(
                    "<p><a href=\"{}\">Acknowledge (I have it)</a></p>",
                    h(u)
                ));
            }
            t.push_str(&format!(
                "<p><a href=\"{}\">Details</a></p>",
                h(&n.incident_url())
            ));
            if !n.group.is_empty() {
                t.push_str(&format!(
                    "<p>Also in this notification ({} more, <code>{}</code>):</p><ul>",
                    n.group.len(),
                    h(&crate::incidents::labels_text(&n.group_labels))
                ));
                for i in &n.group {
                    t.push_str(&format!(
                        "<li>#{} [{}] {}: {} <code>{}</code>",
                        i.id,
                        h(&i.severity),
                        h(&i.detector),
                        h(&i.summary),
                        h(&crate::incidents::labels_text(&i.labels))
                    ));
                    if let Some(u) = n.ack_url_of(i, to) {
                        t.push_str(&format!(" <a href=\"{}\">Acknowledge</a>", h(&u)));
                    }
                    t.push_str("</li>");
                }
                t.push_str("</ul>");
            }
            t
        }
    };
    (subject, text, html)
}

impl Notifier for Email {
    fn kind(&self) -> &'static str {
        "email"
    }
    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            let from: Mailbox = self.cfg.from.parse().map_err(|e| format!("from: {e}"))?;
            let mut sent = Vec::new();
            let mut failed = Vec::new();
            for to in &self.cfg.to {
                let result = async {
                    let mbox: Mailbox = to.parse().map_err(|e| format!("{to}: {e}"))?;
                    let (subject, text, html) = render(&self.cfg, n, mbox.email.as_ref());
                    let msg = Message::builder()
                        .from(from.clone())
                        .to(mbox)
                        .subject(subject)
                        .multipart(MultiPart::alternative_plain_html(text, html))
                        .map_err(|e| format!("{to}: {e}"))?;
                    let r = self
                        .transport
                        .send(msg)
                        .await
                        .map_err(|e| format!("{to}: {e}"))?;
                    Ok::<_, String>(format!("{to}: {}", r.code()))
                }
                .await;
                match result {
                    Ok(s) => sent.push(s),
                    Err(e) => failed.push(e),
                }
            }
            if failed.is_empty() {
                Ok(format!("smtp {}: {}", self.cfg.host, sent.join(", ")))
            } else {
                Err(format!("smtp {}: {}", self.cfg.host, failed.join("; ")))
            }
        })
    }
}
