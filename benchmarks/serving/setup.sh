#!/usr/bin/env bash
# Build what benchmarks/serving/run.py needs outside the project venv: Debian's wrk and one venv per
# alternative server (bare Starlette baseline, KServe, MLflow, BentoML, Cog) under $BENCH_VENVS
# (default /tmp/gitops-ml-bench/venvs), same scikit-learn as the shared harness's model was pickled
# with, plus the MLflow-format copy of that model. Never writes into the shared harness folder.
# Usage: bash benchmarks/serving/setup.sh [base kserve mlflow bentoml cog mlserver perf tools]   (default: all)
# `perf` is Triton's perf_analyzer (the perf-analyzer wheel, for protocols.py): its binary needs glibc 2.38,
# so on an older system (Debian bookworm has 2.36) Debian trixie's libc6 and libstdc++6 are fetched with
# apt-get download into $V/perf/runtime and a wrapper runs it with that loader; nothing is installed.
set -euo pipefail
V=${BENCH_VENVS:-/tmp/gitops-ml-bench/venvs}
HARNESS=${BENCH_HARNESS:-/work/shared/bench/serving}
SKLEARN=${BENCH_SKLEARN:-scikit-learn==1.9.1}
PY=${BENCH_PYTHON:-python3.11}
mkdir -p "$V"
if ! command -v wrk >/dev/null; then
  apt-get update && apt-get install -y wrk
fi
one() {
  local name=$1; shift
  if [ -x "$V/$name/bin/python" ] && [ -f "$V/$name/.done" ]; then echo "venv $name: present"; return; fi
  rm -rf "$V/$name"
  "$PY" -m venv "$V/$name"
  local model_deps=("$SKLEARN" joblib)
  [ "$name" = tools ] && model_deps=()
  "$V/$name/bin/pip" install -q --disable-pip-version-check "${model_deps[@]}" "$@"
  touch "$V/$name/.done"
  echo "venv $name: built"
}
perf() {
  local P="$V/perf"
  if [ -x "$P/perf_analyzer" ] && [ -f "$P/.done" ]; then echo "perf_analyzer: present"; return; fi
  rm -rf "$P"; mkdir -p "$P"
  "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform "manylinux_2_38_$(uname -m)" -d "$P" "perf-analyzer${PERF_ANALYZER_VERSION:+==$PERF_ANALYZER_VERSION}"
  "$PY" -m zipfile -e "$P"/perf_analyzer-*.whl "$P/wheel"
  local bin="$P/wheel/perf_analyzer/bin/perf_analyzer"
  chmod +x "$bin"
  local glibc; glibc=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
  if [ "$(printf '%s\n2.38\n' "$glibc" | sort -V | head -1)" = "2.38" ]; then
    printf '#!/bin/sh\nexec %s "$@"\n' "$bin" > "$P/perf_analyzer"
  else
    local A="$P/apt"
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$P/debs" "$P/runtime"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$A/sources.list"
    local O=(-o "Dir::Etc::sourcelist=$A/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$A/lists"
             -o "Dir::Cache=$A/cache" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
    apt-get -q "${O[@]}" update >/dev/null
    (cd "$P/debs" && apt-get -q "${O[@]}" download libc6 libstdc++6 libgcc-s1 >/dev/null)
    for deb in "$P"/debs/*.deb; do dpkg-deb -x "$deb" "$P/runtime"; done
    local lib="$P/runtime/usr/lib/$(uname -m)-linux-gnu"
    printf '#!/bin/sh\nexec %s --library-path %s:/lib/%s-linux-gnu %s "$@"\n' "$lib/ld-linux-x86-64.so.2" "$lib" "$(uname -m)" "$bin" > "$P/perf_analyzer"
  fi
  chmod +x "$P/perf_analyzer"
  "$P/perf_analyzer" --version >/dev/null 2>&1 || "$P/perf_analyzer" 2>&1 | grep -q "service-kind"
  touch "$P/.done"
  echo "perf_analyzer: $P/perf_analyzer"
}
for s in "${@:-base kserve mlflow bentoml cog mlserver perf tools}"; do
  for n in $s; do
    case $n in
      base)    one base starlette "uvicorn[standard]" ;;
      kserve)  one kserve kserve ;;
      mlflow)  one mlflow mlflow
               if [ ! -d "${V%/venvs}/mlflow_model" ]; then
                 MLFLOW_DISABLE_TELEMETRY=true "$V/mlflow/bin/python" \
                   "$HARNESS/servers/mlflow_save.py" "${V%/venvs}/mlflow_model"
               fi ;;
      bentoml) one bentoml "bentoml>=1.4,<1.5" ;;
      cog)     one cog cog ;;
      mlserver) one mlserver mlserver mlserver-sklearn ;;   # protocols.py: Seldon's OIP server
      perf)    perf ;;                # protocols.py: Triton's load generator
      tools)   one tools py-spy ;;   # profiling only (profile_server.py)
      *) echo "unknown venv $n" >&2; exit 2 ;;
    esac
  done
done
