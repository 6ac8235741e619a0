//! The provider configuration: branding, environments, regions, roles and plans.
//!
//! Parsing from TOML (and pointing at the offending line) lives on the server; this module
//! holds the types and the rules every configuration must satisfy.

use super::{Operation, Role};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub provider: Provider,
    pub environments: Vec<Environment>,
    pub regions: Vec<Region>,
    pub roles: Roles,
    pub plans: Vec<Plan>,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub security: Security,
    /// Showing the portal inside the provider's site, signed in by embed tokens.
    #[serde(default)]
    pub embed: Option<Embed>,
    /// OpenID Connect issuers people may sign in with, each a button on the sign-in page.
    #[serde(default)]
    pub sso: Vec<SsoIssuer>,
}

/// One OpenID Connect issuer (the provider's identity provider, or a tenant's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoIssuer {
    /// A short name for URLs: `/sso/<id>/start` and the callback `/sso/<id>/callback`.
    pub id: String,
    /// The issuer URL exactly as its discovery document and ID tokens state it.
    pub issuer: String,
    pub client_id: String,
    /// The environment variable that holds the client secret (never the secret itself).
    pub client_secret_env: String,
    /// The button's text, e.g. "Sign in with Acme ID".
    pub label: String,
    /// Scopes asked for; `openid` is always among them.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The tenants whose people this issuer may vouch for: it signs people in to these, and
    /// links, joins and accepts invitations inside them only. A tenant's own identity provider
    /// names that one tenant.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// When not empty, the issuer vouches only for verified emails of these domains.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// The provider's own identity provider, trusted for people of every tenant. Must be said
    /// explicitly: an issuer that names no tenants is refused, never taken as provider-wide.
    #[serde(default)]
    pub provider_wide: bool,
    /// Who, not yet a member anywhere, becomes one of which tenant on first sign-in.
    #[serde(default)]
    pub rules: Vec<SsoRule>,
}

impl SsoIssuer {
    /// Whether this issuer may sign people in to, or admit them to, `tenant`.
    pub fn serves_tenant(&self, tenant: &str) -> bool {
        self.provider_wide || self.tenants.iter().any(|t| t == tenant)
    }

    /// Whether this issuer may vouch for `email` (already verified by it).
    pub fn vouches_for_email(&self, email: &str) -> bool {
        self.email_domains.is_empty()
            || email.rsplit_once('@').is_some_and(|(_, d)| {
                self.email_domains
                    .iter()
                    .any(|allowed| d.eq_ignore_ascii_case(allowed))
            })
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

/// Admits a signed-in identity to `tenant` with `role`: by its verified email's domain, or by
/// a claim's value (a string claim equal to `value`, or an array claim containing it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoRule {
    pub tenant: String,
    pub role: Role,
    #[serde(default)]
    pub email_domain: Option<String>,
    #[serde(default)]
    pub claim: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

impl SsoRule {
    /// Whether an identity with this verified email and these claims is admitted.
    pub fn admits(
        &self,
        verified_email: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        if let Some(domain) = &self.email_domain {
            return verified_email
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain));
        }
        let (Some(claim), Some(value)) = (&self.claim, &self.value) else {
            return false;
        };
        match claims.get(claim) {
            Some(serde_json::Value::String(s)) => s == value,
            Some(serde_json::Value::Array(items)) => {
                items.iter().any(|i| i.as_str() == Some(value))
            }
            _ => false,
        }
    }
}

/// Whether an issuer URL may be used: https, or http on a loopback host (for tests and local
/// identity providers). No query or fragment.
pub fn is_issuer_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    // No user part: in `http://localhost@evil.example` the host is evil.example.
    if authority.contains('@') {
        return false;
    }
    let host = if authority.starts_with("[::1]") {
        "[::1]"
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let plain_ok = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    !host.is_empty()
        && !rest.contains(['?', '#', ' ', '\\'])
        && (scheme == "https" || (scheme == "http" && plain_ok))
}

