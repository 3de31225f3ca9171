"""What the jrtc and Janus clients of the forwarding benchmark share.

- ``use_host_address``: aiortc's ICE gathers on one address only (the benchmark namespace's
  non-loopback address), since Janus's ICE ignores loopback interfaces.
- ``KeyFrame`` / ``PacketTrack``: the synthetic publisher. One real VP8 key frame is encoded once
  with libvpx (through PyAV); the track hands that same encoded frame to aiortc again and again
  as an ``av.Packet``, so aiortc's sender only packetizes it (no encoding per frame). The frame is
  cut into packets of about 1,100 bytes on the wire and the frame rate is chosen so that the
  packets leave at the asked packet rate.
- ``count_sent_rtp`` / ``count_received_rtp``: counting on the wire. The publisher counts the
  VP8 RTP datagrams it hands to its socket (and their sequence numbers); a subscriber's RTP is
  dropped as it reaches its socket, before SRTP decryption, jitter buffer or decoder, and
  counted there (``bench.py run --count python``). By default the kernel counts and drops it
  before that (``bench.KernelCounters``) and this hook only sees the first packets.
- ``serve_commands``: the line protocol between the coordinator (``bench.py run``) and its
  client processes: a client prints JSON lines on stdout, the coordinator writes commands
  (``snap``, ``pause``, ``resume``, ``stop``) on its stdin.
- ``cpu_seconds``, ``foreign_cpu``: CPU time of a process from ``/proc/PID/stat`` (utime +
  stime, all threads), and of every process outside the benchmark's namespace.
"""
import asyncio
import fractions
import json
import math
import os
import random
import re
import sys
import time

import aioice.ice

# Wire sizes: an RTP header with aiortc's two header extensions (abs-send-time and mid) is about
# 24 bytes, the SRTP authentication tag 10 bytes, the VP8 payload descriptor 3-4 bytes. Frame
# chunks of 1,064 bytes therefore make UDP payloads of about 1,100 bytes.
CHUNK_BYTES = 1064
VP8_DESCRIPTOR_MAX = 4
RTP_CLOCK = 90000


