"""report.py RAW OUTDIR - turns bench/run.sh's raw lines into a table (stdout and
report.md), results.json and chart.svg. Ratios compare figures of the same run."""
import json
import sys

CONFIGS = {  # name: (layers, heads, channels, T, B)
    "baby": (4, 4, 128, 64, 12),
    "small": (4, 4, 128, 256, 8),
    "medium": (6, 6, 384, 256, 4),
}
LLMC_QUOTED = {"small": 1800.0, "medium": 300.0}  # tok/s quoted in issue 3 (not measured here)


def flops_per_token(L, NH, C, T, Vp=128):
    n = Vp * C + L * (12 * C * C + 13 * C) + 2 * C  # parameters without wpe (nanoGPT's N)
    return 6 * n + 12 * L * T * C


def main():
    raw, outdir = sys.argv[1], sys.argv[2]
    peak, gemm, train, infer = {}, [], {}, {}
    for line in open(raw):
        f = line.split()
        if not f:
            continue
        if f[0] == "peak":
            peak[int(f[1])] = float(f[2])
        elif f[0] == "gemm":
            gemm.append(dict(config=f[1], layer=f[2], dir=f[3], M=int(f[4]), N=int(f[5]), K=int(f[6]),
                             threads=int(f[7]), edgetrain=float(f[8]), openblas=float(f[9])))
        elif f[0] == "infer":
            infer.setdefault(f[2], {}).setdefault(f[3], {})[f[1]] = dict(tok_s=float(f[4]), tok_s_cpu=float(f[5]))
        elif f[0] == "train":
            train.setdefault(f[2], {}).setdefault(f[1], {})[f[3]] = dict(
                tok_s=float(f[4]), step_ms=float(f[5]), rss_kb=int(f[6]))
    lines = []
    p = lines.append
    p("## Machine peak (FMA loop)\n")
    for t in sorted(peak):
        p(f"- {t} thread(s): {peak[t]:.1f} GFLOP/s")
    p("\n## GEMM: edgetrain vs OpenBLAS (GFLOP/s)\n")
    p("| config | layer | dir | M×N×K | thr | edgetrain | OpenBLAS | ratio |")
    p("|---|---|---|---|---|---|---|---|")
    worst = {}
    for g in gemm:
        r = g["edgetrain"] / g["openblas"]
        g["ratio"] = r
        worst[g["threads"]] = min(worst.get(g["threads"], 9), r)
        p(f"| {g['config']} | {g['layer']} | {g['dir']} | {g['M']}×{g['N']}×{g['K']} | {g['threads']} | "
          f"{g['edgetrain']:.1f} | {g['openblas']:.1f} | {r:.2f} |")
    for t in sorted(worst):
        p(f"\nlowest GEMM ratio at {t} thread(s): {worst[t]:.2f}")
    p("\n## Training throughput (tokens/s, median step; peak RSS)\n")
    p("PyTorch settings tTbB: T torch (OpenMP) threads, B OpenBLAS threads; its best is compared.\n")
    p("| config | edgetrain 1 thr | edgetrain 2 thr | PyTorch t1b1 | t1b2 | t2b1 | t2b2 | vs PyTorch best | "
      "vs llm.c (quoted) | MFU | RSS edgetrain | RSS PyTorch |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|")
    summary = {}
    pk = max(peak.values()) if peak else float("nan")
    for name, shape in CONFIGS.items():
        if name not in train:
            continue
        e, t = train[name].get("edgetrain", {}), train[name].get("pytorch", {})
        ebest = max(e.values(), key=lambda d: d["tok_s"])
        tbest = max(t.values(), key=lambda d: d["tok_s"])
        ratio = ebest["tok_s"] / tbest["tok_s"]
        mfu = ebest["tok_s"] * flops_per_token(*shape) / (pk * 1e9)
        llmc = f"{ebest['tok_s'] / LLMC_QUOTED[name]:.1f}×" if name in LLMC_QUOTED else "–"
        summary[name] = dict(edgetrain=e, pytorch=t, ratio_vs_pytorch=ratio, mfu=mfu,
                             flops_per_token=flops_per_token(*shape))
        tp = " | ".join(f"{t.get(k, {}).get('tok_s', 0):.0f}" for k in ("t1b1", "t1b2", "t2b1", "t2b2"))
        p(f"| {name} | {e.get('1', {}).get('tok_s', 0):.0f} | {e.get('2', {}).get('tok_s', 0):.0f} | "
          f"{tp} | {ratio:.2f}× | {llmc} | "
          f"{mfu * 100:.0f}% | {ebest['rss_kb'] / 1024:.0f} MiB | {tbest['rss_kb'] / 1024:.0f} MiB |")
    p(f"\nMFU = tokens/s × (6N + 12·L·T·C) / measured FMA peak ({pk:.1f} GFLOP/s); N excludes wpe.")
    if infer:
        p("\n## Inference throughput: fp32 vs int8 (baby GPT, random weights; tokens/s)\n")
        p("Best of alternating rounds in one process. eval: B=8, T=64, tokens/s = B·T per forward; "
          "sample: one sequence, T=64 window, one token per forward (no KV cache). "
          "Ratios are to fp32 of the same run; 1 thread also by the thread's CPU time.\n")
        p("| shape | thr | fp32 | int8 W8A8 | W8A8 / fp32 | W8A32 | W8A32 / fp32 | 2:4 + W8A8 | 2:4 W8A8 / fp32 |")
        p("|---|---|---|---|---|---|---|---|---|")
        for shape in ("eval", "sample"):
            for thr in sorted(infer.get(shape, {}), key=int):
                row = infer[shape][thr]
                base = row.get("fp32")
                if not base:
                    continue
                for d in row.values():
                    d["ratio_vs_fp32"] = d["tok_s"] / base["tok_s"]
                    if d["tok_s_cpu"] > 0 and base["tok_s_cpu"] > 0:
                        d["ratio_vs_fp32_cpu"] = d["tok_s_cpu"] / base["tok_s_cpu"]

                def cell(k):
                    d = row.get(k)
                    if not d:
                        return "– | –"
                    r = f"{d['ratio_vs_fp32']:.2f}×"
                    if "ratio_vs_fp32_cpu" in d:
                        r += f" (CPU {d['ratio_vs_fp32_cpu']:.2f}×)"
                    return f"{d['tok_s']:.0f} | {r}"
                p(f"| {shape} | {thr} | {base['tok_s']:.0f} | {cell('w8a8')} | {cell('w8a32')} | {cell('w8a8-2:4')} |")
    text = "\n".join(lines)
    print(text)
    open(f"{outdir}/report.md", "w").write(text + "\n")
    json.dump(dict(peak=peak, gemm=gemm, train=summary, infer=infer), open(f"{outdir}/results.json", "w"), indent=1)
    # chart: tokens/s per config, edgetrain vs PyTorch (best thread count), normalised to PyTorch
    W, H, bw = 640, 360, 60
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15">training tokens/s relative to PyTorch (each at its best thread setting)</text>']
    names = list(summary)
    top = max([s["ratio_vs_pytorch"] for s in summary.values()] + [1.0]) * 1.15
    y0, y1 = 300, 50
    for i, n in enumerate(names):
        x = 90 + i * 180
        for j, (lab, val, col) in enumerate((("PyTorch", 1.0, "#ff7f0e"), ("edgetrain", summary[n]["ratio_vs_pytorch"], "#1f77b4"))):
            h = (y0 - y1) * val / top
            svg.append(f'<rect x="{x + j * (bw + 6)}" y="{y0 - h:.1f}" width="{bw}" height="{h:.1f}" fill="{col}"/>')
            svg.append(f'<text x="{x + j * (bw + 6) + bw / 2}" y="{y0 - h - 5:.1f}" text-anchor="middle">{val:.2f}×</text>')
            svg.append(f'<text x="{x + j * (bw + 6) + bw / 2}" y="{y0 + 15}" text-anchor="middle">{lab}</text>')
        svg.append(f'<text x="{x + bw + 3}" y="{y0 + 35}" text-anchor="middle" font-size="13">{n}</text>')
    svg.append(f'<line x1="70" y1="{y0}" x2="{W - 20}" y2="{y0}" stroke="black"/>')
    svg.append("</svg>")
    open(f"{outdir}/chart.svg", "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
