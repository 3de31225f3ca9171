//! Which new connections the server takes while they are not logged in yet. Sans-IO: the accept
//! loop asks, and tells it when a connection logs in or goes; nothing here touches a socket.
//!
//! Two limits hold connections that have not logged in: per source (an IPv4 address or an IPv6
//! /64; a new connection over it is refused: closed at once, so one attacker cannot crowd out
//! others) and in total (a
//! new connection over it closes the oldest one not logged in, so a flood from many addresses
//! cannot stop new users from getting in, only make the oldest idle ones go). A connection
//! stops counting once it logs in; from then on the per-user limits hold.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::hub::ConnId;

/// What to do with a new connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Take it.
    Accept,
    /// Take it, and close this older connection that has not logged in.
    AcceptEvicting(ConnId),
    /// Close it at once: its address has as many connections not logged in as it may.
    Refuse,
}

/// A source address that reached its limit and has since let go of all its connections: how
/// many it had refused meanwhile (one log line per incident).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FloodOver {
    pub(crate) address: IpAddr,
    pub(crate) refused: u64,
}

/// The connections not logged in yet.
#[derive(Debug)]
pub(crate) struct Admission {
    max_total: usize,
    max_per_address: usize,
    /// Waiting connections in accept order (ids grow), with their address.
    waiting: BTreeMap<ConnId, IpAddr>,
    /// Per address: waiting connections, and connections refused since it reached its limit.
    addresses: HashMap<IpAddr, (usize, u64)>,
    /// Connections closed to make room, in all.
    evicted: u64,
    /// Floods found over while making room, not yet taken by the shell (for its log).
    over: Vec<FloodOver>,
}

/// The share of the open-file limit connections not logged in may hold (a quarter): the rest
/// stays for members' connections and media sockets, and for the server's own files.
const WAITING_SHARE_OF_DESCRIPTORS: u64 = 4;

/// The total limit on connections not logged in: the one configured, but never more than a
/// quarter of the process's open-file limit (when it is known). A limit equal to the
/// descriptors would let idle connections from many addresses use them all up before the
/// oldest is closed, and then `accept` fails for everyone.
pub(crate) fn waiting_cap(configured: usize, descriptors: Option<u64>) -> usize {
    let share = descriptors.map_or(u64::MAX, |d| d / WAITING_SHARE_OF_DESCRIPTORS);
    let share = usize::try_from(share).unwrap_or(usize::MAX);
    configured.min(share).max(1)
}

impl Admission {
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Self {
        Admission {
            max_total: max_total.max(1),
            max_per_address: max_per_address.max(1),
            waiting: BTreeMap::new(),
            addresses: HashMap::new(),
            evicted: 0,
            over: Vec::new(),
        }
    }

    /// A connection from `address` was accepted as `conn` (ids must grow). The second value is
    /// true for the first refusal of an incident (worth one log line).
    pub(crate) fn admit(&mut self, conn: ConnId, address: IpAddr) -> (Admit, bool) {
        let address = source(address);
        let entry = self.addresses.entry(address).or_default();
        if entry.0 >= self.max_per_address {
            entry.1 += 1;
            return (Admit::Refuse, entry.1 == 1);
        }
        entry.0 += 1;
        let evicted = if self.waiting.len() >= self.max_total {
            self.make_room()
        } else {
            None
        };
        self.waiting.insert(conn, address);
        match evicted {
            Some(oldest) => (Admit::AcceptEvicting(oldest), false),
            None => (Admit::Accept, false),
        }
    }

    /// `conn` logged in, or is gone: it no longer counts. Returns the end of its address's
    /// incident, if this was the address's last waiting connection and it had refused some.
    pub(crate) fn settled(&mut self, conn: ConnId) -> Option<FloodOver> {
        let address = self.waiting.remove(&conn)?;
        let entry = self.addresses.get_mut(&address)?;
        entry.0 -= 1;
        if entry.0 > 0 {
            return None;
        }
        let refused = entry.1;
        self.addresses.remove(&address);
        (refused > 0).then_some(FloodOver { address, refused })
    }

