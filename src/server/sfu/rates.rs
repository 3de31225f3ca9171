//! What each layer of a published track costs now: the reader adds each forwarded packet's
//! bytes to its layer (a relaxed atomic add, no lock), and the bandwidth allocation reads the
//! rates, worked out over the last window of at least half a second.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::layers::Layer;

/// Layers measured (the most simulcast streams a line may send).
pub(crate) const LAYERS: usize = crate::server::hub::sdp::MAX_RIDS;

/// The shortest window a rate is worked out over.
const WINDOW: Duration = Duration::from_millis(500);

/// Bytes received per layer, and the rates of the last window.
#[derive(Debug)]
pub(crate) struct LayerRates {
    bytes: [AtomicU64; LAYERS],
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    at: Instant,
    bytes: [u64; LAYERS],
    rates: [u64; LAYERS],
}

impl Default for LayerRates {
    fn default() -> Self {
        LayerRates {
            bytes: Default::default(),
            window: Mutex::new(Window {
                at: Instant::now(),
                bytes: [0; LAYERS],
                rates: [0; LAYERS],
            }),
        }
    }
}

impl LayerRates {
    /// A packet of `bytes` of layer `layer` arrived.
    pub(crate) fn add(&self, layer: Layer, bytes: usize) {
        if let Some(count) = self.bytes.get(usize::from(layer)) {
            count.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    /// Each layer's rate in bits per second over the last window ending by `now` (0: nothing
    /// of it arrived then).
    pub(crate) fn rates(&self, now: Instant) -> [u64; LAYERS] {
        let mut window = super::forward::lock(&self.window);
        let elapsed = now.saturating_duration_since(window.at);
        if elapsed >= WINDOW {
            let ms = elapsed.as_millis().max(1) as u64;
            for (i, count) in self.bytes.iter().enumerate() {
                let total = count.load(Ordering::Relaxed);
                window.rates[i] = total.saturating_sub(window.bytes[i]) * 8 * 1000 / ms;
                window.bytes[i] = total;
            }
            window.at = now;
        }
        window.rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_worked_out_per_layer_over_windows_of_half_a_second() {
        let rates = LayerRates::default();
        let start = rates.window.lock().unwrap().at;
        rates.add(0, 1_000);
        rates.add(2, 10_000);
        rates.add(7, 99);
        // Too soon: the last window's (none yet).
        assert_eq!(rates.rates(start + Duration::from_millis(100)), [0; LAYERS]);
        assert_eq!(
            rates.rates(start + Duration::from_secs(1)),
            [8_000, 0, 80_000, 0]
        );
        // A layer that stopped reads 0 in the next window.
        rates.add(2, 5_000);
        assert_eq!(
            rates.rates(start + Duration::from_millis(1_500)),
            [0, 0, 80_000, 0]
        );
    }
}