def use_host_address(address):
    """Make aioice gather host candidates on ``address`` alone (call before any ICE starts)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]


def emit(**fields):
    """Print one JSON line for the coordinator."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def log(message):
    """A human-readable line on stderr (the coordinator passes it through)."""
    sys.stderr.write(f"[{os.path.basename(sys.argv[0])} {os.getpid()}] {message}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# The synthetic VP8 stream


class KeyFrame:
    """One VP8 key frame, encoded once, and how to packetize it.

    The picture is 320x240: a diagonal luma ramp with a little seeded noise (so that the frame is
    a realistic size, about 8.5 KB, rather than a few hundred bytes) and flat chroma.
    """

    WIDTH, HEIGHT, NOISE, SEED = 320, 240, 4, 7

    def __init__(self):
        import av

        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = self.WIDTH, self.HEIGHT
        codec.pix_fmt = "yuv420p"
        codec.time_base = fractions.Fraction(1, 30)
        codec.bit_rate = 1_000_000
        frame = av.VideoFrame(self.WIDTH, self.HEIGHT, "yuv420p")
        rng = random.Random(self.SEED)
        for index, plane in enumerate(frame.planes):
            stride, rows = plane.line_size, plane.buffer_size // plane.line_size
            if index == 0:
                data = bytes(
                    (2 * x + y + rng.randrange(self.NOISE)) % 256
                    for y in range(rows)
                    for x in range(stride)
                )
            else:
                data = bytes([128]) * plane.buffer_size
            plane.update(data)
        frame.pts = 0
        packets = list(codec.encode(frame)) + list(codec.encode(None))
        self.data = bytes(packets[0])
        check_vp8_key_frame(self.data)
        # Cut the frame into `packets_per_frame` chunks of nearly equal size.
        self.packets_per_frame = max(1, round(len(self.data) / CHUNK_BYTES))
        self.chunk = math.ceil(len(self.data) / self.packets_per_frame)

    def configure_aiortc(self):
        """Set aiortc's VP8 packet size so that it cuts this frame into ``packets_per_frame``."""
        from aiortc.codecs import vpx

        vpx.PACKET_MAX = self.chunk + VP8_DESCRIPTOR_MAX
        for picture_id in (5, 300):  # one- and two-byte picture ids
            got = len(vpx.Vp8Encoder._packetize(self.data, picture_id))
            assert got == self.packets_per_frame, (got, self.packets_per_frame)


def check_vp8_key_frame(data):
    """Raise unless ``data`` starts like a VP8 key frame (RFC 6386 9.1: the frame tag's key-frame
    bit is 0, then the start code 9d 01 2a)."""
    if len(data) < 10 or data[0] & 1 != 0 or data[3:6] != b"\x9d\x01\x2a":
        raise ValueError(f"not a VP8 key frame: {data[:10].hex()}")


def make_track(frame, packets_per_second, track_id):
    """A video track yielding ``frame`` (a ``KeyFrame``) at the frame rate that sends
    ``packets_per_second`` packets, as ``av.Packet`` objects that aiortc only packetizes."""
    import av
    from aiortc.mediastreams import MediaStreamTrack

    class PacketTrack(MediaStreamTrack):
        """Paced pre-encoded frames: after a (re)start at ``start``, frame ``base + i`` is due
        at ``start + i / fps``. A late frame is sent at once (the schedule is absolute), so the
        mean rate holds even though the event loop wakes up with millisecond granularity. A
        frame later than ``MAX_LATE`` (the process did not get the CPU: a busy machine) starts
        the schedule again from now instead, as a real sender's pacer would, rather than
        releasing every missed frame in one burst; ``stalls`` counts those restarts.

        ``pause()`` stops the frames (aiortc sends a frame's packets in one go, so no frame is
        half sent when a command runs); ``resume()`` starts the schedule again from now."""

        kind = "video"
        MAX_LATE = 0.010

        def __init__(self):
            super().__init__()
            self.fps = packets_per_second / frame.packets_per_frame
            self.frames = 0
            self.base = 0
            self.start = None
            self.late_max = 0.0
            self.stalls = 0
            self.running = asyncio.Event()
            self.running.set()

        @property
        def id(self):
            # jrtc reads the source name from the track id (a=msid); Janus ignores it.
            return track_id

        def pause(self):
            self.running.clear()

        def resume(self):
            self.start = asyncio.get_running_loop().time()
            self.base = self.frames
            self.late_max = 0.0
            self.running.set()

        async def recv(self):
            loop = asyncio.get_running_loop()
            while True:
                await self.running.wait()
                if self.start is None:
                    self.start = loop.time()
                due = self.start + (self.frames - self.base) / self.fps
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    self.late_max = max(self.late_max, -wait)
                    if -wait > self.MAX_LATE:
                        self.stalls += 1
                        self.start, self.base = loop.time(), self.frames
                if self.running.is_set():  # not paused while it waited
                    break
            packet = av.Packet(frame.data)
            packet.pts = round(self.frames * RTP_CLOCK / self.fps)
            packet.time_base = fractions.Fraction(1, RTP_CLOCK)
            self.frames += 1
            return packet

    return PacketTrack()


def prefer_vp8(transceiver):
    """Offer only VP8 (and its retransmission format): the frames are VP8 already."""
    from aiortc import RTCRtpSender

    codecs = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences(
        [c for c in codecs if c.mimeType.lower() in ("video/vp8", "video/rtx")]
    )


def vp8_payload_type(sdp):
    """The RTP payload type VP8 has in ``sdp`` (the first one, if several)."""
    match = re.search(r"^a=rtpmap:(\d+) VP8/90000", sdp, re.MULTILINE | re.IGNORECASE)
    if not match:
        raise ValueError("no VP8 in the description")
    return int(match.group(1))


# ---------------------------------------------------------------------------------------------
# Counting RTP on the wire


def classify(datagram):
    """``(is_rtp, payload_type, padded)`` of a datagram (the RTP header is not encrypted by
    SRTP). RTP and RTCP share the port (RFC 5761): RTCP's second byte is 192-223."""
    if len(datagram) < 12 or not 128 <= datagram[0] < 192 or 192 <= datagram[1] <= 223:
        return False, None, False
    return True, datagram[1] & 0x7F, bool(datagram[0] & 0x20)


class RtpCounter:
    """Counts RTP datagrams: ``media`` those of the VP8 payload type without padding, ``other``
    the rest (retransmissions, padding probes). ``highest`` is the highest media sequence number
    seen, extended past 16 bits: between two snapshots, its advance minus the media count is
    the packets that never arrived (an SFU numbers each leg's packets without gaps)."""

    def __init__(self):
        self.payload_type = None
        self.media = 0
        self.other = 0
        self.bytes = 0
        self.highest = None

    def add(self, datagram, payload_type, padded):
        if payload_type != self.payload_type or padded:
            self.other += 1
            return
        self.media += 1
        self.bytes += len(datagram)
        seq = (datagram[2] << 8) | datagram[3]
        if self.highest is None:
            self.highest = seq
        else:
            ahead = (seq - self.highest) & 0xFFFF
            if ahead < 0x8000:  # newer; otherwise late or repeated
                self.highest += ahead

    def snapshot(self):
        return {"media": self.media, "other": self.other, "bytes": self.bytes,
                "highest": self.highest or 0}


# aioice connection -> the RtpCounter of the subscriber it belongs to.
_RECEIVE_COUNTERS = {}


def count_received_rtp(connection, counter):
    """From now on, RTP arriving on ``connection`` (an aioice ``Connection``) is counted in
    ``counter`` and dropped: aiortc never sees it (no SRTP, no jitter buffer, no decoder, no
    RTCP feedback about it). STUN, DTLS and RTCP go on to aiortc as before."""
    _install_receive_hook()
    _RECEIVE_COUNTERS[connection] = counter


def _install_receive_hook():
    protocol = aioice.ice.StunProtocol
    if getattr(protocol, "_bench_hooked", False):
        return
    original = protocol.datagram_received

    def datagram_received(self, data, addr):
        is_rtp, payload_type, padded = classify(data)
        if is_rtp:
            counter = _RECEIVE_COUNTERS.get(self.receiver)
            if counter is not None:
                counter.add(data, payload_type, padded)
                return
        original(self, data, addr)

    protocol.datagram_received = datagram_received
    protocol._bench_hooked = True


def count_sent_rtp(counter):
    """Count every RTP datagram this process's ICE sends in ``counter`` (the publisher has one
    connection)."""
    protocol = aioice.ice.StunProtocol
    original = protocol.send_data

    async def send_data(self, data, addr):
        is_rtp, payload_type, padded = classify(data)
        if is_rtp:
            counter.add(data, payload_type, padded)
        await original(self, data, addr)

    protocol.send_data = send_data


def local_ports(pc):
    """The UDP ports of ``pc``'s host candidates (where its media arrives)."""
    return [c.port for c in ice_connection(pc).local_candidates]


def ice_connection(pc):
    """The aioice ``Connection`` under a peer connection (bundled: one for all its media)."""
    transceiver = pc.getTransceivers()[0]
    return transceiver.receiver.transport.transport._connection


def connected(pc):
    """A future set when ``pc`` is connected (ICE and DTLS), failed when it fails."""
    done = asyncio.get_running_loop().create_future()

    @pc.on("connectionstatechange")
    def _changed():
        if done.done():
            return
        if pc.connectionState == "connected":
            done.set_result(time.monotonic())
        elif pc.connectionState in ("failed", "closed"):
            done.set_exception(RuntimeError(f"peer connection {pc.connectionState}"))

    return done


# ---------------------------------------------------------------------------------------------
# The coordinator's commands


class Commands:
    """Reads the coordinator's commands from stdin, one per line (see ``serve_commands``)."""

    def __init__(self):
        self.reader = None

    async def open(self):
        loop = asyncio.get_running_loop()
        self.reader = asyncio.StreamReader()
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(self.reader), sys.stdin
        )

    async def next(self):
        line = await self.reader.readline()
        return line.decode().strip() or "stop"  # end of input: the coordinator is gone


