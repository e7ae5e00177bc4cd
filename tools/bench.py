#!/usr/bin/env python3
"""`make bench`: what the firmware needs and how fast it reacts, as one markdown table.

    tools/bench.py [--quick] [--out bench/results.json] [--update-readme]

One row per measure (the modules in tools/bench/ say how each is taken); the same figures go to
the JSON file. Times are medians of several runs with their spread; comparisons are ratios of
figures taken side by side in the same run. --quick runs every row on a tiny size (the smoke test,
tests/test_bench.py); --update-readme puts the table in README.md between the bench markers.
A benchmark prints figures: a slow machine gives slow figures, never a failure.
"""
import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import bench_crypto
import bench_localauth
from bench import cpu, footprint, safety, scenario, smart, throughput, web
from bench.launch import LaunchFailed

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
SECTION = """
## Benchmarks

`make bench` (`tools/bench.py`, two to three minutes) measures the firmware in the simulator and
writes this table here and its figures to `bench/results.json`. It runs the 32-bit build of the
unix port (`make mp32`): 4-byte words and 31-bit small ints like the ESP32's, so heap sizes, in KiB
(`micropython -X heapsize=112K` is 112 KiB, what a plain ESP32 gives MicroPython), compare with the
chip's. Times are those of the unix port on the machine named, not of an ESP32.

"""
SIZES = {  # full run, --quick
    "cards": (1000, 100), "heap": ((32, 256, 1), (256, 512, 256)), "calls": (2000, 200),
    "batches": (4, 2), "samples": (50, 5), "list_cards": (10000, 1000), "smart_runs": (30, 3), "boots": (5, 1),
    "fleet": (((10, 30), 10), ((3,), 2)),  # fleet sizes, CPU window s
    "cpu": ((5000, 3600), (200, 60)),  # Evse steps timed, simulated seconds counted
}


def say(line):
    print(f"bench | {line}", file=sys.stderr, flush=True)


# -- the rows: (key, title, measure(size) -> figures, text(figures) -> (result, how)) -----------

def _heap(size):
    return scenario.measure(size["cards"], *size["heap"], log=say)


def _heap_text(r):
    if r["word_bytes"] != 4:
        raise SystemExit("the Heap row measures the 32-bit build (make mp32): unset UWB_MICROPYTHON")
    parts = []
    for name, title in (("frozen", "frozen into the firmware"), ("mpy", ".mpy image (make deploy)"),
                        ("source", "sources")):
        m = r.get(name)
        if m is None:
            continue
        sim = m["sim_bytes"] / 1024
        parts.append(f"{title}: passes at {m['heap_k']} KiB, **the firmware {m['heap_k'] - sim:.0f} KiB** "
                     f"(+ {sim:.0f} KiB simulated hardware), {(m['after_boot_bytes'] - m['sim_bytes']) / 1024:.0f} "
                     f"KiB after boot")
    return ("; ".join(parts) + " (a plain ESP32 gives MicroPython about 112 KiB)",
            f"smallest `-X heapsize=NK` at which boot, 3 sessions (card, remote start, offline card), "
            f"MeterValues every 1 s, a SetChargingProfile, GetConfiguration of all keys and a {r['cards']:,}-entry "
            f"SendLocalList complete, on the 32-bit build: bisection over whole K, then the {scenario.WINDOW} K above "
            f"must pass too, a fresh process per probe ({sum(len(r[n]['probes']) for n in ('mpy', 'frozen', 'source') if n in r)}); "
            f"a probe fails on MemoryError, exit or 3x the time of a pass. The simulated hardware (mocked "
            f"`machine`, EV plant, meters, control API) shares the heap: its part, measured before the firmware starts, is taken off. "
            f"After boot: `gc.mem_alloc()` after `gc.collect()` (GET /state)")


def _rpc(size):
    return throughput.measure(size["calls"], size["batches"])


def _rpc_text(r):
    fw, ref = r["firmware"], r["reference"]
    return (f"firmware {_t(fw['calls_per_s'], 'calls/s', fmt='.0f')}, {_ms(fw['net_cpu_s_per_call'])} CPU/call; "
            f"`ocpp` reference {_t(ref['calls_per_s'], 'calls/s', fmt='.0f')}, {_ms(ref['net_cpu_s_per_call'])} "
            f"CPU/call: **CPU/call {r['cpu_ratio']:.2f}x, rate {r['rate_ratio']:.2f}x** the reference's",
            f"{r['calls']:,} CALLs (GetConfiguration of one key, DataTransfer) one after another from one CSMS to "
            f"each, {r['batches']} batches taking turns; CPU: utime+stime (/proc) of the micropython process less "
            f"its idle share ({fw['idle_cpu_share']:.0%} of a core: Evse steps, sim tick), and of a CPython "
            f"`ocpp.v16.ChargePoint` (tools/bench/refcp.py). The rate is bound by the unix port: while a task "
            f"awaits a ThreadSafeFlag (the Evse's signal to its connector) its poll() waits in 1 ms slices, "
            f"about 3 ms a call (a one-off experiment, not part of this bench, with the connector polling every "
            f"50 ms instead saw about 880 calls/s; an ESP32 polls in 1 ms ticks whatever it awaits)")


