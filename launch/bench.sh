#!/usr/bin/env bash
# The training benchmark suite: dml's trainer (build/dml_bench_train, the same Trainer and flags as
# dist_train) against itself and against a PyTorch Python trainer of the same step
# (launch/torch_trainer.py, Debian's python3-torch), then the loader, the MPI all-reduce and a scaling
# projection. Prints one table at the end and writes <out>/bench.json (every raw result in <out>/json/,
# every log in <out>/logs/). Builds nothing: needs build/dml_bench_train and build/dml_prepare.
#
#   launch/bench.sh [--quick] [--out DIR] [--rounds N] [--summary-only]
#   (on the shared machine: dml-locked bash launch/bench.sh; --summary-only reprints the table from <out>/json)
#
#  (a) resnet18_v1, small stem, 28 px Fashion-MNIST, batch 50 = 10 classes x 5, 2 threads: dml fp32,
#      dml bf16 + channels-last, torch fp32, torch bf16 + channels-last, and (b) dml fp32 with 2 ranks x
#      1 thread at batch 25 per rank (the same global batch of 50: world-size invariant batches), run in
#      that order once per round, --rounds times (default 4: A B C D E A B C D E ...): ratios are taken
#      within a round, then the median over rounds, so the machine's drift hits every contender alike.
#  (c) resnet50_v1 (ImageNet stem) at 224 px on synthetic 256 px shards, batch 10 = 2 x 5: phase
#      breakdown in fp32 and bf16 + channels-last, with the torch trainer beside each.
#  (d) loader images/s per worker count: 28 px (preloaded) and 224 px (preloaded, and read from the
#      HDF5 file with --preload-max-mb 0).
#  (e) MPI all-reduce latency and bus bandwidth, 2 ranks, 4 KiB .. 64 MiB.
#  (f) scaling projection for 8, 64, 512 GPUs from (c)'s measured compute split (dml_bench_train
#      --bench-mode project), plus the loader projected per H200 rank.
# Timing of dml's trainer: see src/app/dml_bench_train.cpp (warm-up excluded by difference of two
# trainers; the final evaluation and checkpoint cancel). torch_trainer.py times its steps after
# --warmup; it gets warm-up + 1 steps so both sides start timing after as many steps in the process.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- change these for your system ------------------------------------------------------------
BUILD_DIR=${DML_BUILD_DIR:-build}
DATA=${DATA:-data/fashion-mnist}                   # 28 px shards (launch/prepare_fashion_mnist.sh)
CACHE=${DML_BENCH_CACHE:-runs/bench_cache}         # synthetic 224 px shards are made here once
PYTHON=${PYTHON:-/usr/bin/python3}                 # Debian's, with python3-torch, numpy, h5py, PIL
THREADS=${THREADS:-2}                              # threads of the 1-rank runs (2 ranks x THREADS/2)
GPU_IMAGES_PER_SEC=${GPU_IMAGES_PER_SEC:-2500}     # assumed resnet50_v1 224 px bf16 training rate of one H200
LOADER_CORES_PER_GPU=${LOADER_CORES_PER_GPU:-8}    # assumed loader cores per GPU on an 8 x H200 node
NVLINK_BUSBW=${NVLINK_BUSBW:-150}                  # GB/s, NCCL ring all-reduce within a node
IB_BUSBW=${IB_BUSBW:-25}                           # GB/s, across nodes (200 Gb/s per GPU)
# -----------------------------------------------------------------------------------------------
OUT=runs/bench
ROUNDS=4
QUICK=0
SUMMARY_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT=${2:?--out needs a directory}; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --summary-only) SUMMARY_ONLY=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  STEPS=4; WARMUP=1; R50_STEPS=2; R50_WARMUP=1; ROUNDS=1; LOADER_SECONDS=0.5; AR_FACTOR=4
else
  STEPS=10; WARMUP=1; R50_STEPS=5; R50_WARMUP=1; LOADER_SECONDS=1.5; AR_FACTOR=2
fi

BENCH=$BUILD_DIR/dml_bench_train
for tool in "$BENCH" "$BUILD_DIR/dml_prepare"; do
  [ -x "$tool" ] || { echo "bench.sh: $tool is missing; build it first: cmake --build $BUILD_DIR --target dml_bench_train dml_prepare" >&2; exit 1; }
