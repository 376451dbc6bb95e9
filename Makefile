# Two entry points (see README): `make demo` and `make test`. Both build the virtual environment first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1

.PHONY: demo test setup bench clean

CHROMIUM := /usr/bin/chromium

setup: $(STAMP) $(CHROMIUM)

# The browser tests drive Debian's chromium (Playwright's own browser download does not work here); CI runs as
# root on a fresh clone, so install it once when it is missing.
$(CHROMIUM):
	@echo "installing chromium for the browser tests (apt-get)"
	@DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# torch goes first and alone: torch==2.13.0 resolves to the local CPU build; installed later as a
# dependency, pip would pull several GB of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	$(BIN)/pip check
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(BIN)/taxonomist labels check examples/tiny/labels.jsonl
	$(BIN)/taxonomist suggest --labels examples/tiny/labels.jsonl --docs examples/tiny/docs.jsonl -k 3 --out out/suggestions.tsv --format tsv
	head -n 12 out/suggestions.tsv
	$(BIN)/taxonomist eval --labels examples/tiny/labels.jsonl --docs examples/tiny/docs.jsonl --report out/report.html
	$(BIN)/taxonomist train --labels examples/tiny/labels.jsonl --docs examples/tiny/docs.jsonl --out out/model
	printf 'I was billed two times for one order\nthe courier lost my parcel\n' | \
		$(BIN)/taxonomist suggest --model out/model --docs - -k 3 --no-adapt
	$(BIN)/taxonomist calibrate --labels examples/tiny/labels.jsonl --docs examples/tiny/docs.jsonl --out out/calibrated
	$(BIN)/taxonomist suggest --model out/calibrated --docs examples/tiny/docs.jsonl --coverage 0.9 --out out/sets.tsv
	head -n 8 out/sets.tsv

test: setup
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/zero_shot.py
	$(BIN)/python bench/supervised.py --seeds 0,1,2 --plot bench/results/learning_curves.png

clean:
	rm -rf $(VENV) out
