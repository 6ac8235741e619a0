//! How a session began: stored with it, and deciding what an embedded page may do.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a session began. Stored as the word [`SessionOrigin::as_str`] gives; existing databases
/// hold exactly these words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionOrigin {
    /// Signed in with email and password (or by accepting an invitation).
    Password,
    /// Signed in through single sign-on.
    Sso,
    /// An embedded session begun inside the provider's iframe: its token is the cookie's.
    Embed,
    /// The separate, short-lived token an embedded page uses when the browser keeps no cookie
    /// for the frame: accepted only in the session header, never as a cookie.
    EmbedHeader,
}

impl SessionOrigin {
    pub const ALL: [SessionOrigin; 4] = [
        SessionOrigin::Password,
        SessionOrigin::Sso,
        SessionOrigin::Embed,
        SessionOrigin::EmbedHeader,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionOrigin::Password => "password",
            SessionOrigin::Sso => "sso",
            SessionOrigin::Embed => "embed",
            SessionOrigin::EmbedHeader => "embed-header",
        }
    }

    pub fn parse(s: &str) -> Option<SessionOrigin> {
        SessionOrigin::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Began inside the provider's iframe (by cookie or by header token).
    pub fn is_embedded(self) -> bool {
        matches!(self, SessionOrigin::Embed | SessionOrigin::EmbedHeader)
    }
}

impl fmt::Display for SessionOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_stored_as_the_words_existing_databases_hold() {
        let words: Vec<&str> = SessionOrigin::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(words, ["password", "sso", "embed", "embed-header"]);
        for o in SessionOrigin::ALL {
            assert_eq!(SessionOrigin::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{o}\""));
        }
        assert_eq!(SessionOrigin::parse("embed_header"), None);
    }

    #[test]
    fn only_embed_origins_are_embedded() {
        assert!(SessionOrigin::Embed.is_embedded());
        assert!(SessionOrigin::EmbedHeader.is_embedded());
        assert!(!SessionOrigin::Password.is_embedded());
        assert!(!SessionOrigin::Sso.is_embedded());
    }
}
