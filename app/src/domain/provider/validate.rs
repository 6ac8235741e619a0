//! The rules every provider configuration must satisfy, reported as [`ConfigIssue`]s, and the
//! URL and origin checks the server reuses.

use super::types::{Driver, Embed, EmbedAlgorithm, ParamType, ProviderConfig};
use std::collections::HashSet;
use std::fmt;

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
    fn check_control_plane(&self, out: &mut Issues) {
        let cp = &self.control_plane;
        let at = |field: &'static str| ["control_plane", field];
        if cp.driver == Driver::Http {
            match &cp.base_url {
                None => out.push(&at("base_url"), "is required with driver = \"http\""),
                Some(url) if !is_issuer_url(url) || url.contains(['?', '#']) => out.push(
                    &at("base_url"),
                    format!(
                        "\"{url}\" is not an https URL without query (http is allowed on \
                         localhost only: commands carry secret parameters)"
                    ),
                ),
                Some(_) => {}
            }
            for (field, v) in [
                ("secret_env", &cp.secret_env),
                ("callback_secret_env", &cp.callback_secret_env),
            ] {
                if v.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    out.push(
                        &at(field),
                        "is required with driver = \"http\": the name of an environment \
                         variable holding a whsec_ secret",
                    );
                }
            }
        }
        for (field, v) in [
            ("timeout_seconds", cp.timeout_seconds),
            ("poll_interval_seconds", cp.poll_interval_seconds),
            ("deadline_minutes", cp.deadline_minutes),
            ("stale_after_minutes", cp.stale_after_minutes),
        ] {
            if v == 0 {
                out.push(&at(field), "must be at least 1");
            }
        }
    }

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
                .find(|t| crate::domain::ids::TenantId::parse(t).is_err())
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
                if crate::domain::ids::TenantId::parse(&r.tenant).is_err() {
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
            if crate::domain::ids::TenantId::parse(t).is_err() {
                out.push(
                    &["embed", "just_in_time_tenants"],
                    format!("\"{t}\" is not a tenant id"),
                );
            }
        }
    }
}

fn is_slug(s: &str) -> bool {
    crate::domain::ids::InstanceName::parse(s).is_ok()
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
        self.check_control_plane(&mut out);
        if let Err(why) = crate::domain::webhooks::Allowance::parse(&self.webhooks.allow) {
            out.push(&["webhooks", "allow"], why);
        }
        for (field, v) in [
            ("max_endpoints", self.webhooks.max_endpoints),
            ("deliveries_per_hour", self.webhooks.deliveries_per_hour),
        ] {
            if v == 0 {
                out.push(&["webhooks", field], "must be at least 1");
            }
        }

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