def _safety(size):
    return safety.measure(size["samples"])


def _safety_text(r):
    return (f"idle {_pct(r['idle_ms'])}; busy {_pct(r['busy_ms'])}",
            f"EV leaves state C -> relay output open, timed in the mocked pins (`relay_open_latency_ms`), "
            f"{r['idle_ms']['n']} samples idle and {r['busy_ms']['n']} while {r['load_messages']} SendLocalList "
            f"messages arrive back to back")


def _localauth(size):
    return bench_localauth.run(size["list_cards"])


def _localauth_text(r):
    kb = 1024
    return (f"update {r['update_total_s']:.1f} s ({r['update_p50_ms']:.0f} ms per message, max "
            f"{r['update_max_ms']:.0f} ms); lookup p50 {r['lookup_p50_us']} / p99 {r['lookup_p99_us']} us; heap an "
            f"update needs {r['heap_update_b'] / kb:.1f} KB, a lookup {r['heap_lookup_b']} B; flash "
            f"{r['flash_bytes'] / kb:.0f} KB ({r['flash_blocks_bytes'] / kb:.0f} KB in 4 KB blocks)",
            f"{r['cards']:,} cards through `localauth.send_local_list` (a Full list, then Differential messages of "
            f"{r['message_entries']}) under micropython -X heapsize={bench_localauth.HEAP}, then a lookup of each; "
            f"heap: the smallest free region an operation completes in, by bisection (tools/bench_localauth.py)")


def _smart(size):
    return smart.measure(size["smart_runs"])


def _smart_text(r):
    return (f"composite schedule {_t(r['composite_ms'])} for 24 h ({r['composite_periods']} periods); "
            f"one offers() {_t(r['offers_us'], 'us', fmt='.0f')}",
            f"{r['profiles']} profiles x {r['periods_each']} periods (TxDefaultProfiles on 9 stack levels, a "
            f"ChargePointMaxProfile): `schedule.composite()` without a period cap, and `offers()`, "
            f"{r['composite_ms']['n']} runs under micropython")


def _startup(size):
    return footprint.measure(size["boots"])


def _startup_text(r):
    mpy, lines = r["mpy_bytes"], r["py_lines"]
    return (f"boot to Accepted {_t(r['boot_mpy_s'], scale=1000, fmt='.0f')} (.mpy image), "
            f"{_t(r['boot_source_s'], scale=1000, fmt='.0f')} (sources); .mpy {mpy['firmware']:,} B firmware + "
            f"{mpy['lib']:,} B lib (image {r['image_bytes']:,} B); {lines['firmware']:,} + {lines['lib']:,} lines",
            f"launches on a fresh flash ({r['boot_mpy_s']['n']} each): micropython process start (/proc, to 10 ms) "
            f"to the CSMS's BootNotification Accepted; image: tools/build.py; lines of the .py files")


def _fleet(size):
    import bench_fleet
    return bench_fleet.measure(*size["fleet"])


def _fleet_text(r):
    b = r["runs"][-1]
    return (f"{b['chargers']} chargers: all Accepted in {b['boot_s']:.1f} s, all charging {b['charging_s']:.1f} s "
            f"later; {b['charging_cores']:.2f} cores, {b['rss_mb_total']:.0f} MB ({b['rss_mb_per_charger']:.1f} MB "
            f"each): **about {r['fit']} chargers fit** ({r['cores']} cores, {r['mem_total_mb'] / 1024:.0f} GB)",
            f"classroom mode (`sim/launch.py --fleet N`, `tools/bench_fleet.py`): N firmware processes against one "
            f"bundled CSMS, each with its flash, EV and link relay; every EV then plugs in, presents a card and "
            f"asks for 16 A. CPU: utime+stime (/proc) of the N processes over {r['window_s']:.0f} s while all "
            f"charge; memory: their VmRSS. Fit: cores and memory at 70 % "
            f"({r['fit_by_cpu']} by CPU, {r['fit_by_memory']} by memory)")


def _web(size):
    return web.measure()


