//! Webhooks as rules: which events a tenant may subscribe to, which URLs an endpoint may have,
//! which addresses a delivery may never reach, when a failed delivery is tried again, and what
//! an answer from the receiver means. The delivery itself (HTTP, the queue) is the server's.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The kinds of event an endpoint may subscribe to, as named on the wire (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum WebhookEvent {
    #[serde(rename = "operation.requested")]
    OperationRequested,
    #[serde(rename = "operation.succeeded")]
    OperationSucceeded,
    #[serde(rename = "operation.failed")]
    OperationFailed,
    #[serde(rename = "instance.status_changed")]
    InstanceStatusChanged,
    #[serde(rename = "instance.created")]
    InstanceCreated,
    #[serde(rename = "instance.deleted")]
    InstanceDeleted,
    #[serde(rename = "member.added")]
    MemberAdded,
    #[serde(rename = "member.removed")]
    MemberRemoved,
    #[serde(rename = "member.role_changed")]
    MemberRoleChanged,
    /// Sent on demand from the Webhooks page or the API, to try an endpoint.
    #[serde(rename = "webhook.test")]
    Test,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 10] = [
        WebhookEvent::OperationRequested,
        WebhookEvent::OperationSucceeded,
        WebhookEvent::OperationFailed,
        WebhookEvent::InstanceStatusChanged,
        WebhookEvent::InstanceCreated,
        WebhookEvent::InstanceDeleted,
        WebhookEvent::MemberAdded,
        WebhookEvent::MemberRemoved,
        WebhookEvent::MemberRoleChanged,
        WebhookEvent::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::OperationRequested => "operation.requested",
            WebhookEvent::OperationSucceeded => "operation.succeeded",
            WebhookEvent::OperationFailed => "operation.failed",
            WebhookEvent::InstanceStatusChanged => "instance.status_changed",
            WebhookEvent::InstanceCreated => "instance.created",
            WebhookEvent::InstanceDeleted => "instance.deleted",
            WebhookEvent::MemberAdded => "member.added",
            WebhookEvent::MemberRemoved => "member.removed",
            WebhookEvent::MemberRoleChanged => "member.role_changed",
            WebhookEvent::Test => "webhook.test",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// A webhook endpoint as the portal's page shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointView {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why Portico disabled it.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed.
    pub failing_since: Option<String>,
    /// After a rotation, until when the previous secret signs too.
    pub rotating_until: Option<String>,
    /// Deliveries waiting, and deliveries that ran out of attempts.
    pub pending: i64,
    pub failed: i64,
    /// The latest attempts, newest first.
    pub attempts: Vec<WebhookAttemptView>,
}

/// One attempt in an endpoint's delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttemptView {
    pub message_id: String,
    pub event_type: String,
    pub attempted_at: String,
    /// The HTTP status, `None` when no answer came.
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub response: String,
    /// pending, sending, delivered or failed.
    pub state: String,
}

/// What the Webhooks page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhooksView {
    pub endpoints: Vec<WebhookEndpointView>,
    /// The tenant used its deliveries for this hour: more wait in the queue.
    pub over_hourly_limit: bool,
    pub deliveries_per_hour: u32,
    pub max_endpoints: u32,
}

/// A secret just made (a new endpoint's, or a rotation's): shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecretView {
    pub endpoint_id: String,
    pub secret: String,
}

/// Reads a list of event type names: none missing, none unknown, none twice (sorted).
pub fn parse_event_types(names: &[String]) -> Result<Vec<WebhookEvent>, String> {
    if names.is_empty() {
        return Err("choose at least one event type".into());
    }
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let e = WebhookEvent::parse(n.trim()).ok_or_else(|| {
            format!(
                "{n:?} is not an event type; one of {}",
                WebhookEvent::ALL.map(WebhookEvent::as_str).join(", ")
            )
        })?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out.sort();
    Ok(out)
}

/// The longest endpoint URL accepted.
pub const URL_MAX: usize = 2048;
/// The longest description accepted.
pub const DESCRIPTION_MAX: usize = 200;

/// Why an address may not be reached by a delivery, or `None` when it may.
///
/// Loopback, private (RFC 1918), carrier-grade NAT, link-local (which holds the cloud metadata
/// address 169.254.169.254), unique-local, multicast, unspecified, broadcast, documentation and
/// benchmarking ranges are all refused. An IPv6 address that carries an IPv4 one (mapped,
/// compatible, NAT64, 6to4) is judged by the IPv4 address inside it.
pub fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("documentation")
            } else if s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
                Some("discard-only")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata lives here)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT")
    } else if ip.is_multicast() || a >= 240 {
        Some("multicast or reserved")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignments")
    } else if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        Some("documentation")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking")
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        // IPv4-compatible (deprecated, still routed by some stacks); ::, ::1 are not.
        Some(tail)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(tail) // NAT64
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        )) // 6to4
    } else {
        None
    }
}