    /// The oldest connection not logged in is to be closed, to make room for a new one (over
    /// the total limit, or out of descriptors: `accept` failed with `EMFILE`); `None` when
    /// there is none. Its address's count drops now; the connection's own `settled` finds
    /// nothing.
    pub(crate) fn make_room(&mut self) -> Option<ConnId> {
        let (&oldest, _) = self.waiting.first_key_value()?;
        if let Some(over) = self.settled(oldest) {
            self.over.push(over);
        }
        self.evicted += 1;
        Some(oldest)
    }

    /// The floods that ended when their last connection was closed to make room.
    pub(crate) fn take_over(&mut self) -> Vec<FloodOver> {
        std::mem::take(&mut self.over)
    }

    /// Connections not logged in yet.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Connections closed to make room for newer ones, in all.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// The source a limit counts by: an IPv4 address (v4-mapped IPv6 ones included), or an IPv6
/// /64, the block one subscriber usually holds whole.
fn source(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn one_address_is_refused_over_its_limit_and_others_still_get_in() {
        let mut a = Admission::new(100, 2);
        assert_eq!(a.admit(1, ip(2)), (Admit::Accept, false));
        assert_eq!(a.admit(2, ip(2)), (Admit::Accept, false));
        assert_eq!(a.admit(3, ip(2)), (Admit::Refuse, true));
        assert_eq!(a.admit(4, ip(2)), (Admit::Refuse, false));
        assert_eq!(a.admit(5, ip(1)), (Admit::Accept, false));
        // Logging in frees the slot.
        assert_eq!(a.settled(1), None);
        assert_eq!(a.admit(6, ip(2)), (Admit::Accept, false));
        assert_eq!(a.settled(2), None);
        assert_eq!(
            a.settled(6),
            Some(FloodOver {
                address: ip(2),
                refused: 2
            })
        );
        assert_eq!(a.waiting(), 1);
    }

    #[test]
    fn the_total_limit_closes_the_oldest_waiting_connection() {
        let mut a = Admission::new(2, 10);
        a.admit(1, ip(2));
        a.admit(2, ip(3));
        assert_eq!(a.admit(3, ip(4)), (Admit::AcceptEvicting(1), false));
        // The evicted connection's own end changes nothing.
        assert_eq!(a.settled(1), None);
        assert_eq!(a.waiting(), 2);
        assert_eq!(a.evicted(), 1);
    }

    #[test]
    fn an_ipv6_64_counts_as_one_source() {
        let mut a = Admission::new(10, 1);
        a.admit(1, "2001:db8:1:2::1".parse().unwrap());
        assert_eq!(
            a.admit(2, "2001:db8:1:2::ffff".parse().unwrap()).0,
            Admit::Refuse
        );
        assert_eq!(
            a.admit(3, "2001:db8:1:3::1".parse().unwrap()).0,
            Admit::Accept
        );
    }

    #[test]
    fn v4_mapped_v6_addresses_count_as_their_v4_address() {
        let mut a = Admission::new(10, 1);
        a.admit(1, ip(2));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(a.admit(2, mapped).0, Admit::Refuse);
    }

    #[test]
    fn the_total_limit_leaves_three_quarters_of_the_descriptors() {
        use super::waiting_cap;
        assert_eq!(waiting_cap(1024, Some(1024)), 256);
        assert_eq!(waiting_cap(1024, Some(1_048_576)), 1024);
        assert_eq!(waiting_cap(1024, None), 1024);
        assert_eq!(waiting_cap(1024, Some(2)), 1);
    }

    #[test]
    fn out_of_descriptors_the_oldest_waiting_connection_goes() {
        let mut a = Admission::new(10, 10);
        let ip: IpAddr = [127, 0, 0, 1].into();
        a.admit(1, ip);
        a.admit(2, ip);
        assert_eq!(a.make_room(), Some(1));
        assert_eq!(a.waiting(), 1);
        assert_eq!(a.evicted(), 1);
        assert_eq!(a.settled(1), None);
        assert_eq!(a.make_room(), Some(2));
        assert_eq!(a.make_room(), None);
    }
}
