#!/usr/bin/env bash
# hello_http with real clients (curl, http.client, Twisted's Agent): see
# tests/http_clients_test.py. Debian's python3, which has Twisted.
set -euo pipefail
root="${TEST_SRCDIR:?}/${TEST_WORKSPACE:-twist}"
exec /usr/bin/python3 "$root/tests/http_clients_test.py"
