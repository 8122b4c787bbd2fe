//! The public-internet-only address guard: what a URL from untrusted data
//! may make a service connect to.
//!
//! Company sites come from directory and vendor data, webhook URLs from
//! tenants, and neither is trusted; sites choose where their redirects go
//! and names choose what they resolve to. Without a guard a site, a tenant
//! (or a DNS answer) could point a service at loopback, the cluster's
//! private network or the cloud metadata service (169.254.169.254) and
//! have it connect there: server-side request forgery. The research
//! worker's web step and the webhooks service's deliveries both connect
//! through it.
//!
//! The check is made on the address a connection really goes to:
//!
//! * [`GuardedResolver`] wraps the resolver the HTTP client uses for names;
//!   every address it returns is checked and the refused ones are dropped,
//!   so a name refused or re-pointed later (DNS rebinding) cannot reach a
//!   refused address. Each new connection resolves again, and is checked
//!   again.
//! * The client does not ask the resolver for IP-literal hosts, so the
//!   caller checks those itself ([`AddressGuard::check_host`]) before every
//!   request, each redirect hop included.
//! * [`AddressGuard::check_url`] is the early check of a URL that is stored
//!   to be fetched later (a webhook endpoint at registration): its literal
//!   host, and every address its name resolves to now. It is no substitute
//!   for the connect-time check, which still runs on every connection.
//!
//! [`classify`] says what kind of non-public address an address is: IPv4-
//! mapped, 6to4 and NAT64 forms are judged by the IPv4 address they carry,
//! deprecated IPv4-compatible ones refused whatever they carry. Networks
//! listed in the allowance (a test-only setting of each service, e.g.
//! `DOSSIER_RESEARCH_ALLOW_PRIVATE_NETWORKS`) are let through.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What kind of non-public address an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// `0.0.0.0/8` ("this network", which Linux routes to the local host)
    /// or `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16` (RFC 1918).
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// `169.254.0.0/16` (the metadata service lives here), `fe80::/10`.
    LinkLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`, network benchmarking (RFC 2544).
    Benchmarking,
    /// `fc00::/7`, unique local IPv6 (the IPv6 private range).
    UniqueLocal,
    /// `fec0::/10`, deprecated site-local IPv6.
    SiteLocal,
    /// `::/96` (`::a.b.c.d`), deprecated IPv4-compatible IPv6.
    Ipv4Compatible,
    /// `64:ff9b:1::/48`, NAT64 prefixes for local use (RFC 8215).
    LocalNat64,
    /// Reserved or not assigned for public use: `192.0.0.0/24`,
    /// `192.88.99.0/24`, `240.0.0.0/4`, `2001::/23`, `100::/64`, and IPv6
    /// outside global unicast (`2000::/3`).
    Reserved,
}

impl AddressClass {
    /// The class's name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::SharedAddressSpace => "shared address space (CGNAT)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::UniqueLocal => "unique local",
            AddressClass::SiteLocal => "site-local",
            AddressClass::Ipv4Compatible => "IPv4-compatible",
            AddressClass::LocalNat64 => "local-use NAT64",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of non-public address `ip` is; `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_broadcast() => Broadcast,
        (0, ..) => Unspecified,
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => Private,
        (100, 64..=127, _) => SharedAddressSpace,
        (127, ..) => Loopback,
        (169, 254, _) => LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Documentation,
        (198, 18..=19, _) => Benchmarking,
        (224..=239, ..) => Multicast,
        // IETF protocol assignments, the deprecated 6to4 relay anycast, and
        // the former class E.
        (192, 0, 0) | (192, 88, 99) | (240..=255, ..) => Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass::*;
    // `::ffff:a.b.c.d` reaches a.b.c.d: judged as that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    Some(match s {
        _ if ip.is_unspecified() => Unspecified,
        _ if ip.is_loopback() => Loopback,
        // Nothing public is reached through these (deprecated since 2006).
        [0, 0, 0, 0, 0, 0, _, _] => Ipv4Compatible,
        // NAT64 (RFC 6052) and 6to4 (RFC 3056) reach the IPv4 address they
        // carry: judged as that address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return classify_v4(embedded(hi, lo)),
        [0x2002, hi, lo, ..] => return classify_v4(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => LocalNat64,
        [0x2001, 0x0db8, ..] => Documentation,
        [0x3fff, x, ..] if x < 0x1000 => Documentation,
        // IETF protocol assignments, Teredo among them.
        [0x2001, x, ..] if x < 0x0200 => Reserved,
        [x, ..] if x & 0xfe00 == 0xfc00 => UniqueLocal,
        [x, ..] if x & 0xffc0 == 0xfe80 => LinkLocal,
        [x, ..] if x & 0xffc0 == 0xfec0 => SiteLocal,
        [x, ..] if x & 0xff00 == 0xff00 => Multicast,
        // Only global unicast is public (the discard prefix `100::/64` and
        // everything unassigned fall here).
        [x, ..] if x & 0xe000 != 0x2000 => Reserved,
        _ => return None,
    })
}

