#!/usr/bin/env bash
# Start the real components that `gitops-ml build` and the e2e tests need (design §8), idempotently:
# Debian's dockerd, a distribution registry on 127.0.0.1:5000, and a Python base image made with
# mmdebstrap and `docker import`. Safe to run again: what already runs or exists is reused.
#
# Contract with the tests (tests/e2e, benchmarks/build.py):
#   GITOPS_ML_TEST_REGISTRY    registry host:port   (default 127.0.0.1:5000)
#   GITOPS_ML_TEST_BASE_IMAGE  base image reference (default gitops-ml-base:bookworm)
#   GITOPS_ML_CI_CACHE         where base.tar is kept between runs (default /var/cache/gitops-ml-ci)
set -euo pipefail

REGISTRY="${GITOPS_ML_TEST_REGISTRY:-127.0.0.1:5000}"
BASE_IMAGE="${GITOPS_ML_TEST_BASE_IMAGE:-gitops-ml-base:bookworm}"
CACHE="${GITOPS_ML_CI_CACHE:-/var/cache/gitops-ml-ci}"
STATE=/var/lib/gitops-ml-ci
mkdir -p "$CACHE" "$STATE"

t0=$(date +%s)
step() { echo "setup-docker: $* (+$(( $(date +%s) - t0 ))s)"; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
    local deadline=$(( $(date +%s) + $1 )) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        if (( $(date +%s) > deadline )); then
            echo "setup-docker: $what did not come up; see logs in $STATE" >&2
            return 1
        fi
        sleep 0.5
    done
}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if (( ${#missing[@]} )); then
    step "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    step "starting dockerd"
    setsid dockerd >"$STATE/dockerd.log" 2>&1 < /dev/null &
    wait_for 60 dockerd docker info
fi
step "dockerd ready ($(docker version --format '{{.Server.Version}}'))"

if ! curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then
    step "starting registry on $REGISTRY"
    mkdir -p "$STATE/registry"
    # the packaged /etc/docker/registry/config.yml demands htpasswd auth; tests need an open one
    cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
    setsid docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 < /dev/null &
    wait_for 30 registry curl -fsS "http://$REGISTRY/v2/"
fi
step "registry ready at http://$REGISTRY/v2/"

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    if [[ ! -s "$CACHE/base.tar" ]]; then
        step "making base.tar with mmdebstrap (about 30 s)"
        mmdebstrap --quiet --format=tar --variant=apt --include=python3,python3-venv bookworm "$CACHE/base.tar.part"
        mv "$CACHE/base.tar.part" "$CACHE/base.tar"
    fi
    step "importing $BASE_IMAGE"
    docker import --change 'CMD ["python3"]' "$CACHE/base.tar" "$BASE_IMAGE" >/dev/null
fi
step "base image $BASE_IMAGE ready"
echo "GITOPS_ML_TEST_REGISTRY=$REGISTRY"
echo "GITOPS_ML_TEST_BASE_IMAGE=$BASE_IMAGE"
