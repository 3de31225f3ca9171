//! Which simulcast layer each receiver of a room's videos gets, sans-IO: from the size each
//! receiver asked for (`request_video`) and what each layer really is (read by the media shell
//! from the publisher's packets: its size from key frames, and whether it is being sent). The
//! room asks it after anything that can change a choice and sends the changed ones to the media
//! shell as [`MediaAction::SetLayer`].
//!
//! - A receiver's *ideal* layer is the largest whose size fits its request (no side larger),
//!   else the smallest; with no request, the largest. Layers are numbered smallest first, so
//!   the ideal is the layer below the first one known not to fit: a layer whose size is not
//!   known yet counts as fitting (so the publisher is asked to send it, and it gets measured).
//! - It *gets* the largest layer being sent that is no larger than its ideal, else the smallest
//!   one being sent (a publisher whose encoder dropped layers, for its bandwidth or CPU, still
//!   reaches everyone).
//! - Dynacast: the publisher is asked to send the layers up to the largest ideal of those
//!   receiving it (at least the smallest). The ideal, not what is sent now, decides, so a layer
//!   stopped because nobody wanted it comes back when somebody does. It follows requests at
//!   once, both ways: a request is an application's deliberate act, and bandwidth (which
//!   changes all the time) moves what a receiver *gets*, never what is asked of the publisher.
//!
//! [`MediaAction::SetLayer`]: super::io::MediaAction::SetLayer

use std::collections::BTreeMap;

use crate::model::VideoSize;

use super::io::{Layer, SessionId};

/// What the server knows of one layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LayerInfo {
    /// Its frames' size, once a key frame showed it (kept while the layer is stopped).
    size: Option<VideoSize>,
    /// Being sent: a key frame of it arrived since it last stopped.
    active: bool,
}

/// A room's simulcast choices.
#[derive(Debug, Default)]
pub(crate) struct VideoLayers {
    /// Per publication id: its layers, in the publisher's order.
    published: BTreeMap<String, Vec<LayerInfo>>,
    /// Per (receiver, publication id): the size the receiver asked for.
    requests: BTreeMap<(SessionId, String), VideoSize>,
    /// Per (receiver, publication id): the layer its leg was told to forward last.
    told: BTreeMap<(SessionId, String), Layer>,
    /// Per publication id: how many layers (from the smallest) its publisher was last told to
    /// send (dynacast); none told yet: it sends them all.
    sending: BTreeMap<String, usize>,
}

impl VideoLayers {
    /// Publication `id` is published with `count` layers (1 without simulcast); what was
    /// measured under an earlier track is forgotten.
    pub(crate) fn published(&mut self, id: &str, count: usize) {
        self.published
            .insert(id.to_owned(), vec![LayerInfo::default(); count.max(1)]);
        self.sending.remove(id);
    }

    /// Publication `id` ended: its requests and choices go with it.
    pub(crate) fn unpublished(&mut self, id: &str) {
        self.published.remove(id);
        self.sending.remove(id);
        self.requests.retain(|(_, p), _| p != id);
        self.told.retain(|(_, p), _| p != id);
    }

    /// Receiver `conn` left the room (or stopped receiving `id` for good, with `Some(id)`).
    pub(crate) fn forget(&mut self, conn: SessionId, id: Option<&str>) {
        let keep = |c: &SessionId, p: &String| *c != conn || id.is_some_and(|id| id != p);
        self.requests.retain(|(c, p), _| keep(c, p));
        self.told.retain(|(c, p), _| keep(c, p));
    }

    /// Receiver `conn` asks for publication `id` at most `size`.
    pub(crate) fn request(&mut self, conn: SessionId, id: &str, size: VideoSize) {
        self.requests.insert((conn, id.to_owned()), size);
    }

    /// Layer `layer` of publication `id` is being sent at `size`, or (`None`) stopped. False
    /// when nothing changed (an unknown publication or layer, or what it was).
    pub(crate) fn measured(&mut self, id: &str, layer: Layer, size: Option<VideoSize>) -> bool {
        let Some(info) = self
            .published
            .get_mut(id)
            .and_then(|layers| layers.get_mut(usize::from(layer)))
        else {
            return false;
        };
        let new = LayerInfo {
            size: size.or(info.size),
            active: size.is_some(),
        };
        std::mem::replace(info, new) != new
    }

