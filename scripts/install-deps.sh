#!/usr/bin/env bash
# Installs the Debian bookworm packages quantkit needs to build, test and fuzz (run as root).
# Only packages that are missing are installed, so a second run is quick and needs no network.
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libeigen3-dev libcli11-dev libfmt-dev nlohmann-json3-dev libzip-dev
  zipcmp zipmerge ziptool  # libzip-dev's CMake package checks that these tools exist (Debian bookworm)
  libgtest-dev libgmock-dev libbenchmark-dev
  liburing-dev  # io_uring for the embedding row store's direct reads (a pread pool runs without it)
  clang libclang-rt-14-dev python3 python3-numpy
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all dependencies present" >&2
