# The verbs a newcomer needs. Everything runs on a CPU, offline after install.
PYTHON ?= python3
VENV := .venv
SERVE_VENV := .venv-serve
PY := $(VENV)/bin/python
SPY := $(SERVE_VENV)/bin/python
PIP_FLAGS ?= --disable-pip-version-check --progress-bar off
IMAGE ?= image-classifier:dev
TRAIN_IMAGE ?= image-classifier-train
# Extra `docker build` flags, e.g. DOCKER_BUILD_FLAGS=--network=host where the engine has no bridge.
DOCKER_BUILD_FLAGS ?=

.PHONY: help venv serve-venv system-deps browser-deps prometheus-deps docker-deps demo test test-full test-serve test-images lint train train-ddp export serve bench bench-robustness bench-train image-serve image-train clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(VENV)/.stamp: requirements-train.txt requirements-serve.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -q -r requirements-train.txt -r requirements-dev.txt
	touch $@

# Built by the serve image's own install script (no pip, no test suites, no onnxruntime tools),
# then the test runner is added from outside: `make test-serve` runs the service tests in what the
# image holds.
$(SERVE_VENV)/.stamp: requirements-serve.txt requirements-dev.txt deploy/serve-install.sh
	rm -rf $(SERVE_VENV)
	PYTHON=$(PYTHON) bash deploy/serve-install.sh $(SERVE_VENV) requirements-serve.txt
	$(PYTHON) -m pip --python $(SPY) install $(PIP_FLAGS) -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.stamp  ## full environment: train + export + serve + tests
serve-venv: $(SERVE_VENV)/.stamp  ## serve-only environment (no torch), installed as the serve image installs it

demo: venv  ## train on synthetic data, export, and serve on :8000
	$(PY) -m train --data synthetic --out runs/demo --no-progress
	$(PY) -m export --checkpoint runs/demo/best.pt --out artifacts/demo
	@cp "$$(ls runs/demo/synthetic-data/raw-img/elefante/*.jpeg | head -n1)" runs/demo/elephant.jpg
	@echo
	@echo "Service starting on http://127.0.0.1:8000 (open it in a browser, or in another terminal run):"
	@echo '  curl -X POST "http://127.0.0.1:8000/predict" -H "accept: application/json" -H "Content-Type: multipart/form-data" -F "file=@runs/demo/elephant.jpg;type=image/jpg"'
	@echo
	MODEL_PATH=artifacts/demo/model.onnx $(PY) -m service

test: venv serve-venv system-deps lint test-full test-serve  ## create both environments, lint, run every test

# Debian packages that some tests drive: chromium (the page and /docs in a real browser), prometheus
# and promtool (alert rules and a real scrape), docker.io and mmdebstrap (the images on a private
# engine). One apt-get run installs whichever are missing, when we are root; otherwise those tests
# skip and say why, except on CI (CI set, as .ci/run does), where they fail. The tests start their
# own daemons, so the ones the packages start are stopped again.
system-deps:  ## Debian packages for the browser, Prometheus and image tests (root + apt-get)
	@want=""; lean=""; \
	command -v chromium >/dev/null 2>&1 || want="$$want chromium"; \
	command -v dockerd >/dev/null 2>&1 || want="$$want docker.io"; \
	command -v mmdebstrap >/dev/null 2>&1 || want="$$want mmdebstrap"; \
	{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || lean="prometheus"; \
	if [ -z "$$want$$lean" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's$$want $$lean for the browser, Prometheus and image tests"; \
		apt-get update -qq || true; \
		if [ -n "$$want" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$want >/dev/null \
			|| echo "could not install$$want: their tests skip (and fail on CI)"; fi; \
		if [ -n "$$lean" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$$lean >/dev/null || echo "could not install $$lean: its tests skip (and fail on CI)"; fi; \
		{ systemctl disable --now prometheus docker.service docker.socket containerd.service \
			|| { invoke-rc.d prometheus stop; invoke-rc.d docker stop; invoke-rc.d containerd stop; }; } \
			>/dev/null 2>&1 || true; \
	else echo "not root:$$want $$lean missing; the tests that need them skip"; fi

browser-deps prometheus-deps docker-deps: system-deps  ## (names kept: each installs every system package)

test-full:
	$(PY) -m pytest

test-serve:  ## the service tests again, in the torch-free environment the serve image holds
	SERVE_ONLY=1 $(SPY) -m pytest tests/service

test-images: venv system-deps  ## build the training image (6 GB), train and export in it (minutes)
	$(PY) -m pytest -m train_image tests/deploy

lint: venv  ## ruff (rules and formatting) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

train: venv  ## train on Animals-10: make train DATA=data/animals10 OUT=runs/animals10
	$(PY) -m train --data $(DATA) --out $(or $(OUT),runs/animals10)

train-ddp: venv  ## the same under torchrun: make train-ddp DATA=... NPROC=2
	$(PY) -m torch.distributed.run --standalone --nproc_per_node=$(or $(NPROC),2) \
		-m train --data $(DATA) --out $(or $(OUT),runs/animals10)

export: venv  ## export: make export CKPT=runs/animals10/best.pt OUT=artifacts/animals10 EXPORT_ARGS="--quantize int8"
	$(PY) -m export --checkpoint $(CKPT) --out $(OUT) $(EXPORT_ARGS)

serve: venv  ## serve MODEL_PATH (default artifacts/demo/model.onnx) on :8000
	$(PY) -m service

bench: venv  ## print serving and export benchmarks
	$(PY) -m bench

bench-robustness: venv  ## overload, slow clients, hostile bodies, SIGTERM (needs make bench's INT8 model)
	$(PY) -m bench.robustness --model artifacts/bench-vgg16/model.int8.onnx
bench-train: venv  ## training img/s, loader / model / end to end: make bench-train BENCH_ARGS="--loader cpu,gpu"
	$(PY) -m bench.train_bench $(BENCH_ARGS)

image-serve:  ## docker build the serve image (needs a Docker engine): make image-serve MODEL=artifacts/demo/model.onnx
	docker build $(DOCKER_BUILD_FLAGS) -f Dockerfile.serve $(if $(MODEL),--build-arg MODEL=$(MODEL)) -t $(IMAGE) .

image-train:  ## docker build the training image (needs a Docker engine)
	docker build $(DOCKER_BUILD_FLAGS) -f Dockerfile.train -t $(TRAIN_IMAGE) .

clean:  ## remove environments, runs and artifacts
	rm -rf $(VENV) $(SERVE_VENV) runs artifacts/*/ .pytest_cache .ruff_cache
