#!/usr/bin/python3
"""Summarize a bitlinear_bench JSON file: a table per shape and batch, and a chart.

Usage: summarize.py RESULTS.json [--table OUT.md] [--chart OUT.png]

Times are medians over repetitions (real time). '% of roofline' of a row is its bytes per second over that of its
twin, read.<kind>/<shape>/b1/<mode>: a plain read of the same bytes with as many threads, measured interleaved
with it (bench/harness.hpp). Only Debian packages are used (python3, python3-matplotlib).
"""
import argparse
import json
import sys

FP16 = "fp16.f16c_fma"
BF16 = "bf16.avx512bf16"
FP32 = "fp32.eigen"
LOOP = "fp32.loop"
HALF = "half.eigen"
# The group-scaled layers: <codes>_g<group size>, in this order.
GROUPED_ORDER = {"ternary": 0, "compact": 1, "binary": 2}
GROUPED_LABEL = {"ternary": "ternary (2-bit)", "compact": "compact ternary (1.6-bit)", "binary": "binary (1-bit)"}


def is_grouped(kind):
    codes, _, group = kind.partition("_g")
    return codes in GROUPED_ORDER and group.isdigit()


def grouped_label(kind):
    codes, _, group = kind.partition("_g")
    return f"{GROUPED_LABEL[codes]} g{group}"


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs = {}
    errors = {}
    for b in data["benchmarks"]:
        name = b.get("run_name", b["name"])
        base = name.split("/min_time:")[0]
        if b.get("error_occurred"):
            errors[base] = b.get("error_message", "error")
            continue
        agg = b.get("aggregate_name")
        if agg not in (None, "", "median"):
            continue
        if agg == "median" or base not in runs:  # a median beats a single run of the same name
            runs[base] = b
    return data.get("context", {}), runs, errors


def seconds(b):
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(a, b):
    if a is None or b is None or a <= 0:
        return "-"
    return f"{b / a:.2f}x"


class Results:
    def __init__(self, runs, headline=None):
        self.runs = runs
        self.headline = headline  # the best family of the machine (context bitlinear_best_family)
        self.shapes = []
        self.batches = set()
        self.families = {"ternary": set(), "binary": set()}
        self.grouped = {}  # group-scaled kinds (<codes>_g<group size>) -> families they ran under
        self.bandwidth = {}  # bytes of buffer -> GB/s
        self.bandwidth2 = None  # GB/s of the DRAM-sized read on 2 threads
        for name, b in runs.items():
            parts = name.split("/")
            if parts[0] == "memread":
                self.bandwidth[int(b["bytes"])] = b["GBps"]  # the counter is already in GB/s
                continue
            if parts[0] == "memread2":
                self.bandwidth2 = b["GBps"]
                continue
            if parts[0].startswith("read."):  # twins: see twin()
                continue
            impl, shape, batch = parts[0], parts[1], int(parts[2][1:])
            if shape not in self.shapes:
                self.shapes.append(shape)
            self.batches.add(batch)
            kind = impl.split(".")[0]
            if kind in self.families:
                self.families[kind].add(impl.split(".")[1])
            elif is_grouped(kind) and impl.endswith(".e2e"):
                self.grouped.setdefault(kind, set()).add(impl.split(".")[1])
        self.batches = sorted(self.batches)
        # ternary_g128, compact_g128, binary_g128 (older files have none)
        self.grouped_kinds = sorted(self.grouped, key=lambda k: (GROUPED_ORDER.get(k.split("_g")[0], 9), k))

    def get(self, impl, shape, batch, mode):
        return self.runs.get(f"{impl}/{shape}/b{batch}/{mode}")

    def time(self, impl, shape, batch, mode):
        b = self.get(impl, shape, batch, mode)
        return seconds(b) if b else None

    def best(self, kind, shape, batch, mode, part="e2e"):
        """(time, family) of the fastest kernel family for this row."""
        best = (None, None)
        for fam in sorted(self.families[kind]):
            t = self.time(f"{kind}.{fam}.{part}", shape, batch, mode)
            if t is not None and (best[0] is None or t < best[0]):
                best = (t, fam)
        return best

    def bytes_of(self, kind, shape):
        for fam in self.families.get(kind, []):
            for batch in self.batches:
                b = self.get(f"{kind}.{fam}.e2e", shape, batch, "hot")
                if b:
                    return b["bytes"]
        return None

    def twin_gbps(self, kind, shape, mode):
        """GB/s of the plain read twin of the batch-1 rows of this kind, shape and mode (median time)."""
        b = self.runs.get(f"read.{kind}/{shape}/b1/{mode}")
        return b["bytes"] / seconds(b) / 1e9 if b else None

    def roofline_pct(self, kind, shape, mode, fam):
        """Batch-1 row of family fam: its bytes per second over its twin's, in percent (medians of both). The
        headline family's row when it ran (the fastest of several noisy families would be biased upwards)."""
        if self.headline and self.get(f"{kind}.{self.headline}.e2e", shape, 1, mode):
            fam = self.headline
        b = self.get(f"{kind}.{fam}.e2e", shape, 1, mode) if fam else None
        twin = self.twin_gbps(kind, shape, mode)
        if b is None or twin is None:
            return None
        return 100.0 * (b["bytes"] / seconds(b) / 1e9) / twin


