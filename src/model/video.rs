//! The size of video a receiver asks for (the seed's `requestVideo`), and the simulcast layers a
//! publisher sends.

use serde::{Deserialize, Serialize};

/// A video frame size in pixels: what a receiver asks a remote video for
/// ([`Call::request_video`](crate::Call::request_video)). The server forwards the largest
/// simulcast layer of the publication that fits in it (both sides no larger), or the smallest
/// layer when none fits; a publication without simulcast has one layer, which every request
/// gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VideoSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl VideoSize {
    /// The largest size a request may name on either side.
    pub const MAX_SIDE: u32 = 16_384;
    /// A thumbnail: 320×180 (a quarter of 720p on each side).
    pub const SMALL: VideoSize = VideoSize::new(320, 180);
    /// A tile in a grid: 640×360.
    pub const MEDIUM: VideoSize = VideoSize::new(640, 360);
    /// The main view: 1280×720.
    pub const LARGE: VideoSize = VideoSize::new(1280, 720);
    /// Whatever the publisher sends at most.
    pub const FULL: VideoSize = VideoSize::new(Self::MAX_SIDE, Self::MAX_SIDE);

    /// A size of `width` × `height` pixels.
    pub const fn new(width: u32, height: u32) -> Self {
        VideoSize { width, height }
    }

    /// Whether `other` fits in this size (no side larger).
    pub fn holds(&self, other: VideoSize) -> bool {
        other.width <= self.width && other.height <= self.height
    }

    /// Whether a request may name this size: both sides from 1 to [`VideoSize::MAX_SIDE`].
    pub fn is_valid(&self) -> bool {
        (1..=Self::MAX_SIDE).contains(&self.width) && (1..=Self::MAX_SIDE).contains(&self.height)
    }
}

impl std::fmt::Display for VideoSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}