/// A connection the guard refused: the address and why (for logs only;
/// tenants see a fixed reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refused to connect to {address}: a {class} address, not a public one")]
pub struct Refused {
    /// The address refused.
    pub address: IpAddr,
    /// What kind of address it is.
    pub class: AddressClass,
}

/// Decides which addresses the web step may connect to: public ones, and
/// those in the allowance.
#[derive(Debug, Clone, Default)]
pub struct AddressGuard {
    allowed: Arc<[IpNet]>,
}

impl AddressGuard {
    /// A guard letting public addresses through, and `allowed` networks
    /// (tests and local sites only; empty in production).
    pub fn new(allowed: &[IpNet]) -> AddressGuard {
        AddressGuard {
            allowed: allowed.into(),
        }
    }

    /// `Ok` when a connection to `ip` is allowed.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let Some(class) = classify(ip) else {
            return Ok(());
        };
        // An allowance for 127.0.0.0/8 covers ::ffff:127.0.0.1 too: it is
        // the same destination.
        let canonical = ip.to_canonical();
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        Err(Refused { address: ip, class })
    }

    /// `Ok` when `url`'s host may be connected to as far as can be told
    /// before resolving: an IP literal is checked here (the HTTP client
    /// connects to it without asking the resolver); a name is checked by
    /// [`GuardedResolver`] when it is resolved.
    pub fn check_host(&self, url: &Url) -> Result<(), Refused> {
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        // The URL parser has already turned every IP spelling of an http(s)
        // host (`2130706433`, `0x7f.1`) into the plain literal; IPv6 ones
        // come in brackets.
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.check(ip),
            Err(_) => Ok(()),
        }
    }
}

/// Parses one network of an allowance: a CIDR network (`127.0.0.0/8`), or
/// one address (`127.0.0.1`, a `/32`).
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not a CIDR network (e.g. 127.0.0.0/8) nor an address"))
}

