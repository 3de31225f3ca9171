//! What a published track carries: the sources (microphone, camera, screen) and a member's
//! extra cameras and screens, named.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::MediaKind;

/// What a published track carries: a member's microphone, camera and screen, and extra
/// cameras and screens it names (several cameras, a second screen: see [`StreamName`]).
///
/// On the wire (and as the track id a client publishes it under) a source is its name:
/// `"microphone"`, `"camera"`, `"screen"`, or `"camera.NAME"` / `"screen.NAME"` for an extra
/// stream (a `.`: SDP's `a=msid` takes no `:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TrackSource {
    /// Audio from a microphone.
    Microphone,
    /// Video from a camera.
    Camera,
    /// Video of a shared screen (one sharer per room).
    Screen,
    /// Video from another camera, by its name.
    ExtraCamera(StreamName),
    /// Video of another screen, by its name (not the room's screen share: any number of
    /// members may publish extra screens).
    ExtraScreen(StreamName),
}

/// The name of an extra stream: 1 to 16 bytes of `[a-z0-9_-]` (a member's extra streams are
/// told apart by it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName {
    len: u8,
    bytes: [u8; StreamName::MAX_LEN],
}

impl StreamName {
    /// Longest name, in bytes.
    pub const MAX_LEN: usize = 16;

    /// `name` as a stream name, if it is one.
    pub fn new(name: &str) -> Option<StreamName> {
        let ok = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        ok.then(|| {
            let mut bytes = [0; Self::MAX_LEN];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            StreamName {
                len: name.len() as u8,
                bytes,
            }
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TrackSource {
    /// Audio or video.
    pub fn kind(self) -> MediaKind {
        match self {
            TrackSource::Microphone => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }

    /// The source's name on the wire, also the track id a client publishes it under
    /// (`"camera"`, `"camera.slides"`).
    pub fn as_str(self) -> std::borrow::Cow<'static, str> {
        match self {
            TrackSource::Microphone => "microphone".into(),
            TrackSource::Camera => "camera".into(),
            TrackSource::Screen => "screen".into(),
            TrackSource::ExtraCamera(name) => format!("camera.{name}").into(),
            TrackSource::ExtraScreen(name) => format!("screen.{name}").into(),
        }
    }

    /// The source a track id (a source's name) names.
    pub fn from_track_id(id: &str) -> Option<TrackSource> {
        match id {
            "microphone" => Some(TrackSource::Microphone),
            "camera" => Some(TrackSource::Camera),
            "screen" => Some(TrackSource::Screen),
            _ => match id.split_once('.')? {
                ("camera", name) => Some(TrackSource::ExtraCamera(StreamName::new(name)?)),
                ("screen", name) => Some(TrackSource::ExtraScreen(StreamName::new(name)?)),
                _ => None,
            },
        }
    }

    /// Whether it is an extra camera or screen.
    pub fn is_extra(self) -> bool {
        matches!(
            self,
            TrackSource::ExtraCamera(_) | TrackSource::ExtraScreen(_)
        )
    }

    /// Whether it shows a screen (the room's screen share or an extra screen).
    pub fn is_screen(self) -> bool {
        matches!(self, TrackSource::Screen | TrackSource::ExtraScreen(_))
    }
}

impl fmt::Display for TrackSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl Serialize for TrackSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for TrackSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        TrackSource::from_track_id(&name).ok_or_else(|| {
            // A long name is not echoed back whole.
            let shown: String = name.chars().take(40).collect();
            serde::de::Error::custom(format!(
                "unknown source `{shown}` (microphone, camera, screen, camera.NAME or \
                 screen.NAME, NAME 1 to 16 of [a-z0-9_-])"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_extra_streams_read_back_from_their_names() {
        for name in [
            "microphone",
            "camera",
            "screen",
            "camera.slides",
            "screen.2nd_-x",
        ] {
            let source = TrackSource::from_track_id(name).unwrap();
            assert_eq!(source.as_str(), name);
            let json = serde_json::to_string(&source).unwrap();
            assert_eq!(serde_json::from_str::<TrackSource>(&json).unwrap(), source);
        }
        assert!(TrackSource::ExtraScreen(StreamName::new("x").unwrap()).is_screen());
        for bad in [
            "camera.",
            "camera.Big",
            "mic.x",
            "camera.a.b",
            "camera.seventeen-chars-xx",
            "camera:x",
        ] {
            assert_eq!(TrackSource::from_track_id(bad), None, "{bad}");
        }
        let long = format!("\"{}\"", "x".repeat(10_000));
        let error = serde_json::from_str::<TrackSource>(&long)
            .unwrap_err()
            .to_string();
        assert!(error.len() < 200, "{error}");
    }
}