async def serve_commands(handlers):
    """Run the coordinator's commands until ``stop`` (or the end of stdin): ``handlers`` maps a
    command to a function whose dict is the answer (``{"event": command, "t": ..., ...}``,
    ``t`` from the monotonic clock, which all processes share)."""
    commands = Commands()
    await commands.open()
    while True:
        command = await commands.next()
        if command == "stop":
            return
        answer = handlers[command]()
        emit(event=command, t=time.monotonic(), **answer)


def cpu_seconds(pid):
    """CPU time of process ``pid`` (all its threads): utime + stime from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3; utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu():
    """The machine's ``steal`` time from /proc/stat: CPU seconds the hypervisor gave to others
    (a sign of a noisy host)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    return {"steal": fields[7] / os.sysconf("SC_CLK_TCK")}


def foreign_cpu():
    """CPU seconds (own and reaped children's) of every user-space process outside this
    network namespace, by PID: the benchmark runs wholly inside its namespace, so this is what
    other work on the machine (a build, a test run) costs."""
    mine = os.readlink("/proc/self/ns/net")
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == mine:
                continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone, or a kernel thread without a namespace link
        if int(fields[6]) & 0x00200000:  # PF_KTHREAD: a kernel thread
            continue
        found[pid] = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return found


def foreign_cpu_between(before, after):
    """CPU seconds other processes used between two ``foreign_cpu()`` readings (a process that
    started in between counts in full)."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def udp_errors():
    """This network namespace's UDP receive-buffer and send-buffer errors (/proc/net/snmp)."""
    with open("/proc/net/snmp") as f:
        lines = [line.split() for line in f if line.startswith("Udp:")]
    names, values = lines[0][1:], [int(v) for v in lines[1][1:]]
    table = dict(zip(names, values))
    return {"rcvbuf_errors": table.get("RcvbufErrors", 0), "sndbuf_errors": table.get("SndbufErrors", 0)}