/// Why a URL was refused before any connection ([`AddressGuard::check_url`]).
#[derive(Debug, thiserror::Error)]
pub enum UrlRefused {
    /// The URL names no host.
    #[error("the URL has no host")]
    NoHost,
    /// The host is, or resolves to, an address that is not public.
    #[error(transparent)]
    NotPublic(#[from] Refused),
    /// The host's name did not resolve to any address.
    #[error("the host could not be resolved: {0}")]
    Unresolved(String),
}

impl AddressGuard {
    /// `Ok` when `url`'s host is public now: an IP literal is checked as
    /// it is, a name is resolved through `resolver` and refused when *any*
    /// of its addresses is not public (a name that resolves partly to the
    /// cluster's network is a mistake or an attack either way) or when it
    /// does not resolve. For URLs stored to be fetched later; the
    /// connections themselves still go through [`GuardedResolver`].
    pub async fn check_url(&self, url: &Url, resolver: &dyn Resolve) -> Result<(), UrlRefused> {
        let host = url.host_str().ok_or(UrlRefused::NoHost)?;
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(self.check(ip)?);
        }
        let name: Name = bare
            .parse()
            .map_err(|_| UrlRefused::Unresolved("not a host name".to_owned()))?;
        let addrs = resolver
            .resolve(name)
            .await
            .map_err(|error| UrlRefused::Unresolved(error.to_string()))?;
        let mut any = false;
        for addr in addrs {
            any = true;
            self.check(addr.ip())?;
        }
        if any {
            Ok(())
        } else {
            Err(UrlRefused::Unresolved("no address".to_owned()))
        }
    }
}

/// The system's resolver (`getaddrinfo`, on a blocking thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the client puts in the URL's port.
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(Box::new(addrs.collect::<Vec<_>>().into_iter()) as Addrs)
        })
    }
}

/// A resolver that lets through only the addresses the [`AddressGuard`]
/// allows, so the client never connects to the others. A name none of
/// whose addresses are allowed fails with [`Refused`].
#[derive(Clone)]
pub struct GuardedResolver {
    inner: Arc<dyn Resolve>,
    guard: AddressGuard,
}

impl GuardedResolver {
    /// Resolves through `inner`, keeping what `guard` allows.
    pub fn new(inner: Arc<dyn Resolve>, guard: AddressGuard) -> GuardedResolver {
        GuardedResolver { inner, guard }
    }
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let resolving = self.inner.resolve(name);
        let guard = self.guard.clone();
        Box::pin(async move {
            let mut kept = Vec::new();
            let mut refused = None;
            for addr in resolving.await? {
                match guard.check(addr.ip()) {
                    Ok(()) => kept.push(addr),
                    Err(why) => {
                        tracing::warn!(
                            message = "Refused a resolved address: not public.",
                            host = %host,
                            address = %why.address,
                            class = %why.class,
                        );
                        refused.get_or_insert(why);
                    }
                }
            }
            match (kept.is_empty(), refused) {
                (true, Some(why)) => Err(why.into()),
                _ => Ok(Box::new(kept.into_iter()) as Addrs),
            }
        })
    }
}

