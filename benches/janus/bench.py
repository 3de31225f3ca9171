"""One run of the forwarding benchmark against a running server (jrtc or Janus), and the client
processes it starts. scripts/janus-compare starts the server, calls ``bench.py run`` once per run
and collects the JSON line it prints.

    bench.py run --server jrtc|janus --server-pid PID --url URL --k K --pps PPS [--window S]
    bench.py publish ...      (started by ``run``)
    bench.py subscribe ...    (started by ``run``)

``run``:
1. starts the publisher process and waits until it publishes (its packets flow from then on);
2. starts the subscriber processes (``--subs-per-proc`` subscribers each) and waits until every
   subscriber is connected; with ``--count kernel`` (the default) it then has the kernel count
   and drop the RTP arriving at each subscriber's port (``KernelCounters``), and waits until
   every subscriber receives;
3. after ``--warmup`` seconds, pauses the publisher, lets the packets in flight arrive, reads
   every counter (packets sent and received, the server's CPU time from /proc/PID/stat, the
   clients', the machine's, other processes') and resumes the publisher; ``--window`` seconds
   later it pauses it again, lets the last packets arrive and reads every counter again. Since
   nothing is in flight at either reading, sent × K − received is exactly the packets lost;
4. stops the clients and prints one JSON line with the differences (see README.md).

Run everything inside the benchmark's network namespace: the clients' ICE uses ``--address``.
"""
import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# How long the packets in flight get to arrive after the publisher pauses.
DRAIN_SECONDS = 0.3


# ---------------------------------------------------------------------------------------------
# Client processes


async def publish(args):
    """The publisher process: publishes, then runs the coordinator's commands."""
    common.use_host_address(args.address)
    frame = common.KeyFrame()
    frame.configure_aiortc()
    track = common.make_track(frame, args.pps, "camera")
    counter = common.RtpCounter()
    common.count_sent_rtp(counter)
    if args.server == "jrtc":
        import jrtc_client
        publisher = jrtc_client.Publisher(args.url, args.token, track, counter)
    else:
        import janus_client
        publisher = janus_client.Publisher(args.url, track, counter)
    info = await publisher.start()
    common.emit(
        event="published", frame_bytes=len(frame.data),
        packets_per_frame=frame.packets_per_frame, fps=track.fps, **info,
    )

    def counts():
        return {"media": counter.media, "highest": counter.highest or 0,
                "other": counter.other, "late_max": track.late_max, "stalls": track.stalls}

    def pause():
        track.pause()
        return counts()

    def resume():
        track.resume()
        return counts()

    await common.serve_commands({"snap": counts, "pause": pause, "resume": resume})
    await publisher.close()


async def subscribe(args):
    """A subscriber process: ``--count`` subscribers, then the coordinator's commands."""
    common.use_host_address(args.address)
    if args.server == "jrtc":
        import jrtc_client
        subscribers = [jrtc_client.Subscriber(args.url, t) for t in args.tokens.split(",")]
        await asyncio.gather(*(s.start() for s in subscribers))
        pcs = [s.pc for s in subscribers]
        counters = [s.counter for s in subscribers]

        async def close():
            await asyncio.gather(*(s.close() for s in subscribers))
    else:
        import janus_client
        group = janus_client.Subscribers(args.url, args.feed, args.count)
        await group.start()
        pcs, counters, close = group.pcs, group.counters, group.close
    common.emit(event="subscribed", ports=[common.local_ports(pc) for pc in pcs])
    await common.serve_commands({"snap": lambda: {"subs": [c.snapshot() for c in counters]}})
    await close()


# ---------------------------------------------------------------------------------------------
# The coordinator


class Child:
    """A client process: JSON lines out, commands in."""

    def __init__(self, name, process):
        self.name, self.process = name, process

    @classmethod
    async def start(cls, name, *argv):
        process = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), *argv,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        return cls(name, process)

    async def expect(self, event, timeout=10):
        """The next line whose ``event`` is ``event``."""
        async def read():
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    code = await self.process.wait()
                    raise RuntimeError(f"{self.name} exited ({code}) before '{event}'")
                message = json.loads(line)
                if message.get("event") == event:
                    return message
        return await asyncio.wait_for(read(), timeout)

    async def ask(self, command, timeout=10):
        """Send ``command``; its answer."""
        self.process.stdin.write(command.encode() + b"\n")
        return await self.expect(command, timeout)

    async def stop(self):
        if self.process.returncode is not None:
            return
        try:
            self.process.stdin.write(b"stop\n")
            await asyncio.wait_for(self.process.wait(), 10)
        except (asyncio.TimeoutError, ConnectionError):
            self.process.kill()
            await self.process.wait()


