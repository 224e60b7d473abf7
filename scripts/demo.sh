#!/usr/bin/env bash
# The main job on a repository: validate, render (the committed render must be current), verify
# every overlay with real Kustomize and the Kubernetes schemas, score the sample through a local
# server, and, when a Docker engine is reachable, build, push and run the model images.
set -euo pipefail
repo=${1:-examples/repo-layout}
port=${DEMO_PORT:-18080}
# bold step titles on a terminal only: no escape codes in CI logs, in a pipe, or under NO_COLOR
if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
# 2xx from a URL; Python rather than curl, which a fresh Debian does not have
http_ok() { python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" >/dev/null 2>&1; }

step "validate $repo"
gitops-ml validate "$repo"

step "render $repo --check (the committed render under deploy/ is up to date)"
gitops-ml render "$repo" --check

step "render --verify: kustomize build every overlay, validate every object (Kubernetes 1.30 and the shipped CRD schemas)"
gitops-ml render "$repo" --verify

for model in iris digits; do
  [ -d "$repo/models/$model" ] || continue
  step "serve $model locally and score its sample with gitops-ml call"
  log=$(mktemp)
  gitops-ml serve "$repo/models/$model" --env staging --port "$port" >"$log" 2>&1 &
  pid=$!
  ready=0
  for _ in $(seq 300); do
    if http_ok "http://127.0.0.1:$port/readyz"; then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$ready" != 1 ]; then cat "$log"; kill "$pid" 2>/dev/null || true; exit 1; fi
  gitops-ml call "http://127.0.0.1:$port" --data @"$repo/models/$model/sample.json"
  kill -TERM "$pid"; wait "$pid" || true
  echo "server log (last lines):"; tail -n 3 "$log"; rm -f "$log"
done

step "build, push and run the images"
base=${GITOPS_ML_TEST_BASE_IMAGE:-gitops-ml-base:bookworm}
registry=${GITOPS_ML_TEST_REGISTRY:-127.0.0.1:5000}
if docker info >/dev/null 2>&1 && docker image inspect "$base" >/dev/null 2>&1; then
  # a throw-away copy that points at the local registry and base image (this machine reaches no other)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp -r "$repo" "$work/repo"
  # a namespace per run: image tags name the gitops-ml runtime by its version, and a checkout of this
  # project changes the server without bumping it, so an older demo's image must not be reused
  sed -i "s|registry: .*|registry: $registry/demo-$(date +%s)|; s|baseImage: .*|baseImage: $base|" "$work/repo/gitops-ml.yaml"
  (
    cd "$work/repo"
    git init -q && git add -A && git -c user.name=demo -c user.email=demo@example.com commit -qm demo
    push=""
    http_ok "http://$registry/v2/" && push=--push
    gitops-ml build $push
    gitops-ml run-image iris --env staging
  )
else
  echo "SKIPPED: no Docker engine (or base image $base) is reachable; run 'make components' (root on Debian) to start one."
fi
printf '\n%sdemo finished%s\n' "$bold" "$plain"
