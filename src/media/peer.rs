//! One peer connection with the settings jrtc uses, its events as a channel, and the complete
//! (non-trickle) offer/answer steps both sides need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
    Registry, SettingEngineBuilder, register_default_interceptors,
};

use super::MediaError;
use crate::model::MediaKind;

/// How long gathering ICE candidates may take.
const GATHER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a peer connection binds its UDP socket, and what it announces.
#[derive(Clone, Debug)]
pub(crate) struct PeerSettings {
    /// The local address for media (port 0: any free port).
    pub bind: SocketAddr,
    /// Addresses to announce instead of the bound one (a server behind NAT), if any.
    pub public_ips: Vec<String>,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ips: Vec::new(),
        }
    }
}

/// What a peer connection tells its owner.
pub(crate) enum PeerEvent {
    /// A remote track arrived.
    Track(Arc<dyn TrackRemote>),
    /// The connection failed or closed.
    Down,
}

struct Handler {
    events: mpsc::UnboundedSender<PeerEvent>,
    gathered: mpsc::UnboundedSender<()>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if matches!(
            state,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
        ) {
            let _ = self.events.send(PeerEvent::Down);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.events.send(PeerEvent::Track(track));
    }
}

/// A peer connection and the channel its events arrive on.
pub(crate) struct Peer {
    pub(crate) pc: Arc<dyn PeerConnection>,
    gathered: mpsc::UnboundedReceiver<()>,
    gathered_once: bool,
}

impl Peer {
    /// Builds a peer connection; its events go to the returned receiver.
    pub(crate) async fn new(
        settings: &PeerSettings,
    ) -> Result<(Peer, mpsc::UnboundedReceiver<PeerEvent>), MediaError> {
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        // Key-frame requests reach the tracks (the SFU relays them; a publisher answers them).
        let registry = register_default_interceptors(Registry::new(), &mut media)?.with(
            rtc::interceptor::Slot::from(super::keyframes::SLOT),
            super::keyframes::KeyframeRequests::default(),
        );
        let mut setting = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            // The crate's default ICE tick (200 ms) delays DTLS and SCTP packets queued between
            // ticks; a short tick gets media flowing in tens of milliseconds on a LAN.
            .with_ice_connection_attempts(Some(Duration::from_millis(10)), None)
            .with_include_loopback_candidate(settings.bind.ip().is_loopback());
        if !settings.public_ips.is_empty() {
            setting = setting.with_nat_1to1_ips(settings.public_ips.clone(), Default::default());
        }
        let (events, events_rx) = mpsc::unbounded_channel();
        let (gathered_tx, gathered) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_setting_engine(setting.build())
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                events,
                gathered: gathered_tx,
            }))
            .with_udp_addrs(vec![settings.bind.to_string()])
            .build()
            .await?;
        Ok((
            Peer {
                pc: Arc::new(pc),
                gathered,
                gathered_once: false,
            },
            events_rx,
        ))
    }

    /// Sets `desc` as the local description and returns it once it holds the ICE candidates
    /// (the first time, after gathering completes; candidates are kept for later offers).
    async fn set_local(&mut self, desc: RTCSessionDescription) -> Result<String, MediaError> {
        self.pc.set_local_description(desc).await?;
        if !self.gathered_once {
            tokio::time::timeout(GATHER_TIMEOUT, self.gathered.recv())
                .await
                .map_err(|_| MediaError::Timeout)?
                .ok_or(MediaError::Closed)?;
            self.gathered_once = true;
        }
        let local = self
            .pc
            .local_description()
            .await
            .ok_or(MediaError::Closed)?;
        Ok(local.sdp)
    }

    /// A complete offer.
    pub(crate) async fn offer(&mut self) -> Result<String, MediaError> {
        let offer = self.pc.create_offer(None).await?;
        self.set_local(offer).await
    }

    /// Applies `offer` and returns a complete answer.
    pub(crate) async fn answer(&mut self, offer: String) -> Result<String, MediaError> {
        let desc =
            RTCSessionDescription::offer(offer).map_err(|e| MediaError::WebRtc(e.to_string()))?;
        self.pc.set_remote_description(desc).await?;
        let answer = self.pc.create_answer(None).await?;
        self.set_local(answer).await
    }

    /// Applies the remote answer to our offer.
    pub(crate) async fn accept(&mut self, answer: String) -> Result<(), MediaError> {
        let desc =
            RTCSessionDescription::answer(answer).map_err(|e| MediaError::WebRtc(e.to_string()))?;
        self.pc.set_remote_description(desc).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// The codec jrtc sends for a kind of media: Opus for audio, VP8 for video.
pub(crate) fn codec_for(kind: MediaKind) -> RTCRtpCodec {
    match kind {
        MediaKind::Audio => RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: Vec::new(),
        },
        MediaKind::Video => RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: Vec::new(),
        },
    }
}