class KernelCounters:
    """RTP to the subscribers' ports, counted and dropped by the kernel (iptables, raw table,
    before any socket): the subscribers stay real WebRTC peers (ICE, DTLS and RTCP reach
    aiortc) but spend no CPU on the media, and their sockets cannot overflow.

    A datagram is RTP when the first two bits of its UDP payload are 2 (the version) and its
    second byte is not 192-223 (RTCP's packet types, RFC 5761)."""

    CHAIN = "JANUS_COMPARE_RTP"
    RTP = ("0>>22&0x3C@8>>24&0xC0=0x80 && "  # UDP payload byte 0: version 2
           "0>>22&0x3C@8>>16&0xFF=0:191,224:255")  # byte 1: not an RTCP type

    def __init__(self, ports):
        self.ports = ports

    @staticmethod
    def iptables(*argv, check=True):
        return subprocess.run(["iptables", "-w", "-t", "raw", *argv], check=check,
                              capture_output=True, text=True).stdout

    def install(self):
        self.remove()
        self.iptables("-N", self.CHAIN)
        for port in self.ports:
            self.iptables("-A", self.CHAIN, "-p", "udp", "--dport", str(port),
                          "-m", "u32", "--u32", self.RTP, "-j", "DROP")
        self.iptables("-I", "PREROUTING", "-p", "udp", "-j", self.CHAIN)

    def read(self):
        """Packets and bytes (IP packets: UDP payload + 28) per port."""
        counts = {}
        for line in self.iptables("-L", self.CHAIN, "-v", "-x", "-n").splitlines():
            match = re.search(r"dpt:(\d+)", line)
            if match:
                packets, size = line.split()[:2]
                counts[int(match.group(1))] = (int(packets), int(size))
        return [counts.get(port, (0, 0)) for port in self.ports]

    def remove(self):
        self.iptables("-D", "PREROUTING", "-p", "udp", "-j", self.CHAIN, check=False)
        self.iptables("-F", self.CHAIN, check=False)
        self.iptables("-X", self.CHAIN, check=False)


def mint_tokens(jrtc_server, users):
    """Access tokens for the room from ``jrtc-server token`` (JRTC_SECRET from the environment)."""
    tokens = []
    for user in users:
        out = subprocess.run(
            [jrtc_server, "token", "--user", user, "--room", "bench", "--grants", "publish,create"],
            check=True, capture_output=True, text=True,
        )
        tokens.append(out.stdout.strip())
    return tokens


class Run:
    """The coordinator's state for one run."""

    def __init__(self, args):
        self.args = args
        self.publisher = None
        self.subscriber_procs = []
        self.kernel = None

    @property
    def children(self):
        return [c for c in [self.publisher, *self.subscriber_procs] if c is not None]

    async def received(self):
        """Per subscriber: media packets received, sequence-number advance (Python counting
        only), wire bytes (UDP payload), packets the Python hook counted."""
        subs = []
        for child in self.subscriber_procs:
            subs.extend((await child.ask("snap"))["subs"])
        if self.kernel is None:
            return [(s["media"], s["highest"], s["bytes"], s["media"]) for s in subs]
        return [(packets, 0, size - 28 * packets, s["media"])
                for (packets, size), s in zip(self.kernel.read(), subs)]

    def local_counters(self):
        return {
            "server_cpu": common.cpu_seconds(self.args.server_pid),
            "clients_cpu": sum(common.cpu_seconds(c.process.pid) for c in self.children)
            + common.cpu_seconds(os.getpid()),
            "publisher_cpu": common.cpu_seconds(self.publisher.process.pid),
            "machine": common.machine_cpu(),
            "foreign": common.foreign_cpu(),
            "udp": common.udp_errors(),
        }

    def server_metrics(self):
        """jrtc's own counters of dropped packets (from its /metrics page); {} for Janus."""
        if self.args.server != "jrtc":
            return {}
        url = self.args.url.replace("ws://", "http://").rsplit("/", 1)[0] + "/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        wanted = ("jrtc_dropped_rtp_packets_total", "jrtc_media_stack_warnings_total",
                  "jrtc_media_port_datagrams_total")
        return {name: float(value) for name, value in
                (line.rsplit(" ", 1) for line in text.splitlines())
                if name.startswith(wanted)}

    async def quiet_reading(self, first):
        """Pause the publisher, let what is in flight arrive, read everything. The server's
        metrics are read outside the CPU window (before the first reading, after the second)."""
        pub = await self.publisher.ask("pause")
        await asyncio.sleep(DRAIN_SECONDS)
        metrics = self.server_metrics() if first else None
        reading = {"pub": pub, "subs": await self.received(), **self.local_counters()}
        reading["metrics"] = metrics if first else self.server_metrics()
        return reading

    async def setup(self):
        args = self.args
        if args.server == "jrtc":
            tokens = mint_tokens(args.jrtc_server, ["pub"] + [f"sub{i}" for i in range(args.k)])
            extra = ["--token", tokens[0]]
        else:
            extra = []
        self.publisher = await Child.start(
            "publisher", "publish", "--server", args.server, "--url", args.url,
            "--address", args.address, "--pps", str(args.pps), *extra,
        )
        self.published = await self.publisher.expect("published", 60)

        for first in range(0, args.k, args.subs_per_proc):
            count = min(args.subs_per_proc, args.k - first)
            argv = ["subscribe", "--server", args.server, "--url", args.url,
                    "--address", args.address]
            if args.server == "jrtc":
                argv += ["--tokens", ",".join(tokens[1 + first:1 + first + count])]
            else:
                argv += ["--feed", str(self.published["feed"]), "--count", str(count)]
            self.subscriber_procs.append(await Child.start(f"subscribers {first}+{count}", *argv))
        ports = []
        for child in self.subscriber_procs:
            for pc_ports in (await child.expect("subscribed", 90))["ports"]:
                if len(pc_ports) != 1:
                    raise RuntimeError(f"a subscriber has {len(pc_ports)} candidates")
                ports.extend(pc_ports)
        if args.count == "kernel":
            self.kernel = KernelCounters(ports)
            self.kernel.install()

        # Every subscriber receives before the clock starts.
        deadline = time.monotonic() + 30
        while not all(r[0] > 0 for r in await self.received()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"subscribers without media after 30 s: {await self.received()}")
            await asyncio.sleep(0.2)

    async def measure(self):
        args = self.args
        await asyncio.sleep(args.warmup)
        a = await self.quiet_reading(first=True)
        resumed = await self.publisher.ask("resume")
        await asyncio.sleep(args.window)
        b = await self.quiet_reading(first=False)
        await self.publisher.ask("resume")  # not measured: keeps the stream going until stop
        return a, resumed, b

    def close(self):
        if self.kernel is not None:
            self.kernel.remove()


