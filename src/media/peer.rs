//! One peer connection with the settings jrtc uses, its events as a channel, and the
//! offer/answer steps both sides need. Descriptions carry the candidates gathered by then (the
//! first one waits for host candidates, which takes milliseconds); every candidate is also sent
//! on its own as it is found ([`PeerEvent::Candidate`]), and the other side's are taken the same
//! way ([`Peer::add_candidate`]), so a peer that trickles ICE (a browser) works too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};

use super::MediaError;
use crate::model::MediaKind;
use crate::protocol::IceCandidate;

/// Where a peer connection binds its UDP socket, and what it announces.
#[derive(Clone, Debug)]
pub(crate) struct PeerSettings {
    /// The local address for media (port 0: any free port). With a [`shared`](Self::shared)
    /// port, only its address counts: the connection uses the shared port.
    pub bind: SocketAddr,
    /// Addresses to announce instead of the bound one (a server behind NAT), if any.
    pub public_ips: Vec<String>,
    /// Sockets shared by every connection (the server's media port): the connection is
    /// ICE-lite, with the credentials and sockets the port gives it.
    pub shared: Option<Arc<dyn SharedPort>>,
    /// Whether a connection of its own also tries ICE over TCP (active candidates, for a
    /// network that blocks UDP).
    pub tcp: bool,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ips: Vec::new(),
            shared: None,
            tcp: false,
        }
    }
}

/// Sockets many peer connections share (the server's media port, `server/sfu/port`).
pub(crate) trait SharedPort: Send + Sync + std::fmt::Debug {
    /// What a new connection on the port is built with.
    fn connection(&self) -> std::io::Result<SharedConnection>;
}

/// A connection's place on a [`SharedPort`].
pub(crate) struct SharedConnection {
    /// Its ICE username fragment, which routes the client's checks to it.
    pub ufrag: String,
    /// Its ICE password.
    pub password: String,
    /// The runtime whose sockets are the port's.
    pub runtime: Arc<dyn webrtc::runtime::Runtime>,
    /// Whether the port takes ICE over TCP (the connection then announces a passive TCP
    /// candidate).
    pub tcp: bool,
}

/// What a peer connection tells its owner.
pub(crate) enum PeerEvent {
    /// A remote track arrived.
    Track(Arc<dyn TrackRemote>),
    /// A local ICE candidate to send to the other side.
    Candidate(IceCandidate),
    /// The connection failed (a connection closed on purpose says nothing): ICE found no
    /// working path for [`ICE_DISCONNECTED`] + [`ICE_FAILED`]. An ICE restart may bring it
    /// back.
    Failed,
    /// The connection is connected: the first time, or again after an ICE restart.
    Connected,
}

/// How long a connection hears nothing before ICE calls it disconnected (the crate's default:
/// 5 s).
pub(crate) const ICE_DISCONNECTED: Duration = Duration::from_secs(3);
/// How long a disconnected connection may stay so before it is failed (the crate's default:
/// 25 s). With [`ICE_DISCONNECTED`], a dead path is noticed within 7 s.
pub(crate) const ICE_FAILED: Duration = Duration::from_secs(4);
/// How often an idle connection checks its path (the crate's default: 2 s); well within
/// [`ICE_DISCONNECTED`], so one lost check does not disconnect it.
const ICE_KEEPALIVE: Duration = Duration::from_secs(1);

/// How long the first description waits for candidates.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

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

    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.events.send(PeerEvent::Candidate(IceCandidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
                username_fragment: init.username_fragment,
            }));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Failed => {
                let _ = self.events.send(PeerEvent::Failed);
            }
            RTCPeerConnectionState::Connected => {
                let _ = self.events.send(PeerEvent::Connected);
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.events.send(PeerEvent::Track(track));
    }
}

