#!/bin/sh
# bench/start.sh - sandbox start side by side, and what an idle sandbox costs the host.
#
#   sudo bench/start.sh [RUNS]        (as root; or as a user for rootless figures)
#
# 1. start-to-exit of a trivial command, in one hyperfine run:
#      sbx run --rm shell -- true          (create, start, exec, exit, remove)
#      bwrap --unshare-all ... true        (namespaces only: no cgroup, no seccomp, no Landlock,
#                                           no persistent layers, no daemon)
#    twice: back to back (throughput, the worst case for sbx's prepared-ahead inits), and with
#    a 50 ms pause before each run (latency as a user sees it).
# 2. host memory per idle sandbox: N sandboxes started and idle; the growth of the sandboxes'
#    cgroup memory (root, cgroups available) and of the processes' proportional set size.
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-100}
need() { command -v "$1" >/dev/null 2>&1 || { [ "$(id -u)" -eq 0 ] && apt-get install -y -q "$2" >/dev/null; }; }
need hyperfine hyperfine
need bwrap bubblewrap
[ -x build/bin/sbx ] || make -s all
SBX=$PWD/build/bin/sbx
export SBX_HOME=$(mktemp -d /tmp/sbxbench.XXXXXX)
WS=$(mktemp -d /tmp/sbxbench-ws.XXXXXX)
trap '$SBX rm --all -f >/dev/null 2>&1 || true; $SBX daemon stop >/dev/null 2>&1 || true; rm -rf "$SBX_HOME" "$WS"' EXIT
cd "$WS"
$SBX daemon start >/dev/null
sleep 0.5
BWRAP='bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true'

echo "== start, back to back ($RUNS runs each)"
hyperfine -N -w 10 -r "$RUNS" --export-json "$SBX_HOME/b2b.json" "$SBX run --rm shell -- true" "$BWRAP" >/dev/null
echo "== start, 50 ms pause before each run ($RUNS runs each)"
hyperfine -N -w 10 -r "$RUNS" --prepare 'sleep 0.05' --export-json "$SBX_HOME/paused.json" \
	"$SBX run --rm shell -- true" "$BWRAP" >/dev/null
python3 - "$SBX_HOME/b2b.json" "$SBX_HOME/paused.json" <<'PY'
import json, sys
for label, path in zip(("back to back", "paused"), sys.argv[1:]):
    for r in json.load(open(path))["results"]:
        name = "sbx run --rm shell -- true" if "sbx" in r["command"] else "bwrap --unshare-all true"
        print(f"  {label:13} {name:28} median {r['median']*1e3:6.2f} ms  mean {r['mean']*1e3:6.2f} ms"
              f"  min {r['min']*1e3:6.2f} ms")
PY

N=10
echo "== host memory per idle sandbox ($N sandboxes)"
pss_total() {
	# Proportional set size of sbxd and every sbx init (spares included), in KiB.
	for p in $(pgrep -x sbxd) $(pgrep -x sbx-init) $(pgrep -x sbx-spare); do
		awk '/^Pss:/ {s += $2} END {print s + 0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0
	done | awk '{s += $1} END {print s + 0}'
}
before=$(pss_total)
for i in $(seq $N); do $SBX create --name idle$i "$WS" >/dev/null; $SBX start idle$i >/dev/null; done
sleep 1
after=$(pss_total)
cg=0
for i in $(seq $N); do
	m=$($SBX ls --json | python3 -c "import json,sys; print(next((s.get('memory_current',0) for s in json.load(sys.stdin) if s['name']=='idle$i'),0))")
	cg=$((cg + m))
done
echo "  processes (PSS): $(( (after - before) / N )) KiB per sandbox"
if [ "$cg" -gt 0 ]; then
	echo "  cgroup memory (incl. kernel memory for mounts, namespaces, tmpfs): $(( cg / N / 1024 )) KiB per sandbox"
fi
