"""A third-party WebRTC peer (aiortc) against a jrtc server, written from docs/protocol.md alone:
one client publishes a camera, another receives it. Checks that both peer connections connect and
that a video frame arrives through the SFU; prints how long each connection took (the server
holds its candidates until the answer, so early checks are not dropped: ~30 ms each on loopback,
where an offer with candidates took ~515 ms).

Usage: interop.py ws://127.0.0.1:PORT TOKEN_PUBLISHER TOKEN_RECEIVER (tokens for room `ice`)."""
import asyncio, json, sys, time

import aioice.ice
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
import websockets

URL, TOK_PUB, TOK_SUB = sys.argv[1:4]


class Camera(VideoStreamTrack):
    @property
    def id(self):
        return "camera"


async def login(token, room):
    ws = await websockets.connect(URL)
    await ws.send(json.dumps({"type": "hello", "version": 1, "token": token}))
    assert json.loads(await ws.recv())["type"] == "welcome"
    await ws.send(json.dumps({"type": "join", "op": 1, "room": room}))
    while json.loads(await ws.recv())["type"] != "joined":
        pass
    return ws


def connected(pc):
    done = asyncio.get_running_loop().create_future()

    @pc.on("connectionstatechange")
    def _():
        if pc.connectionState == "connected" and not done.done():
            done.set_result(time.monotonic())
    return done


async def main():
    pub = await login(TOK_PUB, "ice")
    pc = RTCPeerConnection()
    pc.addTrack(Camera())
    up = connected(pc)
    await pc.setLocalDescription(await pc.createOffer())
    await pub.send(json.dumps({"type": "publish_offer", "op": 2, "sdp": pc.localDescription.sdp, "source": "camera"}))
    while True:
        f = json.loads(await pub.recv())
        if f["type"] == "publish_answer":
            t0 = time.monotonic()
            await pc.setRemoteDescription(RTCSessionDescription(f["sdp"], "answer"))
            break
        if f["type"] == "error":
            raise SystemExit(f)
    print(f"publish: answer applied -> connected {1000 * (await asyncio.wait_for(up, 10) - t0):.0f} ms")
    while True:
        f = json.loads(await pub.recv())
        if f["type"] == "track_published":
            break
    sub = await login(TOK_SUB, "ice")
    pc2 = RTCPeerConnection()
    down = connected(pc2)
    frame = asyncio.get_running_loop().create_future()

    @pc2.on("track")
    def on_track(track):
        async def first():
            frame.set_result(await track.recv())
        asyncio.ensure_future(first())
    while True:
        f = json.loads(await sub.recv())
        if f["type"] == "subscribe_offer":
            t0 = time.monotonic()
            await pc2.setRemoteDescription(RTCSessionDescription(f["sdp"], "offer"))
            await pc2.setLocalDescription(await pc2.createAnswer())
            await sub.send(json.dumps({"type": "subscribe_answer", "op": 3, "negotiation": f["negotiation"], "sdp": pc2.localDescription.sdp}))
            break
    async def trickle():
        from aiortc.sdp import candidate_from_sdp
        while True:
            f = json.loads(await sub.recv())
            if f["type"] == "ice_candidate" and f["connection"] == "subscribe":
                c = candidate_from_sdp(f["candidate"]["candidate"].split(":", 1)[1])
                c.sdpMid = f["candidate"]["sdp_mid"]
                c.sdpMLineIndex = f["candidate"]["sdp_mline_index"]
                await pc2.addIceCandidate(c)
    task = asyncio.ensure_future(trickle())
    print(f"subscribe: offer received -> connected {1000 * (await asyncio.wait_for(down, 10) - t0):.0f} ms")
    got = await asyncio.wait_for(frame, 10)
    print(f"received: a {got.width}x{got.height} video frame through the SFU")
    task.cancel()
    await pc.close(); await pc2.close()

asyncio.run(main())