/// The bandwidth an estimating connection assumes until feedback says otherwise: enough for an
/// HD camera's largest simulcast layer, so a good link starts with it; on a weaker one the
/// delay- and loss-based estimate comes down within a second or two of feedback.
const INITIAL_ESTIMATE_BPS: f64 = 2_500_000.0;

/// How many times a receiver asks for one missing packet (every 100 ms, the `rtc` crate's
/// NACK interval): a second's worth, as the sender does not resend a packet older than a
/// second anyway (`nack_limit.rs`). The crate's default asks for as long as the packet is in
/// its 512-packet window, which on a congested link fills it with requests for packets whose
/// resends can only arrive too late.
const NACKS_PER_PACKET: u16 = 10;

/// The `rtc` crate's default interceptors (NACK generator and responder, RTCP reports,
/// transport-wide feedback, the simulcast header extensions), with a receiver's requests per
/// missing packet bounded ([`NACKS_PER_PACKET`]).
///
/// `send_only`: a connection that only sends media (the SFU's to each subscriber) gets only the
/// sending side's: the NACK responder and sender reports. The receiving side's (NACK generator,
/// receiver reports, transport-wide feedback) would see no RTP there, yet every packet it sends
/// passes through each of them (the chain moves the packet by value through every interceptor;
/// docs/benchmarks.md, "Where a forwarded packet's time goes now"). The feedback formats and
/// header extensions are registered alike, so both kinds of connection negotiate the same.
fn default_interceptors(media: &mut MediaEngine, send_only: bool) -> Result<Registry, MediaError> {
    use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, SenderReportBuilder, Slot};
    use rtc::peer_connection::configuration::interceptor_registry::{
        configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
    };
    use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    let registry = Registry::new().with(Slot::NackResponder, NackResponderBuilder::new().build());
    configure_simulcast_extension_headers(media)?;
    if send_only {
        // The transport-wide feedback and header extension, registered; its receiving
        // interceptor left out.
        configure_twcc_receiver_only(Registry::new(), media)?;
        return Ok(registry.with(Slot::SenderReport, SenderReportBuilder::new().build()));
    }
    let registry = registry.with(
        Slot::NackGenerator,
        NackGeneratorBuilder::new()
            .with_max_nacks_per_packet(NACKS_PER_PACKET)
            .build(),
    );
    let registry = configure_twcc_receiver_only(registry, media)?;
    Ok(configure_rtcp_reports(registry))
}

/// What a peer connection's statistics say of its link (read once a second by the SFU's link
/// meter).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LinkStats {
    /// Each stream it sends that the other side reported on: the latest receiver report's
    /// extended highest sequence number and cumulative loss, by SSRC.
    pub(crate) reports: Vec<(u32, u64, u64)>,
    /// The worst audio jitter of both directions' reports, in milliseconds.
    pub(crate) audio_jitter_ms: Option<u32>,
    /// The round trip of its candidate pair (ICE checks), in milliseconds.
    pub(crate) rtt_ms: Option<u32>,
    /// The connection's own bandwidth estimate in bits per second (GCC over transport-wide
    /// feedback; a connection made with [`Peer::new_estimating`], once feedback came).
    pub(crate) send_side_bps: Option<u64>,
}

/// A peer connection and the channel its events arrive on.
pub(crate) struct Peer {
    pub(crate) pc: Arc<dyn PeerConnection>,
    /// Whether a remote description is set (candidates can only be added after).
    remote_set: bool,
    /// Remote candidates that came before the remote description.
    early: Vec<IceCandidate>,
    gathered: mpsc::UnboundedReceiver<()>,
    gathered_once: bool,
    /// A REMB-sending receiver's own estimate (an estimating connection's).
    receiver_estimate: Option<super::remb::ReceiverEstimate>,
}

impl Peer {
    /// Builds a peer connection; its events go to the returned receiver.
    pub(crate) async fn new(
        settings: &PeerSettings,
    ) -> Result<(Peer, mpsc::UnboundedReceiver<PeerEvent>), MediaError> {
        Self::build(settings, false).await
    }