    /// The layer receiver `conn` would ideally get of publication `id`, sent or not.
    pub(crate) fn ideal(&self, conn: SessionId, id: &str) -> Layer {
        let Some(layers) = self.published.get(id) else {
            return 0;
        };
        let top = layers.len() - 1;
        let Some(request) = self.requests.get(&(conn, id.to_owned())) else {
            return top as Layer;
        };
        // Layers grow with their number: the ideal is the one below the first that is known
        // not to fit.
        let too_large = layers
            .iter()
            .position(|info| info.size.is_some_and(|s| !request.holds(s)));
        too_large.map_or(top, |k| k.saturating_sub(1)) as Layer
    }

    /// The layer receiver `conn` should get of publication `id` now: the largest being sent no
    /// larger than its ideal, else the smallest being sent (else the ideal).
    pub(crate) fn choice(&self, conn: SessionId, id: &str) -> Layer {
        let ideal = self.ideal(conn, id);
        let Some(layers) = self.published.get(id) else {
            return ideal;
        };
        let active = |info: &LayerInfo| info.active;
        let at_most = usize::from(ideal) + 1;
        layers[..at_most.min(layers.len())]
            .iter()
            .rposition(active)
            .or_else(|| layers.iter().position(active))
            .map_or(ideal, |i| i as Layer)
    }

    /// What receiver `conn`'s leg of publication `id` should be told now: its layer, if it
    /// differs from what it was told last (a new leg is told its first layer).
    pub(crate) fn update(&mut self, conn: SessionId, id: &str) -> Option<Layer> {
        let layer = self.choice(conn, id);
        let told = self.told.insert((conn, id.to_owned()), layer);
        (told != Some(layer)).then_some(layer)
    }

    /// Dynacast: how many layers (from the smallest) the publisher of `id` should send for
    /// `receivers` (those receiving it now, paused ones left out): up to the largest of their
    /// ideal layers, at least the smallest (so a new receiver starts at once). `Some` when that
    /// differs from what the publisher was told last.
    pub(crate) fn dynacast(
        &mut self,
        id: &str,
        receivers: impl Iterator<Item = SessionId>,
    ) -> Option<usize> {
        let count = self.count(id);
        if count <= 1 {
            return None;
        }
        let wanted = receivers
            .map(|conn| usize::from(self.ideal(conn, id)) + 1)
            .max()
            .unwrap_or(1)
            .min(count);
        let before = self.sending.insert(id.to_owned(), wanted);
        (before != Some(wanted)).then_some(wanted)
    }