/// A range of addresses (`10.1.0.0/16`, `::1/128`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    base: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(s: &str) -> Result<IpRange, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let base: IpAddr = addr
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| format!("{s:?} is not an address or a range (a.b.c.d/n)"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(IpRange { base, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(i)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(b) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(i)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(b) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// Where the provider lets deliveries go although the rules above would refuse it: host names
/// (exact, case-insensitive) and address ranges. Such destinations may also use plain http.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowance {
    pub hosts: Vec<String>,
    pub ranges: Vec<IpRange>,
}

impl Allowance {
    /// Reads the provider's list: each entry a host name, an address, or a range.
    pub fn parse(entries: &[String]) -> Result<Allowance, String> {
        let mut a = Allowance::default();
        for e in entries {
            let e = e.trim();
            if e.is_empty() {
                return Err("an empty entry in webhooks.allow".into());
            }
            let looks_like_address =
                e.contains('/') || e.contains(':') || e.parse::<IpAddr>().is_ok();
            if looks_like_address {
                a.ranges.push(IpRange::parse(e)?);
            } else if e
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                a.hosts.push(e.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "{e:?} in webhooks.allow is not a host name or a range"
                ));
            }
        }
        Ok(a)
    }

    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    pub fn allows_address(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// Whether a delivery to `host` (already resolved to `ip`) may connect, and if not, why.
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        if self.allows_host(host) || self.allows_address(ip) {
            return Ok(());
        }
        match forbidden_address(ip) {
            None => Ok(()),
            Some(why) => Err(format!(
                "{host} resolves to {ip}, a {why} address, which webhooks may not reach"
            )),
        }
    }
}

/// The parts of an endpoint URL a delivery needs, once [`check_url`] has accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub https: bool,
    /// The host as written (no brackets around IPv6).
    pub host: String,
    /// The address, when the host is one rather than a name.
    pub address: Option<IpAddr>,
}

/// Checks an endpoint URL as saved: absolute `https://` with a host and no credentials, or
/// `http://` to a host or range the provider allows; an address written into the URL is
/// judged here already (a name is judged each time a delivery connects).
pub fn check_url(url: &str, allow: &Allowance) -> Result<Destination, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("enter the URL deliveries go to".into());
    }
    if url.len() > URL_MAX {
        return Err(format!("at most {URL_MAX} characters"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("must be an absolute URL starting with https://")?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err("must start with https://".into()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry a user name or password".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces".into());
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err("must name a host".into());
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    {
        if !port.is_empty() && port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err("the port must be a number from 1 to 65535".into());
        }
    }
    let address = host.parse::<IpAddr>().ok();
    let allowed = allow.allows_host(host) || address.is_some_and(|ip| allow.allows_address(ip));
    if !https && !allowed {
        return Err("must start with https://".into());
    }
    if let (Some(ip), false) = (address, allowed) {
        if let Some(why) = forbidden_address(ip) {
            return Err(format!(
                "{ip} is a {why} address, which webhooks may not reach"
            ));
        }
    }
    Ok(Destination {
        https,
        host: host.to_ascii_lowercase(),
        address,
    })
}

/// When each attempt after the first is made, counted from the failure before it (Svix's
/// schedule): at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// An endpoint that has failed every attempt for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The longest `Retry-After` honoured; a longer one waits this long.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 3600);

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// Try again (when the schedule allows), no sooner than this if the receiver said so.
    Retry { not_before: Option<Duration> },
    /// 410 Gone: the receiver wants nothing more; the endpoint is disabled at once.
    Gone,
}

/// Judges a receiver's answer: only 2xx is success; a redirect is a failure (never followed);
/// 410 disables; 429 and 503 are retried no sooner than their `Retry-After` (seconds).
pub fn judge(status: u16, retry_after: Option<&str>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        429 | 503 => Verdict::Retry {
            not_before: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(RETRY_AFTER_MAX)),
        },
        _ => Verdict::Retry { not_before: None },
    }
}