/// Embedding: the provider's backend mints short-lived tokens (JWTs) that sign its users in to
/// the portal shown in an iframe on its site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embed {
    /// The `iss` every embed token carries: who mints them.
    pub issuer: String,
    /// The `aud` every embed token must carry: this portal's name for itself.
    pub audience: String,
    /// The keys that may sign embed tokens, each pinned to one algorithm.
    #[serde(default)]
    pub keys: Vec<EmbedKey>,
    /// Where the provider publishes more signing keys as a JWKS (https; http on localhost
    /// only). Each key is pinned to its JWK `alg` (or its type's one algorithm); fetched when a
    /// token names a `kid` not known yet, so keys can rotate without a restart.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Tenants in which a token for someone who is not yet a member makes them one, with the
    /// token's role. Elsewhere such a token is refused.
    #[serde(default)]
    pub just_in_time_tenants: Vec<String>,
    /// Show the portal's own header (brand, user, sign-out) inside the frame. Off by default:
    /// the provider's page around the frame already has its navigation.
    #[serde(default)]
    pub show_header: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedKey {
    /// The `kid` header of tokens signed with this key.
    pub kid: String,
    pub algorithm: EmbedAlgorithm,
    /// PEM public key (EdDSA, ES256, RS256).
    #[serde(default)]
    pub public_key: Option<String>,
    /// HS256 only: the environment variable that holds the shared secret (never the secret
    /// itself, which does not belong in a configuration file).
    #[serde(default)]
    pub secret_env: Option<String>,
}

#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmbedAlgorithm {
    EdDSA,
    ES256,
    RS256,
    HS256,
}

/// Which other sites may talk to the portal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// Origins (`https://host[:port]`), besides the portal's own, whose pages may send
    /// state-changing requests to it.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Origins allowed to show the portal in a frame; empty means no site may.
    #[serde(default)]
    pub frame_ancestors: Vec<String>,
}

/// `scheme://host[:port]` with an http(s) scheme and nothing after the authority.
pub fn is_origin(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// Who may read a tenant's audit log (admins and operators always may; nobody may edit it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    #[serde(default)]
    pub viewers_can_read: bool,
}

