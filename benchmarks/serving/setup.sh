#!/usr/bin/env bash
# Build what benchmarks/serving/run.py needs outside the project venv: Debian's wrk and one venv per
# alternative server (bare Starlette baseline, KServe, MLflow, BentoML, Cog) under $BENCH_VENVS
# (default /tmp/gitops-ml-bench/venvs), same scikit-learn as the shared harness's model was pickled
# with, plus the MLflow-format copy of that model. Never writes into the shared harness folder.
# Usage: bash benchmarks/serving/setup.sh [base kserve mlflow bentoml cog tools]   (default: all)
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
for s in "${@:-base kserve mlflow bentoml cog tools}"; do
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
      tools)   one tools py-spy ;;   # profiling only (profile_server.py)
      *) echo "unknown venv $n" >&2; exit 2 ;;
    esac
  done
done
