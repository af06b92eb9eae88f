# Shortcuts; the README's two commands need no make. Run as root.
PROFILE ?= pbx-ha

.PHONY: setup test test-slow image lab stdeb ci

setup:
	bash scripts/setup.sh

test: setup
	.venv/bin/python -m pytest -m "not slow"

test-slow: setup
	.venv/bin/python -m pytest -m slow

image: setup
	.venv/bin/builder image --profile $(PROFILE) --out out/

lab: image
	.venv/bin/builder lab run --profile $(PROFILE) --report out/lab.json

stdeb: setup
	bash scripts/build-stdeb.sh out/

ci:
	bash .ci/run
