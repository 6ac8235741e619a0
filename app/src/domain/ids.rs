//! Newtypes that can only be built valid.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} characters")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} may contain only lowercase letters, digits and '-', and must start with a letter or digit")]
    BadCharacters { what: &'static str },
    #[error("not a valid email address")]
    BadEmail,
}

/// Identifiers: lowercase ASCII letters, digits and '-', 1 to 64 characters.
fn check_slug(what: &'static str, s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.len() > max {
        return Err(IdError::TooLong { what, max });
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let first_ok = s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_ok || !s.chars().all(ok_char) {
        return Err(IdError::BadCharacters { what });
    }
    Ok(())
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_slug($what, s, 64)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check_slug($what, &s, 64)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(
    /// The tenant a verified session belongs to.
    TenantId,
    "tenant id"
);
slug_id!(UserId, "user id");
slug_id!(InstanceId, "instance id");
slug_id!(
    /// A customer-chosen instance name, unique within its tenant.
    InstanceName,
    "instance name"
);

/// An email address, trimmed and lowercased so that sign-in is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim().to_ascii_lowercase();
        let Some((local, domain)) = s.split_once('@') else {
            return Err(IdError::BadEmail);
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || s.len() > 254 || !domain_ok || local.chars().any(char::is_whitespace)
        {
            return Err(IdError::BadEmail);
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_accept_slugs() {
        assert!(InstanceName::parse("billing-prod-1").is_ok());
        assert!(InstanceName::parse("a").is_ok());
    }

    #[test]
    fn instance_names_reject_bad_input_with_a_reason() {
        assert_eq!(
            InstanceName::parse(""),
            Err(IdError::Empty {
                what: "instance name"
            })
        );
        assert!(matches!(
            InstanceName::parse("Billing"),
            Err(IdError::BadCharacters { .. })
        ));
        assert!(matches!(
            InstanceName::parse("-lead"),
            Err(IdError::BadCharacters { .. })
        ));
        assert!(matches!(
            InstanceName::parse("has space"),
            Err(IdError::BadCharacters { .. })
        ));
        assert!(matches!(
            InstanceName::parse(&"a".repeat(65)),
            Err(IdError::TooLong { max: 64, .. })
        ));
    }

    #[test]
    fn ids_cannot_be_deserialized_invalid() {
        assert!(serde_json::from_str::<TenantId>("\"globex\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"../etc\"").is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Admin@Globex.TEST ").unwrap().as_str(),
            "admin@globex.test"
        );
        for bad in [
            "",
            "no-at",
            "@globex.test",
            "a@",
            "a@nodot",
            "a@.x",
            "a b@x.io",
        ] {
            assert_eq!(Email::parse(bad), Err(IdError::BadEmail), "{bad}");
        }
    }
}