    /// The number of layers publication `id` has (0 when it is not published).
    pub(crate) fn count(&self, id: &str) -> usize {
        self.published.get(id).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: VideoSize = VideoSize::new(320, 180);
    const H: VideoSize = VideoSize::new(640, 360);
    const F: VideoSize = VideoSize::new(1280, 720);

    fn three_measured() -> VideoLayers {
        let mut v = VideoLayers::default();
        v.published("a/camera", 3);
        for (layer, size) in [Q, H, F].into_iter().enumerate() {
            assert!(v.measured("a/camera", layer as Layer, Some(size)));
        }
        v
    }

    #[test]
    fn the_largest_layer_that_fits_else_the_smallest() {
        let mut v = three_measured();
        assert!(!v.measured("a/camera", 2, Some(F)));
        assert!(!v.measured("a/camera", 3, Some(F)));
        assert!(!v.measured("b/camera", 0, Some(F)));
        // Nothing asked: the largest.
        assert_eq!(v.update(SessionId(1), "a/camera"), Some(2));
        assert_eq!(v.update(SessionId(1), "a/camera"), None);
        v.request(SessionId(1), "a/camera", VideoSize::MEDIUM);
        assert_eq!(v.update(SessionId(1), "a/camera"), Some(1));
        v.request(SessionId(1), "a/camera", VideoSize::new(700, 400));
        assert_eq!(v.choice(SessionId(1), "a/camera"), 1);
        v.request(SessionId(1), "a/camera", VideoSize::new(100, 100));
        assert_eq!(v.choice(SessionId(1), "a/camera"), 0);
        v.request(SessionId(1), "a/camera", VideoSize::FULL);
        assert_eq!(v.choice(SessionId(1), "a/camera"), 2);
        // Another receiver is unaffected.
        assert_eq!(v.choice(SessionId(2), "a/camera"), 2);
    }

    #[test]
    fn a_layer_counts_once_its_size_is_known() {
        let mut v = VideoLayers::default();
        v.published("a/camera", 3);
        v.request(SessionId(1), "a/camera", VideoSize::MEDIUM);
        // Nothing measured: the top layer, for want of anything better.
        assert_eq!(v.choice(SessionId(1), "a/camera"), 2);
        v.measured("a/camera", 2, Some(F));
        // Only the largest is known (and too large): the smallest known.
        assert_eq!(v.choice(SessionId(1), "a/camera"), 2);
        v.measured("a/camera", 1, Some(H));
        assert_eq!(v.choice(SessionId(1), "a/camera"), 1);
        // A new track of the publication: measured again.
        v.published("a/camera", 3);
        assert_eq!(v.choice(SessionId(1), "a/camera"), 2);
    }

    #[test]
    fn a_stopped_layer_is_replaced_by_the_next_one_sent_but_stays_the_ideal() {
        let mut v = three_measured();
        v.request(SessionId(1), "a/camera", VideoSize::LARGE);
        assert_eq!(v.update(SessionId(1), "a/camera"), Some(2));
        // The encoder drops the top layer: the middle one, until it comes back.
        assert!(v.measured("a/camera", 2, None));
        assert!(!v.measured("a/camera", 2, None));
        assert_eq!(v.update(SessionId(1), "a/camera"), Some(1));
        assert_eq!(v.ideal(SessionId(1), "a/camera"), 2);
        // Only the top is left: a thumbnail receiver gets it rather than nothing.
        v.measured("a/camera", 0, None);
        v.measured("a/camera", 1, None);
        v.measured("a/camera", 2, Some(F));
        v.request(SessionId(2), "a/camera", VideoSize::SMALL);
        assert_eq!(
            (
                v.ideal(SessionId(2), "a/camera"),
                v.choice(SessionId(2), "a/camera")
            ),
            (0, 2)
        );
        assert_eq!(v.update(SessionId(1), "a/camera"), Some(2));
    }

    #[test]
    fn the_publisher_sends_up_to_the_largest_layer_a_receiver_wants() {
        let mut v = three_measured();
        // Nobody receives: the smallest layer only.
        assert_eq!(v.dynacast("a/camera", [].into_iter()), Some(1));
        assert_eq!(v.dynacast("a/camera", [].into_iter()), None);
        // A receiver that asked nothing wants the largest.
        assert_eq!(v.dynacast("a/camera", [SessionId(1)].into_iter()), Some(3));
        v.request(SessionId(1), "a/camera", VideoSize::MEDIUM);
        v.request(SessionId(2), "a/camera", VideoSize::SMALL);
        assert_eq!(
            v.dynacast("a/camera", [SessionId(1), SessionId(2)].into_iter()),
            Some(2)
        );
        // A layer the encoder stopped is still wanted (so it comes back).
        v.measured("a/camera", 1, None);
        assert_eq!(
            v.dynacast("a/camera", [SessionId(1), SessionId(2)].into_iter()),
            None
        );
        assert_eq!(v.dynacast("a/camera", [SessionId(2)].into_iter()), Some(1));
        // A new track: sizes unknown, every layer is asked for until they are measured.
        v.published("a/camera", 3);
        assert_eq!(v.dynacast("a/camera", [SessionId(2)].into_iter()), Some(3));
        v.measured("a/camera", 1, Some(H));
        assert_eq!(v.dynacast("a/camera", [SessionId(2)].into_iter()), Some(1));
    }

    #[test]
    fn a_video_without_simulcast_has_one_layer_for_every_request() {
        let mut v = VideoLayers::default();
        v.published("a/camera", 1);
        v.request(SessionId(1), "a/camera", VideoSize::SMALL);
        assert_eq!(v.update(SessionId(1), "a/camera"), Some(0));
        assert_eq!(v.count("a/camera"), 1);
        v.forget(SessionId(1), None);
        assert_eq!(v.update(SessionId(1), "a/camera"), Some(0));
        v.unpublished("a/camera");
        assert_eq!(v.count("a/camera"), 0);
    }
}
