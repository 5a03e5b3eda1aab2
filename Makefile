# Two set-up commands (see README): `make demo` and `make test`.
# Each creates .venv if needed, installs the package with what it needs (pip and, as root,
# Debian's Arm toolchain and QEMU for the on-device checks), then runs.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
LOCK   := requirements.lock
OUT    ?= runs/demo
APT_PKGS := gcc gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm

.PHONY: demo test venv toolchain lint lock clean

$(VENV)/.installed: pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "ethoedge needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint $(LOCK) -e '.[dev,ray]'
	@touch $@

venv: $(VENV)/.installed

toolchain:
	@if command -v arm-none-eabi-gcc >/dev/null 2>&1 && command -v qemu-system-arm >/dev/null 2>&1; then \
	  echo "toolchain: arm-none-eabi-gcc and qemu-system-arm present"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "toolchain: installing $(APT_PKGS) from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PKGS) >/dev/null; \
	else \
	  echo "toolchain: not root; install $(APT_PKGS) to enable the Cortex-M checks (they are skipped)"; \
	fi

demo: venv toolchain
	$(VENV)/bin/ethoedge run --preset quick --out $(OUT)

test: venv toolchain
	$(PY) -m pytest -n 2 -q

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports

# Refresh requirements.lock after changing the dependencies in pyproject.toml: resolves the
# newest versions that pyproject.toml allows (Python 3.11, Linux), in a throwaway environment.
lock:
	$(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet 'pip-tools==7.6.2'
	.lockenv/bin/pip-compile --quiet --upgrade --extra dev --extra ray --strip-extras --no-emit-index-url \
	  --no-emit-find-links --output-file $(LOCK) pyproject.toml
	sed -i -E 's/^(torch==[0-9.]+)\+cpu$$/\1/' $(LOCK)
	rm -rf .lockenv

clean:
	rm -rf $(VENV) runs .pytest_cache
