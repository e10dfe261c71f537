#!/usr/bin/env bash
# Installs the Debian packages the build needs, once. Idempotent: when every
# package is already installed it does nothing and touches no network.
set -euo pipefail

packages=(
  bazel-bootstrap
  bazel-rules-java
  g++
  pkg-config
  libabsl-dev
  libgflags-dev
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  netcat-openbsd
  curl  # tests/http_clients_test.sh checks examples/hello_http with it
  python3
  python3-twisted
  python3-matplotlib  # bench/models.py draws its plots with it
  clang
  libfuzzer-14-dev
  nginx-light  # bench/http.py: the server hello_http is measured against
  wrk          # bench/http.py's load generator
  libssl-dev  # protocols/tls: OpenSSL 3 (issue 16)
  openssl  # the TLS tests make their certificates with the CLI and run s_client
  python3-openssl  # Twisted's TLS client in tls_test (twisted.internet.ssl)
  python3-service-identity  # ... which checks host names with it
  redis-server  # protocols/redis tests start their own (issue 17)
  redis-tools  # redis-cli: chat_redis_test reads the room's keys with it (issue 17)
  iproute2  # ip: chat_netns_test's veth pairs and bridge (issue 17)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "tools/setup.sh: installing ${missing[*]}" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