    /// [`Peer::new`], for a connection that only sends media and estimates its bandwidth (it
    /// gets only the sending side's interceptors, see `default_interceptors`): its
    /// packets carry transport-wide sequence numbers, the receiver's feedback on them drives a
    /// delay- and loss-based estimator (GCC, the `rtc` crate's), and the estimate is read with
    /// [`Peer::link_stats`] (and a REMB-sending receiver's own with [`Peer::receiver_estimate`]). Nothing is paced: the SFU forwards packets as the
    /// publishers' own pacers sent them, and keeps within the estimate by choosing layers.
    pub(crate) async fn new_estimating(
        settings: &PeerSettings,
    ) -> Result<(Peer, mpsc::UnboundedReceiver<PeerEvent>), MediaError> {
        Self::build(settings, true).await
    }

    async fn build(
        settings: &PeerSettings,
        estimate: bool,
    ) -> Result<(Peer, mpsc::UnboundedReceiver<PeerEvent>), MediaError> {
        use rtc::interceptor::{CongestionControlBuilder, Gcc, Slot, TwccSenderBuilder};
        let mut media = MediaEngine::default();
        register_codecs(&mut media)?;
        // Key-frame requests reach the tracks (the SFU relays them; a publisher answers them).
        // An estimating connection is the SFU's to a subscriber: it only sends media.
        let mut registry = default_interceptors(&mut media, estimate)?.with(
            Slot::from(super::keyframes::SLOT),
            super::keyframes::KeyframeRequests::default(),
        );
        let receiver_estimate = estimate.then(super::remb::ReceiverEstimate::default);
        if let Some(receiver_estimate) = &receiver_estimate {
            // Receivers that estimate their own bandwidth (REMB) need send times on packets.
            media.register_header_extension(
                rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                    uri: super::remb::ABS_SEND_TIME_URI.to_owned(),
                },
                rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video,
                None,
            )?;
            registry = registry.with(
                Slot::from(super::remb::SLOT),
                super::remb::Remb::new(receiver_estimate.clone()),
            );
            // The transport-cc feedback and header extension are registered by the defaults.
            // Retransmissions are thinned before the NACK responder: a congested receiver's
            // requests would otherwise multiply its congestion.
            registry = registry
                .with(
                    Slot::from(super::nack_limit::SLOT),
                    super::nack_limit::NackLimiter::default(),
                )
                .with(
                    Slot::CongestionControl,
                    CongestionControlBuilder::new(Gcc::new(
                        INITIAL_ESTIMATE_BPS,
                        rtc::interceptor::GCC_MIN_BITRATE,
                        rtc::interceptor::GCC_MAX_BITRATE,
                    ))
                    .build(),
                )
                .with(Slot::TwccSender, TwccSenderBuilder::new().build());
        }
        let mut setting = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            // The crate's default ICE tick (200 ms) delays DTLS and SCTP packets queued between
            // ticks; a short tick gets media flowing in tens of milliseconds on a LAN. With the
            // tick that short, a candidate pair gets 300 checks (3 s) rather than the default 7,
            // so a pair whose other side learns its candidates late (trickle ICE) is not given up.
            .with_ice_connection_attempts(Some(Duration::from_millis(10)), Some(300))
            .with_ice_timeouts(
                Some(ICE_DISCONNECTED),
                Some(ICE_FAILED),
                Some(ICE_KEEPALIVE),
            )
            .with_include_loopback_candidate(settings.bind.ip().is_loopback());
        if !settings.public_ips.is_empty() {
            setting = setting.with_nat_1to1_ips(settings.public_ips.clone(), Default::default());
        }
        // The driver binds its own sockets on these; on a shared port it keeps only their
        // addresses (its runtime hands back the port's sockets), so any free port will do.
        let own = SocketAddr::new(settings.bind.ip(), 0);
        let mut udp = vec![settings.bind.to_string()];
        let mut tcp = Vec::new();
        let mut runtime = None;
        if let Some(port) = &settings.shared {
            let connection = port
                .connection()
                .map_err(|e| MediaError::WebRtc(e.into()))?;
            setting = setting
                .with_lite(true)
                .with_ice_credentials(connection.ufrag, connection.password);
            udp = vec![own.to_string()];
            if connection.tcp {
                tcp.push(own.to_string());
            }
            runtime = Some(connection.runtime);
        } else if settings.tcp {
            tcp.push(own.to_string());
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
            .with_udp_addrs(udp)
            .with_tcp_addrs(tcp);
        let pc = match runtime {
            Some(runtime) => pc.with_runtime(runtime),
            None => pc,
        }
        .build()
        .await?;
        Ok((
            Peer {
                pc: Arc::new(pc),
                remote_set: false,
                early: Vec::new(),
                gathered,
                gathered_once: false,
                receiver_estimate,
            },
            events_rx,
        ))
    }

