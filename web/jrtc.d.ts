// TypeScript declarations of jrtc.js, the browser client of jrtc (docs/browser.md).

export declare const PROTOCOL_VERSION: 1;
export declare const SOURCES: Readonly<{ microphone: "audio"; camera: "video"; screen: "video" }>;

/** A request id, chosen by the client (1, 2, 3, … per call). */
export type OperationId = number;
/** A source: the microphone, the camera, the screen share, or an extra camera or screen (`camera.NAME`, `screen.NAME`). */
export type Source = "microphone" | "camera" | "screen" | `camera.${string}` | `screen.${string}`;
export type Role = "host" | "guest" | "recorder";
/** A reason from docs/protocol.md ("quit", "kicked", "network", …); new ones may come. */
export type Reason = string;

/** The seed's six net status levels, worst first (docs/events.md has the thresholds). */
export type NetStatus = "disconnected" | "very_bad" | "bad" | "normal" | "good" | "very_good";

/** One published or received track's counters (`call.statistics()`). */
export interface TrackStatistics {
  publication: string;
  participant: string;
  source: Source;
  kind: "audio" | "video";
  packets: number;
  bytes: number;
  /** Since the previous `statistics()` (0 the first time). */
  bitrate_bps: number;
  packets_lost: number;
  loss_percent: number;
  jitter_ms: number | null;
  rtt_ms: number | null;
  /** Video frames sent or received; null for audio. */
  frames: number | null;
  keyframe_requests: number;
  nacks: number;
  /** Simulcast layers sent now (published with simulcast), else null. */
  layers: number | null;
  bandwidth_estimate_bps: number | null;
}

export interface CallStatistics {
  published: TrackStatistics[];
  received: TrackStatistics[];
  participants: {
    user_id: string; net: NetStatus; volume: NonNullable<Participant["volume"]>;
    tracks: number; bitrate_bps: number; packets_lost: number;
  }[];
  connections: {
    connection: "publish" | "subscribe"; rtt_ms: number | null;
    packets_sent: number; packets_received: number; bytes_sent: number; bytes_received: number;
    /** The server's address in use ("ip:port"), once connected. */
    remote_address: string | null;
    /** "udp", or "tcp" (ICE over TCP where UDP is blocked), once connected. */
    protocol: string | null;
  }[];
}

export interface Participant {
  user_id: string;
  display_name: string;
  role: Role;
  audio: boolean;
  video: boolean;
  state: string;
  connection?: "connected" | "reconnecting";
  /** How loud its microphone is (the seed's volume status); absent means "none". */
  volume?: "none" | "very_low" | "low" | "mid" | "high" | "very_high";
  /** How well its media gets through (the seed's net status), as the server measures it; absent means "very_good". */
  net?: NetStatus;
  /** The extra cameras and screens it publishes now (`camera.NAME`, `screen.NAME`); absent means none. */
  streams?: Source[];
}

export interface Publication {
  id: string;
  participant: string;
  source: Source;
  kind: "audio" | "video";
  muted: boolean;
}

export type RecordingState =
  | { state: "idle" }
  | { state: "starting"; recording: string; by: string }
  | { state: "recording"; recording: string; by: string; since: number; recorder: string }
  | { state: "stopping"; recording: string; by: string; recorder: string }
  | { state: "failed"; recording: string; reason: string; recorder?: string };

export interface Properties {
  screen_share: null | { user_id: string; stream_id: string };
  recording: RecordingState;
  custom: Record<string, string>;
}

export interface RoomSnapshot {
  room: string;
  seq: number;
  participants: Participant[];
  properties: Properties;
  publications: Publication[];
}

export interface Invitation {
  id: number;
  room: string;
  caller: string;
  caller_name: string;
  callee: string;
  callee_name: string;
  video: boolean;
  extra: string;
  timeout_ms: number;
}

export interface InviteReport {
  room: string | null;
  invitations: Invitation[];
  failed: { user_id: string; reason: Reason }[];
}

export interface Ban {
  user_id: string;
  until_ms?: number;
  by: string;
}

export interface ReceivedMessage {
  room: string;
  /** The room's sequence number (group messages); null for one-to-one messages. */
  seq: number | null;
  from: string;
  scope: "group" | "one_to_one";
  content_type: string;
  content: string;
}

export interface RecordedFile {
  name: string;
  participant: string;
  sources: Source[];
  bytes: number;
  duration_ms: number;
  start_ms: number;
}

/** Why a request failed: `code` is the protocol's error code (or `session_lost`, `closed`, `device_failed`). */
export interface ErrorInfo {
  code: string;
  message: string;
}

/** Present on an outcome event when the operation failed. */
interface Failure {
  error?: ErrorInfo;
}

