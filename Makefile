# Everything here sets itself up: a fresh clone with python3 and make is enough.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo web test browser lint typecheck check mutation clean fonts

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Chinese, Japanese and Korean in PDFs: Noto Sans CJK from Debian (PyPI has no static one).
# Installed when make runs as root on a machine with apt; otherwise it says what to run.
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
fonts:
	@if [ -f $(CJK_FONT) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ apt-get update -qq || true; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends fonts-noto-cjk >/dev/null; } \
			|| echo "make: could not install fonts-noto-cjk; the CJK PDF tests will not pass"; \
	else \
		echo "note: PDFs print Chinese, Japanese and Korean once Debian's fonts-noto-cjk is" \
			"installed: sudo apt-get install --no-install-recommends fonts-noto-cjk"; \
	fi

demo: $(STAMP) fonts
	$(BIN)/ua-dispatch send config/campaigns/chechnya-2019.toml examples/letter-en.txt \
		--name "Alex Example" --email alex@example.org --city Leeds --country "United Kingdom" \
		--dry-run --yes --store .dry-run

# The supporters' page in rehearsal: fake SMTP server and fax gateway, the shipped campaign.
web: $(STAMP)
	$(BIN)/ua-dispatch serve --dry-run --store .dry-run

# The browser tests drive Debian's chromium: installed here when missing and possible (root
# with apt-get); otherwise they are skipped, except under CI=true where they fail.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
			|| { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null; } \
			|| echo "make: could not install chromium; the browser tests will not run"; \
		else echo "make: chromium is missing (apt-get install chromium); the browser tests will not run"; fi; }

test: $(STAMP) fonts browser
	$(BIN)/python -m pytest -q -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard scripts)
	$(BIN)/ruff format --check src tests $(wildcard scripts)
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

# Each core module against its own tests only; see scripts/mutation.py and docs/mutation.md.
MUTATION_STAMP := $(VENV)/.mutation-installed
$(MUTATION_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,mutation]'
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	$(BIN)/python scripts/mutation.py $(MODULES)

clean:
	rm -rf $(VENV) .dry-run .pytest_cache .mypy_cache .ruff_cache build/mutation
