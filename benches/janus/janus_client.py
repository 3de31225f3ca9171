"""The benchmark's clients of Janus's VideoRoom plugin, over Janus's HTTP/JSON API.

The API in brief (Janus 1.1): ``POST /janus`` ``{"janus": "create"}`` makes a session;
``POST /janus/SESSION`` ``{"janus": "attach", "plugin": "janus.plugin.videoroom"}`` a handle;
``POST /janus/SESSION/HANDLE`` ``{"janus": "message", "body": {...}, "jsep": {...}}`` talks to
the plugin. Requests the plugin answers at once come back as ``success``; the others come back as
``ack`` and their result arrives later as an ``event`` on the session's long poll
(``GET /janus/SESSION``), tagged with the handle (``sender``). A session needs to be heard from
within its timeout: the long poll counts, and a ``keepalive`` is sent every 20 s as well.

- ``Publisher``: makes the room, joins it as a publisher, offers the camera track (``publish``
  with the offer; Janus answers) and returns the publisher's feed id once Janus reports the peer
  connection up (``webrtcup``).
- ``Subscribers``: each joins the room as a subscriber of that feed (Janus offers) and answers
  (``start``); the RTP that arrives is counted and dropped (``common.count_received_rtp``).

aiortc does not trickle: its descriptions carry all its candidates, and Janus (half-trickle by
default) puts its own candidates in its descriptions too.
"""
import asyncio
import json
import threading
import urllib.request
import uuid

from aiortc import RTCPeerConnection, RTCSessionDescription

import common

ROOM = 1234
KEEPALIVE_SECONDS = 20
PLUGIN = "janus.plugin.videoroom"


def _http(method, url, body=None, timeout=60):
    """One blocking HTTP request; the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


async def http(method, url, body=None, timeout=60):
    """``_http`` on a daemon thread (a long poll left hanging must not keep the process alive,
    as a thread of asyncio's default executor would at exit)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def run():
        try:
            result = _http(method, url, body, timeout)
        except Exception as error:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(_settle, future, None, error)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=run, daemon=True).start()
    return await future


def _settle(future, result, error):
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Session:
    """A Janus session: requests, and the events of its handles from the long poll."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.id = None
        self.events = {}  # handle id -> asyncio.Queue of events
        self.tasks = []

    async def request(self, path, body):
        body = dict(body, transaction=uuid.uuid4().hex)
        reply = await http("POST", self.base + path, body)
        if reply.get("janus") == "error":
            raise RuntimeError(f"Janus refused {body.get('janus')}: {reply}")
        return reply

    async def start(self):
        reply = await self.request("", {"janus": "create"})
        self.id = reply["data"]["id"]
        self.tasks = [
            asyncio.ensure_future(self._poll()),
            asyncio.ensure_future(self._keepalive()),
        ]

    async def attach(self):
        reply = await self.request(f"/{self.id}", {"janus": "attach", "plugin": PLUGIN})
        handle = reply["data"]["id"]
        self.events[handle] = asyncio.Queue()
        return handle

    async def message(self, handle, body, jsep=None):
        """A message to the plugin; the plugin's synchronous answer (``success``) or ``ack``."""
        request = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        return await self.request(f"/{self.id}/{handle}", request)

    async def event(self, handle, wanted, timeout=20):
        """The next event of ``handle`` that has ``wanted``: as a key of the plugin's data
        (``configured``), as a key of the event (``jsep``) or as its type (``webrtcup``). Events
        before it are skipped; a plugin error raises."""
        async def wait():
            while True:
                event = await self.events[handle].get()
                data = event.get("plugindata", {}).get("data", {})
                if "error" in data:
                    raise RuntimeError(f"VideoRoom error: {data}")
                if wanted in data or wanted in event or event.get("janus") == wanted:
                    return event
        return await asyncio.wait_for(wait(), timeout)

    async def _poll(self):
        while True:
            try:
                events = await http("GET", f"{self.base}/{self.id}?maxev=16", timeout=60)
            except Exception as error:
                common.log(f"long poll failed: {error}")
                await asyncio.sleep(0.5)
                continue
            for event in events if isinstance(events, list) else [events]:
                queue = self.events.get(event.get("sender"))
                if queue is not None:
                    await queue.put(event)

    async def _keepalive(self):
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            await self.request(f"/{self.id}", {"janus": "keepalive"})

    async def close(self):
        for task in self.tasks:
            task.cancel()
        try:
            await self.request(f"/{self.id}", {"janus": "destroy"})
        except Exception as error:
            common.log(f"destroying the session: {error}")


class Publisher:
    """The publishing participant: makes the room, publishes one VP8 video track."""

    def __init__(self, base, track, counter):
        self.session = Session(base)
        self.track, self.counter = track, counter
        self.pc = RTCPeerConnection()

    async def start(self):
        await self.session.start()
        handle = await self.session.attach()
        reply = await self.session.message(handle, {
            "request": "create", "room": ROOM, "publishers": 1,
            "videocodec": "vp8",
        })
        created = reply["plugindata"]["data"]
        if created.get("videoroom") != "created":
            raise RuntimeError(f"room not made: {created}")
        await self.session.message(handle, {
            "request": "join", "ptype": "publisher", "room": ROOM, "display": "publisher",
        })
        joined = await self.session.event(handle, "id")
        feed = joined["plugindata"]["data"]["id"]
        self.pc.addTrack(self.track)
        common.prefer_vp8(self.pc.getTransceivers()[0])
        up = common.connected(self.pc)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.session.message(
            handle, {"request": "publish"},
            jsep={"type": "offer", "sdp": self.pc.localDescription.sdp},
        )
        configured = await self.session.event(handle, "configured")
        answer = configured["jsep"]
        self.counter.payload_type = common.vp8_payload_type(answer["sdp"])
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.wait_for(up, 20)
        await self.session.event(handle, "webrtcup")
        return {"room": ROOM, "feed": feed}

    async def close(self):
        await self.pc.close()
        await self.session.close()


class Subscribers:
    """``count`` subscribers of one feed, each on a handle of one shared Janus session."""

    def __init__(self, base, feed, count):
        self.session = Session(base)
        self.feed = feed
        self.pcs = [RTCPeerConnection() for _ in range(count)]
        self.counters = [common.RtpCounter() for _ in range(count)]

    async def start(self):
        await self.session.start()
        await asyncio.gather(*(self._subscribe(pc, c) for pc, c in zip(self.pcs, self.counters)))

    async def _subscribe(self, pc, counter):
        handle = await self.session.attach()
        await self.session.message(handle, {
            "request": "join", "ptype": "subscriber", "room": ROOM,
            "streams": [{"feed": self.feed}],
        })
        attached = await self.session.event(handle, "jsep")
        offer = attached["jsep"]
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
        common.count_received_rtp(common.ice_connection(pc), counter)
        answer = await pc.createAnswer()
        counter.payload_type = common.vp8_payload_type(answer.sdp)
        up = common.connected(pc)
        await pc.setLocalDescription(answer)
        await self.session.message(
            handle, {"request": "start"},
            jsep={"type": "answer", "sdp": pc.localDescription.sdp},
        )
        await self.session.event(handle, "started")
        await asyncio.wait_for(up, 20)

    async def close(self):
        for pc in self.pcs:
            await pc.close()
        await self.session.close()
