"""Turns the JSON lines of ``bench.py run`` into markdown: a summary per configuration (jrtc and
Janus side by side), then every run.

    report.py RESULTS.jsonl

A run that was repeated because the machine was busy with something else (``disturbed``: other
processes used more than the threshold while it was measured) counts only through its last
attempt; the earlier attempts are listed among the runs, marked "rerun".
"""
import json
import statistics
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def kept_runs(runs):
    """The last attempt of each (server, K, rate, repetition), and the superseded ones."""
    last = {}
    for run in runs:
        last[(run["server"], run["k"], run["pps_target"], run["rep"])] = run
    final = {id(r) for r in last.values()}
    kept = [r for r in last.values() if "error" not in r]
    return kept, [r for r in runs if id(r) not in final]


def kilo(value):
    return f"{value / 1000:.1f} k"


def spread(values, fmt):
    """'mean (min–max)' of ``values``."""
    if not values:
        return "—"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return fmt(mean)
    return f"{fmt(mean)} ({fmt(min(values))}–{fmt(max(values))})"


def summary(kept):
    configs = sorted({(r["k"], r["pps_target"]) for r in kept})
    servers = [s for s in ("jrtc", "janus") if any(r["server"] == s for r in kept)]
    lines = [
        "| K | packets in/s (target) | server | runs | packets in/s | forwarded/s (all subscribers) "
        "| loss: sent×K − received | server CPU-s per window "
        "| forwarded packets per server CPU-second: mean (min–max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    means = {}
    for k, pps in configs:
        for server in servers:
            runs = [r for r in kept if (r["server"], r["k"], r["pps_target"]) == (server, k, pps)]
            if not runs:
                continue
            per_cpu = [r["fwd_per_cpu_s"] for r in runs if r["fwd_per_cpu_s"]]
            means[(k, pps, server)] = statistics.fmean(per_cpu) if per_cpu else None
            loss = sum(r["loss"] for r in runs)
            offered = sum(r["sent"] * r["k"] for r in runs)
            lines.append(
                f"| {k} | {pps:,} | {server} | {len(runs)} "
                f"| {statistics.fmean(r['pps_in'] for r in runs):,.0f} "
                f"| {statistics.fmean(r['fwd_pps'] for r in runs):,.0f} "
                f"| {loss:,} of {offered:,} ({100 * loss / max(1, offered):.3f} %) "

                f"| {spread([r['server_cpu_s'] for r in runs], lambda v: f'{v:.2f}')} "
                f"| {spread(per_cpu, kilo)} |"
            )
    if {"jrtc", "janus"} <= set(servers):
        lines += [
            "",
            "| K | packets in/s | jrtc forwarded/CPU-s | Janus forwarded/CPU-s | jrtc ÷ Janus |",
            "|---|---|---|---|---|",
        ]
        for k, pps in configs:
            a, b = means.get((k, pps, "jrtc")), means.get((k, pps, "janus"))
            ratio = f"{a / b:.2f} ×" if a and b else "—"
            lines.append(
                f"| {k} | {pps:,} | {kilo(a) if a else '—'} | {kilo(b) if b else '—'} | {ratio} |"
            )
    return lines


def raw(runs, superseded):
    lines = [
        "| server | K | target pps | rep | attempt | packets in/s | forwarded/s | loss "
        "| seq gaps | server CPU-s | fwd per CPU-s | clients CPU-s | other processes (cores) "
        "| steal (cores) | UDP rcvbuf errors | publisher stalls | server log warnings | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        note = []
        if any(r is s for s in superseded):
            note.append("rerun")
        if r.get("disturbed"):
            note.append("disturbed")
        if "error" in r:
            lines.append(
                f"| {r['server']} | {r['k']} | {r['pps_target']} | {r['rep']} "
                f"| {r.get('attempt', 1)} | | | | | | | | | | | | | error: {r['error']} |"
            )
            continue
        if not r.get("server_alive", True):
            note.append("server died")
        lines.append(
            f"| {r['server']} | {r['k']} | {r['pps_target']} | {r['rep']} | {r.get('attempt', 1)} "
            f"| {r['pps_in']:,.0f} | {r['fwd_pps']:,.0f} | {r['loss']:,} "
            f"| {'—' if r.get('seq_gaps') is None else format(r['seq_gaps'], ',')} "
            f"| {r['server_cpu_s']:.2f} | {r['fwd_per_cpu_s'] or 0:,.0f} | {r['clients_cpu_s']:.2f} "
            f"| {r['foreign_cpu_s'] / r['window_s']:.2f} | {r['steal_s'] / r['window_s']:.2f} "
            f"| {r['udp_rcvbuf_errors']} | {r.get('publisher_stalls', '—')} "
            f"| {r.get('server_log_warnings', '—')} "
            f"| {', '.join(note)} |"
        )
    return lines


def main():
    runs = load(sys.argv[1])
    kept, superseded = kept_runs(runs)
    print("## Summary\n")
    print("\n".join(summary(kept)))
    print("\n## Every run (in the order they ran)\n")
    print("\n".join(raw(runs, superseded)))


if __name__ == "__main__":
    main()