def table(res):
    lines = []
    head = ("| shape (out x in) | batch | weights | ternary (family) | binary (family) | FP16 | ternary vs FP16 |"
            " binary vs FP16 | ternary % of roofline | binary % of roofline | BF16 | FP32 Eigen | FP32 loop |"
            " ternary vs FP32 loop |")
    lines.append(head)
    lines.append("|" + "---|" * (head.count("|") - 1))
    for shape in res.shapes:
        for batch in res.batches:
            for mode in ("hot", "stream", "stream2"):
                if mode != "hot" and batch != 1:
                    continue
                tt, tf = res.best("ternary", shape, batch, mode)
                bt, bf = res.best("binary", shape, batch, mode)
                f16 = res.time(FP16, shape, batch, mode)
                if tt is None and bt is None and f16 is None:
                    continue
                pct = res.roofline_pct("ternary", shape, mode, tf) if batch == 1 else None
                bpct = res.roofline_pct("binary", shape, mode, bf) if batch == 1 else None
                loop = res.time(LOOP, shape, batch, mode)
                row = [shape, str(batch), "stream, 2 threads" if mode == "stream2" else mode,
                       f"{fmt_time(tt)} ({tf})" if tt else "not run",
                       f"{fmt_time(bt)} ({bf})" if bt else "not run",
                       fmt_time(f16), fmt_ratio(tt, f16), fmt_ratio(bt, f16),
                       f"{pct:.0f}%" if pct is not None else "-",
                       f"{bpct:.0f}%" if bpct is not None else "-",
                       fmt_time(res.time(BF16, shape, batch, mode)), fmt_time(res.time(FP32, shape, batch, mode)),
                       fmt_time(loop), fmt_ratio(tt, loop)]
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def bits_per_weight(b, shape):
    """Bits per weight of what a call reads without the bias: codes and scales (counter bias_bytes; files without
    it count the bias too)."""
    out, inn = (int(v) for v in shape.split("x"))
    return 8.0 * (b["bytes"] - b.get("bias_bytes", 0.0)) / (out * inn)


