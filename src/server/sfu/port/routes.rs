//! Which peer connection a packet arriving on the shared media port belongs to (sans-IO: bytes
//! and addresses in, a connection out).
//!
//! Every connection gets its own ICE username fragment, minted by the server. A client's first
//! packets to the port are ICE connectivity checks (STUN binding requests) whose USERNAME
//! attribute reads `<server ufrag>:<client ufrag>`: the server's half (its first [`UFRAG_LEN`]
//! characters) names the connection, and
//! the check's source address is remembered for it. Everything else (DTLS, SRTP, SRTCP, later
//! checks) is routed by its source address. A connection keeps its [`MAX_ADDRESSES`] most
//! recent addresses (a client that changes networks checks from the new one), so no sender can
//! grow the table without bound; an address checked for by another connection moves there.
//!
//! The routing only picks a connection: a forged check (a USERNAME copied, a spoofed source)
//! reaches the connection's ICE agent, which verifies its MESSAGE-INTEGRITY with the password
//! only the real client knows and drops it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

/// The length of the username fragment the server mints for a connection. An ICE restart
/// gives the connection a longer one that begins with it (vendor/rtc/PATCHES.md), so a
/// connection is known by the first `UFRAG_LEN` characters of its fragment.
pub(crate) const UFRAG_LEN: usize = 8;

/// The connection a server username fragment names: its first [`UFRAG_LEN`] characters.
pub(crate) fn connection_key(ufrag: &str) -> &str {
    ufrag.get(..UFRAG_LEN).unwrap_or(ufrag)
}

/// How many source addresses a connection is reachable from at once.
pub(crate) const MAX_ADDRESSES: usize = 8;

/// The STUN magic cookie (RFC 5389), bytes 4–7 of every STUN message.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// A binding request's message type.
const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
/// The USERNAME attribute's type.
const USERNAME: u16 = 0x0006;
/// A STUN message's fixed header length.
const HEADER: usize = 20;

