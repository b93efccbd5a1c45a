#!/usr/bin/env bash
# Tools the tests need beyond Python and Kafka, installed only when missing; `make test`
# runs this, so a fresh machine needs nothing by hand.
#   promtool: Debian's prometheus package (checks /metrics output, runs the alert unit tests)
#   helm:     built from the Go module proxy (renders the chart; a few minutes on a cold cache)
#   chromium: Debian's chromium package, which Playwright drives headless in the console's
#             browser tests (tests/desk/test_console_*.py); Playwright never downloads one
#   wrk:      Debian's wrk package, the HTTP load generator of bench/ingress.py (`make bench`)
set -euo pipefail
if ! command -v promtool >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if ! command -v helm >/dev/null; then
    GOBIN=/usr/local/bin GOFLAGS=-mod=mod go install helm.sh/helm/v3/cmd/helm@v3.22.0
fi
if ! command -v chromium >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! command -v wrk >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
