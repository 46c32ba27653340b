# Every target is one nox call: the pipeline is defined in noxfile.py only.
# On first use, the pinned nox and uv are installed from requirements/tools.txt into .tools/.

PYTHON ?= python3
TOOLS := .tools
NOX := $(TOOLS)/bin/nox

.PHONY: ci lint train gate check test coverage baseline parity lock clean help

ci: $(NOX) ## the whole pipeline, exactly as CI runs it
	$(NOX)

lint: $(NOX) ## ruff, zizmor and the workflow schema check
	$(NOX) -s lint

train: $(NOX) ## validate the data, train and evaluate (cached)
	$(NOX) -s train

gate: $(NOX) ## the quality gate
	$(NOX) -s gate

check: $(NOX) ## the model's behavioural checks (data/<name>.checks.toml)
	$(NOX) -s check

test: $(NOX) ## the tests on every Python of the matrix
	$(NOX) -s test

coverage: $(NOX) ## combine the coverage of every Python
	$(NOX) -s coverage

baseline: $(NOX) ## record the model of every Python in metrics/baseline.json
	$(NOX) -s baseline

parity: $(NOX) ## check that CI runs what make ci runs
	$(NOX) -s parity

lock: $(NOX) ## regenerate the lock files
	$(NOX) -s lock

clean: $(NOX) ## remove artifacts and coverage data
	$(NOX) -s clean

help: $(NOX) ## list the sessions
	$(NOX) --list

$(NOX): requirements/tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes -r requirements/tools.txt
	touch $(NOX)