/// The local (server's) username fragment of a STUN binding request, if `packet` is one with a
/// USERNAME attribute of the form `local:remote`.
pub(crate) fn binding_request_ufrag(packet: &[u8]) -> Option<&str> {
    if packet.len() < HEADER || packet[..2] != BINDING_REQUEST || packet[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = u16::from_be_bytes([packet[2], packet[3]]) as usize;
    let mut attributes = packet.get(HEADER..HEADER + length)?;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = u16::from_be_bytes([attributes[2], attributes[3]]) as usize;
        let value = attributes.get(4..4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let (local, _remote) = username.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        // Attribute values are padded to a multiple of four bytes.
        attributes = attributes.get(4 + len.next_multiple_of(4)..)?;
    }
    None
}

/// The connections on the port: each known by its username fragment, with the addresses its
/// packets come from. `T` is what a packet is handed to.
#[derive(Debug)]
pub(crate) struct Routes<T> {
    by_ufrag: HashMap<String, Entry<T>>,
    by_address: HashMap<SocketAddr, String>,
}

#[derive(Debug)]
struct Entry<T> {
    target: T,
    /// Most recent last.
    addresses: VecDeque<SocketAddr>,
}

impl<T> Default for Routes<T> {
    fn default() -> Self {
        Routes {
            by_ufrag: HashMap::new(),
            by_address: HashMap::new(),
        }
    }
}

impl<T> Routes<T> {
    /// Adds the connection `ufrag`, or gives it a new target (its sockets were made again by an
    /// ICE restart); its addresses stay.
    pub(crate) fn insert(&mut self, ufrag: &str, target: T) {
        match self.by_ufrag.get_mut(ufrag) {
            Some(entry) => entry.target = target,
            None => {
                self.by_ufrag.insert(
                    ufrag.to_owned(),
                    Entry {
                        target,
                        addresses: VecDeque::new(),
                    },
                );
            }
        }
    }

    /// Removes the connection `ufrag` and its addresses, if its target is still one `current`
    /// accepts (a target replaced since is left alone).
    pub(crate) fn remove(&mut self, ufrag: &str, current: impl FnOnce(&T) -> bool) {
        if !self.by_ufrag.get(ufrag).is_some_and(|e| current(&e.target)) {
            return;
        }
        if let Some(entry) = self.by_ufrag.remove(ufrag) {
            for address in entry.addresses {
                self.by_address.remove(&address);
            }
        }
    }

    /// Adds `entry` to the list of connection `ufrag` (adding the connection), in place of
    /// the entries `same` says it replaces.
    pub(crate) fn add_to<E>(&mut self, ufrag: &str, entry: E, same: impl Fn(&E) -> bool)
    where
        T: AsMut<Vec<E>> + From<Vec<E>>,
    {
        match self.by_ufrag.get_mut(ufrag) {
            Some(e) => {
                let list = e.target.as_mut();
                list.retain(|x| !same(x));
                list.push(entry);
            }
            None => self.insert(ufrag, T::from(vec![entry])),
        }
    }

    /// Takes the entries `gone` names off the list of connection `ufrag`; the connection goes
    /// with its last entry.
    pub(crate) fn take_from<E>(&mut self, ufrag: &str, gone: impl Fn(&E) -> bool)
    where
        T: AsMut<Vec<E>>,
    {
        let Some(e) = self.by_ufrag.get_mut(ufrag) else {
            return;
        };
        let list = e.target.as_mut();
        list.retain(|x| !gone(x));
        if list.is_empty() {
            self.remove(ufrag, |_| true);
        }
    }

    /// The target of the connection `ufrag`.
    pub(crate) fn get(&self, ufrag: &str) -> Option<&T> {
        self.by_ufrag.get(ufrag).map(|e| &e.target)
    }

    /// Where `packet`, from `from`, goes (learning `from` for the connection a binding request
    /// names).
    pub(crate) fn route(&mut self, packet: &[u8], from: SocketAddr) -> Option<&T> {
        if let Some(ufrag) = binding_request_ufrag(packet).map(connection_key)
            && self.by_ufrag.contains_key(ufrag)
        {
            self.learn(ufrag, from);
            return self.get(ufrag);
        }
        let ufrag = self.by_address.get(&from)?;
        self.by_ufrag.get(ufrag).map(|e| &e.target)
    }

    /// Connections on the port.
    pub(crate) fn len(&self) -> usize {
        self.by_ufrag.len()
    }

    fn learn(&mut self, ufrag: &str, from: SocketAddr) {
        match self.by_address.get(&from) {
            Some(owner) if owner == ufrag => {
                // Already known: move it to the most recent place.
                let addresses = &mut self.by_ufrag.get_mut(ufrag).expect("known").addresses;
                addresses.retain(|a| *a != from);
                addresses.push_back(from);
                return;
            }
            Some(owner) => {
                // Another connection's address now checks for this one.
                if let Some(entry) = self.by_ufrag.get_mut(owner) {
                    entry.addresses.retain(|a| *a != from);
                }
            }
            None => {}
        }
        self.by_address.insert(from, ufrag.to_owned());
        let addresses = &mut self.by_ufrag.get_mut(ufrag).expect("known").addresses;
        addresses.push_back(from);
        if addresses.len() > MAX_ADDRESSES
            && let Some(oldest) = addresses.pop_front()
        {
            self.by_address.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A binding request whose USERNAME is `username`, after a PRIORITY attribute.
    fn check(username: &str) -> Vec<u8> {
        let mut attributes = Vec::new();
        attributes.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        attributes.extend_from_slice(&USERNAME.to_be_bytes());
        attributes.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attributes.extend_from_slice(username.as_bytes());
        while attributes.len() % 4 != 0 {
            attributes.push(0);
        }
        let mut packet = vec![0x00, 0x01];
        packet.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        packet.extend_from_slice(&MAGIC_COOKIE);
        packet.extend_from_slice(&[7; 12]);
        packet.extend_from_slice(&attributes);
        packet
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn reads_the_servers_half_of_the_username() {
        assert_eq!(binding_request_ufrag(&check("srv1:cli")), Some("srv1"));
        assert_eq!(binding_request_ufrag(&check("srv12:c")), Some("srv12"));
        assert_eq!(binding_request_ufrag(&check("nocolon")), None);
        assert_eq!(binding_request_ufrag(&check(":cli")), None);
        let mut response = check("srv1:cli");
        response[1] = 0x01;
        response[0] = 0x01;
        assert_eq!(
            binding_request_ufrag(&response),
            None,
            "a response is not a check"
        );
        // An RTP packet (version 2) and DTLS are no STUN.
        assert_eq!(binding_request_ufrag(&[0x80; 40]), None);
        assert_eq!(binding_request_ufrag(&[22, 254, 253, 0, 0]), None);
    }

    #[test]
    fn learns_addresses_from_checks_and_routes_the_rest_by_them() {
        let mut routes = Routes::default();
        routes.insert("aaaa", 1);
        routes.insert("bbbb", 2);
        let media = [0x80u8; 100];
        assert_eq!(routes.route(&media, addr(1)), None, "unknown address");
        assert_eq!(routes.route(&check("aaaa:x"), addr(1)), Some(&1));
        assert_eq!(routes.route(&media, addr(1)), Some(&1));
        assert_eq!(
            routes.route(&check("cccc:x"), addr(2)),
            None,
            "unknown ufrag"
        );
        assert_eq!(routes.route(&media, addr(2)), None);
        // The address moves to the connection that checks from it now.
        assert_eq!(routes.route(&check("bbbb:x"), addr(1)), Some(&2));
        assert_eq!(routes.route(&media, addr(1)), Some(&2));
        routes.remove("bbbb", |t| *t == 2);
        assert_eq!(routes.route(&media, addr(1)), None);
        assert_eq!(routes.by_address.len(), 0);
        assert_eq!(routes.len(), 1);
    }

    #[test]
    fn a_restarted_connections_longer_fragment_still_names_it() {
        let mut routes = Routes::default();
        routes.insert("aaaaaaaa", 1);
        assert_eq!(
            routes.route(&check("aaaaaaaaRESTARTED1234567:x"), addr(1)),
            Some(&1)
        );
        assert_eq!(routes.route(&check("aaaaaaa:x"), addr(2)), None);
    }

    #[test]
    fn a_replaced_target_is_not_removed_by_its_predecessor() {
        let mut routes = Routes::default();
        routes.insert("aaaa", 1);
        routes.route(&check("aaaa:x"), addr(1));
        routes.insert("aaaa", 2);
        routes.remove("aaaa", |t| *t == 1);
        assert_eq!(
            routes.route(&[0x80; 20], addr(1)),
            Some(&2),
            "addresses kept"
        );
        routes.remove("aaaa", |t| *t == 2);
        assert_eq!(routes.len(), 0);
    }

    proptest! {
        /// Whatever bytes arrive from whatever addresses, parsing never panics, every
        /// connection keeps at most MAX_ADDRESSES addresses and the address table holds exactly
        /// the addresses the connections keep.
        #[test]
        fn the_table_stays_bounded(
            packets in proptest::collection::vec(
                (prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..64),
                    (0..4u8, 0..4u8).prop_map(|(s, c)| check(&format!("ufrag{s}:c{c}"))),
                ], 0..40u16),
                0..200,
            ),
            removals in proptest::collection::vec(0..4u8, 0..3),
        ) {
            let mut routes = Routes::default();
            for s in 0..3u8 {
                routes.insert(&format!("ufrag{s}"), s);
            }
            for (packet, port) in &packets {
                let routed = routes.route(packet, addr(*port)).copied();
                if let Some(ufrag) = binding_request_ufrag(packet)
                    && routes.get(ufrag).is_some()
                {
                    prop_assert_eq!(routed, routes.get(ufrag).copied());
                }
            }
            for s in removals {
                routes.remove(&format!("ufrag{s}"), |_| true);
            }
            let mut kept = 0;
            for entry in routes.by_ufrag.values() {
                prop_assert!(entry.addresses.len() <= MAX_ADDRESSES);
                kept += entry.addresses.len();
            }
            prop_assert_eq!(kept, routes.by_address.len());
        }
    }
}
