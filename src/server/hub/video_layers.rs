//! Which simulcast layer each receiver of a room's videos gets, sans-IO: from the size each
//! receiver asked for (`request_video`) and the size each layer really has (read by the media
//! shell from the publisher's key frames). The room asks it after anything that can change a
//! choice and sends the changed ones to the media shell as [`MediaAction::SetLayer`].
//!
//! The rule: the largest layer whose frames fit in the request (no side larger), else the
//! smallest layer; a receiver that asked nothing gets the largest layer. A layer whose size is
//! not known yet is not taken to fit (the choice moves up when its first key frame is read).
//!
//! [`MediaAction::SetLayer`]: super::io::MediaAction::SetLayer

use std::collections::BTreeMap;

use crate::model::VideoSize;

use super::io::{ConnId, Layer};

/// A room's simulcast choices.
#[derive(Debug, Default)]
pub(crate) struct VideoLayers {
    /// Per publication id: each layer's size, `None` until a key frame showed it.
    published: BTreeMap<String, Vec<Option<VideoSize>>>,
    /// Per (receiver, publication id): the size the receiver asked for.
    requests: BTreeMap<(ConnId, String), VideoSize>,
    /// Per (receiver, publication id): the layer its leg was told to forward last.
    told: BTreeMap<(ConnId, String), Layer>,
}

impl VideoLayers {
    /// Publication `id` is published with `count` layers (1 without simulcast); sizes measured
    /// under an earlier track are forgotten.
    pub(crate) fn published(&mut self, id: &str, count: usize) {
        self.published
            .insert(id.to_owned(), vec![None; count.max(1)]);
    }

    /// Publication `id` ended: its requests and choices go with it.
    pub(crate) fn unpublished(&mut self, id: &str) {
        self.published.remove(id);
        self.requests.retain(|(_, p), _| p != id);
        self.told.retain(|(_, p), _| p != id);
    }

    /// Receiver `conn` left the room (or stopped receiving `id` for good, with `Some(id)`).
    pub(crate) fn forget(&mut self, conn: ConnId, id: Option<&str>) {
        let keep = |c: &ConnId, p: &String| *c != conn || id.is_some_and(|id| id != p);
        self.requests.retain(|(c, p), _| keep(c, p));
        self.told.retain(|(c, p), _| keep(c, p));
    }

    /// Receiver `conn` asks for publication `id` at most `size`.
    pub(crate) fn request(&mut self, conn: ConnId, id: &str, size: VideoSize) {
        self.requests.insert((conn, id.to_owned()), size);
    }

    /// Layer `layer` of publication `id` showed frames of `size`. False when nothing changed
    /// (an unknown publication or layer, or the size it had).
    pub(crate) fn measured(&mut self, id: &str, layer: Layer, size: VideoSize) -> bool {
        let Some(slot) = self
            .published
            .get_mut(id)
            .and_then(|layers| layers.get_mut(usize::from(layer)))
        else {
            return false;
        };
        slot.replace(size) != Some(size)
    }

    /// The layer receiver `conn` should get of publication `id`.
    pub(crate) fn choice(&self, conn: ConnId, id: &str) -> Layer {
        let Some(layers) = self.published.get(id) else {
            return 0;
        };
        let Some(request) = self.requests.get(&(conn, id.to_owned())) else {
            return layers.len().saturating_sub(1) as Layer;
        };
        layers
            .iter()
            .rposition(|size| size.is_some_and(|s| request.holds(s)))
            .unwrap_or(0) as Layer
    }

    /// What receiver `conn`'s leg of publication `id` should be told now: its layer, if it
    /// differs from what it was told last (a new leg is told its first layer).
    pub(crate) fn update(&mut self, conn: ConnId, id: &str) -> Option<Layer> {
        let layer = self.choice(conn, id);
        let told = self.told.insert((conn, id.to_owned()), layer);
        (told != Some(layer)).then_some(layer)
    }

    /// The number of layers publication `id` has (0 when it is not published).
    pub(crate) fn count(&self, id: &str) -> usize {
        self.published.get(id).map_or(0, Vec::len)
    }

    /// The highest layer any leg of publication `id` was told to forward, if any was.
    pub(crate) fn highest_told(&self, id: &str) -> Option<Layer> {
        self.told
            .iter()
            .filter(|((_, p), _)| p == id)
            .map(|(_, layer)| *layer)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: VideoSize = VideoSize::new(320, 180);
    const H: VideoSize = VideoSize::new(640, 360);
    const F: VideoSize = VideoSize::new(1280, 720);

    #[test]
    fn the_largest_layer_that_fits_else_the_smallest() {
        let mut v = VideoLayers::default();
        v.published("a/camera", 3);
        for (layer, size) in [Q, H, F].into_iter().enumerate() {
            assert!(v.measured("a/camera", layer as Layer, size));
        }
        assert!(!v.measured("a/camera", 2, F));
        assert!(!v.measured("a/camera", 3, F));
        assert!(!v.measured("b/camera", 0, F));
        // Nothing asked: the largest.
        assert_eq!(v.update(1, "a/camera"), Some(2));
        assert_eq!(v.update(1, "a/camera"), None);
        v.request(1, "a/camera", VideoSize::MEDIUM);
        assert_eq!(v.update(1, "a/camera"), Some(1));
        v.request(1, "a/camera", VideoSize::new(700, 400));
        assert_eq!(v.choice(1, "a/camera"), 1);
        v.request(1, "a/camera", VideoSize::new(100, 100));
        assert_eq!(v.choice(1, "a/camera"), 0);
        v.request(1, "a/camera", VideoSize::FULL);
        assert_eq!(v.choice(1, "a/camera"), 2);
        // Another receiver is unaffected.
        assert_eq!(v.choice(2, "a/camera"), 2);
        assert_eq!(v.highest_told("a/camera"), Some(1));
    }

    #[test]
    fn a_layer_fits_once_its_size_is_known() {
        let mut v = VideoLayers::default();
        v.published("a/camera", 3);
        v.request(1, "a/camera", VideoSize::MEDIUM);
        // Nothing measured: the smallest.
        assert_eq!(v.choice(1, "a/camera"), 0);
        v.measured("a/camera", 2, F);
        assert_eq!(v.choice(1, "a/camera"), 0);
        v.measured("a/camera", 1, H);
        assert_eq!(v.choice(1, "a/camera"), 1);
        // A new track of the publication: measured again.
        v.published("a/camera", 3);
        assert_eq!(v.choice(1, "a/camera"), 0);
    }

    #[test]
    fn a_video_without_simulcast_has_one_layer_for_every_request() {
        let mut v = VideoLayers::default();
        v.published("a/camera", 1);
        v.request(1, "a/camera", VideoSize::SMALL);
        assert_eq!(v.update(1, "a/camera"), Some(0));
        assert_eq!(v.count("a/camera"), 1);
        v.forget(1, None);
        assert_eq!(v.highest_told("a/camera"), None);
        v.unpublished("a/camera");
        assert_eq!(v.count("a/camera"), 0);
    }
}
