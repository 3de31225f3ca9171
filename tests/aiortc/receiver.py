"""A receiver written with aiortc from docs/protocol.md: joins a room and receives what is
published there, decoding the video. aiortc estimates its bandwidth itself (from the
abs-send-time stamps on the packets) and reports it in RTCP REMB: it sends no transport-wide
feedback, so the server's bandwidth allocation for it runs on REMB alone.

Prints one JSON line per decoded-size change and every 15 video frames:
{"width": W, "frames": N, "audio": A} (video frames decoded, audio frames received so far).

Usage: receiver.py ws://HOST:PORT TOKEN ROOM LOCAL_ADDRESS (the address its ICE candidates use)."""
import asyncio, json, sys

import aioice.ice

URL, TOKEN, ROOM, LOCAL = sys.argv[1:5]
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [LOCAL]
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
import websockets

seen = {"width": 0, "frames": 0, "audio": 0}


def report():
    print(json.dumps(seen), flush=True)


async def read_video(track):
    while True:
        frame = await track.recv()
        seen["frames"] += 1
        if frame.width != seen["width"]:
            seen["width"] = frame.width
            report()
        elif seen["frames"] % 15 == 0:
            report()


async def read_audio(track):
    while True:
        await track.recv()
        seen["audio"] += 1


async def main():
    ws = await websockets.connect(URL)
    await ws.send(json.dumps({"type": "hello", "version": 1, "token": TOKEN}))
    assert json.loads(await ws.recv())["type"] == "welcome"
    await ws.send(json.dumps({"type": "join", "op": 1, "room": ROOM}))
    while json.loads(await ws.recv())["type"] != "joined":
        pass
    pc = RTCPeerConnection()
    readers = []

    @pc.on("track")
    def on_track(track):
        reader = read_video if track.kind == "video" else read_audio
        readers.append(asyncio.ensure_future(reader(track)))

    op = 1
    async for message in ws:
        f = json.loads(message)
        if f["type"] == "subscribe_offer":
            await pc.setRemoteDescription(RTCSessionDescription(f["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            op += 1
            await ws.send(json.dumps({
                "type": "subscribe_answer", "op": op,
                "negotiation": f["negotiation"], "sdp": pc.localDescription.sdp,
            }))
        elif f["type"] == "ice_candidate" and f["connection"] == "subscribe":
            c = candidate_from_sdp(f["candidate"]["candidate"].split(":", 1)[1])
            c.sdpMid = f["candidate"]["sdp_mid"]
            c.sdpMLineIndex = f["candidate"]["sdp_mline_index"]
            await pc.addIceCandidate(c)


asyncio.run(main())