def _web_text(r):
    def one(m):
        return (f"server {m['resident']:,} B, after requests {m['resident_after']:,} B; a request: status "
                f"{m['status']:,} B, page {m['page']:,} B, a POST {m['limit']:,} B, settings {m['settings']:,} B, "
                f"logs {m['logs']:,} B")
    frozen = r.get("frozen")
    return ((f"frozen build: **{one(frozen)}**; " if frozen else "") + f".mpy image: {one(r['mpy'])}; "
            f"login {r['mpy']['login']:,} B of short-lived garbage (1,000 SHA-256 rounds); page "
            f"{r['page_bytes']:,} B, {r['page_gz_bytes']:,} B gzip in flash",
            "tools/bench/web_mpy.py under the 32-bit micropython, sim board, a transaction running: "
            "`gc.mem_alloc()` after `gc.collect()` around building the server (imports included) and after "
            "the requests; each request read, handled and answered with the collector off (every byte "
            "allocated, garbage included: an upper bound of the free heap it needs)")


def _crypto(size):
    return bench_crypto.run(quick=size["boots"] == 1)


def _crypto_text(r):
    def op(name, title):
        return f"{title} {r[name + '_ms']:.1f} ms, {r[name + '_heap_b'] / 1024:.1f} KB"
    return ("; ".join((op("rsa2048_verify", "RSA-2048 verify"), op("p256_verify", "ECDSA P-256 verify"),
                       op("chain_verify", "P-256 chain of 2 verified"), op("p256_keygen", "P-256 key generation"),
                       op("csr_sign", "CSR made and signed"), op("sha256_1mb", "SHA-256 of 1 MB"))) +
            f"; modules held from sources {r['import_verify_b'] / 1024:.1f} KB (sig, sha2, ec, rsa, x509), "
            f"{r['import_all_b'] / 1024:.1f} KB with csr, {r['import_chain_b'] / 1024:.1f} KB with chain too",
            f"tools/bench_crypto.py under this micropython (-X heapsize={r['heapsize']}): median time of 3-11 runs "
            f"on the unix port; heap: the smallest free region each operation completes in, by bisection; "
            f"modules: `gc.mem_alloc()` after importing them (dropped again after each use in the firmware). "
            f"Keys and CSRs are made only at SignChargePointCertificate / SignV2GCertificate, verification at "
            f"CertificateSigned, InstallCertificate and SignedUpdateFirmware: nothing is imported at boot")


def _cpu(size):
    return cpu.measure(*size["cpu"])


def _cpu_text(r):
    i, c = r["idle"], r["charging"]

    def esp(mhz):
        e = r["esp32"][str(mhz)]
        return (f"{mhz} MHz **{e['idle']['core_pct']:.0f} % idle, {e['charging']['core_pct']:.0f} % charging** "
                f"({e['charging']['step_us']} us a step: {e['charging']['python_us']} Python + "
                f"{e['charging']['reads_us']} ADC)")
    a = r["assumptions"]
    return (f"ADC reads/s per connector: {i['adc_reads_per_s']:.0f} idle ({r['burst']} pilot + 1 PP a step, "
            f"{r['steps_per_s']} steps/s), {c['adc_reads_per_s']:.0f} charging at 32 A (a burst stops at its "
            f"second read of the high level, within a budget of {r['grant']} a step: {(r['grant'] + 1) * r['steps_per_s']} a second at most, with the PP's, while the window holds the high level); PWM writes/s {i['pwm_writes_per_s']:.0f} idle, "
            f"{c['pwm_writes_per_s']:.0f} charging; flash writes/h {i['flash_writes_per_h']:.0f} idle, "
            f"{c['flash_writes_per_h']:.0f} charging; unix port: a step p50 {i['step_us']['median']:.0f} / p99 "
            f"{i['step_us']['p99']:.0f} us idle, {c['step_us']['median']:.0f} / {c['step_us']['p99']:.0f} us "
            f"charging; a second {i['second_ms']:.1f} ms idle, {c['second_ms']:.1f} ms charging; "
            f"ESP32 estimate, share of one core per connector: {esp(240)}; {esp(160)}",
            f"tools/bench/cpu_mpy.py under the 32-bit micropython, sim board, connector 1 of the App: "
            f"{i['step_us']['n']:,} Evse steps timed one by one (time.ticks_us), then {r['sim_seconds']:,} "
            f"simulated seconds (98 steps, the metering tick, the status updates; clocks and the plant's meter "
            f"moved 1 s each) counted in the mocked hardware, idle (no EV) and charging (32 A, 3 phases). "
            f"Estimate (docs/ESP32.md, CPU budget): the step's Python (its time less the mocked reads, "
            f"{r['mock_read_us']:.2f} us each) x {a['240']['slowdown']} at 240 MHz, x {a['160']['slowdown']} at "
            f"160 MHz, plus {a['240']['read_us']} / {a['160']['read_us']} us a read_uv(): assumptions, not "
            f"measured on a board")