/// How long after the failed attempt number `attempt` (1 for the first) the next one is made,
/// in `schedule`; `None` when none is left. A `Retry-After` longer than the schedule's wait
/// is honoured.
pub fn next_attempt(
    schedule: &[Duration],
    attempt: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let wait = *schedule.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
    Some(retry_after.map_or(wait, |r| r.max(wait)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn event_types_read_back_and_lists_are_checked() {
        for e in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(e.as_str()), Some(e));
            let wire = serde_json::to_string(&e).unwrap();
            assert_eq!(
                wire,
                format!("\"{}\"", e.as_str()),
                "serde names it as as_str does"
            );
        }
        let ok = parse_event_types(&["operation.failed".into(), "instance.created".into()]);
        assert_eq!(
            ok,
            Ok(vec![
                WebhookEvent::OperationFailed,
                WebhookEvent::InstanceCreated
            ])
        );
        assert!(parse_event_types(&[]).is_err());
        let unknown = parse_event_types(&["operation.exploded".into()]).unwrap_err();
        assert!(unknown.contains("operation.requested"), "{unknown}");
    }

    #[test]
    fn addresses_a_tenant_must_not_reach_are_refused() {
        for bad in [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(
                forbidden_address(ip(bad)).is_some(),
                "{bad} must be refused"
            );
        }
        for good in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "172.32.0.1",
        ] {
            assert_eq!(forbidden_address(ip(good)), None, "{good} is public");
        }
    }

    #[test]
    fn the_provider_can_allow_hosts_and_ranges() {
        let a = Allowance::parse(&["127.0.0.0/8".into(), "Receiver.Internal".into()]).unwrap();
        assert!(a.check_address("x", ip("127.0.0.2")).is_ok());
        assert!(a.check_address("receiver.internal", ip("10.0.0.1")).is_ok());
        assert!(a.check_address("other.internal", ip("10.0.0.1")).is_err());
        assert!(a.check_address("x", ip("::ffff:127.0.0.1")).is_ok());
        let none = Allowance::default();
        assert!(none.check_address("localhost", ip("127.0.0.1")).is_err());
        assert!(none
            .check_address("example.com", ip("93.184.216.34"))
            .is_ok());
        assert!(Allowance::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(Allowance::parse(&["bad host!".into()]).is_err());
        let one = IpRange::parse("::1").unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let all = IpRange::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")));
    }

    #[test]
    fn urls_must_be_https_unless_the_provider_allows_the_host() {
        let none = Allowance::default();
        let d = check_url("https://hooks.example.com/portico?x=1", &none).unwrap();
        assert_eq!(d.host, "hooks.example.com");
        assert!(d.https && d.address.is_none());
        assert!(check_url("http://hooks.example.com/", &none).is_err());
        assert!(check_url("ftp://hooks.example.com/", &none).is_err());
        assert!(check_url("hooks.example.com", &none).is_err());
        assert!(check_url("https://user:pw@hooks.example.com/", &none).is_err());
        assert!(check_url("https://hooks.example.com:0/", &none).is_err());
        assert!(check_url("https:///path", &none).is_err());
        for literal in [
            "https://127.0.0.1/",
            "https://[::1]:8443/",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
        ] {
            let why = check_url(literal, &none).unwrap_err();
            assert!(why.contains("may not reach"), "{literal}: {why}");
        }
        let loopback = Allowance::parse(&["127.0.0.1".into()]).unwrap();
        let d = check_url("http://127.0.0.1:8080/hook", &loopback).unwrap();
        assert_eq!(d.address, Some(ip("127.0.0.1")));
        assert!(!d.https);
        let v6 = check_url("https://[2606:4700::1]:8443/x", &none).unwrap();
        assert_eq!(v6.host, "2606:4700::1");
    }

    #[test]
    fn only_2xx_delivers_and_410_disables() {
        assert_eq!(judge(200, None), Verdict::Delivered);
        assert_eq!(judge(204, None), Verdict::Delivered);
        assert_eq!(judge(410, None), Verdict::Gone);
        for s in [301, 302, 307, 400, 404, 500] {
            assert_eq!(judge(s, None), Verdict::Retry { not_before: None }, "{s}");
        }
        assert_eq!(
            judge(429, Some("7")),
            Verdict::Retry {
                not_before: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            judge(503, Some("999999999")),
            Verdict::Retry {
                not_before: Some(RETRY_AFTER_MAX)
            }
        );
        // Retry-After on another status is not a promise to honour.
        assert_eq!(judge(500, Some("60")), Verdict::Retry { not_before: None });
    }

    #[test]
    fn retries_follow_the_schedule_and_stop_after_the_last() {
        let s = &RETRY_SCHEDULE;
        assert_eq!(next_attempt(s, 1, None), Some(Duration::from_secs(5)));
        assert_eq!(next_attempt(s, 2, None), Some(Duration::from_secs(300)));
        assert_eq!(next_attempt(s, 7, None), Some(Duration::from_secs(36000)));
        assert_eq!(next_attempt(s, 8, None), None, "eight attempts in all");
        assert_eq!(
            next_attempt(s, 1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60)),
            "a longer Retry-After is honoured"
        );
        assert_eq!(
            next_attempt(s, 2, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(300)),
            "a shorter one does not cut the schedule"
        );
        assert_eq!(next_attempt(s, 0, None), None);
    }
}