export type CallEvent =
  | ({ type: "joined"; op: OperationId; snapshot?: RoomSnapshot } & Failure)
  | { type: "left"; room: string; reason: Reason; op: OperationId | null; by?: string }
  | ParticipantEvent
  | PropertyEvent
  | MessageEvent
  | InviteEvent
  | MediaEvent
  | RecordingEvent
  | ({ type: "completed"; op: OperationId; kind: string } & Failure)
  | ({ type: "bans"; op: OperationId; bans: Ban[] | null } & Failure)
  | { type: "server_error"; error: ErrorInfo & { op: OperationId | null } }
  | { type: "lagged"; missed: number }
  | { type: "reconnecting"; attempt: number; reason: Reason }
  | { type: "reconnected"; replayed: number }
  | { type: "resynced"; snapshot: RoomSnapshot | null; missed: number; invitations: Invitation[]; sent_invitations: Invitation[] }
  | { type: "rejoined"; snapshot: RoomSnapshot }
  | { type: "closed"; reason: Reason };

export type ParticipantEvent =
  | { type: "participant"; kind: "joined"; room: string; seq: number; participant: Participant }
  | { type: "participant"; kind: "left"; room: string; seq: number; participant: Participant; reason: Reason }
  | {
      type: "participant"; kind: "updated"; room: string; seq: number; participant: Participant;
      changes: Partial<Record<"audio" | "video" | "display_name" | "role" | "state" | "connection" | "volume" | "net" | "streams", boolean>>;
    };

export type PropertyEvent = {
  type: "property"; kind: "changed"; room: string; seq: number; properties: Properties;
  changes: { screen_share: boolean; recording: boolean; custom: string[] }; by: string;
};

export type MessageEvent =
  | { type: "message"; kind: "received"; message: ReceivedMessage }
  | ({ type: "message"; kind: "sent"; op: OperationId; seq: number | null } & Failure);

export type InviteEvent =
  | ({ type: "invite"; kind: "sent"; op: OperationId; report: InviteReport | null } & Failure)
  | ({ type: "invite"; kind: "cancel_result" | "accept_result" | "reject_result"; op: OperationId } & Failure)
  | { type: "invite"; kind: "received" | "accepted"; invitation: Invitation }
  | { type: "invite"; kind: "canceled" | "rejected"; invitation: Invitation; reason: Reason };

export type MediaEvent =
  | { type: "media"; kind: "published" | "unmuted"; room: string; seq: number; publication: Publication }
  /** `by`: who muted it when not its publisher (a host, or the backend); null otherwise. */
  | { type: "media"; kind: "muted"; room: string; seq: number; publication: Publication; by: string | null }
  | { type: "media"; kind: "unpublished"; room: string; seq: number; publication: Publication; reason: Reason }
  | { type: "media"; kind: "subscribed"; publication: Publication; stream: MediaStream; track: MediaStreamTrack }
  | { type: "media"; kind: "unsubscribed"; publication: Publication }
  | { type: "media"; kind: "interrupted" | "restored"; connection: "publish" | "subscribe" }
  | { type: "media"; kind: "layers_wanted"; source: "camera" | "screen"; layers: number }
  /** Who speaks now, the loudest first (empty: nobody); `level_dbov` 0 is the loudest, 127 silence. */
  | { type: "media"; kind: "active_speakers"; room: string; speakers: { user_id: string; level_dbov: number }[] }
  | { type: "media"; kind: "failed"; connection: "publish" | "subscribe"; publication: string | null; message: string };

export type RecordingEvent =
  | { type: "recording"; kind: "started"; room: string; seq: number; recording: string; recorder: string; by: string }
  | { type: "recording"; kind: "stopped"; room: string; seq: number; recording: string; reason: Reason; files: RecordedFile[] }
  | {
      type: "recording"; kind: "aborted"; room: string; seq: number; recording: string; recorder: string | null;
      reason: Reason; shut_down: boolean;
    }
  | { type: "recording"; kind: "job"; job: { recording: string; room: string; options: object } }
  | { type: "recording"; kind: "stop_asked"; recording: string; reason: Reason };

export interface CallOptions {
  /** How often to ping (and acknowledge); 2500 ms. */
  pingIntervalMs?: number;
  /** Silence after which the connection counts as lost; 7500 ms. */
  idleTimeoutMs?: number;
  /** Connect again and resume after a network loss; true. */
  reconnect?: boolean;
  /** Give up reconnecting after this long; 60000 ms. */
  reconnectForMs?: number;
  /** Events one reader may have waiting before it gets `lagged`; 4096. */
  eventCapacity?: number;
  /** ICE servers for both peer connections; none. */
  iceServers?: RTCIceServer[];
  /**
   * Publish the camera with three simulcast layers (a quarter, a half, full size): true, false,
   * or "auto" (the default: on, but for Firefox; see docs/browser.md).
   */
  simulcast?: boolean | "auto";
  /** Called a minute before the token expires, for a new one of the same user. */
  refreshToken?: (() => Promise<string>) | null;
  /** Another WebSocket implementation. */
  WebSocket?: typeof WebSocket | null;
}

