# Two commands on a fresh machine: `make serve` and `make test` (each sets everything up first).
VENV ?= .venv
PY := $(VENV)/bin/python
# Re-install only when an install input changes.
STAMP := $(VENV)/.installed-$(shell cat scripts/install.sh requirements.txt requirements/*.txt | sha1sum | cut -c1-12)

COMMA := ,
BENCH_STAMP := $(VENV)/.bench-$(shell sha1sum bench/requirements.txt | cut -c1-12)

# The clients the tests drive (tests/test_clients.py), apart from the server's environment: Python ones in
# their own venv from a full lock, JavaScript ones from their lock file.
CLIENTS_VENV := .venv-clients
CLIENTS_STAMP := $(CLIENTS_VENV)/.installed-$(shell sha1sum requirements/clients-lock.txt | cut -c1-12)
JS_DIR := tests/clients/js
JS_STAMP := $(JS_DIR)/node_modules/.installed-$(shell sha1sum $(JS_DIR)/package-lock.json | cut -c1-12)
# The docs site's tools (MkDocs + Material), in their own venv from a full lock.
DOCS_VENV := .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.installed-$(shell sha1sum requirements/docs-lock.txt | cut -c1-12)

.PHONY: setup model clients serve test test-fast lint docs docs-tables bench bench-ready bench-simultaneous docker-cpu docker-hathora-standin clean

setup: $(STAMP) model

$(STAMP):
	@scripts/install.sh $(VENV)
	@rm -f $(VENV)/.installed-*
	@touch $@

model: $(STAMP)
	@$(PY) -m sglang_hathora.engine.bundled_model >/dev/null

clients: $(CLIENTS_STAMP) $(JS_STAMP)

$(CLIENTS_STAMP): requirements/clients-lock.txt
	python3 -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/python -m pip install --disable-pip-version-check --quiet --no-deps -r requirements/clients-lock.txt
	rm -f $(CLIENTS_VENV)/.installed-*
	touch $@

$(JS_STAMP): $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(DOCS_STAMP): requirements/docs-lock.txt
	python3 -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --disable-pip-version-check --quiet --no-deps -r requirements/docs-lock.txt
	rm -f $(DOCS_VENV)/.installed-*
	touch $@

# The reference site (docs/, mkdocs.yml) into site/; strict: a broken link or anchor fails it.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict

# The docs' generated tables (settings, request bounds, metrics) rewritten from the code.
docs-tables: $(STAMP)
	$(PY) scripts/docs_tables.py

serve: setup
	@$(PY) serve_hathora.py

test: setup clients docs
	$(PY) -m ruff check .
	$(VENV)/bin/hadolint Dockerfile.hathora docker/Dockerfile.cpu docker/Dockerfile.sglang-standin
	# Two lanes (tests/run_order.py): the engine tests one at a time, the container tests beside them.
	$(PY) -m pytest -n 2 --lanes

# The fast loop: every test that needs no engine, no model and no Docker (about a minute on 2 cores).
test-fast: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 -m "not engine and not docker"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/hadolint Dockerfile.hathora docker/Dockerfile.cpu docker/Dockerfile.sglang-standin

# Benchmarks (not tests): about 12 minutes on 2 cores; see bench/README.md.
bench: setup $(BENCH_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

bench-ready: setup $(BENCH_STAMP)
	$(PY) bench/ready_time.py $(BENCH_ARGS)

bench-simultaneous: setup $(BENCH_STAMP)
	$(PY) bench/simultaneous.py $(BENCH_ARGS)

$(BENCH_STAMP): $(STAMP)
	# Constrained to what is installed, so that the bench tools never change the server's environment.
	$(PY) -m pip freeze --exclude-editable > $(VENV)/installed.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt -c $(VENV)/installed.txt
	rm -f $(VENV)/.bench-*
	touch $@

# The CPU image with the bundled model inside (needs a Docker engine; no network at build time but
# the package registries for the wheelhouse): docker run --rm -p 8000:8000 sglang-hathora:cpu
docker-cpu: $(STAMP)
	base=$$(scripts/docker_base.sh) && VENV=$(VENV) scripts/docker_wheelhouse.sh && \
	docker build --quiet --network host --build-arg BASE=$$base -f docker/Dockerfile.cpu -t sglang-hathora:cpu .

# Dockerfile.hathora, every instruction of it, built on a local stand-in of the official SGLang image
# (sglang and torch in the system Python, as root; docker/Dockerfile.sglang-standin says what it cannot
# prove: CUDA), with the bundled model baked in from docker/models/ as a hub model would be (no hub
# here). HF_TOKEN_FILE, if set, is passed as the build's hf_token secret. The tests run the result on
# the CPU: sglang-hathora:standin
STANDIN := local/sglang-standin:v0.5.23
docker-hathora-standin: setup
	base=$$(scripts/docker_base.sh) && VENV=$(VENV) scripts/docker_wheelhouse.sh && buildkit=$$(scripts/docker_buildkit.sh) && \
	checkpoint=$$($(PY) -m sglang_hathora.engine.bundled_model 2>/dev/null | tail -1) && \
	rm -rf docker/models/$$(basename $$checkpoint) && cp -r $$checkpoint docker/models/ && \
	docker build --quiet --network host --build-arg BASE=$$base -f docker/Dockerfile.sglang-standin -t $(STANDIN) . && \
	$$buildkit build --quiet --network host --build-arg SGLANG_IMAGE=$(STANDIN) \
		--build-arg MODEL_ID=./docker/models/$$(basename $$checkpoint) --build-arg SERVED_MODEL_NAME=$$(basename $$checkpoint) \
		$(if $(HF_TOKEN_FILE),--secret id=hf_token$(COMMA)src=$(HF_TOKEN_FILE)) -f Dockerfile.hathora -t sglang-hathora:standin .

clean:
	rm -rf $(VENV) $(CLIENTS_VENV) $(DOCS_VENV) site $(JS_DIR)/node_modules .pytest_cache .ruff_cache
