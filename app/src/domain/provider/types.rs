//! The serde types of the provider configuration, and the small rules each type answers
//! about itself (who may read the audit log, which colour of ink suits the brand, …).

use crate::domain::{Operation, Role};
use serde::{Deserialize, Serialize};
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
    /// Where operations go: the built-in simulator (the default) or the provider's own control
    /// plane over control-plane API v1.
    #[serde(default)]
    pub control_plane: ControlPlaneConfig,
    /// Where tenants' webhooks may be delivered, and how many each tenant may have and send.
    #[serde(default)]
    pub webhooks: WebhooksConfig,
}

/// `[webhooks]`: limits per tenant, and the destinations a delivery may reach although they are
/// private (loopback, RFC 1918, …), which are otherwise refused when a delivery connects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Host names and address ranges (`10.20.0.0/16`) deliveries may reach although private;
    /// these may also be reached over plain http. Empty (the default): public https only.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Endpoints one tenant may have.
    #[serde(default = "default_max_endpoints")]
    pub max_endpoints: u32,
    /// Delivery attempts one tenant may make in an hour; more wait in the queue, none is dropped.
    #[serde(default = "default_deliveries_per_hour")]
    pub deliveries_per_hour: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow: Vec::new(),
            max_endpoints: default_max_endpoints(),
            deliveries_per_hour: default_deliveries_per_hour(),
        }
    }
}

fn default_max_endpoints() -> u32 {
    10
}
fn default_deliveries_per_hour() -> u32 {
    3600
}

/// Which control plane runs operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// Built in: no real infrastructure, realistic timing.
    #[default]
    Simulated,
    /// The provider's control plane, reached over HTTPS.
    Http,
}

/// `[control_plane]`: with `driver = "http"`, the provider's endpoint and secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPlaneConfig {
    #[serde(default)]
    pub driver: Driver,
    /// Commands go to `{base_url}/operations` (https; http to loopback only).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding the `whsec_` secret Portico signs commands with (two,
    /// separated by a space, while rotating). Never the secret itself.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The environment variable holding the `whsec_` secret the control plane signs its
    /// callbacks with (two while rotating).
    #[serde(default)]
    pub callback_secret_env: Option<String>,
    /// The longest one request to the control plane may take.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// After a 202 without Retry-After, how long to wait for a callback before asking.
    #[serde(default = "default_poll_interval_seconds")]
    pub poll_interval_seconds: u64,
    /// How long an operation may take from its request before it fails.
    #[serde(default = "default_deadline_minutes")]
    pub deadline_minutes: u64,
    /// How often the control plane's instance list is read to repair drift (0: never).
    #[serde(default = "default_reconcile_minutes")]
    pub reconcile_minutes: u64,
    /// A status the control plane has not confirmed for this long is shown "as of" its time.
    #[serde(default = "default_stale_after_minutes")]
    pub stale_after_minutes: u64,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            driver: Driver::Simulated,
            base_url: None,
            secret_env: None,
            callback_secret_env: None,
            timeout_seconds: default_timeout_seconds(),
            poll_interval_seconds: default_poll_interval_seconds(),
            deadline_minutes: default_deadline_minutes(),
            reconcile_minutes: default_reconcile_minutes(),
            stale_after_minutes: default_stale_after_minutes(),
        }
    }
}

fn default_timeout_seconds() -> u64 {
    10
}
fn default_poll_interval_seconds() -> u64 {
    30
}
fn default_deadline_minutes() -> u64 {
    60
}
fn default_reconcile_minutes() -> u64 {
    5
}
fn default_stale_after_minutes() -> u64 {
    15
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

/// A configuration value: a JSON boolean, integer or string, untagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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

impl ProviderConfig {
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
