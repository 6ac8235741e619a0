//! Invitation emails over SMTP, when the operator configures a server. Without one, admins
//! copy the invitation link themselves; with one, they still see the link (an email can be
//! lost), and whether sending worked.

use crate::domain::Email;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Sends mail through one SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the credentials: never print it.
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

/// What an invitation email says.
pub struct Invitation<'a> {
    pub to: &'a Email,
    pub provider: &'a str,
    pub tenant: &'a str,
    pub invited_by: &'a str,
    pub role: &'a str,
    pub link: &'a str,
    pub days: i64,
}

impl Mailer {
    /// `url` is `smtp://host[:port]` (plain, for a relay on the same host or network),
    /// `smtp://host:587?tls=required` (STARTTLS) or `smtps://host:465` (TLS), with
    /// `user:password@` before the host when the server wants them. `from` is an address,
    /// optionally with a name: `Acme Cloud <portal@acme.example>`.
    pub fn new(url: &str, from: &str) -> Result<Mailer, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("the sender {from:?} is not an email address ({e})"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            // The URL may hold a password: name only its kind of problem.
            .map_err(|e| format!("the SMTP URL is not valid ({e})"))?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        Ok(Mailer { transport, from })
    }

    /// A plain-text notice to one person (a webhook endpoint disabled, …).
    pub async fn send_notice(&self, to: &str, subject: &str, body: String) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }

    pub async fn send_invitation(&self, i: &Invitation<'_>) -> Result<(), String> {
        let to: Mailbox =
            i.to.as_str()
                .parse()
                .map_err(|e| format!("recipient: {e}"))?;
        let body = format!(
            "Hello,\n\n{by} invites you to {tenant} on the {provider} portal, as {role}.\n\n\
             Open this link to accept (it works once, for {days} days):\n\n{link}\n\n\
             If you did not expect this invitation, ignore this email.\n",
            by = i.invited_by,
            tenant = i.tenant,
            provider = i.provider,
            role = i.role,
            link = i.link,
            days = i.days,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("You are invited to {} on {}", i.tenant, i.provider))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}