    /// Sets `desc` as the local description and returns its SDP, with the candidates gathered
    /// (the first time, once gathering completes; later candidates also go out as events).
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

    async fn set_remote(&mut self, desc: RTCSessionDescription) -> Result<(), MediaError> {
        self.pc.set_remote_description(desc).await?;
        self.remote_set = true;
        for candidate in std::mem::take(&mut self.early) {
            self.add_candidate(candidate).await?;
        }
        Ok(())
    }

    /// The `mid` of the local description's media line that sends track `track_id` (its
    /// `a=msid:<stream> <track_id>`), if there is one.
    pub(crate) async fn local_mid_of(&self, track_id: &str) -> Option<String> {
        let sdp = self.pc.local_description().await?.sdp;
        sdp.split("\nm=").skip(1).find_map(|section| {
            let mut mid = None;
            let mut sends = false;
            for line in section.lines().map(|l| l.trim_end_matches('\r')) {
                if let Some(value) = line.strip_prefix("a=mid:") {
                    mid = Some(value.to_owned());
                }
                if let Some(value) = line.strip_prefix("a=msid:") {
                    sends |= value.split_whitespace().nth(1) == Some(track_id);
                }
            }
            sends.then_some(mid).flatten()
        })
    }

    /// What the receiver reported of its bandwidth (REMB), in bits per second (a connection
    /// made with [`Peer::new_estimating`], once a report came), else `None`.
    pub(crate) fn receiver_estimate(&self) -> Option<u64> {
        self.receiver_estimate.as_ref().and_then(|e| e.get())
    }

    /// What the connection's statistics say of its link now (see [`LinkStats`]).
    pub(crate) async fn link_stats(&self) -> LinkStats {
        use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
        use rtc::statistics::StatsSelector;
        use rtc::statistics::report::RTCStatsReportEntry;
        // Jitter is counted in RTP timestamp units; Opus's clock runs at 48 kHz.
        let audio_ms = |kind: RtpCodecKind, units: f64| {
            (kind == RtpCodecKind::Audio).then(|| (units / 48.0).round() as u32)
        };
        let report = self
            .pc
            .get_stats(std::time::Instant::now(), StatsSelector::None)
            .await;
        let mut stats = LinkStats::default();
        for entry in report.iter() {
            match entry {
                RTCStatsReportEntry::RemoteInboundRtp(s) if s.round_trip_time_measurements > 0 => {
                    let received = &s.received_rtp_stream_stats;
                    let stream = &received.rtp_stream_stats;
                    // (The crate names the report's extended highest sequence number
                    // `packets_received`.)
                    stats.reports.push((
                        stream.ssrc,
                        received.packets_received,
                        received.packets_reported_as_lost,
                    ));
                    stats.audio_jitter_ms = stats
                        .audio_jitter_ms
                        .max(audio_ms(stream.kind, received.jitter));
                }
                RTCStatsReportEntry::InboundRtp(s) => {
                    let received = &s.received_rtp_stream_stats;
                    stats.audio_jitter_ms = stats
                        .audio_jitter_ms
                        .max(audio_ms(received.rtp_stream_stats.kind, received.jitter));
                }
                RTCStatsReportEntry::OutboundRtp(s) if s.target_bitrate > 0.0 => {
                    let bps = s.target_bitrate as u64;
                    stats.send_side_bps = stats.send_side_bps.max(Some(bps));
                }
                RTCStatsReportEntry::IceCandidatePair(s) if s.current_round_trip_time > 0.0 => {
                    let ms = (s.current_round_trip_time * 1_000.0).round() as u32;
                    stats.rtt_ms = stats.rtt_ms.max(Some(ms));
                }
                _ => {}
            }
        }
        stats
    }