done
[ -f "$DATA/train-00000-of-00001.h5" ] || { echo "bench.sh: no shards in $DATA (run launch/prepare_fashion_mnist.sh)" >&2; exit 1; }
TORCH=launch/torch_trainer.py
HAVE_TORCH=1
if [ ! -f "$TORCH" ] || ! "$PYTHON" -c 'import torch, h5py, numpy' 2>/dev/null; then
  HAVE_TORCH=0
  echo "bench.sh: $TORCH or python3-torch/h5py missing: the PyTorch comparison is skipped" >&2
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)

if [ "$SUMMARY_ONLY" = 1 ]; then
  [ -d "$OUT/json" ] || { echo "bench.sh: no $OUT/json to summarise" >&2; exit 1; }
  ROUNDS=$(ls "$OUT/json" | sed -n 's/^r\([0-9]*\)_dml_fp32_1x2\.json$/\1/p' | sort -n | tail -1)
  TOTAL=$(cat "$OUT/json/.total_seconds" 2>/dev/null || echo 0)
else
rm -rf "$OUT/json" "$OUT/logs"
mkdir -p "$OUT/json" "$OUT/logs" "$CACHE"
START=$(date +%s)
note() { printf '[bench %4ds] %s\n' $(( $(date +%s) - START )) "$*"; }

# ---- synthetic 224 px shards, made once -------------------------------------------------------
SYNTH=$CACHE/synthetic-256px
if [ ! -f "$SYNTH/shards/train-00000-of-00001.h5" ]; then
  note "making synthetic shards: 32 classes x 16 random 256x256 JPEGs -> $SYNTH/shards"
  rm -rf "$SYNTH"
  "$PYTHON" - "$SYNTH/images" <<'EOF'
import os, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
rng = np.random.default_rng(0)
for c in range(32):
    d = os.path.join(out, "class_%03d" % c)
    os.makedirs(d, exist_ok=True)
    base = rng.uniform(0, 255, (8, 8, 3))  # a class colour layout, blurred up, plus pixel noise
    for i in range(16):
        small = np.clip(base + rng.normal(0, 40, (8, 8, 3)), 0, 255).astype(np.uint8)
        img = np.asarray(Image.fromarray(small).resize((256, 256), Image.BILINEAR), dtype=np.float32)
        img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(d, "%04d.jpg" % i), quality=90)
EOF
  "$BUILD_DIR/dml_prepare" --source folder --input "$SYNTH/images" --output "$SYNTH/shards" --resize 256 \
    --threads "$(nproc)" >"$OUT/logs/prepare_synthetic.log" 2>&1
fi
SYNTH_SHARDS=$SYNTH/shards

# ---- runners ------------------------------------------------------------------------------------
R18=(--data-path "$DATA" --model resnet18_v1 --small-input-stem --crop-size 28 --batch-k 5 --embed-dim 128
     --max-test-images 100 --recall-k 1 --no-progress)
R50=(--data-path "$SYNTH_SHARDS" --model resnet50_v1 --crop-size 224 --batch-size 10 --batch-k 5 --embed-dim 128
     --max-test-images 10 --recall-k 1 --no-progress)
T18=(--data-path "$DATA" --model resnet18_v1 --small-input-stem --crop-size 28 --batch-size 50 --batch-k 5
     --embed-dim 128 --threads "$THREADS" --time-phases)
T50=(--data-path "$SYNTH_SHARDS" --model resnet50_v1 --no-small-input-stem --crop-size 224 --batch-size 10
     --batch-k 5 --embed-dim 128 --threads "$THREADS" --time-phases)
BF16=(--precision bf16 --channels-last)

RATE='import json, sys
j = json.load(open(sys.argv[1]))
if "images_per_sec" in j: print("%.1f images/s" % j["images_per_sec"])
elif j.get("mode") == "loader": print("%.0f images/s with 1 worker" % j["images_per_sec_one_worker"])
elif j.get("mode") == "allreduce": print("%.2f GB/s busbw at %d B" % (j["results"][-1]["busbw_gbs"], j["results"][-1]["bytes"]))
else: print("done")'
rate() { "$PYTHON" -c "$RATE" "$1" 2>/dev/null || echo "?"; }

