//! Loading the provider configuration from TOML, with errors that name the file, the line
//! and what is wrong.

use crate::domain::{ConfigIssue, ProviderConfig};
use std::fmt;
use std::path::Path;

/// The configuration used when no file is given: the "Acme Cloud" demo provider.
pub const DEMO_CONFIG: &str = include_str!("demo-provider.toml");
pub const DEMO_CONFIG_NAME: &str = "<built-in demo configuration>";

/// Why a configuration was refused. Its `Display` is what an operator sees at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Located>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based; `None` when the problem is not tied to a place (e.g. the file is unreadable).
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "invalid provider configuration {} ({n} problem{}):",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            match p.line {
                Some(line) => writeln!(f, "  {}:{line}: {}", self.file, p.message)?,
                None => writeln!(f, "  {}: {}", self.file, p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<ProviderConfig, ConfigError> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        problems: vec![Located {
            line: None,
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    parse(&file, &src)
}

/// The built-in demo configuration.
pub fn demo() -> ProviderConfig {
    parse(DEMO_CONFIG_NAME, DEMO_CONFIG).expect("the built-in demo configuration is valid")
}

/// Parses and validates configuration text; `file` only labels the errors.
pub fn parse(file: &str, src: &str) -> Result<ProviderConfig, ConfigError> {
    let fail = |problems| ConfigError {
        file: file.to_owned(),
        problems,
    };
    let config: ProviderConfig = toml::from_str(src).map_err(|e| {
        fail(vec![Located {
            line: e.span().map(|s| line_of(src, s.start)),
            message: e.message().trim().to_owned(),
        }])
    })?;
    let mut issues = config.validate();
    if let Some(embed) = &config.embed {
        issues.extend(super::embed::key_issues(embed));
    }
    if issues.is_empty() {
        return Ok(config);
    }
    let doc = toml_edit::ImDocument::parse(src).ok();
    Err(fail(
        issues
            .iter()
            .map(|issue| Located {
                line: doc
                    .as_ref()
                    .and_then(|d| locate(d, issue))
                    .map(|offset| line_of(src, offset)),
                message: issue.to_string(),
            })
            .collect(),
    ))
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

/// The byte offset of the deepest part of `issue.path` present in the document.
fn locate(doc: &toml_edit::ImDocument<&str>, issue: &ConfigIssue) -> Option<usize> {
    use toml_edit::{Item, Table, Value};
    enum Node<'a> {
        Item(&'a Item),
        Table(&'a Table),
        Value(&'a Value),
    }
    let mut node = Node::Table(doc.as_table());
    let mut best = None;
    for key in &issue.path {
        let index = key.parse::<usize>().ok();
        let next = match node {
            Node::Item(Item::ArrayOfTables(a)) => index
                .and_then(|i| a.get(i))
                .map(|t| (t.span(), Node::Table(t))),
            Node::Item(Item::Table(t)) | Node::Table(t) => t
                .get_key_value(key)
                .map(|(k, v)| (k.span().or(v.span()), Node::Item(v))),
            Node::Item(Item::Value(v)) | Node::Value(v) => match v {
                Value::Array(a) => index
                    .and_then(|i| a.get(i))
                    .map(|v| (v.span(), Node::Value(v))),
                Value::InlineTable(t) => t
                    .get_key_value(key)
                    .map(|(k, v)| (k.span().or(v.span()), Node::Item(v))),
                _ => None,
            },
            Node::Item(Item::None) => None,
        };
        let Some((span, child)) = next else { break };
        if let Some(s) = span {
            best = Some(s.start);
        }
        node = child;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(src: &str) -> ConfigError {
        parse("acme.toml", src).expect_err("configuration should be refused")
    }

    fn with(find: &str, replace: &str) -> String {
        assert!(DEMO_CONFIG.contains(find), "fixture text not found: {find}");
        DEMO_CONFIG.replacen(find, replace, 1)
    }

    fn line_containing(src: &str, needle: &str) -> usize {
        src.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn demo_configuration_is_valid_and_complete() {
        let c = demo();
        assert_eq!(c.provider.name, "Acme Cloud");
        let ids: Vec<_> = c.plans.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["free", "pro", "enterprise"]);
        let free = c.plan("free").unwrap();
        assert_eq!(free.environments, ["dev"]);
        assert_eq!(free.quota, 2);
        assert_eq!(free.resources.replicas.max, 1);
        assert_eq!(c.plan("pro").unwrap().resources.replicas.max, 5);
        assert_eq!(c.plan("enterprise").unwrap().resources.replicas.max, 20);
        assert!(c
            .plan("enterprise")
            .unwrap()
            .enables(crate::domain::Operation::Delete));
        assert!(!c
            .plan("pro")
            .unwrap()
            .enables(crate::domain::Operation::Delete));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// No file, however mangled, makes the parser panic: it is valid or refused.
        #[test]
        fn no_input_makes_the_parser_panic(
            cut in 0usize..4000,
            len in 0usize..200,
            insert in "[ -~\n]{0,40}",
            noise in ".{0,200}",
        ) {
            let mut src: Vec<char> = DEMO_CONFIG.chars().collect();
            let at = cut.min(src.len());
            let end = (at + len).min(src.len());
            src.splice(at..end, insert.chars());
            let mangled: String = src.into_iter().collect();
            let _ = parse("mangled.toml", &mangled);
            let _ = parse("noise.toml", &noise);
        }
    }

    #[test]
    fn security_origins_must_be_origins() {
        let src = format!(
            "{DEMO_CONFIG}\n[security]\nallowed_origins = [\"https://acme.example\"]\n\
             frame_ancestors = [\"https://acme.example/app\", \"*\"]\n"
        );
        let e = err_of(&src);
        assert_eq!(e.problems.len(), 2, "{:?}", e.problems);
        assert!(e.to_string().contains("security.frame_ancestors"), "{e}");
        let ok = format!(
            "{DEMO_CONFIG}\n[security]\nframe_ancestors = [\"https://acme.example\", \"http://127.0.0.1:4100\"]\n"
        );
        let c = parse("acme.toml", &ok).expect("valid origins");
        assert_eq!(c.security.frame_ancestors.len(), 2);
        assert!(c.security.allowed_origins.is_empty());
    }

    #[test]
    fn single_sign_on_issuers_and_rules_are_checked() {
        let sso = |issuer: &str, rule: &str| {
            format!(
                "{DEMO_CONFIG}\n[[sso]]\nid = \"acme-id\"\nissuer = \"{issuer}\"\nclient_id = \"portico\"\n\
                 client_secret_env = \"ACME_SECRET\"\nlabel = \"Sign in with Acme ID\"\ntenants = [\"globex\"]\n\n[[sso.rules]]\n{rule}\n"
            )
        };
        let ok = parse(
            "acme.toml",
            &sso(
                "https://id.acme.example",
                "tenant = \"globex\"\nrole = \"viewer\"\nemail_domain = \"globex.test\"",
            ),
        )
        .expect("valid single sign-on");
        assert_eq!(ok.sso[0].scopes, ["openid", "email", "profile"]);
        let claims = serde_json::json!({ "groups": ["a", "globex-ops"], "dept": "ops" });
        let claims = claims.as_object().unwrap();
        assert!(ok.sso[0].rules[0].admits("x@GLOBEX.test", claims));
        assert!(!ok.sso[0].rules[0].admits("x@globex.test.evil", claims));

        for (issuer, rule, wrong) in [
            ("http://id.acme.example", "tenant = \"globex\"\nrole = \"viewer\"\nemail_domain = \"globex.test\"", "sso.0.issuer"),
            ("http://127.0.0.1:4300", "tenant = \"globex\"\nrole = \"viewer\"", "sso.0.rules.0"),
            ("https://id.acme.example", "tenant = \"globex\"\nrole = \"viewer\"\nemail_domain = \"a.test\"\nclaim = \"g\"\nvalue = \"v\"", "sso.0.rules.0"),
            ("https://id.acme.example", "tenant = \"Not A Tenant\"\nrole = \"viewer\"\nemail_domain = \"a.test\"", "sso.0.rules.0"),
        ] {
            let e = err_of(&sso(issuer, rule));
            assert!(e.to_string().contains(wrong), "{wrong}: {e}");
        }
        let claim_rule = parse(
            "acme.toml",
            &sso("http://localhost:4300", "tenant = \"globex\"\nrole = \"operator\"\nclaim = \"groups\"\nvalue = \"globex-ops\""),
        )
        .expect("http on loopback is allowed");
        assert!(claim_rule.sso[0].rules[0].admits("x@anywhere.test", claims));
        use crate::domain::provider::is_issuer_url;
        for ok in [
            "https://id.acme.example",
            "https://id.acme.example:8443/realms/a",
            "http://127.0.0.1:4300",
            "http://[::1]:80/x",
        ] {
            assert!(is_issuer_url(ok), "{ok}");
        }
        for bad in [
            "http://localhost@evil.example",
            "https://a@b.example",
            "http://10.0.0.1",
            "ftp://x.example",
            "https://x.example/?a",
            "https://",
        ] {
            assert!(!is_issuer_url(bad), "{bad}");
        }
        let other = serde_json::json!({ "groups": "globex-ops-not" });
        assert!(!claim_rule.sso[0].rules[0].admits("x@anywhere.test", other.as_object().unwrap()));
    }

    #[test]
    fn an_issuer_must_say_which_tenants_it_vouches_for() {
        let sso = |binding: &str, rule_tenant: &str| {
            format!(
                "{DEMO_CONFIG}\n[[sso]]\nid = \"globex-id\"\nissuer = \"https://id.globex.example\"\nclient_id = \"portico\"\n\
                 client_secret_env = \"GLOBEX_SECRET\"\nlabel = \"Globex ID\"\n{binding}\n\n\
                 [[sso.rules]]\ntenant = \"{rule_tenant}\"\nrole = \"viewer\"\nemail_domain = \"globex.test\"\n"
            )
        };
        let bound = parse(
            "g.toml",
            &sso(
                "tenants = [\"globex\"]\nemail_domains = [\"globex.test\"]",
                "globex",
            ),
        )
        .expect("an issuer bound to one tenant");
        let issuer = &bound.sso[0];
        assert!(issuer.serves_tenant("globex"));
        assert!(!issuer.serves_tenant("umbrella"));
        assert!(issuer.vouches_for_email("ann@GLOBEX.test"));
        assert!(!issuer.vouches_for_email("admin@umbrella.test"));
        assert!(!issuer.vouches_for_email("x@globex.test.evil"));

        let wide = parse("w.toml", &sso("provider_wide = true", "umbrella"))
            .expect("the provider's own issuer, declared as such");
        assert!(wide.sso[0].serves_tenant("umbrella"));
        assert!(wide.sso[0].vouches_for_email("anyone@anywhere.test"));

        for (binding, rule_tenant, wrong) in [
            ("", "globex", "sso.0.tenants: name the tenants"),
            (
                "provider_wide = false",
                "globex",
                "sso.0.tenants: name the tenants",
            ),
            (
                "provider_wide = true\ntenants = [\"globex\"]",
                "globex",
                "sso.0.tenants",
            ),
            ("tenants = [\"Not A Tenant\"]", "globex", "sso.0.tenants"),
            (
                "tenants = [\"globex\"]\nemail_domains = [\"@globex.test\"]",
                "globex",
                "sso.0.email_domains",
            ),
            (
                "tenants = [\"globex\"]",
                "umbrella",
                "sso.0.rules.0: tenant \"umbrella\" is not among",
            ),
        ] {
            let e = err_of(&sso(binding, rule_tenant)).to_string();
            assert!(e.contains(wrong), "{binding:?}: {wrong:?} in {e}");
        }
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let src = with("quota = 10", "quota = = 10");
        let e = err_of(&src);
        assert_eq!(e.problems.len(), 1);
        assert_eq!(
            e.problems[0].line,
            Some(line_containing(&src, "quota = = 10"))
        );
        let shown = e.to_string();
        assert!(shown.contains("acme.toml:"), "{shown}");
    }

    #[test]
    fn unknown_key_is_refused_at_its_line() {
        let src = with("quota = 10", "quota = 10\nqouta = 3");
        let e = err_of(&src);
        assert_eq!(e.problems[0].line, Some(line_containing(&src, "qouta")));
        assert!(e.problems[0].message.contains("qouta"), "{:?}", e.problems);
    }

    #[test]
    fn wrong_type_is_refused() {
        let e = err_of(&with("quota = 10", "quota = \"ten\""));
        assert!(
            e.problems[0].message.contains("invalid type"),
            "{:?}",
            e.problems
        );
    }

    #[test]
    fn missing_required_key_is_refused() {
        let e = err_of(&with("quota = 10\n", ""));
        assert!(
            e.problems[0].message.contains("missing field `quota`"),
            "{:?}",
            e.problems
        );
    }

    #[test]
    fn unknown_operation_is_refused() {
        let e = err_of(&with(
            "operations = [\"start\", \"stop\", \"restart\"]",
            "operations = [\"start\", \"reboot\"]",
        ));
        assert!(e.problems[0].message.contains("reboot"), "{:?}", e.problems);
    }

    #[test]
    fn inverted_bounds_point_at_the_resource_line() {
        let src = with(
            "replicas = { min = 1, max = 5, default = 2 }",
            "replicas = { min = 6, max = 5, default = 2 }",
        );
        let e = err_of(&src);
        assert_eq!(e.problems.len(), 1, "{e}");
        assert!(e.problems[0]
            .message
            .contains("min (6) is greater than max (5)"));
        assert!(e.problems[0]
            .message
            .starts_with("plans.1.resources.replicas"));
        assert_eq!(
            e.problems[0].line,
            Some(line_containing(&src, "min = 6, max = 5"))
        );
    }

    #[test]
    fn default_outside_bounds_is_refused() {
        let e = err_of(&with(
            "replicas = { min = 1, max = 5, default = 2 }",
            "replicas = { min = 1, max = 5, default = 9 }",
        ));
        assert!(
            e.problems[0]
                .message
                .contains("default (9) is outside 1..=5"),
            "{e}"
        );
    }

    #[test]
    fn unknown_environment_in_plan_is_refused_at_its_line() {
        let src = with("environments = [\"dev\"]", "environments = [\"qa\"]");
        let e = err_of(&src);
        assert!(
            e.problems[0].message.contains("unknown environment \"qa\""),
            "{e}"
        );
        assert_eq!(e.problems[0].line, Some(line_containing(&src, "[\"qa\"]")));
    }

    #[test]
    fn unknown_region_is_refused() {
        let e = err_of(&with("regions = [\"eu-west\"]", "regions = [\"mars\"]"));
        assert!(
            e.problems[0].message.contains("unknown region \"mars\""),
            "{e}"
        );
    }

    #[test]
    fn duplicate_plan_id_is_refused() {
        let e = err_of(&with("id = \"pro\"", "id = \"free\""));
        assert!(
            e.problems
                .iter()
                .any(|p| p.message.contains("plan id \"free\" is used twice")),
            "{e}"
        );
    }

    #[test]
    fn zero_quota_is_refused() {
        let e = err_of(&with("quota = 10", "quota = 0"));
        assert!(
            e.problems[0].message.contains("quota: must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn enum_default_must_be_allowed() {
        let src = with("default = \"info\"", "default = \"verbose\"");
        let e = err_of(&src);
        assert!(
            e.problems[0].message.contains("default must be one of"),
            "{e}"
        );
        assert_eq!(
            e.problems[0].line,
            Some(line_containing(&src, "\"verbose\""))
        );
    }

    #[test]
    fn integer_default_must_be_in_range() {
        let e = err_of(&with(
            "max = 1000\ndefault = 100\n",
            "max = 1000\ndefault = 5\n",
        ));
        assert!(
            e.problems[0]
                .message
                .contains("must be between 10 and 1000"),
            "{e}"
        );
    }

    #[test]
    fn boolean_default_must_be_boolean() {
        let e = err_of(&with("default = false", "default = \"no\""));
        assert!(e.problems[0].message.contains("must be a boolean"), "{e}");
    }

    #[test]
    fn enum_without_allowed_values_is_refused() {
        let e = err_of(&with(
            "allowed = [\"error\", \"warn\", \"info\", \"debug\"]\n",
            "",
        ));
        assert!(
            e.problems
                .iter()
                .any(|p| p.message.contains("needs allowed values")),
            "{e}"
        );
    }

    #[test]
    fn viewer_operations_are_refused() {
        let e = err_of(&with("viewer = []", "viewer = [\"stop\"]"));
        assert!(
            e.problems[0]
                .message
                .contains("viewers may not run operations"),
            "{e}"
        );
    }

    #[test]
    fn bad_colour_is_refused() {
        let e = err_of(&with("#3b5bdb", "blue"));
        assert!(e.problems[0].message.contains("#rrggbb"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let src =
            with("quota = 10", "quota = 0").replacen("regions = [\"eu-west\"]", "regions = []", 1);
        let e = err_of(&src);
        assert_eq!(e.problems.len(), 2, "{e}");
    }

    #[test]
    fn unreadable_file_is_reported_with_its_path() {
        let e = load(Path::new("/nonexistent/portico.toml")).unwrap_err();
        assert!(
            e.to_string()
                .contains("/nonexistent/portico.toml: cannot read the file"),
            "{e}"
        );
    }
}
