# One set of entry points for people and CI; each target calls a script in scripts/.
.PHONY: help up up-bench test lint generate format migrate bench bench-quick bench-plot
# `make` alone lists the targets: starting the whole stack is too much for a bare `make`.
.DEFAULT_GOAL := help

help:      ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:[^#]*## /\t/' | expand -t 13

up:        ## run the whole stack locally (gateway on :8080)
	scripts/up

up-bench:  ## the stack as benchmarks run it: rate limits out of the way, warnings-only logs
	ZAP_LOG_LEVEL=WARNING \
	ZAP_GATEWAY_RATE_LIMIT_IP=10000000/minute ZAP_GATEWAY_RATE_LIMIT_USER=10000000/minute \
	ZAP_GATEWAY_RATE_LIMIT_LOGIN=1000000/minute ZAP_GATEWAY_RATE_LIMIT_REGISTER=1000000/minute \
	scripts/up

test:      ## run the whole test suite
	scripts/test

lint:      ## ruff, mypy strict, buf lint
	scripts/lint

generate:  ## regenerate stubs from protos/ with buf
	scripts/generate

format:    ## apply ruff's formatting and safe fixes
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

migrate:   ## create databases and apply migrations
	.venv/bin/python -m scripts.migrate

bench:     ## benchmarks against the running stack (make up-bench; seed with scripts.seed first)
	.venv/bin/python -m scripts.bench.auth
	.venv/bin/python -m scripts.bench.feed
	.venv/bin/python -m scripts.bench.fanout
	.venv/bin/python -m scripts.bench.moderation
	.venv/bin/python -m scripts.bench.media
	.venv/bin/python -m scripts.bench.notifications

bench-plot:  ## redraw docs/feed-p99.png (feed p99 against offered load, before and after) from docs/bench-data/
	.venv/bin/python -m scripts.bench.plot

bench-quick:  ## CPU per request by process and throughput vs /healthz, wrk closed loop (~1 minute)
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	.venv/bin/python -m scripts.bench.cpu