    /// An offer.
    pub(crate) async fn offer(&mut self) -> Result<String, MediaError> {
        let offer = self.pc.create_offer(None).await?;
        self.set_local(offer).await
    }

    /// Has the next offer restart ICE: new credentials, candidates gathered again (what a
    /// failed connection needs to find a path again; DTLS and the tracks stay).
    pub(crate) async fn restart_ice(&self) -> Result<(), MediaError> {
        self.pc.restart_ice().await?;
        Ok(())
    }

    /// Applies `offer` and returns an answer.
    pub(crate) async fn answer(&mut self, offer: String) -> Result<String, MediaError> {
        let desc = RTCSessionDescription::offer(offer).map_err(MediaError::WebRtc)?;
        self.set_remote(desc).await?;
        let answer = self.pc.create_answer(None).await?;
        self.set_local(answer).await
    }

    /// Applies the remote answer to our offer.
    pub(crate) async fn accept(&mut self, answer: String) -> Result<(), MediaError> {
        let desc = RTCSessionDescription::answer(answer).map_err(MediaError::WebRtc)?;
        self.set_remote(desc).await
    }

    /// Adds the other side's ICE candidate (kept until the remote description is set).
    pub(crate) async fn add_candidate(
        &mut self,
        candidate: IceCandidate,
    ) -> Result<(), MediaError> {
        if !self.remote_set {
            self.early.push(candidate);
            return Ok(());
        }
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_mline_index,
            username_fragment: candidate.username_fragment,
            ..Default::default()
        };
        self.pc.add_ice_candidate(init).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// Registers the only codecs jrtc carries: Opus (111) and VP8 (96, with its retransmissions on
/// 97). A peer offering others gets answers without them, never a line jrtc cannot forward
/// (the crate's defaults would also accept H264 and VP9, and a Safari-style offer listing
/// H264 first would be answered with it).
fn register_codecs(media: &mut MediaEngine) -> Result<(), MediaError> {
    use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodecParameters, RtpCodecKind};
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    let video_feedback = vec![
        feedback("goog-remb", ""),
        feedback("ccm", "fir"),
        feedback("nack", ""),
        feedback("nack", "pli"),
    ];
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: codec_for(MediaKind::Audio),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                rtcp_feedback: video_feedback,
                ..codec_for(MediaKind::Video)
            },
            payload_type: 96,
        },
        RtpCodecKind::Video,
    )?;
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: "apt=96".to_owned(),
                rtcp_feedback: Vec::new(),
            },
            payload_type: 97,
        },
        RtpCodecKind::Video,
    )?;
    // Header extensions that mean the same at every receiver, so the SFU passes them on (with
    // each leg's own ids): a packet's audio level (what receivers and, later, speaker
    // detection read) and the camera's orientation (a phone held upright).
    for (uri, kind) in [
        (
            "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            RtpCodecKind::Audio,
        ),
        ("urn:3gpp:video-orientation", RtpCodecKind::Video),
    ] {
        media.register_header_extension(
            rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            },
            kind,
            None,
        )?;
    }
    Ok(())
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
