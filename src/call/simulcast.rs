//! Which of a call's videos it publishes with simulcast, and their layers.

use crate::model::{MediaKind, TrackSource};

use super::CallError;

/// Simulcast for a call's published video ([`CallOptions::simulcast`](super::CallOptions)):
/// the sources sent as several layers (encodings of the same picture at different sizes, the
/// server forwarding each receiver the one that fits it), and each layer's scale. The
/// application encodes every layer itself and writes each with
/// [`LocalTrack::write_layer`](crate::LocalTrack::write_layer), so simulcast is off unless it
/// asks for it ([`Simulcast::camera`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Simulcast {
    /// The video sources published with simulcast (none by default).
    pub sources: Vec<TrackSource>,
    /// How much each layer is scaled down from the full picture (both sides divided by it),
    /// smallest layer first, ending with 1: 2 to 4 layers, each from 1 to 16, each smaller than
    /// the one before. `[4, 2, 1]` by default: a quarter, a half and the full size.
    pub scale_down_by: Vec<u8>,
}

impl Default for Simulcast {
    fn default() -> Self {
        Simulcast {
            sources: Vec::new(),
            scale_down_by: vec![4, 2, 1],
        }
    }
}

impl Simulcast {
    /// The camera with three layers: a quarter, a half and the full size.
    pub fn camera() -> Self {
        Simulcast {
            sources: vec![TrackSource::Camera],
            ..Simulcast::default()
        }
    }

    /// Also (or only) these sources.
    pub fn sources(mut self, sources: impl IntoIterator<Item = TrackSource>) -> Self {
        self.sources = sources.into_iter().collect();
        self
    }

    /// These layers (see [`Simulcast::scale_down_by`]).
    pub fn layers(mut self, scale_down_by: impl IntoIterator<Item = u8>) -> Self {
        self.scale_down_by = scale_down_by.into_iter().collect();
        self
    }

    /// Checks the rules above: a broken one is [`CallError::InvalidParam`].
    pub fn validate(&self) -> Result<(), CallError> {
        let invalid = |message: String| Err(CallError::InvalidParam { message });
        if let Some(audio) = self.sources.iter().find(|s| s.kind() != MediaKind::Video) {
            return invalid(format!("simulcast: {} is not a video", audio.as_str()));
        }
        let scales = &self.scale_down_by;
        if !(2..=4).contains(&scales.len()) {
            return invalid(format!("simulcast: 2 to 4 layers, not {}", scales.len()));
        }
        if scales.last() != Some(&1)
            || scales.iter().any(|s| !(1..=16).contains(s))
            || scales.windows(2).any(|w| w[0] <= w[1])
        {
            return invalid(format!(
                "simulcast: scales go down to 1, each from 1 to 16 and smaller than the one before; not {scales:?}"
            ));
        }
        Ok(())
    }

    /// The simulcast stream ids of `source`'s layers, smallest first (none: not simulcast).
    pub(crate) fn rids(&self, source: TrackSource) -> Vec<String> {
        if !self.sources.contains(&source) {
            return Vec::new();
        }
        self.scale_down_by
            .iter()
            .map(|scale| match scale {
                1 => "f".to_owned(),
                2 => "h".to_owned(),
                4 => "q".to_owned(),
                n => format!("d{n}"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_checked_and_named_as_browsers_name_them() {
        assert!(Simulcast::default().validate().is_ok());
        assert_eq!(
            Simulcast::default().rids(TrackSource::Camera),
            Vec::<String>::new()
        );
        let camera = Simulcast::camera();
        assert_eq!(camera.rids(TrackSource::Camera), ["q", "h", "f"]);
        assert_eq!(
            camera.clone().layers([3, 1]).rids(TrackSource::Camera),
            ["d3", "f"]
        );
        for bad in [
            camera.clone().layers([1]),
            camera.clone().layers([8, 4, 2, 1, 1]),
            camera.clone().layers([2, 4, 1]),
            camera.clone().layers([4, 2]),
            camera.clone().layers([32, 1]),
            camera.clone().sources([TrackSource::Microphone]),
        ] {
            assert!(
                matches!(bad.validate(), Err(CallError::InvalidParam { .. })),
                "{bad:?}"
            );
        }
    }
}
