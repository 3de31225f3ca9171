//! When the publishing connection's ICE candidates may go to the server: only once the server
//! has answered an offer of that connection (before, it has no connection to add them to and
//! refuses them), and never a candidate of a connection that was replaced. Pure: the media code
//! feeds it candidates and answers and sends what it returns.

use crate::protocol::IceCandidate;

/// The publishing connection's candidates, held until the server knows the connection.
#[derive(Debug, Default)]
pub(crate) struct CandidateGate {
    /// Which publishing connection is current (each new one gets the next number).
    generation: u64,
    /// The server answered an offer of the current connection.
    open: bool,
    /// Candidates of the current connection found before that.
    held: Vec<IceCandidate>,
}

impl CandidateGate {
    /// A new publishing connection replaces the last one; returns its generation, which its
    /// candidates carry.
    pub(crate) fn new_connection(&mut self) -> u64 {
        self.generation += 1;
        self.open = false;
        self.held.clear();
        self.generation
    }

    /// The current connection is about to offer an ICE restart: its new candidates wait for
    /// the server's answer (sent before the offer, they would meet the old credentials).
    pub(crate) fn restarting(&mut self) {
        self.open = false;
    }

    /// The connection is closed and none replaces it yet: its late candidates go nowhere.
    pub(crate) fn closed(&mut self) {
        self.new_connection();
    }

    /// A candidate the connection of `generation` found: to send now, or held (or dropped, if
    /// that connection was replaced).
    pub(crate) fn found(
        &mut self,
        generation: u64,
        candidate: IceCandidate,
    ) -> Option<IceCandidate> {
        if generation != self.generation {
            return None;
        }
        if self.open {
            return Some(candidate);
        }
        self.held.push(candidate);
        None
    }

    /// The server answered an offer of the current connection: the held candidates go now,
    /// later ones as they are found.
    pub(crate) fn answered(&mut self) -> Vec<IceCandidate> {
        self.open = true;
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(n: u32) -> IceCandidate {
        IceCandidate {
            candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        }
    }

    #[test]
    fn candidates_wait_for_the_first_answer_then_flow() {
        let mut gate = CandidateGate::default();
        let g = gate.new_connection();
        assert_eq!(gate.found(g, candidate(1)), None);
        assert_eq!(gate.found(g, candidate(2)), None);
        assert_eq!(gate.answered(), [candidate(1), candidate(2)]);
        assert_eq!(gate.found(g, candidate(3)), Some(candidate(3)));
        // A later answer (an ICE restart) has nothing held.
        assert!(gate.answered().is_empty());
    }

    #[test]
    fn an_ice_restarts_candidates_wait_for_its_answer_and_a_closed_connection_sends_none() {
        let mut gate = CandidateGate::default();
        let g = gate.new_connection();
        gate.answered();
        gate.restarting();
        assert_eq!(gate.found(g, candidate(1)), None);
        assert_eq!(gate.answered(), [candidate(1)]);
        gate.closed();
        assert_eq!(gate.found(g, candidate(2)), None);
        assert!(gate.answered().is_empty());
    }

    #[test]
    fn a_refused_offer_sends_nothing_and_a_replaced_connection_is_forgotten() {
        let mut gate = CandidateGate::default();
        let old = gate.new_connection();
        assert_eq!(gate.found(old, candidate(1)), None);
        // The offer was refused: no answer, nothing goes. A new connection replaces it.
        let new = gate.new_connection();
        assert_eq!(gate.found(old, candidate(2)), None);
        assert_eq!(gate.found(new, candidate(3)), None);
        assert_eq!(gate.answered(), [candidate(3)]);
        assert_eq!(gate.found(old, candidate(4)), None);
    }
}