# dml NAME [mpirun] FLAGS...: one dml_bench_train run, JSON in $OUT/json/NAME.json
dml() {
  local name=$1; shift
  local launcher=()
  if [ "$1" = mpirun ]; then launcher=("${MPIRUN[@]}"); shift; fi
  local t0; t0=$(date +%s)
  if "${launcher[@]}" "$BENCH" --bench-label "$name" --bench-json "$OUT/json/$name.json" "$@" \
      >"$OUT/logs/$name.log" 2>&1; then
    note "$name: $(rate "$OUT/json/$name.json") ($(( $(date +%s) - t0 )) s)"
  else
    note "$name: FAILED (see $OUT/logs/$name.log)"; tail -5 "$OUT/logs/$name.log" >&2
  fi
}
torch_run() {
  local name=$1; shift
  [ "$HAVE_TORCH" = 1 ] || return 0
  local t0; t0=$(date +%s)
  if /usr/bin/time -f %M -o "$OUT/json/$name.maxrss" "$PYTHON" "$TORCH" --json "$OUT/json/$name.json" "$@" \
      >"$OUT/logs/$name.log" 2>&1; then
    note "$name: $(rate "$OUT/json/$name.json") ($(( $(date +%s) - t0 )) s)"
  else
    note "$name: FAILED (see $OUT/logs/$name.log)"; tail -5 "$OUT/logs/$name.log" >&2
  fi
}

# ---- (a) + (b): alternating rounds --------------------------------------------------------------
for r in $(seq 1 "$ROUNDS"); do
  note "round $r/$ROUNDS: resnet18_v1 28 px, batch 50/5"
  dml "r${r}_dml_fp32_1x2" "${R18[@]}" --batch-size 50 --threads "$THREADS" \
    --bench-steps "$STEPS" --bench-warmup "$WARMUP"
  dml "r${r}_dml_bf16cl_1x2" "${R18[@]}" --batch-size 50 --threads "$THREADS" "${BF16[@]}" \
    --bench-steps "$STEPS" --bench-warmup "$WARMUP"
  torch_run "r${r}_torch_fp32" "${T18[@]}" --steps "$STEPS" --warmup $((WARMUP + 1))
  torch_run "r${r}_torch_bf16cl" "${T18[@]}" "${BF16[@]}" --steps "$STEPS" --warmup $((WARMUP + 1))
  dml "r${r}_dml_fp32_2x1" mpirun "${R18[@]}" --batch-size 25 --threads $((THREADS / 2 > 0 ? THREADS / 2 : 1)) \
    --backend mpi --bench-steps "$STEPS" --bench-warmup "$WARMUP"
done

# ---- (c) resnet50_v1 at 224 px -----------------------------------------------------------------
note "resnet50_v1 224 px, batch 10/5"
dml r50_dml_fp32 "${R50[@]}" --threads "$THREADS" --bench-steps "$R50_STEPS" --bench-warmup "$R50_WARMUP"
dml r50_dml_bf16cl "${R50[@]}" --threads "$THREADS" "${BF16[@]}" --bench-steps "$R50_STEPS" --bench-warmup "$R50_WARMUP"
torch_run r50_torch_fp32 "${T50[@]}" --steps "$R50_STEPS" --warmup $((R50_WARMUP + 1))
torch_run r50_torch_bf16cl "${T50[@]}" "${BF16[@]}" --steps "$R50_STEPS" --warmup $((R50_WARMUP + 1))

# ---- (d) loader -------------------------------------------------------------------------------
note "loader images/s per worker count"
LOADER=(--bench-mode loader --bench-workers 1,2,4 --bench-min-seconds "$LOADER_SECONDS" --threads 1 --batch-k 5)
dml loader_28px "${LOADER[@]}" --data-path "$DATA" --crop-size 28 --batch-size 50 --model resnet18_v1 --small-input-stem
dml loader_224px_preloaded "${LOADER[@]}" --data-path "$SYNTH_SHARDS" --crop-size 224 --batch-size 70 --model resnet50_v1
dml loader_224px_file "${LOADER[@]}" --data-path "$SYNTH_SHARDS" --crop-size 224 --batch-size 70 --model resnet50_v1 \
  --preload-max-mb 0

