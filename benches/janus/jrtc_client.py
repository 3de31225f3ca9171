"""The benchmark's clients of a jrtc server (docs/protocol.md: JSON frames over a WebSocket),
after tests/aiortc/interop.py and receiver.py.

- ``Publisher``: logs in, joins the room, offers a camera track (track id ``camera``) on its
  publishing connection (``publish_offer`` -> ``publish_answer``) and returns once the room has
  heard ``track_published``.
- ``Subscriber``: logs in, joins the same room and answers the server's offers for its receiving
  connection (``subscribe_offer`` -> ``subscribe_answer``), adding the server's trickled
  candidates; the RTP that arrives is counted and dropped (``common.count_received_rtp``).

Every connection sends ``ping`` every 3 s (the server closes a connection it has not heard from
for 10 s) and reads every frame the server sends.
"""
import asyncio
import itertools
import json

import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

import common

ROOM = "bench"
PING_SECONDS = 3


class Signaling:
    """One logged-in WebSocket connection in the room: frames arrive on ``frames``."""

    def __init__(self, ws):
        self.ws = ws
        self.ops = itertools.count(2)
        self.frames = asyncio.Queue()
        self.tasks = [
            asyncio.ensure_future(self._read()),
            asyncio.ensure_future(self._ping()),
        ]

    @classmethod
    async def join(cls, url, token):
        ws = await websockets.connect(url, max_size=None)
        await ws.send(json.dumps({"type": "hello", "version": 1, "token": token}))
        welcome = json.loads(await ws.recv())
        if welcome["type"] != "welcome":
            raise RuntimeError(f"hello refused: {welcome}")
        await ws.send(json.dumps({"type": "join", "op": 1, "room": ROOM}))
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "joined":
                return cls(ws)
            if frame["type"] == "error":
                raise RuntimeError(f"join refused: {frame}")

    async def _read(self):
        async for message in self.ws:
            await self.frames.put(json.loads(message))

    async def _ping(self):
        while True:
            await asyncio.sleep(PING_SECONDS)
            await self.ws.send(json.dumps({"type": "ping"}))

    async def send(self, frame):
        await self.ws.send(json.dumps(frame))

    async def wait_for(self, kind):
        """The next frame of type ``kind``, skipping others (an ``error`` raises)."""
        while True:
            frame = await self.frames.get()
            if frame["type"] == kind:
                return frame
            if frame["type"] == "error":
                raise RuntimeError(f"server error: {frame}")

    async def close(self):
        for task in self.tasks:
            task.cancel()
        await self.ws.close()


async def add_candidate(pc, frame):
    """Add a trickled ``ice_candidate`` frame's candidate to ``pc``."""
    line = frame["candidate"]["candidate"]
    if not line:
        return  # end of candidates
    candidate = candidate_from_sdp(line.split(":", 1)[1])
    candidate.sdpMid = frame["candidate"].get("sdp_mid")
    candidate.sdpMLineIndex = frame["candidate"].get("sdp_mline_index")
    await pc.addIceCandidate(candidate)


class Member:
    """What both members share: a peer connection, a signaling socket, a task reading it."""

    async def close(self):
        if self.task:
            self.task.cancel()
        await self.pc.close()
        await self.signaling.close()


class Publisher(Member):
    """The publishing member: one camera track of pre-encoded VP8."""

    def __init__(self, url, token, track, counter):
        self.url, self.token, self.track, self.counter = url, token, track, counter
        self.pc = RTCPeerConnection()
        self.signaling = None
        self.published = None
        self.task = None

    async def start(self):
        self.signaling = await Signaling.join(self.url, self.token)
        self.pc.addTrack(self.track)
        common.prefer_vp8(self.pc.getTransceivers()[0])
        up = common.connected(self.pc)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.signaling.send({
            "type": "publish_offer", "op": next(self.signaling.ops),
            "sdp": self.pc.localDescription.sdp, "source": "camera",
        })
        answer = await self.signaling.wait_for("publish_answer")
        self.counter.payload_type = common.vp8_payload_type(answer["sdp"])
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        self.published = asyncio.get_running_loop().create_future()
        self.task = asyncio.ensure_future(self._frames())
        await asyncio.wait_for(up, 20)
        await asyncio.wait_for(self.published, 20)
        return {"room": ROOM}

    async def _frames(self):
        while True:
            frame = await self.signaling.frames.get()
            if frame["type"] == "ice_candidate" and frame.get("connection") == "publish":
                await add_candidate(self.pc, frame)
            elif frame["type"] == "track_published":
                if not self.published.done():
                    self.published.set_result(frame)
            elif frame["type"] == "error":
                common.log(f"server error: {frame}")


class Subscriber(Member):
    """A receiving member whose RTP is counted, not decoded."""

    def __init__(self, url, token):
        self.url, self.token = url, token
        self.pc = RTCPeerConnection()
        self.counter = common.RtpCounter()
        self.signaling = None
        self.task = None

    async def start(self):
        self.signaling = await Signaling.join(self.url, self.token)
        up = common.connected(self.pc)
        self.task = asyncio.ensure_future(self._frames())
        await asyncio.wait_for(up, 20)

    async def _frames(self):
        while True:
            frame = await self.signaling.frames.get()
            kind = frame["type"]
            if kind == "subscribe_offer":
                await self.pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "offer"))
                common.count_received_rtp(common.ice_connection(self.pc), self.counter)
                answer = await self.pc.createAnswer()
                self.counter.payload_type = common.vp8_payload_type(answer.sdp)
                await self.pc.setLocalDescription(answer)
                await self.signaling.send({
                    "type": "subscribe_answer", "op": next(self.signaling.ops),
                    "negotiation": frame["negotiation"], "sdp": self.pc.localDescription.sdp,
                })
            elif kind == "ice_candidate" and frame.get("connection") == "subscribe":
                await add_candidate(self.pc, frame)
            elif kind == "error":
                common.log(f"server error: {frame}")