impl AuditSettings {
    pub fn may_read(&self, role: Role) -> bool {
        role != Role::Viewer || self.viewers_can_read
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub name: String,
    #[serde(default)]
    pub branding: Branding,
    #[serde(default)]
    pub support_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    /// `#rrggbb`
    #[serde(default = "default_primary_color")]
    pub primary_color: String,
    #[serde(default)]
    pub logo_url: Option<String>,
}

fn default_primary_color() -> String {
    "#3b5bdb".into()
}

impl Default for Branding {
    fn default() -> Self {
        Branding {
            primary_color: default_primary_color(),
            logo_url: None,
        }
    }
}

impl Branding {
    /// The WCAG relative luminance of the brand colour, 0 (black) to 1 (white). A channel that
    /// is missing or not two hex digits counts as 0.
    pub fn luminance(&self) -> f64 {
        let colour = &self.primary_color;
        let channel = |i: usize| {
            f64::from(u8::from_str_radix(colour.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0))
                / 255.0
        };
        let lin = |c: f64| {
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(channel(1)) + 0.7152 * lin(channel(3)) + 0.0722 * lin(channel(5))
    }

    /// The colour of text on the brand colour: black or white, whichever contrasts more (WCAG
    /// contrast ratio against each).
    pub fn ink(&self) -> &'static str {
        let l = self.luminance();
        if (l + 0.05) / 0.05 > 1.05 / (l + 0.05) {
            "#000000"
        } else {
            "#ffffff"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub id: String,
    pub name: String,
}

/// Which operations each role may run (the plan must enable them too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub admin: Vec<Operation>,
    pub operator: Vec<Operation>,
    #[serde(default)]
    pub viewer: Vec<Operation>,
}

impl Roles {
    pub fn allows(&self, role: Role, op: Operation) -> bool {
        match role {
            Role::Admin => self.admin.contains(&op),
            Role::Operator => self.operator.contains(&op),
            Role::Viewer => self.viewer.contains(&op),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub operations: Vec<Operation>,
    pub environments: Vec<String>,
    pub regions: Vec<String>,
    /// Most instances one tenant may hold on this plan.
    pub quota: u32,
    pub resources: ResourceBounds,
    #[serde(default)]
    pub parameters: Vec<ParameterSpec>,
}

impl Plan {
    pub fn enables(&self, op: Operation) -> bool {
        self.operations.contains(&op)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceBounds {
    pub replicas: Bounds,
    pub cpu_millicores: Bounds,
    pub memory_mib: Bounds,
    pub storage_gib: Bounds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

impl Bounds {
    /// Exactly `v`: what a form may offer when the plan is gone from the configuration.
    pub fn fixed(v: u32) -> Bounds {
        Bounds {
            min: v,
            max: v,
            default: v,
        }
    }

    pub fn contains(&self, v: u32) -> bool {
        (self.min..=self.max).contains(&v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    Enum,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Text(s) => f.write_str(s),
        }
    }
}

/// A configuration parameter every instance of a plan carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterSpec {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// For `enum` (required) and `string` (optional): the only values accepted.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// For `integer`: inclusive range.
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    pub default: ParamValue,
    #[serde(default)]
    pub customer_editable: bool,
    /// Secret values are never shown or logged.
    #[serde(default)]
    pub secret: bool,
}

impl ParameterSpec {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// Checks one value against this parameter's type and range or allowed values.
    pub fn check(&self, v: &ParamValue) -> Result<(), String> {
        match (self.kind, v) {
            (ParamType::Boolean, ParamValue::Bool(_)) => Ok(()),
            (ParamType::Integer, ParamValue::Int(i)) => {
                if self.min.is_some_and(|m| *i < m) || self.max.is_some_and(|m| *i > m) {
                    Err(format!(
                        "must be between {} and {}",
                        self.min.map_or("any".into(), |m| m.to_string()),
                        self.max.map_or("any".into(), |m| m.to_string())
                    ))
                } else {
                    Ok(())
                }
            }
            (ParamType::Enum | ParamType::String, ParamValue::Text(s)) => {
                if self.allowed.is_empty() || self.allowed.iter().any(|a| a == s) {
                    Ok(())
                } else {
                    Err(format!("must be one of: {}", self.allowed.join(", ")))
                }
            }
            (kind, _) => Err(format!("must be {}", kind_word(kind))),
        }
    }
}

fn kind_word(k: ParamType) -> &'static str {
    match k {
        ParamType::String => "a string",
        ParamType::Integer => "an integer",
        ParamType::Boolean => "a boolean (true or false)",
        ParamType::Enum => "one of the allowed values",
    }
}

/// One thing wrong with a configuration: where (a path of keys) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Keys and array indexes from the document root, e.g. `["plans", "1", "quota"]`.
    pub path: Vec<String>,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.join("."), self.message)
    }
}

struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn push(&mut self, path: &[&str], message: impl Into<String>) {
        self.0.push(ConfigIssue {
            path: path.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        });
    }
}

impl ProviderConfig {
    fn check_sso(&self, out: &mut Issues) {
        let mut ids = HashSet::new();
        for (i, s) in self.sso.iter().enumerate() {
            let idx = i.to_string();
            let at = |f: &'static str| ["sso", idx.as_str(), f];
            if !is_slug(&s.id) {
                out.push(
                    &at("id"),
                    format!("\"{}\" is not a short name (a-z, 0-9, -)", s.id),
                );
            } else if !ids.insert(s.id.as_str()) {
                out.push(&at("id"), format!("\"{}\" is used twice", s.id));
            }
            if !is_issuer_url(&s.issuer) {
                out.push(
                    &at("issuer"),
                    format!(
                        "\"{}\" is not an https URL (http is allowed on localhost only)",
                        s.issuer
                    ),
                );
            }
            for (field, v) in [
                ("client_id", &s.client_id),
                ("client_secret_env", &s.client_secret_env),
                ("label", &s.label),
            ] {
                if v.trim().is_empty() {
                    out.push(&at(field), "must not be empty");
                }
            }
            if !s.scopes.iter().any(|sc| sc == "openid") {
                out.push(&at("scopes"), "must include \"openid\"");
            }
            if let Some(bad) = s
                .scopes
                .iter()
                .find(|sc| sc.is_empty() || sc.contains(|c: char| c.is_whitespace()))
            {
                out.push(&at("scopes"), format!("\"{bad}\" is not a scope"));
            }
            match (s.provider_wide, s.tenants.is_empty()) {
                (false, true) => out.push(
                    &at("tenants"),
                    "name the tenants this issuer vouches for (tenants = [\"...\"]), or declare the provider's own issuer with provider_wide = true",
                ),
                (true, false) => out.push(
                    &at("tenants"),
                    "a provider_wide issuer serves every tenant: remove tenants, or provider_wide",
                ),
                _ => {}
            }
            if let Some(bad) = s
                .tenants
                .iter()
                .find(|t| super::ids::TenantId::parse(t).is_err())
            {
                out.push(&at("tenants"), format!("\"{bad}\" is not a tenant id"));
            }
            if let Some(bad) = s
                .email_domains
                .iter()
                .find(|d| d.is_empty() || d.contains(['@', ' ', '/']))
            {
                out.push(
                    &at("email_domains"),
                    format!("\"{bad}\" is not a domain (like \"example.com\")"),
                );
            }
            for (j, r) in s.rules.iter().enumerate() {
                let j = j.to_string();
                let path = ["sso", idx.as_str(), "rules", j.as_str()];
                if super::ids::TenantId::parse(&r.tenant).is_err() {
                    out.push(&path, format!("\"{}\" is not a tenant id", r.tenant));
                } else if !s.serves_tenant(&r.tenant) {
                    out.push(
                        &path,
                        format!("tenant \"{}\" is not among this issuer's tenants", r.tenant),
                    );
                }
                match (&r.email_domain, &r.claim, &r.value) {
                    (Some(d), None, None) if !d.is_empty() && !d.contains('@') => {}
                    (None, Some(c), Some(v)) if !c.is_empty() && !v.is_empty() => {}
                    _ => out.push(
                        &path,
                        "a rule names either email_domain (like \"example.com\"), or claim and value",
                    ),
                }
            }
        }
    }