def result_line(args, run, a, resumed, b, setup_seconds, server_alive):
    """The run's JSON result (see README.md for each field)."""
    elapsed = b["pub"]["t"] - resumed["t"]  # the publisher's sending time
    # New packets (the sequence numbers' advance): a retransmission without RTX has the same
    # payload type and would otherwise count twice.
    sent = b["pub"]["highest"] - a["pub"]["highest"]
    resent = (b["pub"]["media"] - a["pub"]["media"] - sent) + (b["pub"]["other"] - a["pub"]["other"])
    per_sub = [rb[0] - ra[0] for ra, rb in zip(a["subs"], b["subs"])]
    received = sum(per_sub)
    gaps = (sum(rb[1] - ra[1] for ra, rb in zip(a["subs"], b["subs"])) - received
            if args.count == "python" else None)
    received_bytes = sum(rb[2] - ra[2] for ra, rb in zip(a["subs"], b["subs"]))
    python_seen = sum(rb[3] - ra[3] for ra, rb in zip(a["subs"], b["subs"]))
    cpu = b["server_cpu"] - a["server_cpu"]
    clients_cpu = b["clients_cpu"] - a["clients_cpu"]
    machine = {k: b["machine"][k] - a["machine"][k] for k in a["machine"]}
    foreign = common.foreign_cpu_between(a["foreign"], b["foreign"])
    # CPU is read over the window plus the final drain; the window alone sets the rates.
    read_seconds = elapsed + DRAIN_SECONDS
    result = {
        "server": args.server, "k": args.k, "pps_target": args.pps, "rep": args.rep,
        "attempt": args.attempt, "count": args.count,
        "window_s": round(elapsed, 3),
        "sent": sent,
        "pps_in": round(sent / elapsed, 1),
        "received": received,
        "fwd_pps": round(received / elapsed, 1),
        "loss": sent * args.k - received,
        "loss_pct": round(100 * (sent * args.k - received) / max(1, sent * args.k), 4),
        "seq_gaps": gaps,
        "per_sub_min": min(per_sub),
        "per_sub_max": max(per_sub),
        "python_counted": python_seen if args.count == "kernel" else None,
        "upstream_resent": resent,
        "udp_payload_bytes": round(received_bytes / max(1, received), 1),
        "server_cpu_s": round(cpu, 2),
        "fwd_per_cpu_s": round(received / cpu) if cpu > 0 else None,
        "clients_cpu_s": round(clients_cpu, 2),
        "publisher_cpu_s": round(b["publisher_cpu"] - a["publisher_cpu"], 2),
        "steal_s": round(machine["steal"], 2),
        "foreign_cpu_s": round(foreign, 2),
        "udp_rcvbuf_errors": b["udp"]["rcvbuf_errors"] - a["udp"]["rcvbuf_errors"],
        "udp_sndbuf_errors": b["udp"]["sndbuf_errors"] - a["udp"]["sndbuf_errors"],
        "publisher_late_max_ms": round(1000 * b["pub"]["late_max"], 1),
        "publisher_stalls": b["pub"]["stalls"] - a["pub"]["stalls"],
        "frame_bytes": run.published["frame_bytes"],
        "packets_per_frame": run.published["packets_per_frame"],
        "server_counters": {name: round(value - a["metrics"].get(name, 0.0))
                            for name, value in b["metrics"].items()
                            if value != a["metrics"].get(name, 0.0)},
        "setup_s": round(setup_seconds, 2),
        "server_alive": server_alive,
    }
    result["disturbed"] = foreign / read_seconds > args.disturbed_cores
    return result