# ---- (e) all-reduce ---------------------------------------------------------------------------
note "MPI all-reduce, 2 ranks"
dml allreduce_mpi_2 mpirun --bench-mode allreduce --backend mpi --threads 1 --data-path "$DATA" \
  --bench-min-bytes 4096 --bench-max-bytes $((64 << 20)) --bench-size-factor "$AR_FACTOR"

# ---- (f) projection ---------------------------------------------------------------------------
note "scaling projection"
SPLIT='import json, sys
try:
    j = json.load(open(sys.argv[1])); p, b = j["phase_ms_per_step"], j["global_batch"]
    print(p["forward"] / b, p["backward"] / b, p["optimizer"])
except Exception:
    print("0 0 0")'
read -r FWD BWD OPT < <("$PYTHON" -c "$SPLIT" "$OUT/json/r50_dml_bf16cl.json")
dml project_resnet50 --bench-mode project --model resnet50_v1 --crop-size 224 --batch-size 70 --batch-k 5 \
  --embed-dim 128 --threads "$THREADS" --data-path "$SYNTH_SHARDS" --bench-gpus 8,64,512 --bench-gpus-per-node 8 \
  --bench-nvlink-busbw "$NVLINK_BUSBW" --bench-ib-busbw "$IB_BUSBW" --bench-gpu-images-per-sec "$GPU_IMAGES_PER_SEC" \
  --bench-forward-ms-per-image "$FWD" --bench-backward-ms-per-image "$BWD" --bench-optimizer-ms "$OPT"

TOTAL=$(( $(date +%s) - START ))
echo "$TOTAL" >"$OUT/json/.total_seconds"
fi  # SUMMARY_ONLY

# ---- the table and bench.json -----------------------------------------------------------------
"$PYTHON" - "$OUT" "$ROUNDS" "$TOTAL" "$QUICK" "$LOADER_CORES_PER_GPU" "$THREADS" <<'EOF'
import glob, json, os, platform, sys, time
out, rounds, total, quick, loader_cores, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5]), int(sys.argv[6])
res = {}
for path in sorted(glob.glob(os.path.join(out, "json", "*.json"))):
    try:
        res[os.path.basename(path)[:-5]] = json.load(open(path))
    except Exception as e:  # a failed run leaves no or a partial file
        print("bench: cannot read %s: %s" % (path, e))
for name, j in res.items():  # torch runs: peak RSS from /usr/bin/time (kB)
    rss = os.path.join(out, "json", name + ".maxrss")
    if "peak_rss_mb" not in j and os.path.exists(rss):
        try:
            j["peak_rss_mb"] = j["peak_rss_mb_max_rank"] = int(open(rss).read().split()[-1]) / 1024.0
        except Exception:
            pass
def ips(name):
    return res.get(name, {}).get("images_per_sec")
def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])
def f(x, fmt="%.1f"):
    return "-" if x is None else fmt % x
lines = []
def p(s=""):
    lines.append(s)

