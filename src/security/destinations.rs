//! The SSRF guard: where deliveries may go.
//!
//! Users type webhook URLs; without a guard, a URL could make hookrouter POST to the cloud
//! metadata service (169.254.169.254), to Redis, or to anything else on the internal network.
//! So by default a destination address is refused when it is unspecified, loopback, private
//! (RFC 1918), link-local, CGNAT (shared), IETF protocol assignments (192.0.0.0/24),
//! benchmarking (198.18.0.0/15), reserved, multicast or broadcast; for IPv6 also unique-local,
//! site-local and local-use NAT64 (64:ff9b:1::/48); and IPv4-mapped, IPv4-compatible, NAT64
//! and 6to4 (2002::/16) forms are judged by the IPv4 address they carry. `[security]
//! allow_cidrs` lets chosen ranges through.
//!
//! It is checked twice: when a webhook is created or changed (a 400 with the reason), and at
//! delivery time, where hookrouter resolves the host itself ([`GuardedResolver`]) and connects
//! only to the addresses it checked, so a DNS answer that changes between the two checks
//! (DNS rebinding) gains nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use ipnet::IpNet;

use crate::domain::WebhookUrl;

/// How long the create/update check waits for DNS before leaving the host to the delivery-time
/// check.
const CREATE_TIME_DNS_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Default)]
pub struct Destinations {
    allow: Vec<IpNet>,
}

impl Destinations {
    /// `allow_cidrs` were validated with the settings; unparsable entries are ignored.
    pub fn new(allow_cidrs: &[String]) -> Destinations {
        Destinations {
            allow: allow_cidrs.iter().filter_map(|c| c.parse().ok()).collect(),
        }
    }

    /// Ok when deliveries may go to `ip`; otherwise why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let embedded = embedded_v4(ip);
        let allowed = |ip: IpAddr| self.allow.iter().any(|net| net.contains(&ip));
        if allowed(ip) || embedded.is_some_and(|v4| allowed(IpAddr::V4(v4))) {
            return Ok(());
        }
        match refusal(ip) {
            None => Ok(()),
            Some(kind) => Err(format!(
                "{ip} is {kind}; allow it with [security] allow_cidrs if you mean it"
            )),
        }
    }

    /// The create/update check: IP literals and `localhost` names at once; other names are
    /// resolved (briefly) and refused if any address they resolve to is refused. A name that
    /// does not resolve now is left to the delivery-time check.
    pub async fn check_url(&self, url: &WebhookUrl) -> Result<(), String> {
        let url = url.url();
        let port = url.port_or_known_default().unwrap_or(80);
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    return self
                        .check(IpAddr::V4(Ipv4Addr::LOCALHOST))
                        .map_err(|reason| format!("{name} is local: {reason}"));
                }
                let lookup = tokio::net::lookup_host((name.as_str(), port));
                let Ok(Ok(addresses)) = tokio::time::timeout(CREATE_TIME_DNS_TIMEOUT, lookup).await else {
                    return Ok(());
                };
                for address in addresses {
                    self.check(address.ip())
                        .map_err(|reason| format!("{name} resolves to {reason}"))?;
                }
                Ok(())
            }
            None => Err("must have a host".into()),
        }
    }

    /// The delivery-time check of an IP-literal URL (hostnames go through [`GuardedResolver`]).
    pub fn check_literal(&self, url: &url::Url) -> Result<(), String> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            _ => Ok(()),
        }
    }
}