/** What every stream may also yield: a reader that fell behind, and the end of the call. */
export type StreamEnd = { type: "lagged"; missed: number } | { type: "closed"; reason: Reason };

/** An async iterator of events; `break` (or `return()`) ends the subscription. */
export interface EventIterator<T> extends AsyncIterableIterator<T> {
  return(): Promise<IteratorResult<T>>;
}

export declare class CallError extends Error {
  readonly code: string;
  readonly op: OperationId | null;
  readonly kind: string | null;
}

export interface RemoteMedia {
  publication: Publication;
  stream: MediaStream;
  track: MediaStreamTrack;
}

export interface MediaStats {
  inbound: {
    publication: string | null; kind: string; packets: number; bytes: number; framesDecoded: number;
    frameWidth: number; frameHeight: number; framesReceived: number; keyFramesDecoded: number; pliSent: number; nackSent: number;
  }[];
  outbound: { source: Source | null; kind: string; packets: number; bytes: number; framesEncoded: number }[];
}

export declare class Call {
  /** Connects to `url` (`ws://HOST:PORT/signal`) and logs in with `token`. */
  static connect(url: string, token: string, options?: CallOptions): Promise<Call>;
  readonly url: string;
  readonly userId: string | null;
  readonly session: number | null;
  readonly state: "connecting" | "connected" | "reconnecting" | "closed";
  room(): RoomSnapshot | null;

  events(filter?: CallEvent["type"] | CallEvent["type"][] | ((ev: CallEvent) => boolean)): EventIterator<CallEvent>;
  participants(): EventIterator<ParticipantEvent | StreamEnd>;
  properties(): EventIterator<PropertyEvent | StreamEnd>;
  messages(): EventIterator<MessageEvent | StreamEnd>;
  invites(): EventIterator<InviteEvent | StreamEnd>;
  media(): EventIterator<MediaEvent | StreamEnd>;
  recordings(): EventIterator<RecordingEvent | StreamEnd>;
  outcome(op: OperationId): Promise<unknown>;

  join(room: string | null, options?: { displayName?: string; audio?: boolean; video?: boolean; state?: string; autoSubscribe?: boolean }): OperationId;
  leave(): OperationId;
  end(): OperationId;
  kick(userId: string, ban?: true | { forMs: number }): OperationId;
  unban(userId: string): OperationId;
  listBans(): OperationId;
  setRole(userId: string, role: "host" | "guest"): OperationId;
  update(fields: { audio?: boolean; video?: boolean; displayName?: string; state?: string }): OperationId;
  setProperties(props: { screenShare?: { userId: string; streamId: string } | null; custom?: Record<string, string | null> }): OperationId;
  sendMessage(to: string | null, contentType: string, content: string): OperationId;
  invite(callees: string[], options?: { video?: boolean; extra?: string; timeoutMs?: number }): OperationId;
  cancelInvite(invitation: number): OperationId;
  acceptInvite(invitation: number, options?: { video?: boolean }): OperationId;
  rejectInvite(invitation: number, reason?: "declined" | "busy"): OperationId;
  startRecording(options?: { audio?: boolean; video?: boolean; policy?: "optional" | "required"; maxDurationMs?: number; maxBytes?: number }): OperationId;
  stopRecording(): OperationId;
  recorderReady(): OperationId;
  recorderJoin(recording: string): OperationId;
  recordingReport(
    recording: string,
    report: { state: "recording" } | { state: "stopped"; reason: string; files: RecordedFile[] } | { state: "failed"; reason: string; message: string },
  ): void;
  refresh(token: string): OperationId;
  revoke(what: { jti: string } | { userId: string; issuedBefore: number }): OperationId;

  publish(source: Source, track: MediaStreamTrack): OperationId;
  publishCamera(constraints?: MediaTrackConstraints | true): OperationId;
  publishMicrophone(constraints?: MediaTrackConstraints | true): OperationId;
  publishScreen(constraints?: MediaTrackConstraints | true): OperationId;
  unpublish(source: Source): OperationId;
  mute(source: Source, muted?: boolean): OperationId;
  /** Mutes another member's source (host, `moderate` grant); only they unmute it. */
  muteMember(userId: string, source: Source): OperationId;
  subscribe(publication: string): OperationId;
  unsubscribe(publication: string): OperationId;
  /** Receive a remote video at most this size (the largest simulcast layer that fits). */
  requestVideo(publication: string, size: { width: number; height: number }): OperationId;
  localTrack(source: Source): MediaStreamTrack | null;
  remote(publication: string): RemoteMedia | null;
  remotes(): RemoteMedia[];
  mediaStats(): Promise<MediaStats>;
  /** What the call's media did, from its peer connections' counters (docs/events.md). */
  statistics(): Promise<CallStatistics>;
  peerConnections(): { publish: RTCPeerConnection | null; subscribe: RTCPeerConnection | null };

  close(): void;
}

/** A publishing offer whose media sections name their sources as track ids. */
export declare function renameTracks(sdp: string, sourceByMid: Map<string, Source>): string;