/// The [`Refused`] somewhere in `error`'s chain of causes, if any.
pub fn refusal(error: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    std::iter::successors(Some(error), |e| e.source())
        .find_map(|e| e.downcast_ref::<Refused>())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<AddressClass> {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn every_non_public_ipv4_class_is_recognised() {
        use AddressClass::*;
        let cases = [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.0.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("169.254.169.254", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("192.0.0.8", Reserved),
            ("192.88.99.1", Reserved),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_ipv4_addresses_pass_including_the_neighbours_of_refused_ranges() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "9.255.255.255",
            "11.0.0.1",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "169.255.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.167.255.255",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn every_non_public_ipv6_class_is_recognised_with_embedded_ipv4_judged_as_ipv4() {
        use AddressClass::*;
        let cases = [
            ("::", Unspecified),
            ("::1", Loopback),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", SiteLocal),
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("2001::1", Reserved),
            ("2001:1ff::1", Reserved),
            ("100::1", Reserved),
            ("4000::1", Reserved),
            ("64:ff9b:1::1", LocalNat64),
            // IPv4-mapped: the IPv4 address's class.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:100.64.0.1", SharedAddressSpace),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:255.255.255.255", Broadcast),
            // IPv4-compatible (deprecated): refused whatever it carries.
            ("::127.0.0.1", Ipv4Compatible),
            ("::10.0.0.1", Ipv4Compatible),
            ("::8.8.8.8", Ipv4Compatible),
            // NAT64 and 6to4: the IPv4 address's class.
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b::10.1.2.3", Private),
            ("2002:7f00:1::1", Loopback),
            ("2002:a00:1::", Private),
            ("2002:a9fe:a9fe::1", LinkLocal),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_ipv6_addresses_pass() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
            "2001:4860:4860::8888",
            "2001:200::1",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
            "3fff:1000::1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn the_allowance_lets_its_networks_through_and_nothing_else() {
        let guard = AddressGuard::new(&["127.0.0.0/8".parse().unwrap()]);
        for ip in ["127.0.0.1", "127.1.2.3", "::ffff:127.0.0.1", "8.8.8.8"] {
            assert!(guard.check(ip.parse().unwrap()).is_ok(), "{ip}");
        }
        for (ip, class) in [
            ("10.0.0.1", AddressClass::Private),
            ("::1", AddressClass::Loopback),
            ("169.254.169.254", AddressClass::LinkLocal),
        ] {
            let address: IpAddr = ip.parse().unwrap();
            assert_eq!(guard.check(address), Err(Refused { address, class }));
        }
        assert!(
            AddressGuard::default()
                .check("127.0.0.1".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn ip_literal_hosts_are_checked_in_every_spelling() {
        let guard = AddressGuard::default();
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1:8080/",
            "http://017700000001/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a00:1]/",
            "https://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(guard.check_host(&url).is_err(), "{url}");
        }
        for url in ["https://acme.com/", "https://8.8.8.8/", "http://localhost/"] {
            // Names (even `localhost`) are the resolver's to check.
            assert!(guard.check_host(&Url::parse(url).unwrap()).is_ok(), "{url}");
        }
    }

    /// A resolver answering every name with the addresses in its table.
    struct Table(Vec<(&'static str, Vec<IpAddr>)>);

    impl Resolve for Table {
        fn resolve(&self, name: Name) -> Resolving {
            let found = self
                .0
                .iter()
                .find(|(n, _)| *n == name.as_str())
                .map(|(_, ips)| ips.clone());
            Box::pin(async move {
                let ips = found.ok_or("no such name")?;
                let addrs = ips.into_iter().map(|ip| std::net::SocketAddr::new(ip, 0));
                Ok(Box::new(addrs.collect::<Vec<_>>().into_iter()) as Addrs)
            })
        }
    }

    #[tokio::test]
    async fn stored_urls_are_refused_when_literal_or_resolved_addresses_are_not_public() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let resolver = Table(vec![
            ("public.example", vec![ip("93.184.215.14")]),
            ("loopback.example", vec![ip("127.0.0.1")]),
            ("private.example", vec![ip("10.0.0.7")]),
            ("metadata.example", vec![ip("169.254.169.254")]),
            ("mixed.example", vec![ip("93.184.215.14"), ip("10.0.0.7")]),
            ("empty.example", vec![]),
        ]);
        let guard = AddressGuard::default();
        let check = |url: &str| {
            let url = Url::parse(url).unwrap();
            let guard = guard.clone();
            let resolver = &resolver;
            async move { guard.check_url(&url, resolver).await }
        };
        assert!(check("https://public.example/hook").await.is_ok());
        assert!(check("https://93.184.215.14/hook").await.is_ok());
        for url in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/",
            "https://loopback.example/",
            "https://private.example/",
            "https://metadata.example/",
            "https://mixed.example/",
        ] {
            assert!(
                matches!(check(url).await, Err(UrlRefused::NotPublic(_))),
                "{url}"
            );
        }
        for url in ["https://empty.example/", "https://unknown.example/"] {
            assert!(
                matches!(check(url).await, Err(UrlRefused::Unresolved(_))),
                "{url}"
            );
        }
        let allowed = AddressGuard::new(&["127.0.0.0/8".parse().unwrap()]);
        let url = Url::parse("http://loopback.example:8080/").unwrap();
        assert!(allowed.check_url(&url, &resolver).await.is_ok());
    }
}