def grouped_table(res):
    """The group-scaled layers beside per-tensor ternary of the same family and FP16, one row per layer; None if
    the file has no grouped rows."""
    if not res.grouped_kinds:
        return None
    head = ("| shape (out x in) | batch | weights | layer (family) | bits/weight | time | speed vs per-tensor ternary |"
            " speed vs FP16 | % of roofline |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for shape in res.shapes:
        for batch in res.batches:
            for mode in ("hot", "stream"):
                if mode != "hot" and batch != 1:
                    continue
                grouped = [(kind, fam) for kind in res.grouped_kinds for fam in sorted(res.grouped[kind])
                           if res.get(f"{kind}.{fam}.e2e", shape, batch, mode)]
                if not grouped:
                    continue
                fams = sorted({fam for _, fam in grouped})
                tern = {fam: res.time(f"ternary.{fam}.e2e", shape, batch, mode) for fam in fams}
                f16 = res.time(FP16, shape, batch, mode)
                rows = [("ternary", fam, "ternary (2-bit), per tensor") for fam in fams
                        if tern[fam] is not None]
                rows += [(kind, fam, grouped_label(kind)) for kind, fam in grouped]
                for kind, fam, label in rows:
                    b = res.get(f"{kind}.{fam}.e2e", shape, batch, mode)
                    t = seconds(b)
                    pct = res.roofline_pct(kind, shape, mode, fam) if batch == 1 else None
                    native = "" if b.get("native", 1.0) else ", fallback"
                    lines.append("| " + " | ".join([
                        shape, str(batch), mode, f"{label} ({fam}{native})", f"{bits_per_weight(b, shape):.3f}",
                        fmt_time(t), fmt_ratio(t, tern[fam]), fmt_ratio(t, f16),
                        f"{pct:.0f}%" if pct is not None else "-"]) + " |")
                b = res.get(FP16, shape, batch, mode)
                if b:
                    lines.append("| " + " | ".join([
                        shape, str(batch), mode, "FP16", f"{bits_per_weight(b, shape):.3f}", fmt_time(f16),
                        fmt_ratio(f16, tern[fams[0]]) if len(fams) == 1 else "-", "1.00x", "-"]) + " |")
    return "\n".join(lines)


def footprint_table(res):
    lines = ["| shape (out x in) | FP16 bytes | ternary bytes (bits/weight) | FP16 / ternary | binary bytes (bits/weight) |"
             " FP16 / binary |", "|---|---|---|---|---|---|"]
    for shape in res.shapes:
        out, inn = (int(v) for v in shape.split("x"))
        fp16 = 2 * out * inn
        t = res.bytes_of("ternary", shape)
        b = res.bytes_of("binary", shape)

        def cell(v):
            return f"{int(v):,} ({8 * v / (out * inn):.3f})" if v else "-"

        lines.append(f"| {shape} | {fp16:,} | {cell(t)} | {fmt_ratio(t, fp16)} | {cell(b)} | {fmt_ratio(b, fp16)} |")
    return "\n".join(lines)


def bandwidth_table(res):
    lines = ["| buffer | read GB/s |", "|---|---|"]
    for size in sorted(res.bandwidth):
        lines.append(f"| {size >> 20} MiB | {res.bandwidth[size]:.1f} |")
    if res.bandwidth2 is not None:
        lines.append(f"| 512 MiB, 2 threads | {res.bandwidth2:.1f} |")
    return "\n".join(lines)


def twin_table(res):
    """The plain reads the rows were judged by (GB/s, medians)."""
    kinds = ["ternary", "binary"] + res.grouped_kinds
    lines = ["| shape (out x in) | mode | " + " | ".join(f"{k} twin GB/s" for k in kinds) + " |",
             "|---|---|" + "---|" * len(kinds)]
    for shape in res.shapes:
        for mode, label in (("hot", "hot"), ("stream", "stream"), ("stream2", "stream, 2 threads")):
            gbps = [res.twin_gbps(k, shape, mode) for k in kinds]
            if all(v is None for v in gbps):
                continue
            lines.append(f"| {shape} | {label} | " + " | ".join(f"{v:.1f}" if v is not None else "-" for v in gbps)
                         + " |")
    return "\n".join(lines)


def over_roofline(res, limit=105.0):
    """Rows whose % of roofline exceeds limit: (shape, mode, kind, pct)."""
    out = []
    for shape in res.shapes:
        for mode in ("hot", "stream", "stream2"):
            for kind in ["ternary", "binary"] + res.grouped_kinds:
                if kind in res.families:
                    _, fam = res.best(kind, shape, 1, mode)
                else:
                    fam = next((f for f in sorted(res.grouped[kind]) if res.get(f"{kind}.{f}.e2e", shape, 1, mode)),
                               None)
                pct = res.roofline_pct(kind, shape, mode, fam)
                if pct is not None and pct > limit:
                    out.append((shape, mode, kind, pct))
    return out


def chart(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 5.5))
    shapes = res.shapes
    batches = res.batches
    width = 0.8 / max(1, len(batches))
    for i, batch in enumerate(batches):
        speedups = []
        for shape in shapes:
            tt, _ = res.best("ternary", shape, batch, "hot")
            f16 = res.time(FP16, shape, batch, "hot")
            speedups.append(f16 / tt if tt and f16 else float("nan"))
        xs = [k + (i - (len(batches) - 1) / 2) * width for k in range(len(shapes))]
        ax1.bar(xs, speedups, width, label=f"batch {batch}")
    ax1.axhline(1.0, color="black", linewidth=0.8)
    ax1.set_yscale("log")
    ax1.set_xticks(range(len(shapes)))
    ax1.set_xticklabels(shapes, rotation=30)
    ax1.set_ylabel("speedup of TernaryLinear (end to end) over FP16")
    ax1.set_title("Ternary vs FP16 (F16C + FP32 FMA), hot weights, 1 thread")
    ax1.legend(fontsize=8)

    impls = [("ternary", "ternary (best family)"), ("binary", "binary (best family)"), (FP16, "FP16"), (BF16, "BF16"),
             (FP32, "FP32 Eigen")]
    width = 0.8 / len(impls)
    for i, (impl, label) in enumerate(impls):
        gbps = []
        for shape in shapes:
            if impl in ("ternary", "binary"):
                t, fam = res.best(impl, shape, 1, "stream")
                b = res.get(f"{impl}.{fam}.e2e", shape, 1, "stream") if fam else None
            else:
                b = res.get(impl, shape, 1, "stream")
                t = seconds(b) if b else None
            gbps.append(b["bytes"] / t / 1e9 if b and t else 0.0)
        xs = [k + (i - (len(impls) - 1) / 2) * width for k in range(len(shapes))]
        ax2.bar(xs, gbps, width, label=label)
    for k, shape in enumerate(shapes):  # each shape's roofline: the interleaved read twin of its ternary row
        twin = res.twin_gbps("ternary", shape, "stream")
        if twin:
            ax2.hlines(twin, k - 0.45, k + 0.45, colors="red", linestyles="--",
                       label="plain read of the same bytes (interleaved)" if k == 0 else None)
    ax2.set_xticks(range(len(shapes)))
    ax2.set_xticklabels(shapes, rotation=30)
    ax2.set_ylabel("GB/s of weights read (batch 1, streaming from DRAM)")
    ax2.set_title("GEMV throughput against the bandwidth line")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("json")
    ap.add_argument("--table")
    ap.add_argument("--chart")
    args = ap.parse_args()
    context, runs, errors = load(args.json)
    res = Results(runs, context.get("bitlinear_best_family"))
    out = []
    load_start = context.get("load_avg")
    load_start = ", ".join(f"{v:.2f}" for v in load_start) if isinstance(load_start, list) else "?"
    try:
        with open("/proc/loadavg") as f:
            load_end = ", ".join(f.read().split()[:3])
    except OSError:
        load_end = "?"
    out.append(f"Machine: {context.get('cpu_model', '?')}, {context.get('num_cpus', '?')} CPUs at "
               f"{context.get('mhz_per_cpu', '?')} MHz; date: {context.get('date', '?')}; load average (1, 5, 15 min) "
               f"at start: {load_start}, at the end: {load_end}")
    out.append(f"Plan: {context.get('plan', '?')}; bitlinear families run: {context.get('bitlinear_families', '?')} "
               f"(best: {context.get('bitlinear_best_family', '?')}); Eigen SIMD: {context.get('eigen_simd', '?')}; "
               f"Eigen::half uses F16C: {context.get('eigen_half_f16c', '?')}")
    out.append("")
    out.append("Times: median of repetitions, wall clock, single thread unless '2 threads' (a ThreadPool(2), the "
               "best family only), end to end (float in, float out). "
               "'% of roofline' (batch 1, the best family's row) = its bytes per second over that of its twin, a "
               "plain read of the same bytes with as many threads (4 streams each), hot or streaming like the row, "
               "measured interleaved with it in the same repetition set; medians of both. "
               "'not run' = that implementation was too slow for this size (see docs/bench.md).")
    out.append("")
    out.append(table(res))
    out.append("")
    grouped = grouped_table(res)
    if grouped:
        out.append("Group-scaled layers (GroupedTernaryLinear, GroupedCompactTernaryLinear, GroupedBinaryLinear: one "
                   "float scale per group of weights of a row, the layout of GGUF ternary and binary models) under "
                   "the family Isa::automatic picks, beside per-tensor TernaryLinear of the same family and FP16, end "
                   "to end, 1 thread. bits/weight = (bytes read a call - the bias) * 8 / weights: codes and scales as "
                   "the layer holds them (float32 group scales). 'speed vs' = the other row's time / this row's time "
                   "(above 1: this row is faster). '% of roofline' as above, against the twin of this row's bytes.")
        out.append("")
        out.append(grouped)
        out.append("")
    out.append(footprint_table(res))
    out.append("")
    out.append(twin_table(res))
    out.append("")
    out.append(bandwidth_table(res))
    over = over_roofline(res)
    if over:
        out.append("")
        out.append("Rows above 105% of their twin (the kernel read its bytes faster than the plain read loop did; "
                   "noise on a busy machine, or hardware prefetch favouring the kernel's access pattern):")
        for shape, mode, kind, pct in over:
            out.append(f"- {kind} {shape} b1 {mode}: {pct:.0f}%")
    if errors:
        out.append("")
        out.append("Benchmarks that failed or were skipped:")
        for name, msg in sorted(errors.items()):
            out.append(f"- {name}: {msg}")
    text = "\n".join(out)
    print(text)
    if args.table:
        with open(args.table, "w") as f:
            f.write(text + "\n")
    if args.chart:
        try:
            chart(res, args.chart)
            print(f"\nchart: {args.chart}")
        except ImportError as e:
            print(f"\nno chart ({e}); install python3-matplotlib", file=sys.stderr)
    bad = [n for n, m in errors.items() if "correctness" in m]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