/// Why `ip` is refused by default, if it is.
fn refusal(ip: IpAddr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return refusal_v4(v4);
    }
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match () {
        _ if ip.is_broadcast() => "the broadcast address",
        _ if a == 0 => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_private() => "a private address (RFC 1918)",
        _ if ip.is_link_local() => "a link-local address",
        _ if a == 100 && (64..128).contains(&b) => "a shared address (CGNAT)",
        _ if a == 192 && b == 0 && ip.octets()[2] == 0 => "an IETF protocol assignment address (192.0.0.0/24)",
        _ if a == 198 && (b & 0xfe) == 18 => "a benchmarking address (198.18.0.0/15)",
        _ if ip.is_multicast() => "a multicast address",
        _ if a >= 240 => "a reserved address",
        _ => return None,
    })
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_multicast() => "a multicast address",
        _ if first & 0xffc0 == 0xfe80 => "a link-local address",
        _ if first & 0xffc0 == 0xfec0 => "a site-local address",
        _ if first & 0xfe00 == 0xfc00 => "a unique-local address",
        _ if ip.segments()[..3] == [0x64, 0xff9b, 1] => "a local-use NAT64 address (64:ff9b:1::/48)",
        _ => return None,
    })
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`) IPv6 address.
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] => Some(v4(s[6], s[7])),
        [0, 0, 0, 0, 0, 0, ..] if !v6.is_unspecified() && !v6.is_loopback() => Some(v4(s[6], s[7])),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(v4(s[6], s[7])),
        [0x2002, ..] => Some(v4(s[1], s[2])),
        _ => None,
    }
}

/// An IP literal as a URL or awc spells its host (`[::1]`, `127.0.0.1`), if it is one.
fn ip_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// awc's DNS resolver for deliveries: resolves, drops refused addresses, and fails when none
/// is left. awc then connects only to what this returned.
pub struct GuardedResolver(pub Arc<Destinations>);

impl actix_tls::connect::Resolve for GuardedResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            // IP literals (IPv6 ones arrive in brackets) need no lookup; they were checked
            // before the request, and are checked again here like any address.
            let found: Vec<SocketAddr> = match ip_literal(host) {
                Some(ip) => vec![SocketAddr::new(ip, port)],
                None => tokio::net::lookup_host((host, port)).await?.collect(),
            };
            let mut refused = Vec::new();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| match self.0.check(address.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refused.push(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.first().cloned().unwrap_or_else(|| "no address".into());
                return Err(format!("destination refused: {host} resolves only to refused addresses ({why})").into());
            }
            Ok(allowed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        Destinations::default().check(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn refuses_every_internal_range() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "192.0.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "198.19.255.254",
            "64:ff9b:1::1",
            "64:ff9b:1:ffff::8.8.8.8",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn lets_public_addresses_through() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:2800:220:1::1",
            "::ffff:8.8.8.8",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!refused(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn the_allowlist_lets_chosen_ranges_through() {
        let destinations = Destinations::new(&["127.0.0.0/8".into(), "::1/128".into()]);
        assert!(destinations.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(destinations.check("::1".parse().unwrap()).is_ok());
        assert!(destinations.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        let reason = destinations.check("10.0.0.1".parse().unwrap()).unwrap_err();
        assert!(
            reason.starts_with("10.0.0.1 is a private address (RFC 1918)"),
            "{reason}"
        );
    }

    #[test]
    fn ip_literals_are_read_with_or_without_brackets() {
        assert_eq!(ip_literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("127.0.0.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(ip_literal("example.com"), None);
        assert_eq!(ip_literal("[example.com]"), None);
    }

    #[actix_web::test]
    async fn the_delivery_resolver_takes_bracketed_ipv6_literals() {
        use actix_tls::connect::Resolve;
        let allowed = GuardedResolver(Arc::new(Destinations::new(&["::1/128".into()])));
        let found = allowed.lookup("[::1]", 8080).await.unwrap();
        assert_eq!(found, vec!["[::1]:8080".parse::<SocketAddr>().unwrap()]);
        let refused = GuardedResolver(Arc::new(Destinations::default()));
        let error = refused.lookup("[::1]", 8080).await.unwrap_err().to_string();
        assert!(error.contains("loopback"), "{error}");
    }

    #[actix_web::test]
    async fn urls_are_checked_at_creation() {
        let guard = Destinations::default();
        let check = |url: &str| {
            let url = WebhookUrl::parse(url).unwrap();
            let guard = guard.clone();
            async move { guard.check_url(&url).await }
        };
        assert!(check("http://169.254.169.254/latest/meta-data")
            .await
            .unwrap_err()
            .contains("link-local"));
        assert!(check("http://[::ffff:10.0.0.1]/")
            .await
            .unwrap_err()
            .contains("private"));
        assert!(check("http://localhost:8080/").await.unwrap_err().contains("loopback"));
        assert!(check("http://api.localhost/").await.is_err());
        assert!(check("https://93.184.216.34/hook").await.is_ok());
    }
}
