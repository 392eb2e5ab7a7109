#!/usr/bin/env python3
"""plots.py — the SVG charts of docs/BENCHMARKS.md, drawn with gnuplot (standard library only).

  plots.py draw --results bench/results.json --work WORKDIR --charts docs/charts
                --doc docs/BENCHMARKS.md [--fleet bench/fleet.json]

draw reads the run rows and meta of results.json (written by `benchlib.py report`), the
per-task result files of the runs in WORKDIR (scripts/bench.sh's work directory: run-BENCH-
SYSTEM-RUN/out.jsonl*, each task's latency and its completion time `t_ms`, and the run's
start in `t0`) and, when present, the fleet-size rows of bench/fleet.json (bench/fleet.sh).
It writes one gnuplot script per chart into WORKDIR/charts, runs gnuplot on it to get
CHARTS/NAME.svg, and replaces the "Charts" block of DOC (between the CHARTS_BEGIN and
CHARTS_END markers that the report writes) with the image links and what each chart shows.
A chart without data (a benchmark that was not run) is left out and the block says so.
Without gnuplot bench.sh does not call it and the block keeps the report's note.

Every chart goes through chart(), so style, size, the title with the command and commit that
produced the data, and the data blocks are written in one place.
"""
import glob
import json
import math
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import CHARTS_BEGIN, CHARTS_END  # noqa: E402  (the report writes the block)

# Okabe-Ito colours: distinct for colour-blind readers, dark enough on the white background
# every chart draws (the SVG is readable on a dark or light GitHub page alike)
COLOURS = {"scatter": "#0072B2", "haproxy": "#E69F00", "proxychains": "#009E73",
           "naive": "#D55E00", "grey": "#666666", "purple": "#CC79A7", "sky": "#56B4E9"}
PEERS = (("scatter", "scatter"), ("haproxy", "HAProxy"), ("proxychains", "proxychains4"),
         ("naive", "naive rotator"))
FLEETS = (("eff50", 50), ("eff200", 200), ("eff1000", 1000))


