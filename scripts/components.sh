#!/usr/bin/env bash
# Start the real components the test suite needs (design §8), so that `make test` on a fresh Debian
# machine skips nothing: Docker engine, registry and base image (.ci/setup-docker.sh), Debian's
# Prometheus (server and promtool) and Chromium. Needs root on Debian; elsewhere it says what is
# missing, and the tests that need it skip with that reason (in CI, where CI=true, they fail).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 || ! -f /etc/debian_version ]]; then
    echo "components: not root on Debian; start Docker, a registry on 127.0.0.1:5000 and install prometheus and chromium yourself" >&2
    echo "components: (tests needing a missing component are skipped outside CI)" >&2
    exit 0
fi

apt_install() {  # apt_install PACKAGE...: waits for the machine's own apt/dpkg runs instead of failing
    local tries=0
    until apt-get -o DPkg::Lock::Timeout=600 update -qq; do
        (( ++tries > 60 )) && { echo "components: apt-get update kept failing" >&2; return 1; }
        echo "components: apt is busy (another apt or dpkg run?); waiting" >&2
        sleep 10
    done
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
command -v git >/dev/null || missing+=(git)
command -v node >/dev/null || missing+=(nodejs)  # runs the /docs page's script against a live server
if (( ${#missing[@]} )); then
    echo "components: installing ${missing[*]}"
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
fi
# Debian starts the packaged Prometheus as a service where it can; the tests run their own instances
bash .ci/setup-docker.sh