    fn check_embed(&self, out: &mut Issues, embed: &Embed) {
        if embed.issuer.trim().is_empty() {
            out.push(&["embed", "issuer"], "must not be empty");
        }
        if embed.audience.trim().is_empty() {
            out.push(&["embed", "audience"], "must not be empty");
        }
        if self.security.frame_ancestors.is_empty() {
            out.push(
                &["embed"],
                "embedding needs [security] frame_ancestors to list the sites that show the portal",
            );
        }
        match &embed.jwks_url {
            None if embed.keys.is_empty() => out.push(
                &["embed", "keys"],
                "at least one key, or a jwks_url, is required",
            ),
            Some(url) if !is_issuer_url(url) => out.push(
                &["embed", "jwks_url"],
                format!("\"{url}\" is not an https URL (http is allowed on localhost only)"),
            ),
            _ => {}
        }
        let mut kids = HashSet::new();
        for (i, k) in embed.keys.iter().enumerate() {
            let idx = i.to_string();
            let at = |f: &'static str| ["embed", "keys", idx.as_str(), f];
            if k.kid.trim().is_empty() {
                out.push(&at("kid"), "must not be empty");
            } else if !kids.insert(k.kid.as_str()) {
                out.push(&at("kid"), format!("kid \"{}\" is used twice", k.kid));
            }
            match (k.algorithm, &k.public_key, &k.secret_env) {
                (EmbedAlgorithm::HS256, None, Some(var)) if !var.trim().is_empty() => {}
                (EmbedAlgorithm::HS256, _, _) => out.push(
                    &at("secret_env"),
                    "an HS256 key names the environment variable of its secret, and has no public_key",
                ),
                (_, Some(_), None) => {}
                (_, _, _) => out.push(
                    &at("public_key"),
                    "an EdDSA, ES256 or RS256 key needs a PEM public_key, and no secret_env",
                ),
            }
        }
        for t in &embed.just_in_time_tenants {
            if super::ids::TenantId::parse(t).is_err() {
                out.push(
                    &["embed", "just_in_time_tenants"],
                    format!("\"{t}\" is not a tenant id"),
                );
            }
        }
    }
}

fn is_slug(s: &str) -> bool {
    super::ids::InstanceName::parse(s).is_ok()
}

impl ProviderConfig {
    /// Every rule a configuration must satisfy; an empty list means it is valid.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut out = Issues(Vec::new());
        if self.provider.name.trim().is_empty() {
            out.push(&["provider", "name"], "must not be empty");
        }
        let c = &self.provider.branding.primary_color;
        let hex_ok =
            c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit());
        if !hex_ok {
            out.push(
                &["provider", "branding", "primary_color"],
                format!("\"{c}\" is not a colour of the form #rrggbb"),
            );
        }