def q(s):
    """A gnuplot double-quoted string (a newline stays a line break of the label)."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def thousands(n):
    return f"{n:,.0f}"


def chart(path, gpdir, c):
    """Draws one chart into PATH (SVG) from the spec C; returns True when gnuplot succeeded.

    c: title, subtitle, xlabel, ylabel, [y2label], [logx], [xrange], [yrange], [y2range],
       [xtics: [(label, x)]], [hlines: [{y, name, colour, axes}]],
       series: [{name, data: [[x, y, (ylow, yhigh)]], style: lines|steps|linespoints|errorbars,
                 colour, [dash], [axes: x1y1|x1y2], [pt]}]
    Series without data are left out; no series with data: no chart (False).
    """
    series = [s for s in c["series"] if s["data"]]
    if not series:
        return False
    name = os.path.splitext(os.path.basename(path))[0]
    L = ["set terminal svg size 880,580 fixed noenhanced font 'Helvetica,13' background rgb 'white'",
         f"set output {q(os.path.abspath(path))}",
         "set encoding utf8",
         # the title and the subtitle (what was run) as labels: set title has one font size
         # the legend has a band of its own under the x axis: inside the plot it would hide
         # whatever point happened to fall under it
         "set tmargin at screen 0.82", "set bmargin at screen 0.24",
         "set lmargin at screen 0.09", f"set rmargin at screen {0.89 if c.get('y2label') else 0.96}",
         f"set label 901 {q(c['title'])} at screen 0.5, screen 0.96 center font 'Helvetica,16'",
         f"set label 902 {q(c['subtitle'])} at screen 0.5, screen 0.91 center font 'Helvetica,11' textcolor rgb '#444444'",
         f"set xlabel {q(c['xlabel'])}", f"set ylabel {q(c['ylabel'])}",
         "set grid xtics ytics mxtics lc rgb '#dddddd' lw 1 dt 1",
         "set border 3 lc rgb '#333333'", "set tics nomirror textcolor rgb '#222222'",
         "set key at screen 0.5, screen 0.015 center bottom vertical maxrows 3 box lc rgb '#cccccc' "
         "samplen 2.5 spacing 1.1 width 1",
         "set datafile missing '?'"]
    if c.get("logx"):
        L.append("set logscale x 10")
    if c.get("xtics"):
        L.append("set xtics (" + ", ".join(f"{q(lab)} {x}" for lab, x in c["xtics"]) + ")")
    for k in ("xrange", "yrange", "y2range"):
        if c.get(k):
            lo, hi = c[k]
            L.append(f"set {k} [{'*' if lo is None else lo}:{'*' if hi is None else hi}]")
    if c.get("y2label"):
        L += [f"set y2label {q(c['y2label'])}", "set y2tics nomirror", "set border 11 lc rgb '#333333'"]
    for i, s in enumerate(series):
        L.append(f"$d{i} << EOD")
        L += [" ".join("?" if v is None else f"{v:.6g}" for v in row) for row in s["data"]]
        L.append("EOD")
    plots = []
    for i, s in enumerate(series):
        col, axes = s["colour"], s.get("axes", "x1y1")
        dash = f" dt {s['dash']}" if s.get("dash") else ""
        style = s.get("style", "lines")
        if style == "errorbars":   # the median joined by a line, min-max as error bars
            plots.append(f"$d{i} using 1:2:3:4 axes {axes} with yerrorlines lw 2 pt {s.get('pt', 7)} ps 1.1 "
                         f"lc rgb '{col}'{dash} title {q(s['name'])}")
        elif style == "linespoints":
            plots.append(f"$d{i} using 1:2 axes {axes} with linespoints lw 2 pt {s.get('pt', 7)} ps 1.1 "
                         f"lc rgb '{col}'{dash} title {q(s['name'])}")
        elif style == "points":
            plots.append(f"$d{i} using 1:2 axes {axes} with points pt {s.get('pt', 9)} ps 1.6 "
                         f"lc rgb '{col}' title {q(s['name'])}")
        else:
            plots.append(f"$d{i} using 1:2 axes {axes} with {style} lw 2 lc rgb '{col}'{dash} title {q(s['name'])}")
    for h in c.get("hlines", []):
        plots.append(f"{h['y']:.6g} axes {h.get('axes', 'x1y1')} with lines lw 1.5 dt 2 "
                     f"lc rgb '{h.get('colour', COLOURS['grey'])}' title {q(h['name'])}")
    L.append("plot " + ", \\\n     ".join(plots))
    os.makedirs(gpdir, exist_ok=True)
    gp = os.path.join(gpdir, name + ".gp")
    with open(gp, "w") as f:
        f.write("\n".join(L) + "\n")
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(path):
        sys.stderr.write(f"plots: gnuplot failed on {gp}: {r.stderr.strip()[:500]}\n")
        return False
    # the SVG's own title (screen readers, a browser tab) is the chart's, not "Gnuplot"
    svg = open(path).read()
    esc = c["title"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    open(path, "w").write(svg.replace("<title>Gnuplot</title>", f"<title>{esc}</title>", 1))
    return True


def read_tasks(rundir):
    """The task lines of one run (out.jsonl of scatterctl, out.jsonl.K of bench_curl and the
    xargs peers)."""
    out = []
    for p in sorted(glob.glob(os.path.join(rundir, "out.jsonl*"))):
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    return out


def ran(meta):
    """The second subtitle line: what was run to get the data."""
    return f"{meta['command']} · commit {meta['commit']} · {meta['date']}"


def group(rows, bench, system):
    return [r for r in rows if r["bench"] == bench and r["system"] == system]


def median_run(rows, bench, system, key="tasks_per_s"):
    """The run index whose KEY is the median (the lower one of an even count)."""
    rs = sorted((r for r in group(rows, bench, system) if r.get(key) is not None), key=lambda r: r[key])
    return rs[(len(rs) - 1) // 2]["run"] if rs else None


def spread(rows, bench, system, key):
    v = [r[key] for r in group(rows, bench, system) if r.get(key) is not None]
    return (statistics.median(v), min(v), max(v), len(v)) if v else None


# ---------------------------------------------------------------- the charts
def throughput(res, work):
    """tasks/s over time, scatter and each peer, one run index of §2 (eff200)."""
    rows, meta = res["runs"], res["meta"]
    run = median_run(rows, "eff200", "scatter")
    if run is None:
        return None
    curves = []
    for system, label in PEERS:
        d = os.path.join(work, f"run-eff200-{system}-{run}")
        row = next((r for r in group(rows, "eff200", system) if r["run"] == run), None)
        if row is None or not os.path.exists(os.path.join(d, "t0")):
            continue
        t0 = float(open(os.path.join(d, "t0")).read())
        done = [r["t_ms"] / 1000.0 - t0 for r in read_tasks(d) if r.get("ok") and r.get("t_ms") is not None]
        if done:
            curves.append((system, label, row["wall_s"], done))
    if not curves:
        return None
    shortest = min(w for _, _, w, _ in curves)
    # 1 s bins, unless a run is too short to show a shape in them (a --quick scatter run
    # takes ~2 s): then bins of the farm's interval, shorter ones would draw its pulses (a
    # (proxy, host) pair may send once per interval, so completions come in waves)
    iv = (meta["ceilings"].get("eff200", {}).get("interval_ms") or 500) / 1000.0
    bw = 1.0 if shortest >= 8 else iv
    series = []
    for system, label, wall, done in curves:
        # a last piece of at least half a bin is a bin of its own, a shorter one joins the bin
        # before it: the last bin always ends at the run's end
        nb = max(1, int(wall / bw))
        if wall - nb * bw >= bw / 2:
            nb += 1
        edges = [k * bw for k in range(nb)] + [max(wall, (nb - 1) * bw + 1e-3)]
        counts = [0] * nb
        for t in done:
            counts[min(nb - 1, max(0, int(t / bw)))] += 1
        data = [[edges[k], counts[k] / (edges[k + 1] - edges[k])] for k in range(nb)]
        data.append([edges[-1], data[-1][1]])  # the last step's right edge
        series.append({"name": f"{label} ({len(done)} completed in {wall:.1f} s)", "data": data,
                       "style": "steps", "colour": COLOURS[system]})
    c = meta["ceilings"].get("eff200", {})
    top = max([c.get("ceiling_steady") or 0] + [y for s in series for _, y in s["data"]]) * 1.1 or 1
    nruns = len(group(rows, "eff200", "scatter"))
    return {
        "title": "Tasks completed per second during one run: scatter and the peers",
        "subtitle": f"200-proxy farm, {meta['tasks']['eff200']} tasks, run {run} of {nruns} (the median scatter run)\n"
                    + ran(meta),
        "xlabel": "seconds since the client started", "ylabel": f"completed tasks/s (in {bw:g} s bins)",
        "xrange": (0, round(max(w for _, _, w, _ in curves), 1)), "yrange": (0, round(top)),
        "series": series,
        "hlines": [{"y": c["ceiling_steady"], "name": f"oracle, steady state ({c['ceiling_steady']:.0f} tasks/s)"}]
        if c.get("ceiling_steady") else [],
        "caption": "Completed tasks (a clean 2xx) per bin of time, from each task's completion time as its client "
                   "wrote it (`t_ms`): `scatterctl fetch --jsonl -` stamped as each line arrives, `bench_curl` and "
                   "`bench/peer_task.sh` at the end of the task. One run index, every system on the same farm "
                   "within the same minute. The dashed line is the oracle's steady-state rate (§1).",
    }


def latency_cdf(res, work):
    rows, meta = res["runs"], res["meta"]
    series = []
    for system, label in PEERS:
        rs = group(rows, "eff200", system)
        lat, total = [], 0
        for r in rs:
            d = os.path.join(work, f"run-eff200-{system}-{r['run']}")
            if not os.path.isdir(d):
                continue
            total += r.get("tasks") or 0
            lat += [max(1.0, float(t["elapsed_ms"])) for t in read_tasks(d)
                    if t.get("ok") and t.get("elapsed_ms") is not None]
        if not lat or not total:
            continue
        lat.sort()
        step = max(1, len(lat) // 400)   # ~400 points a curve: a smooth line, a small file
        data = [[lat[i], (i + 1) / total] for i in range(0, len(lat), step)]
        if data[-1][0] != lat[-1]:
            data.append([lat[-1], len(lat) / total])
        series.append({"name": f"{label} ({len(rs)} runs, {len(lat)} of {total} tasks completed)",
                       "data": data, "style": "lines", "colour": COLOURS[system]})
    if not series:
        return None
    return {
        "title": "Task latency: share of the batch completed within a given time",
        "subtitle": f"200-proxy farm, {meta['tasks']['eff200']} tasks per run, every run pooled\n" + ran(meta),
        "xlabel": "task latency, ms (log scale; under 1 ms drawn at 1 ms)",
        "ylabel": "share of all tasks of the batch", "logx": True, "yrange": (0, 1.02),
        "series": series,
        "caption": "Each curve ends at its completion share: tasks that never completed never reach the top. "
                   "scatter's latency runs from submission (`scatterctl fetch` submits a whole window at "
                   "once, so it includes waiting in the daemon for a free proxy and host slot); a peer's "
                   "runs from the moment one of its 32 parallel slots takes the task.",
    }


def efficiency(res, work):
    rows, meta = res["runs"], res["meta"]
    batch, steady, points = [], [], []
    for bench, n in FLEETS:
        a, b = spread(rows, bench, "scatter", "efficiency"), spread(rows, bench, "scatter", "efficiency_steady")
        if a:
            batch.append([n, a[0], a[1], a[2]])
            points.append(f"{thousands(n)} ({meta['tasks'].get(bench, '?')} tasks)")
        if b:
            steady.append([n, b[0], b[1], b[2]])
    if not batch:
        return None
    top = max([1.05] + [r[3] + 0.05 for r in batch + steady])
    return {
        "title": "Efficiency against fleet size: tasks/s ÷ the oracle's ceiling",
        "subtitle": f"scatter, 2 workers; points: {', '.join(points)}\n" + ran(meta),
        "xlabel": "proxies in the farm (log scale)", "ylabel": "efficiency (median, min-max bars)",
        "logx": True, "xrange": (35, 1400), "yrange": (0, round(top, 2)),
        "xtics": [(thousands(n), n) for _, n in FLEETS],
        "series": [
            {"name": "against the batch ceiling (N ÷ oracle makespan)", "data": batch, "style": "errorbars",
             "colour": COLOURS["scatter"]},
            {"name": "against the steady-state bound", "data": steady, "style": "errorbars",
             "colour": COLOURS["sky"], "dash": 2, "pt": 5},
        ],
        "hlines": [{"y": 0.8, "name": "issue 6 target (0.8)", "colour": COLOURS["naive"]}],
        "caption": "scatter (2 workers) on the demo mix of §1 at each fleet size; "
                   + ("the 1,000-proxy point is not run by `--quick`. " if meta.get("quick") else "")
                   + "Same farm mix, seed and interval at every size, a fresh daemon per run.",
    }


def memory(res, work):
    rows, meta = res["runs"], res["meta"]
    rss, pss, ticks = [], [], []
    for bench in sorted({r["bench"] for r in rows if r["bench"].startswith("mem")},
                        key=lambda b: int(b[3:]) if b[3:].isdigit() else 0):
        if not bench[3:].isdigit():
            continue
        n = int(bench[3:])
        h = spread(rows, bench, "scatter", "hosts")
        hosts = int(round(h[0])) if h else 0
        if not hosts:
            continue
        a, b = spread(rows, bench, "scatter", "rss_mb"), spread(rows, bench, "scatter", "pss_mb")
        x = n * hosts
        if a:
            rss.append([x, a[0], a[1], a[2]])
        if b:
            pss.append([x, b[0], b[1], b[2]])
        ticks.append((f"{thousands(n)} × {hosts}", x))
    if not rss and not pss:
        return None
    top = max([55] + [r[3] * 1.15 for r in rss + pss])
    return {
        "title": "Daemon memory against proxies × hosts",
        "subtitle": "master + 2 workers, between batches (after one batch to every host)\n" + ran(meta),
        "xlabel": "proxies × hosts in the table (log scale)", "ylabel": "MB, all daemon processes (median, min-max bars)",
        "logx": True, "xrange": (min(x for _, x in ticks) / 2, max(x for _, x in ticks) * 2),
        "yrange": (0, round(top)), "xtics": ticks,
        "series": [
            {"name": "PSS (shared pages split between processes)", "data": pss, "style": "errorbars",
             "colour": COLOURS["scatter"]},
            {"name": "RSS (shared table counted once per process)", "data": rss, "style": "errorbars",
             "colour": COLOURS["haproxy"], "pt": 5},
        ],
        "hlines": [{"y": 50, "name": "issue 6 target for 20,000 × 10 (50 MB)", "colour": COLOURS["naive"]}],
        "caption": "Summed `Rss` and `Pss` of `/proc/PID/smaps_rollup` (§4), 1.5 s after the batch: what a "
                   "daemon holds between batches.",
    }


def fleet(path):
    try:
        fl = json.load(open(path))
    except (OSError, ValueError):
        return None
    rows = [r for r in fl.get("rows", []) if r.get("proxies")]
    one = sorted((r for r in rows if r.get("hosts", 1) == 1), key=lambda r: r["proxies"])
    more = [r for r in rows if r.get("hosts", 1) != 1]
    if not rows:
        return None
    series = [
        {"name": "efficiency (tasks/s ÷ ceiling), left axis", "data": [[r["proxies"], r["efficiency"]] for r in one
                                                                      if r.get("efficiency") is not None],
         "style": "linespoints", "colour": COLOURS["scatter"]},
        {"name": "daemon CPU s per 1,000 tasks, right axis", "data": [[r["proxies"], r["cpu_s_per_1000"]] for r in one
                                                                    if r.get("cpu_s_per_1000") is not None],
         "style": "linespoints", "colour": COLOURS["haproxy"], "axes": "x1y2", "pt": 5, "dash": 2},
    ]
    for r in more:
        lab = f"{thousands(r['proxies'])} proxies × {r['hosts']} hosts, {r.get('interval_ms', '?')} ms"
        if r.get("efficiency") is not None:
            series.append({"name": f"{lab}: efficiency", "data": [[r["proxies"], r["efficiency"]]],
                           "style": "points", "colour": COLOURS["scatter"], "pt": 9})
        if r.get("cpu_s_per_1000") is not None:
            series.append({"name": f"{lab}: CPU s per 1,000", "data": [[r["proxies"], r["cpu_s_per_1000"]]],
                           "style": "points", "colour": COLOURS["haproxy"], "axes": "x1y2", "pt": 11})
    xs = [r["proxies"] for r in rows]
    cpu = [r["cpu_s_per_1000"] for r in rows if r.get("cpu_s_per_1000") is not None]
    eff = [r["efficiency"] for r in rows if r.get("efficiency") is not None]
    return {
        "title": "Fleet size: efficiency and CPU per task from bench/fleet.sh",
        "subtitle": "good proxies, 2 workers; lines: one target allowing a request per proxy every 500 ms "
                    "(ceiling 2 × proxies tasks/s)\n"
                    f"{fl.get('command', 'bench/fleet.sh')} · commit {fl.get('commit', '?')}",
        "xlabel": "proxies (log scale)", "ylabel": "efficiency", "y2label": "CPU s per 1,000 tasks (master + workers)",
        "logx": True, "xrange": (min(xs) / 1.5, max(xs) * 1.5),
        "yrange": (0, max([1.05] + [e + 0.05 for e in eff])),
        "y2range": (0, (max(cpu) * 1.3) if cpu else None),
        "xtics": [(thousands(x), x) for x in sorted(set(xs))],
        "series": series,
        "caption": "From `bench/fleet.json` (bench/fleet.sh, its own farm and command, in the subtitle; its "
                   "table is the \"Fleet size\" section below). A flat CPU line means the cost of a task does not "
                   "grow with the fleet; that section's busy column says where the whole machine, not the "
                   "daemon, was the limit.",
    }


CHARTS = (("throughput", throughput), ("latency_cdf", latency_cdf), ("efficiency_fleet", efficiency),
          ("memory", memory))


def replace_block(doc, text):
    """Puts TEXT between the charts markers of DOC; without them, right after bench.sh's end marker."""
    try:
        old = open(doc).read()
    except OSError:
        return
    block = CHARTS_BEGIN + "\n" + text.rstrip("\n") + "\n" + CHARTS_END
    if CHARTS_BEGIN in old and CHARTS_END in old:
        new = old[:old.index(CHARTS_BEGIN)] + block + old[old.index(CHARTS_END) + len(CHARTS_END):]
    else:
        end = "<!-- bench.sh:end -->"
        i = old.find(end)
        new = (old[:i + len(end)] + "\n\n" + block + old[i + len(end):]) if i >= 0 else old.rstrip("\n") + "\n\n" + block + "\n"
    open(doc, "w").write(new)


