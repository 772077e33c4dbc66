#!/usr/bin/env bash
# Runs every scenario of loadtest/run.sh briefly, on debug binaries, and checks from the JSON
# reports that the tool and the scenarios work end to end: nothing lost, duplicated or
# reordered, every connection made, every churn cycle completed. Latency and throughput are
# not judged here (debug binaries, a shared CI machine): docs/benchmarks.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export HERALD_LOADTEST_PROFILE=debug

run() {
  local name=$1
  shift
  echo "load smoke: $name"
  HERALD_LOADTEST_REPORT="$dir/$name.json" loadtest/run.sh "$@" >"$dir/$name.log" 2>&1 \
    || { cat "$dir/$name.log"; echo "load smoke: $name failed" >&2; exit 1; }
}

run fanout fanout --subscribers 50 --rates 20,50 --step-seconds 1
run light fanout --subscribers 50 --channels 10 --rates 100 --step-seconds 1
run cross-node cross-node --subscribers 50 --rates 20 --step-seconds 1
run idle idle --connections 300
run churn churn --rate 100 --seconds 1
run slow slow --subscribers 50 --rates 20 --step-seconds 1
run storm storm --clients 50 --missed 20
# Subscribers as Server-Sent Events streams.
run fanout-sse fanout --sse --subscribers 50 --rates 20,50 --step-seconds 1
run idle-sse idle --sse --connections 300
# The same over wss.
export HERALD_LOADTEST_TLS=1
run fanout-tls fanout --subscribers 50 --rates 20,50 --step-seconds 1
run idle-tls idle --connections 300
run churn-tls churn --rate 100 --seconds 1
unset HERALD_LOADTEST_TLS

python3 - "$dir" <<'PY'
import json, pathlib, sys
dir = pathlib.Path(sys.argv[1])
problems = []
for path in sorted(dir.glob("*.json")):
    report = json.loads(path.read_text())
    for step in report.get("steps", []):
        if not step["valid"]:
            problems.append(f"{path.name}: step {step['rate']}/s is not valid")
        evicted = report.get("stalled", 0) > 0
        bad = {k: step[k] for k in ("lost", "duplicates", "reordered") if step[k]}
        if bad and not evicted:
            problems.append(f"{path.name}: step {step['rate']}/s: {bad}")
    if report["scenario"] == "idle" and report["connections"] != 300:
        problems.append(f"{path.name}: {report['connections']} connections")
    if report["scenario"] == "churn" and (report["failed"] or not report["cycles"]):
        problems.append(f"{path.name}: {report['cycles']} cycles, {report['failed']} failed")
    if report["scenario"] == "storm" and (report["failed"] or report["recovered"] != 50):
        problems.append(f"{path.name}: {report['recovered']} recovered, {report['failed']} failed")
    if report["scenario"] == "storm" and not 1 <= report["redis_function_calls"] < 50:
        problems.append(f"{path.name}: {report['redis_function_calls']} Redis function calls")
names = sorted(p.name for p in dir.glob("*.json"))
print("load smoke reports:", ", ".join(names))
if len(names) < 13:
    problems.append(f"expected 13 reports, found {len(names)}")
sse = [n for n in names if json.loads((dir / n).read_text()).get("transport") == "sse"]
if len(sse) != 2:
    problems.append(f"expected 2 reports over event streams, found {sse}")
tls = [n for n in names if json.loads((dir / n).read_text()).get("tls")]
if len(tls) != 3:
    problems.append(f"expected 3 reports over TLS, found {tls}")
if problems:
    sys.exit("load smoke failed:\n  " + "\n  ".join(problems))
PY