async def run(args):
    started = time.monotonic()
    state = Run(args)
    try:
        await state.setup()
        setup_seconds = time.monotonic() - started
        a, resumed, b = await state.measure()
        server_alive = os.path.exists(f"/proc/{args.server_pid}")
    finally:
        for child in state.children:
            await child.stop()
        state.close()
    result = result_line(args, state, a, resumed, b, setup_seconds, server_alive)
    print(json.dumps(result), flush=True)
    common.log(
        f"{args.server} K={args.k} {args.pps} pps: in {result['pps_in']:.0f}/s, "
        f"forwarded {result['fwd_pps']:.0f}/s, loss {result['loss']}, server CPU "
        f"{result['server_cpu_s']:.2f} s -> {result['fwd_per_cpu_s']} per CPU-s; other "
        f"processes {result['foreign_cpu_s'] / result['window_s']:.2f} cores"
        f"{' (disturbed)' if result['disturbed'] else ''}"
    )


async def quiet(args):
    """Wait until processes outside the namespace use at most ``--cores`` cores over a 2 s
    sample, or ``--max-wait`` seconds have passed; print what the last sample read."""
    deadline = time.monotonic() + args.max_wait
    while True:
        before = common.foreign_cpu()
        await asyncio.sleep(2)
        cores = common.foreign_cpu_between(before, common.foreign_cpu()) / 2
        if cores <= args.cores or time.monotonic() > deadline:
            print(f"{cores:.2f}")
            return


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common_args(p):
        p.add_argument("--server", choices=["jrtc", "janus"], required=True)
        p.add_argument("--url", required=True,
                       help="jrtc: ws://HOST:PORT/signal; Janus: http://HOST:PORT/janus")
        p.add_argument("--address", default="10.79.0.1", help="the clients' ICE address")

    p = commands.add_parser("run", help="one measured run (prints one JSON line)")
    common_args(p)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--k", type=int, required=True, help="subscribers")
    p.add_argument("--pps", type=int, required=True, help="packets per second published")
    p.add_argument("--window", type=float, default=15, help="measured seconds")
    p.add_argument("--warmup", type=float, default=3, help="seconds of flow before the window")
    p.add_argument("--count", choices=["kernel", "python"], default="kernel",
                   help="where the subscribers' RTP is counted and dropped: by iptables before "
                        "their sockets, or in their Python process (costs a core at 64 k "
                        "packets/s, but also checks the sequence numbers)")
    p.add_argument("--rep", type=int, default=1, help="repetition number (reported)")
    p.add_argument("--attempt", type=int, default=1, help="attempt number (reported)")
    p.add_argument("--disturbed-cores", type=float, default=0.1,
                   help="mark the run disturbed when processes outside the benchmark used more "
                        "cores than this")
    p.add_argument("--subs-per-proc", type=int, default=8)
    p.add_argument("--jrtc-server", default="target/release/jrtc-server",
                   help="the binary that mints jrtc tokens")

    p = commands.add_parser("quiet", help="wait until other processes are quiet")
    p.add_argument("--cores", type=float, default=0.1)
    p.add_argument("--max-wait", type=float, default=60)

    p = commands.add_parser("publish", help="(internal) the publisher process")
    common_args(p)
    p.add_argument("--pps", type=int, required=True)
    p.add_argument("--token", help="jrtc access token")

    p = commands.add_parser("subscribe", help="(internal) a subscriber process")
    common_args(p)
    p.add_argument("--tokens", help="jrtc: one access token per subscriber, comma-separated")
    p.add_argument("--feed", type=int, help="Janus: the publisher's feed id")
    p.add_argument("--count", type=int, default=1, help="Janus: subscribers")

    args = parser.parse_args()
    commands = {"run": run, "quiet": quiet, "publish": publish, "subscribe": subscribe}
    asyncio.run(commands[args.command](args))


if __name__ == "__main__":
    main()
