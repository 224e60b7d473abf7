#!/usr/bin/env bash
# Start the real components that `gitops-ml build` and the e2e tests need (design §8), idempotently:
# Debian's dockerd, a distribution registry on 127.0.0.1:5000, and a Python base image made with
# mmdebstrap and `docker import`. Safe to run again: what already runs or exists is reused.
#
# Contract with the tests (tests/e2e, benchmarks/build.py):
#   GITOPS_ML_TEST_REGISTRY    registry host:port   (default 127.0.0.1:5000)
#   GITOPS_ML_TEST_BASE_IMAGE  base image reference (default gitops-ml-base:bookworm)
#   GITOPS_ML_CI_CACHE         where base.tar is kept between runs (default /var/cache/gitops-ml-ci)
#   GITOPS_ML_APT_LOCK_TIMEOUT seconds to wait for another apt/dpkg to finish (default 900)
set -euo pipefail

REGISTRY="${GITOPS_ML_TEST_REGISTRY:-127.0.0.1:5000}"
BASE_IMAGE="${GITOPS_ML_TEST_BASE_IMAGE:-gitops-ml-base:bookworm}"
CACHE="${GITOPS_ML_CI_CACHE:-/var/cache/gitops-ml-ci}"
STATE=/var/lib/gitops-ml-ci
mkdir -p "$CACHE" "$STATE"

t0=$(date +%s)
step() { echo "setup-docker: $* (+$(( $(date +%s) - t0 ))s)"; }
since() { echo "$(( $(date +%s) - $1 )) s"; }  # wall-clock seconds since an earlier $(date +%s)

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

# A fresh machine often runs its own apt (cloud-init, unattended-upgrades) right after boot; apt-get
# fails at once on a held lock (`apt-get update` ignores DPkg::Lock::Timeout), so wait for the holder.
APT_LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)
APT_LOCK_TIMEOUT="${GITOPS_ML_APT_LOCK_TIMEOUT:-900}"

apt_lock_holder() {  # prints "PID LOCKFILE" for the first of APT_LOCKS that a process holds, else nothing
    local lock ino dev id
    for lock in "${APT_LOCKS[@]}"; do
        [[ -e $lock ]] || continue
        read -r ino dev < <(stat -c '%i %d' "$lock")
        id=$(printf '%02x:%02x:%s' $(( (dev >> 8) & 0xfff )) $(( (dev & 0xff) | ((dev >> 12) & 0xfff00) )) "$ino")
        # /proc/locks: "N: POSIX ADVISORY WRITE PID MAJ:MIN:INODE START END"; waiters carry a "->" first
        awk -v id="$id" -v lock="$lock" '{ sub(/ -> /, " ") } $6 == id && $5 > 0 { print $5, lock; exit }' /proc/locks \
            | grep . && return 0
    done
    return 0
}

wait_for_apt() {
    local started holder pid lock said=""
    started=$(date +%s)
    while holder=$(apt_lock_holder) && [[ -n $holder ]]; do
        read -r pid lock <<<"$holder"
        if [[ -z $said ]]; then
            echo "setup-docker: waiting for process $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-80)) to release $lock (up to $APT_LOCK_TIMEOUT s)"
            said=1
        fi
        if (( $(date +%s) - started > APT_LOCK_TIMEOUT )); then
            echo "setup-docker: $lock is still held by process $pid after $APT_LOCK_TIMEOUT s; let it finish (or stop it) and run again, or set GITOPS_ML_APT_LOCK_TIMEOUT" >&2
            exit 1
        fi
        sleep 2
    done
    [[ -z $said ]] || echo "setup-docker: apt lock free after $(since "$started")"
}

apt_get() {  # apt-get ARGS... once no one else holds apt's locks; DPkg::Lock::Timeout covers a race with a new holder
    wait_for_apt
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" "$@"
}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if (( ${#missing[@]} )); then
    step "installing ${missing[*]}"
    started=$(date +%s)
    apt_get update -qq
    apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    step "installed ${missing[*]} in $(since "$started")"
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
        # downloads and unpacks 114 Debian packages into a 210 MB tar: 51 s and 78 s measured on these
        # 2-core machines while other work ran; a slow mirror adds more. Kept in $CACHE for the next run.
        step "making base.tar with mmdebstrap (a minute or so; only the first run)"
        started=$(date +%s)
        mmdebstrap --quiet --format=tar --variant=apt --include=python3,python3-venv bookworm "$CACHE/base.tar.part"
        mv "$CACHE/base.tar.part" "$CACHE/base.tar"
        step "made base.tar in $(since "$started")"
    fi
    step "importing $BASE_IMAGE"
    started=$(date +%s)
    docker import --change 'CMD ["python3"]' "$CACHE/base.tar" "$BASE_IMAGE" >/dev/null
    step "imported $BASE_IMAGE in $(since "$started")"
fi
step "base image $BASE_IMAGE ready"
echo "GITOPS_ML_TEST_REGISTRY=$REGISTRY"
echo "GITOPS_ML_TEST_BASE_IMAGE=$BASE_IMAGE"
