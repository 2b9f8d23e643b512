# Every target creates .venv when it is missing and installs into it, so a
# fresh clone needs nothing but Python 3.11+.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKSPACE ?= demo-workspace
DEMO_CUSTOMERS ?= 20000
# make demo ends serving the scored sample here; DEMO_SERVE=0 stops after scoring.
DEMO_PORT ?= 8000
DEMO_SERVE ?= 1
# Test processes (pytest-xdist); each gets its own PostgreSQL database.
TEST_WORKERS ?= 2

.PHONY: demo test bench bench-smoke lint format clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(WORKSPACE)
	$(BIN)/kizuna init $(WORKSPACE)
	$(BIN)/kizuna sample --customers $(DEMO_CUSTOMERS) --seed 7 --out $(WORKSPACE)/sample
	$(BIN)/kizuna --workspace $(WORKSPACE) import-folder $(WORKSPACE)/sample
	$(BIN)/kizuna --workspace $(WORKSPACE) summary
	$(BIN)/kizuna --workspace $(WORKSPACE) score
	$(BIN)/kizuna --workspace $(WORKSPACE) kpi
	@pw=$$($(BIN)/python -c "import secrets; print(secrets.token_urlsafe(12))"); \
	printf '%s\n' "$$pw" | $(BIN)/kizuna --workspace $(WORKSPACE) user create demo --role admin --password-stdin >/dev/null && \
	umask 077 && printf 'user: demo\npassword: %s\n' "$$pw" > $(WORKSPACE)/demo-login.txt && \
	echo "" && \
	echo "Kizuna demo: http://127.0.0.1:$(DEMO_PORT)/   log in as demo / $$pw   (also in $(WORKSPACE)/demo-login.txt)" && \
	echo "API docs: http://127.0.0.1:$(DEMO_PORT)/docs   keys: $(BIN)/kizuna --workspace $(WORKSPACE) api-key create --scope pos" && \
	if [ "$(DEMO_SERVE)" = "1" ]; then \
	  echo "serving API, dashboard and worker; Ctrl-C stops" && \
	  exec $(BIN)/kizuna --workspace $(WORKSPACE) serve --port $(DEMO_PORT); \
	fi

test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile
	$(MAKE) bench-smoke

# Every bench/*_bench.py prints its figure and the ratio to its reference.
bench: $(STAMP)
	@for f in bench/*_bench.py; do [ -e "$$f" ] || continue; echo "== $$f"; $(BIN)/python $$f || exit 1; done

# CI runs each benchmark once at a tiny size so none of them rots.
bench-smoke: $(STAMP)
	@for f in bench/*_bench.py; do [ -e "$$f" ] || continue; echo "== $$f --smoke"; $(BIN)/python $$f --smoke || exit 1; done
	@echo "== bench/soak.py --smoke"; $(BIN)/python bench/soak.py --smoke

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache .mypy_cache .ruff_cache
