//! An address `POST /nodes/discover` may probe: `[user@]host[:port]`, where the host is
//! a DNS name (RFC 1123 labels), an IPv4 literal or an IPv6 literal (in brackets when a
//! port follows, `[fe80::1]:2222`). Checked before anything is probed, so a typo (or an
//! `-oProxyCommand=…` smuggled in as a host) refuses the whole request.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::inventory::check_user;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DiscoverAddress {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl DiscoverAddress {
    /// Parses one address; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<DiscoverAddress, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty address".into());
        }
        let (user, rest) = match t.rsplit_once('@') {
            Some((u, r)) => {
                check_user(u)?;
                (Some(u.to_string()), r)
            }
            None => (None, t),
        };
        let (host, port) = split_port(rest)?;
        check_host(host)?;
        Ok(DiscoverAddress {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// `[user@]host[:port]`, IPv6 in brackets when a port follows: the address as
    /// recorded (and shown in `GET /nodes`).
    pub fn canonical(&self) -> String {
        let user = self.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
        match self.port {
            Some(p) if self.host.contains(':') => format!("{user}[{}]:{p}", self.host),
            Some(p) => format!("{user}{}:{p}", self.host),
            None => format!("{user}{}", self.host),
        }
    }

    /// A name for the host's inventory entry: the hostname it reported when that is a
    /// valid node name, else its address with the separators made `-`.
    pub fn node_name(&self, hostname: Option<&str>) -> String {
        if let Some(h) = hostname
            && crate::inventory::check_node_name(h).is_ok()
        {
            return h.to_string();
        }
        let name: String = self
            .host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let name = name.trim_matches('-').to_string();
        if name.is_empty() { "node".into() } else { name }
    }

    /// The host's entry for `inventory.yml` (one line of YAML under `nodes:`), so that it
    /// can become a node that `POST /nodes/commission` accepts.
    pub fn inventory_entry(&self, hostname: Option<&str>) -> String {
        let mut fields = vec![format!("host: \"{}\"", self.host)];
        if let Some(p) = self.port {
            fields.push(format!("port: {p}"));
        }
        if let Some(u) = &self.user {
            fields.push(format!("user: {u}"));
        }
        format!("{}: {{ {} }}", self.node_name(hostname), fields.join(", "))
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal (more than one `:`).
fn split_port(rest: &str) -> Result<(&str, Option<u16>), String> {
    if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("`{rest}`: `[` without its `]`"))?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{host}` in brackets is not an IPv6 address"));
        }
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, Some(port(p)?))),
                None => Err(format!("`{after}` after `]`: expected `:PORT`")),
            },
        };
    }
    match rest.matches(':').count() {
        0 => Ok((rest, None)),
        1 => {
            let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
            Ok((h, Some(port(p)?)))
        }
        // A bare IPv6 literal: no port (write `[v6]:port` for one).
        _ => Ok((rest, None)),
    }
}

fn port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("port `{p}`: expected a number from 1 to 65535")),
    }
}

/// A DNS name, an IPv4 literal or an IPv6 literal.
fn check_host(host: &str) -> Result<(), String> {
    if host.contains(':') {
        return host
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("`{host}` is not an IPv6 address"));
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let bad = || {
        format!(
            "`{host}` is not a host name or an IP address (expected letters, digits and `-` in \
             dot-separated labels of at most 63, like `node1.example.org`)"
        )
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return Err(bad());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(bad());
        }
    }
    // `10.0.0.300` is a typo of an address, not a name: no top-level label is numeric.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("`{host}` is not a valid IPv4 address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(t: &str) -> DiscoverAddress {
        DiscoverAddress::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn names_and_literals_with_users_and_ports_are_addresses() {
        let a = ok("deploy@node1.example.org:2222");
        assert_eq!(
            (a.user.as_deref(), a.host.as_str(), a.port),
            (Some("deploy"), "node1.example.org", Some(2222))
        );
        assert_eq!(a.canonical(), "deploy@node1.example.org:2222");
        assert_eq!(ok("10.1.2.3").canonical(), "10.1.2.3");
        assert_eq!(ok("127.0.0.2:22").port, Some(22));
        assert_eq!(ok("fe80::1").host, "fe80::1");
        let v6 = ok("root@[2001:db8::7]:2200");
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::7", Some(2200)));
        assert_eq!(v6.canonical(), "root@[2001:db8::7]:2200");
        assert_eq!(ok("[::1]").canonical(), "::1");
        assert_eq!(ok("gpu-01").canonical(), "gpu-01");
        assert_eq!(ok("host.example.").host, "host.example.");
    }

    #[test]
    fn anything_else_is_refused_with_what_was_expected() {
        for (bad, says) in [
            ("", "empty"),
            ("-oProxyCommand=x", "not a host name"),
            ("a b", "not a host name"),
            ("x;rm", "not a host name"),
            ("node_1", "not a host name"),
            ("-node", "not a host name"),
            ("node-", "not a host name"),
            ("a..b", "not a host name"),
            ("10.0.0.300", "not a valid IPv4"),
            ("1.2.3", "not a valid IPv4"),
            ("host:0", "port `0`"),
            ("host:70000", "port `70000`"),
            ("host:", "port ``"),
            ("[::1", "without its `]`"),
            ("[nothost]:22", "not an IPv6"),
            ("[::1]x", "expected `:PORT`"),
            ("fe80::zz", "not an IPv6"),
            ("$(id)@host", "invalid user"),
            ("@host", "invalid user"),
        ] {
            let e = DiscoverAddress::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(DiscoverAddress::parse(&format!("{}.org", "a".repeat(64))).is_err());
    }

    #[test]
    fn the_inventory_entry_names_the_host_by_its_hostname_when_it_can() {
        let a = ok("deploy@10.0.0.5:2222");
        assert_eq!(
            a.inventory_entry(Some("gpu7")),
            "gpu7: { host: \"10.0.0.5\", port: 2222, user: deploy }"
        );
        assert_eq!(
            a.inventory_entry(Some("not a name")),
            "10.0.0.5: { host: \"10.0.0.5\", port: 2222, user: deploy }"
        );
        assert_eq!(ok("fe80::1").node_name(None), "fe80--1");
    }
}