        let env_ids = check_named_list(
            &mut out,
            "environments",
            self.environments.iter().map(|e| (&e.id, &e.name)),
        );
        let region_ids = check_named_list(
            &mut out,
            "regions",
            self.regions.iter().map(|r| (&r.id, &r.name)),
        );

        if !self.roles.viewer.is_empty() {
            out.push(&["roles", "viewer"], "viewers may not run operations");
        }
        for (role, ops) in [
            ("admin", &self.roles.admin),
            ("operator", &self.roles.operator),
        ] {
            if let Some(d) = first_duplicate(ops.iter()) {
                out.push(&["roles", role], format!("lists \"{d}\" twice"));
            }
        }

        for (key, list) in [
            ("allowed_origins", &self.security.allowed_origins),
            ("frame_ancestors", &self.security.frame_ancestors),
        ] {
            for o in list {
                if !is_origin(o) {
                    out.push(
                        &["security", key],
                        format!("\"{o}\" is not an origin of the form https://host[:port]"),
                    );
                }
            }
        }

        if let Some(embed) = &self.embed {
            self.check_embed(&mut out, embed);
        }
        self.check_sso(&mut out);

        if self.plans.is_empty() {
            out.push(&["plans"], "at least one plan is required");
        }
        let mut plan_ids = HashSet::new();
        for (i, plan) in self.plans.iter().enumerate() {
            let idx = i.to_string();
            let at = |k: &'static str| ["plans", idx.as_str(), k];
            if !is_slug(&plan.id) {
                out.push(
                    &at("id"),
                    format!(
                        "\"{}\" is not a valid id (lowercase letters, digits, '-')",
                        plan.id
                    ),
                );
            } else if !plan_ids.insert(plan.id.as_str()) {
                out.push(&at("id"), format!("plan id \"{}\" is used twice", plan.id));
            }
            if plan.name.trim().is_empty() {
                out.push(&at("name"), "must not be empty");
            }
            if let Some(d) = first_duplicate(plan.operations.iter()) {
                out.push(&at("operations"), format!("lists \"{d}\" twice"));
            }
            if plan.environments.is_empty() {
                out.push(&at("environments"), "at least one environment is required");
            }
            for e in &plan.environments {
                if !env_ids.contains(e.as_str()) {
                    out.push(&at("environments"), format!("unknown environment \"{e}\""));
                }
            }
            if plan.regions.is_empty() {
                out.push(&at("regions"), "at least one region is required");
            }
            for r in &plan.regions {
                if !region_ids.contains(r.as_str()) {
                    out.push(&at("regions"), format!("unknown region \"{r}\""));
                }
            }
            if plan.quota == 0 {
                out.push(&at("quota"), "must be at least 1");
            }
            let res = &plan.resources;
            for (key, b) in [
                ("replicas", &res.replicas),
                ("cpu_millicores", &res.cpu_millicores),
                ("memory_mib", &res.memory_mib),
                ("storage_gib", &res.storage_gib),
            ] {
                let path = ["plans", idx.as_str(), "resources", key];
                if b.min > b.max {
                    out.push(
                        &path,
                        format!("min ({}) is greater than max ({})", b.min, b.max),
                    );
                } else if !b.contains(b.default) {
                    out.push(
                        &path,
                        format!("default ({}) is outside {}..={}", b.default, b.min, b.max),
                    );
                }
            }
            if res.replicas.min == 0 {
                out.push(
                    &["plans", idx.as_str(), "resources", "replicas"],
                    "min must be at least 1",
                );
            }
            let mut names = HashSet::new();
            for (j, p) in plan.parameters.iter().enumerate() {
                let jdx = j.to_string();
                let path = |k: &'static str| ["plans", idx.as_str(), "parameters", jdx.as_str(), k];
                if !is_param_name(&p.name) {
                    out.push(
                        &path("name"),
                        format!(
                            "\"{}\" is not a valid parameter name (letters, digits, '_')",
                            p.name
                        ),
                    );
                } else if !names.insert(p.name.as_str()) {
                    out.push(
                        &path("name"),
                        format!("parameter \"{}\" is defined twice", p.name),
                    );
                }
                match p.kind {
                    ParamType::Enum if p.allowed.is_empty() => {
                        out.push(&path("allowed"), "an enum parameter needs allowed values")
                    }
                    ParamType::Integer | ParamType::Boolean if !p.allowed.is_empty() => out.push(
                        &path("allowed"),
                        "only enum and string parameters take allowed values",
                    ),
                    _ => {}
                }
                if p.kind != ParamType::Integer && (p.min.is_some() || p.max.is_some()) {
                    out.push(&path("min"), "only integer parameters take min and max");
                }
                if let (Some(lo), Some(hi)) = (p.min, p.max) {
                    if lo > hi {
                        out.push(
                            &path("min"),
                            format!("min ({lo}) is greater than max ({hi})"),
                        );
                    }
                }
                if let Err(why) = p.check(&p.default) {
                    out.push(&path("default"), format!("default {why}"));
                }
            }
        }
        out.0
    }

    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    pub fn environment_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.environments
            .iter()
            .find(|e| e.id == id)
            .map_or(id, |e| e.name.as_str())
    }

    pub fn region_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.regions
            .iter()
            .find(|r| r.id == id)
            .map_or(id, |r| r.name.as_str())
    }
}

