#!/usr/bin/env bash
# The main job on a repository: validate, render, verify, then score the sample through a local
# server (and build, push and run the images when a Docker engine is reachable).
set -euo pipefail
repo=${1:-examples/repo-layout}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "validate $repo"
gitops-ml validate "$repo"