def draw(argv):
    o = {"results": None, "work": None, "charts": None, "doc": None, "fleet": None}
    i = 0
    while i < len(argv):
        k = argv[i][2:] if argv[i].startswith("--") else None
        if k not in o or i + 1 >= len(argv):
            raise SystemExit(f"plots.py draw: bad argument {argv[i]!r} (see --help)")
        o[k] = argv[i + 1]; i += 2
    for k in ("results", "work", "charts"):
        if not o[k]:
            raise SystemExit(f"plots.py draw: --{k} is required")
    res = json.load(open(o["results"]))
    os.makedirs(o["charts"], exist_ok=True)
    gpdir = os.path.join(o["work"], "charts")
    docdir = os.path.dirname(os.path.abspath(o["doc"])) if o["doc"] else os.getcwd()
    made, missing = [], []
    todo = [(n, lambda f=f: f(res, o["work"])) for n, f in CHARTS]
    if o["fleet"] and os.path.exists(o["fleet"]):
        todo.append(("fleet_size", lambda: fleet(o["fleet"])))
    for name, make in todo:
        c = make()
        path = os.path.join(o["charts"], name + ".svg")
        if c and chart(path, gpdir, c):
            made.append((name, c, os.path.relpath(os.path.abspath(path), docdir)))
            print(f"plots: {path}", file=sys.stderr)
        else:
            missing.append(name)
    meta = res["meta"]
    L = ["## Charts", "",
         f"Drawn by `bench/plots.py` (gnuplot, SVG) at the end of `{meta['command']}` from this run's data "
         "(each chart's subtitle names the command and commit); the figures are those of the tables below."]
    if meta.get("quick"):
        L.append("`--quick` draws the 50- and 200-proxy efficiency points only (no 1,000-proxy farm) "
                 "and the naive rotator as the only peer.")
    L.append("")
    for name, c, rel in made:
        L += [f"![{c['title']}]({rel})", "", c["caption"], ""]
    if missing:
        L.append("Not drawn (no data in this run): " + ", ".join(f"`{m}`" for m in missing) + ".")
    if o["doc"]:
        replace_block(o["doc"], "\n".join(L))
    return 0 if made else 1


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    cmd = {"draw": draw}.get(sys.argv[1])
    if not cmd:
        raise SystemExit(f"plots.py: unknown command {sys.argv[1]!r} (draw; see --help)")
    sys.exit(cmd(sys.argv[2:]))