fn is_param_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn first_duplicate<T: Eq + std::hash::Hash + fmt::Display>(
    items: impl Iterator<Item = T>,
) -> Option<T> {
    let mut seen = HashSet::new();
    for it in items {
        if seen.contains(&it) {
            return Some(it);
        }
        seen.insert(it);
    }
    None
}

fn check_named_list<'a>(
    out: &mut Issues,
    key: &'static str,
    items: impl Iterator<Item = (&'a String, &'a String)>,
) -> HashSet<&'a str> {
    let mut ids = HashSet::new();
    for (i, (id, name)) in items.enumerate() {
        let idx = i.to_string();
        if !is_slug(id) {
            out.push(
                &[key, &idx, "id"],
                format!("\"{id}\" is not a valid id (lowercase letters, digits, '-')"),
            );
        } else if !ids.insert(id.as_str()) {
            out.push(&[key, &idx, "id"], format!("id \"{id}\" is used twice"));
        }
        if name.trim().is_empty() {
            out.push(&[key, &idx, "name"], "must not be empty");
        }
    }
    if ids.is_empty() && out.0.iter().all(|i| i.path[0] != key) {
        out.push(&[key], "at least one is required");
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::Branding;

    fn brand(colour: &str) -> Branding {
        Branding {
            primary_color: colour.into(),
            logo_url: None,
        }
    }

    #[test]
    fn a_dark_brand_colour_gets_white_ink_and_a_light_one_black() {
        for dark in ["#000000", "#1a237e", "#3b5bdb", "#b00020"] {
            assert_eq!(brand(dark).ink(), "#ffffff", "{dark}");
        }
        for light in ["#ffffff", "#ffeb3b", "#a5d6a7", "#00e5ff"] {
            assert_eq!(brand(light).ink(), "#000000", "{light}");
        }
        assert_eq!(Branding::default().ink(), "#ffffff");
    }

    #[test]
    fn luminance_follows_wcag() {
        assert_eq!(brand("#000000").luminance(), 0.0);
        assert!((brand("#ffffff").luminance() - 1.0).abs() < 1e-9);
        // Mid grey: 0x77 is 0.4667, linearised 0.1845.
        assert!((brand("#777777").luminance() - 0.1845).abs() < 1e-3);
    }

    #[test]
    fn malformed_channels_count_as_zero() {
        // Nothing readable: black, so white ink.
        assert_eq!(brand("").luminance(), 0.0);
        assert_eq!(brand("#zzzzzz").ink(), "#ffffff");
        // Only the red channel is there.
        assert_eq!(brand("#ff").luminance(), brand("#ff0000").luminance());
        // A multi-byte character never splits a channel (and never panics).
        assert_eq!(brand("#ééé").luminance(), 0.0);
        assert_eq!(brand("#ffffffé").ink(), "#000000");
    }
}