def _t(s, unit="ms", scale=1, fmt=".1f"):
    """'median unit (min-max)' of a spread."""
    return f"{s['median'] * scale:{fmt}} {unit} ({s['min'] * scale:{fmt}}-{s['max'] * scale:{fmt}})"


def _ms(s):
    return f"{s['median'] * 1000:.2f} ms"


def _pct(s):
    return f"p50 {s['median']:.1f} / p99 {s['p99']:.1f} / max {s['max']:.1f} ms"


def _meter(size):
    import bench_modbus
    return bench_modbus.run()


def _meter_text(r):
    return (f"an SDM630 poll (3 requests) at 9600 baud {r['poll_ms_9600']:.0f} ms ({r['line_ms_9600']:.0f} ms of it on "
            f"the line), {r['request_cpu_us']:.0f} us CPU a request, **{r['poll_bytes']} B allocated per poll**; "
            f"a read() {r['read_bytes']:,} B, {r['read_us']:.0f} us; modules {r['import_bytes']:,} B, master + meter "
            f"objects {r['objects_bytes']:,} B",
            "tools/bench_modbus.py under the 32-bit micropython: lib/modbus.py and hw/meters.py against the "
            "simulated RS-485 line and meter (sim/mpy/modbus_slave.py); bytes: `gc.mem_alloc()` with the collector "
            "off, after a warm-up")


ROWS = (
    ("heap", "Heap", _heap, _heap_text),
    ("rpc", "RPC throughput", _rpc, _rpc_text),
    ("safety", "Safety reaction", _safety, _safety_text),
    ("localauth", "Local list", _localauth, _localauth_text),
    ("smart", "Smart charging", _smart, _smart_text),
    ("startup", "Start-up and size", _startup, _startup_text),
    ("fleet", "Classroom fleet", _fleet, _fleet_text),
    ("web", "Web page", _web, _web_text),
    ("crypto", "Signatures and keys", _crypto, _crypto_text),
    ("meter", "Meter polling", _meter, _meter_text),
    ("cpu", "CPU budget", _cpu, _cpu_text),
)


def machine():
    """`uname -m`, the CPU model (/proc/cpuinfo) and the number of cores."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"arch": platform.machine(), "cpu": cpu, "cores": os.cpu_count()}


def run(quick, only=None, previous=None):
    """Measure every row (ONLY: just these keys, the others kept from PREVIOUS results)."""
    size = {k: v[quick] for k, v in SIZES.items()}
    results = {"date": date.today().isoformat(), "machine": machine(), "quick": quick, "rows": {}}
    if only:
        results["rows"].update((previous or {}).get("rows", {}))
    for key, title, measure, _ in ROWS:
        if only and key not in only:
            continue
        say(f"{title} ...")
        t = time.monotonic()
        try:
            row = measure(size)
        except (Exception, LaunchFailed) as e:  # a broken row is reported, the others still run
            row = {"error": f"{type(e).__name__}: {e}"}
        row["seconds"] = round(time.monotonic() - t, 1)
        say(f"{title}: {row['seconds']} s")
        results["rows"][key] = row
    return results


def table(results):
    lines = ["| measure | result | how |", "|---|---|---|"]
    for key, title, _, text in ROWS:
        r = results["rows"].get(key, {"error": "not measured yet"})
        result, how = ("failed: " + r["error"], "") if "error" in r else text(r)
        lines.append(f"| {title} | {result} | {how} |")
    return "\n".join(lines) + "\n"


def update_readme(results, text, readme=README):
    """Put TEXT (the table), dated, between the bench markers of README (added at its end with the
    Benchmarks section if missing)."""
    m = results["machine"]
    block = f"Measured on {results['date']}, {m['arch']}, {m['cpu']}, {m['cores']} cores:\n\n{text}"
    doc = readme.read_text()
    if START not in doc or END not in doc:
        doc = doc.rstrip("\n") + "\n" + SECTION + START + "\n" + END + "\n"
    head, rest = doc.split(START, 1)
    readme.write_text(head + START + "\n" + block + END + rest.split(END, 1)[1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="every row on a tiny size (a smoke test)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"), help="the JSON file written")
    p.add_argument("--update-readme", action="store_true", help="put the table in README.md")
    p.add_argument("--rows", help="comma-separated row keys to measure again (" + ", ".join(
        k for k, *_ in ROWS) + "); the others are taken from --out")
    args = p.parse_args(argv)
    out = Path(args.out)
    only = args.rows.split(",") if args.rows else None
    previous = json.loads(out.read_text()) if only and out.exists() else None
    results = run(args.quick, only, previous)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    text = table(results)
    print(text, end="")
    if args.update_readme:
        update_readme(results, text)
    return 1 if any("error" in r for r in results["rows"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
