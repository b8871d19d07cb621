#!/usr/bin/env bash
# One-shot GPU proof (issue #25): the CUDA + AMP trainer on every network, `device: auto`, bagged members in
# parallel and the 100K-event MIRAGE book over the visible GPUs, in at most 8 minutes on one GPU. Unattended:
#
#   bash benchmarks/gpu_check.sh                        # every step; report in benchmarks/results/gpu_check_<date>.md
#   bash benchmarks/gpu_check.sh --steps amp --budget-s 150
#   bash benchmarks/gpu_check.sh --no-install --dry-run # the plan only
#
# Arguments go to benchmarks/gpu_check.py (see --help), except --no-install, read here. The Python used:
#   1. $GEOMUSIC_PYTHON, when set;
#   2. .venv/bin/python, when .venv exists (no install step);
#   3. python3 with wheels from $GPU_CHECK_WHEELS (default .whl/) installed into a temporary folder, when that
#      folder exists (a machine without network: carry the wheels the image lacks, see benchmarks/README.md);
#   4. otherwise `make install` creates .venv (needs network; skipped with --no-install or
#      GPU_CHECK_NO_INSTALL=1, then python3 as it is).
# Exit code: gpu_check.py's (0 pass, 1 a check failed, 2 no GPU or missing packages, 3 out of time).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

install=1
[[ ${GPU_CHECK_NO_INSTALL:-0} == 1 ]] && install=0
args=()
for arg in "$@"; do
  if [[ $arg == --no-install ]]; then install=0; else args+=("$arg"); fi
done

wheels=${GPU_CHECK_WHEELS:-.whl}
if [[ -n ${GEOMUSIC_PYTHON:-} ]]; then
  py=$GEOMUSIC_PYTHON
elif [[ -x .venv/bin/python ]]; then
  py=.venv/bin/python
elif [[ -d $wheels ]] && compgen -G "$wheels/*.whl" >/dev/null; then
  site=${TMPDIR:-/tmp}/geomusic_gpu_check_site
  echo "gpu_check.sh: installing the wheels of $wheels into $site (no network needed)"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl \
    || { echo "gpu_check.sh: error: installing the wheels of $wheels failed" >&2; exit 2; }
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  py=python3
elif (( install )); then
  echo "gpu_check.sh: no .venv: running 'make install' (downloads torch and the extras; minutes)"
  if make install; then
    py=.venv/bin/python
  else
    echo "gpu_check.sh: warning: 'make install' failed (no network?); trying python3 as it is" >&2
    py=python3
  fi
else
  py=python3
fi

command -v "$py" >/dev/null 2>&1 || { echo "gpu_check.sh: error: no Python at '$py'" >&2; exit 2; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
echo "gpu_check.sh: $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
"$py" benchmarks/gpu_check.py ${args[@]+"${args[@]}"}
code=$?
if (( code != 0 )); then
  echo "gpu_check.sh: GPU CHECK DID NOT PASS (exit $code): see the report named above" >&2
fi
exit $code