summary = {"rounds": rounds, "quick": quick, "total_seconds": total, "host": platform.node(),
           "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
p("=" * 100)
p("dml training benchmark  %s  (%s, %d cores, %d round(s)%s, %d s total)" % (
    summary["date"], platform.processor() or platform.machine(), os.cpu_count(), rounds, ", --quick" if quick else "", total))
p("=" * 100)

# (a) + (b)
contenders = [("dml_fp32_1x2", "dml fp32, 1 rank x %d threads" % threads),
              ("dml_bf16cl_1x2", "dml bf16 + channels-last, 1 x %d" % threads),
              ("torch_fp32", "torch fp32, %d threads" % threads),
              ("torch_bf16cl", "torch bf16 + channels-last, %d threads" % threads),
              ("dml_fp32_2x1", "dml fp32, 2 ranks x %d thread (batch 25 each)" % max(1, threads // 2))]
p("\n(a, b) resnet18_v1 small stem, 28 px Fashion-MNIST, global batch 50 = 10 classes x 5, images/s")
p("  %-46s" % "contender" + "".join("%8s" % ("r%d" % r) for r in range(1, rounds + 1)) + "%9s %8s %12s" % ("median", "mean", "peak RSS MB"))
table_a = {}
for key, label in contenders:
    vals = [ips("r%d_%s" % (r, key)) for r in range(1, rounds + 1)]
    rss = [res.get("r%d_%s" % (r, key), {}).get("peak_rss_mb_max_rank", res.get("r%d_%s" % (r, key), {}).get("peak_rss_mb")) for r in range(1, rounds + 1)]
    table_a[key] = {"images_per_sec": vals, "median": median(vals), "mean": mean(vals)}
    p("  %-46s" % label + "".join("%8s" % f(v) for v in vals) + "%9s %8s %12s" % (f(median(vals)), f(mean(vals)), f(mean(rss), "%.0f")))
def ratio(a, b):
    per = []
    for r in range(1, rounds + 1):
        x, y = ips("r%d_%s" % (r, a)), ips("r%d_%s" % (r, b))
        per.append(x / y if x and y else None)
    return per, median(per), mean(per)
ratios = {}
p("\n  %-46s" % "ratios (within each round)" + "".join("%8s" % ("r%d" % r) for r in range(1, rounds + 1)) + "%9s %8s  %s" % ("median", "mean", "target"))
for name, a, b, target in [("dml bf16+CL / dml fp32", "dml_bf16cl_1x2", "dml_fp32_1x2", ">= 1.8"),
                           ("dml fp32 / torch fp32", "dml_fp32_1x2", "torch_fp32", ">= 1.0"),
                           ("dml bf16+CL / torch bf16+CL", "dml_bf16cl_1x2", "torch_bf16cl", ">= 1.0"),
                           ("dml 2 ranks x 1 / 1 rank x 2 (fp32)", "dml_fp32_2x1", "dml_fp32_1x2", "README: 0.87")]:
    per, md, m = ratio(a, b)
    ratios[name] = {"per_round": per, "median": md, "mean": m, "target": target}
    p("  %-46s" % name + "".join("%8s" % f(v, "%.3f") for v in per) + "%9s %8s  %s" % (f(md, "%.3f"), f(m, "%.3f"), target))

# (c) phases
def phases(name):
    """ms per step of each phase and of the step; "rK_..." names are averaged over the rounds."""
    runs = [res[n] for n in (["r%d_%s" % (r, name[3:]) for r in range(1, rounds + 1)] if name.startswith("rK_") else [name]) if n in res]
    if not runs:
        return {}, None
    ph = {}
    for k in runs[0].get("phase_ms_per_step", {}):
        ph[k] = mean([j.get("phase_ms_per_step", {}).get(k) for j in runs])
    return ph, mean([j.get("ms_per_step") for j in runs])
def col_ips(name):
    if name.startswith("rK_"):
        return mean([ips("r%d_%s" % (r, name[3:])) for r in range(1, rounds + 1)])
    return ips(name)
def col_rss(name):
    if name.startswith("rK_"):
        return mean([res.get("r%d_%s" % (r, name[3:]), {}).get("peak_rss_mb_max_rank") for r in range(1, rounds + 1)])
    return res.get(name, {}).get("peak_rss_mb_max_rank")
cols = [("rK_dml_fp32_1x2", "r18 fp32"), ("rK_dml_bf16cl_1x2", "r18 bf16CL"), ("rK_torch_fp32", "torch r18fp"),
        ("rK_torch_bf16cl", "torch r18bf"), ("rK_dml_fp32_2x1", "r18 fp32 2x1"), ("r50_dml_fp32", "r50 fp32"),
        ("r50_dml_bf16cl", "r50 bf16CL"), ("r50_torch_fp32", "torch r50fp"), ("r50_torch_bf16cl", "torch r50bf")]
cols = [(k, l) for k, l in cols if phases(k)[1] is not None]
names = ["data_wait", "forward", "gather", "sampling_loss", "backward", "allreduce", "finite_check", "optimizer", "log", "other"]
p("\n(c) step phases, ms per step (% of the step); r18 columns: mean over the rounds -- dml: --time-phases of the real step, rank 0;")
p("    torch: torch_trainer.py --time-phases (no gather/allreduce/finite_check; zero_grad falls in no phase on either side: dml 'other')")
p("    r18 = resnet18_v1 small stem 28 px batch 50 (2x1: 25 per rank); r50 = resnet50_v1 224 px batch 10 (synthetic 256 px shards)")
p("  %-14s" % "phase" + "".join("%17s" % l for _, l in cols))
for n in names:
    row = []
    present = False
    for k, _ in cols:
        ph, tot = phases(k)
        if n in ph:
            present = True
            row.append("%8.1f (%4.1f%%)" % (ph[n], 100 * ph[n] / tot if tot else 0))
        else:
            row.append("-")
    if present:
        p("  %-14s" % n + "".join("%17s" % x for x in row))
p("  %-14s" % "total" + "".join("%17s" % f(phases(k)[1]) for k, _ in cols))
p("  %-14s" % "images/s" + "".join("%17s" % f(col_ips(k)) for k, _ in cols))
p("  %-14s" % "peak RSS MB" + "".join("%17s" % f(col_rss(k), "%.0f") for k, _ in cols))
r50 = {}
for prec in ("fp32", "bf16cl"):
    d, t = ips("r50_dml_" + prec), ips("r50_torch_" + prec)
    r50[prec] = {"dml": d, "torch": t, "dml_over_torch": d / t if d and t else None}
p("  resnet50_v1 224 px: dml/torch fp32 %s, bf16+CL %s; dml bf16+CL / fp32 %s (one run each)" % (
    f(r50["fp32"]["dml_over_torch"], "%.3f"), f(r50["bf16cl"]["dml_over_torch"], "%.3f"),
    f(ips("r50_dml_bf16cl") / ips("r50_dml_fp32") if ips("r50_dml_bf16cl") and ips("r50_dml_fp32") else None, "%.3f")))
if "r1_dml_fp32_1x2" in res:
    j = res["r1_dml_fp32_1x2"]
    p("  peak RSS: dml = the benchmark process (3 trainers in turn, max over ranks); torch = /usr/bin/time's maximum RSS")
    p("  gradient buckets resnet18_v1: %s MiB; resnet50_v1: %s MiB" % (
        ", ".join("%.2f" % (b / 2**20) for b in j.get("bucket_bytes", [])),
        ", ".join("%.2f" % (b / 2**20) for b in res.get("r50_dml_fp32", {}).get("bucket_bytes", []))))

# (d) loader
p("\n(d) loader (TrainLoader.next() alone, flip + random crop into uint8 batches), images/s")
p("  %-30s %10s %10s %10s   %s" % ("data", "1 worker", "2 workers", "4 workers", "projected per H200 rank"))
loader_proj = {}
for key, label in [("loader_28px", "28 px, preloaded"), ("loader_224px_preloaded", "224 px of 256, preloaded"),
                   ("loader_224px_file", "224 px of 256, from the file")]:
    j = res.get(key)
    if not j:
        continue
    by = {r["workers"]: r["images_per_sec"] for r in j["results"]}
    one, two = by.get(1), by.get(2)
    eff = min(1.0, two / (2 * one)) if one and two else 1.0
    proj = one * loader_cores * eff if one else None
    loader_proj[key] = {"per_core": one, "two_worker_efficiency": eff, "projected_per_rank": proj}
    p("  %-30s %10s %10s %10s   %s" % (label, f(by.get(1), "%.0f"), f(by.get(2), "%.0f"), f(by.get(4), "%.0f"),
                                       "%s (%d cores x %.0f/core x %.2f 2-worker efficiency)" % (f(proj, "%.0f"), loader_cores, one or 0, eff)))
p("  assumption: %d loader cores per GPU (an 8 x H200 node has ~%d+ cores); 4 workers on %d cores is oversubscribed;" % (loader_cores, 8 * loader_cores, os.cpu_count()))
p("  'from the file': --preload-max-mb 0, every image read through HDF5 (one process-wide lock), file in the page cache")
p("  target: > 3,000 images/s per rank from shards at 224 px")

# (e) allreduce
j = res.get("allreduce_mpi_2")
if j:
    p("\n(e) MPI all-reduce, %d ranks on this machine (busbw = algbw x 2(n-1)/n = x %.2f); bucket path = start_all_reduce_sum + wait" % (j["ranks"], j["busbw_factor"]))
    p("  %12s %12s %12s %16s %18s" % ("bytes", "us", "busbw GB/s", "us (blocking)", "busbw GB/s (blk)"))
    for r in j["results"]:
        p("  %12d %12.1f %12.3f %16.1f %18.3f" % (r["bytes"], r["us"], r["busbw_gbs"], r["us_blocking"], r["busbw_gbs_blocking"]))

# (f) projection
j = res.get("project_resnet50")
if j:
    a = j["assumptions"]
    p("\n(f) scaling projection, %s %d px, %d images per GPU, embed %d, weak scaling" % (j["model"], j["crop_size"], j["images_per_gpu"], j["embed_dim"]))
    p("  assumptions: %d GPUs/node; NCCL ring busbw %.0f GB/s NVLink (in a node), %.0f GB/s InfiniBand (across nodes);" % (
        a["gpus_per_node"], a["nvlink_busbw_gbs"], a["ib_busbw_gbs"]))
    p("    latency %.0f / %.0f us per collective; t = latency + bytes x 2(n-1)/n / busbw; buckets in order, each ready when" % (a["latency_intra_us"], a["latency_inter_us"]))
    p("    backward has produced its share of the gradient bytes; exposed = all-reduce time past the end of backward;")
    p("    gather = all-gather of global x embed x 4 B + its reduce-scatter in backward, not overlapped;")
    p("    compute: CPU = measured here (r50 bf16+CL: fwd %.1f + bwd %.1f ms/image, optimizer %.1f ms) = %.0f ms/step;" % (
        a["forward_ms_per_image"], a["backward_ms_per_image"], a["optimizer_ms"], j["cpu_compute_ms"]))
    p("    GPU = assumed %.0f images/s per H200 = %.1f ms/step, same split; sampling + loss timed on this CPU, scaled by" % (a["gpu_images_per_sec"], j["gpu_compute_ms"]))
    p("    the same CPU->GPU factor for the GPU rows; efficiency = t(1 GPU, no communication) / t(n GPUs)")
    p("  gradients: %d parameters, %.1f MiB in %d buckets (%s MiB)" % (j["parameters"], j["parameter_bytes"] / 2**20, len(j["bucket_bytes"]),
                                                                     ", ".join("%.1f" % (b / 2**20) for b in j["bucket_bytes"])))
    p("  %5s %6s %8s %10s %12s %10s | %5s %9s %9s %8s %8s %8s %9s %7s" % ("GPUs", "nodes", "global", "gather MB", "D entries/GPU",
        "sampl CPU", "basis", "compute", "allreduce", "exposed", "gather", "sampling", "step ms", "eff."))
    for r in j["rows"]:
        for i, basis in enumerate(("cpu", "gpu")):
            q = r[basis]
            head = "%5d %6d %8d %10.2f %12d %10.2f" % (r["gpus"], r["nodes"], r["global_batch"], r["gather_bytes"] / 1e6,
                    r["distance_entries_per_gpu"], r["sampling_ms_cpu"])
            if i == 1:
                head = " " * len(head)
            p("  %s | %5s %9.2f %9.2f %8.2f %8.2f %8.2f %9.1f %6.1f%%" % (head, basis.upper(), q["compute_ms"], q["allreduce_ms"],
                q["exposed_allreduce_ms"], q["gather_ms"], q["sampling_ms"], q["step_ms"], 100 * q["efficiency"]))
    p("  the gather grows as global batch x %d x 4 B per step on every GPU and the sampling as %d anchors x global batch" % (j["embed_dim"], j["images_per_gpu"]))
    p("  distances per GPU (O(local x global)); the all-reduce per GPU stays ~2 x %.0f MiB whatever n." % (j["parameter_bytes"] / 2**20))
p("\nraw results: %s/json/*.json, logs: %s/logs/" % (out, out))
text = "\n".join(lines)
print(text)
summary.update({"resnet18_images_per_sec": table_a, "ratios": ratios, "resnet50": r50, "loader_projection": loader_proj,
                "loader_cores_per_gpu": loader_cores, "results": res, "table": text})
with open(os.path.join(out, "bench.json"), "w") as fh:
    json.dump(summary, fh, indent=1)
    fh.write("\n")
print("wrote %s" % os.path.join(out, "bench.json"))
EOF
