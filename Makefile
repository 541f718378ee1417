# One set of entry points for people and CI; each target calls a script in scripts/.
.PHONY: up test lint generate format migrate bench

up:        ## run the whole stack locally (gateway on :8080)
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

bench:     ## gateway benchmarks (stack must be running: make up)
	.venv/bin/python -m scripts.bench.auth
