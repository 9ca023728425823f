# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENV45 := .venv45
PY45 := $(VENV45)/bin/python
STAMP45 := $(VENV45)/.installed
# Blender 5.3 (Python 3.13) and 4.2 LTS environments for the Blender-side tests (issue 14).
# PYTHON313: a Python 3.13 (bpy 5.1+ wheels are cp313 only); found on PATH or in pyenv.
PYTHON313 ?= $(shell if python3.13 -c '' 2>/dev/null; then echo python3.13; \
  else v=$$(pyenv versions --bare 2>/dev/null | grep -m1 '^3\.13'); [ -n "$$v" ] && echo "PYENV_VERSION=$$v python3.13"; fi)
VENV53 := .venv53
PY53 := $(VENV53)/bin/python
STAMP53 := $(VENV53)/.installed
VENV42 := .venv42
PY42 := $(VENV42)/bin/python
STAMP42 := $(VENV42)/.installed
# The 5.3 environment only where a Python 3.13 is there (else `make test` says how to get one).
STAMP53_IF := $(if $(PYTHON313),$(STAMP53))
SHARED := ../shared/assets
DEMO_AUDIO ?= $(SHARED)/speech/librivox/sense_and_sensibility_01_austen_64kb-0870.wav
DEMO_TRANSCRIPT ?= $(SHARED)/speech/librivox/sense_and_sensibility_01_austen_64kb-0870.txt
DEMO_HEAD ?= $(SHARED)/flame/flame_template.ply

.PHONY: venv demo test bench bench-hour eval rig docs docs-demo results clean

venv: $(STAMP)

# The checkout is the package `flame_lipsync` in every environment: a link named so in
# the environment's site-packages (one import root, no sys.path edits anywhere).
# $(call link_package,PYTHON)
link_package = ln -sfn "$(CURDIR)" "$$($(1) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/flame_lipsync"

# Re-made on every use (cheap): a checkout moved or cloned elsewhere keeps working.
.PHONY: package-link
package-link: $(STAMP) $(STAMP45) $(STAMP42) $(STAMP53_IF)
	@$(call link_package,$(PY)); $(call link_package,$(PY45)); $(call link_package,$(PY42))
	@$(if $(STAMP53_IF),$(call link_package,$(PY53)))

# Pinned environment; pocketsphinx, soundfile and bpy ship their native parts
# as wheels, so no Debian package is needed.
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(call link_package,$(PY))
	touch $(STAMP)

# Second environment: Blender 4.5 LTS (bpy wheel), same pins otherwise; the
# Blender-side tests run under both 5.0 (.venv) and 4.5 (.venv45).
.PHONY: venv45 build wheels
venv45: $(STAMP45)

$(STAMP45): requirements-blender45.txt
	$(PYTHON) -m venv $(VENV45)
	$(PY45) -m pip install --quiet --upgrade pip
	$(PY45) -m pip install --quiet -r requirements-blender45.txt
	$(call link_package,$(PY45))
	touch $(STAMP45)

# Blender 5.3 (bpy 5.3.0, Python 3.13, numpy 2, no torch) and 4.2 LTS (bpy 4.2.23, no torch):
# the Blender-side tests run there too.
.PHONY: venv53 venv42
venv53: $(STAMP53)
venv42: $(STAMP42)

$(STAMP53): requirements-blender53.txt
	@[ -n "$(PYTHON313)" ] || { echo "python3.13 not found: install Python 3.13 (e.g. pyenv install 3.13) or pass PYTHON313=/path/to/python3.13"; exit 2; }
	$(PYTHON313) -m venv $(VENV53)
	$(PY53) -m pip install --quiet --upgrade pip
	$(PY53) -m pip install --quiet -r requirements-blender53.txt
	$(call link_package,$(PY53))
	touch $(STAMP53)

$(STAMP42): requirements-blender42.txt
	$(PYTHON) -m venv $(VENV42)
	$(PY42) -m pip install --quiet --upgrade pip
	$(PY42) -m pip install --quiet -r requirements-blender42.txt
	$(call link_package,$(PY42))
	touch $(STAMP42)

# The extension zips in dist/, one per platform (--split-platforms: each holds only its
# platform's wheels), built and validated by Blender's own extension tooling (the bl_pkg
# CLI that `blender --command extension` runs, shipped in the bpy wheel) with Blender's
# list of valid tags.
BL_PKG_GLOB := $(VENV)/lib/python*/site-packages/bpy/*/scripts/addons_core/bl_pkg
build: $(STAMP) wheels
	@bl_pkg=$$(ls -d $(BL_PKG_GLOB) | head -n 1); \
	[ -n "$$bl_pkg" ] || { echo "blender_ext.py not found under $(VENV) (bpy wheel)"; exit 1; }; \
	tags="$$bl_pkg/../../modules/_bpy_internal/extensions/tags.py"; \
	mkdir -p dist; rm -f dist/*.zip; \
	set -e; \
	$(PY) "$$bl_pkg/cli/blender_ext.py" build --source-dir . --output-dir dist --split-platforms \
	  --valid-tags "$$tags"; \
	for zip in dist/*.zip; do \
	  $(PY) "$$bl_pkg/cli/blender_ext.py" validate --valid-tags "$$tags" "$$zip"; \
	  ls -l "$$zip"; \
	done

# The wheels the manifest lists, downloaded from PyPI into wheels/ (gitignored) for each
# wheel's own platform and Python; ones already there are kept. The manifest is the one
# list: to bundle another version, edit its file names and run `make build`.
define FETCH_WHEELS
import subprocess, sys, tomllib
from pathlib import Path
wheels = tomllib.load(open("blender_manifest.toml", "rb")).get("wheels", [])
Path("wheels").mkdir(exist_ok=True)
for wheel in wheels:
    path = Path(wheel)
    if path.is_file():
        continue
    name, version, python, abi, platforms = path.stem.split("-")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--dest", str(path.parent),
               "--implementation", "cp", "--python-version", f"{python[2]}.{python[3:]}",
               "--abi", abi, f"{name}=={version}"]
    for platform in platforms.split("."):
        command += ["--platform", platform]
    print("fetching", path.name, flush=True)
    subprocess.run(command, check=True)
    if not path.is_file():
        sys.exit(f"pip did not download {path.name} (got: {sorted(p.name for p in path.parent.glob(name + '-*'))})")
endef
export FETCH_WHEELS

wheels: $(STAMP)
	@$(PY) -c "$$FETCH_WHEELS"

demo: $(STAMP)
	@if [ ! -f "$(DEMO_AUDIO)" ] || [ ! -f "$(DEMO_HEAD)" ]; then \
	  echo "Demo inputs not found ($(DEMO_AUDIO), $(DEMO_HEAD))."; \
	  echo "Run: make demo DEMO_AUDIO=speech.wav DEMO_HEAD=head.ply [DEMO_TRANSCRIPT=words.txt]"; exit 2; fi
	$(PY) cli.py bake --audio "$(DEMO_AUDIO)" $(if $(wildcard $(DEMO_TRANSCRIPT)),--transcript "$(DEMO_TRANSCRIPT)") \
	  --head "$(DEMO_HEAD)" --fps 30 --out out/demo.blend --export-npy out/demo.npy
	$(PY) cli.py preview out/demo.blend --out out/demo.mp4 --stills out/demo_stills

# The main suite spreads over the cores (pytest-xdist, files kept whole: some share a
# fixture file); the other Blenders' suites run side by side, each in one process (the
# bpy 4.5/4.2 modules must leave through conftest's os._exit, which xdist workers cannot).
# Each run leaves a JUnit file in out/test-results/ (read by tools/support_table.py).
RESULTS := out/test-results
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)  # workers: each holds a Blender (~1 GB)
test: $(STAMP) $(STAMP45) $(STAMP42) $(STAMP53_IF) .venv-track/.installed package-link wheels typecheck  # wheels: the install test builds the zip; .venv-track: the tracker test
	@mkdir -p $(RESULTS) && rm -f $(RESULTS)/*.xml  # a version that does not run leaves no stale file
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile tests --junitxml=$(RESULTS)/blender-5.0.xml
	@$(MAKE) --no-print-directory -O -j3 test-4.5 test-5.3 test-4.2
	@$(PY) -m flame_lipsync.tools.support_table --results $(RESULTS)

# The README's support table from the last `make test` (out/test-results).
.PHONY: support-table
support-table: $(STAMP)
	$(PY) -m flame_lipsync.tools.support_table --results $(RESULTS) --readme README.md

.PHONY: test-4.5 test-5.3 test-4.2
test-4.5:
	$(PY45) -m pytest -q tests/blender --junitxml=$(RESULTS)/blender-4.5.xml
test-5.3:
	$(if $(STAMP53_IF),$(PY53) -m pytest -q tests/blender --junitxml=$(RESULTS)/blender-5.3.xml,@echo "SKIPPED Blender 5.3 tests: python3.13 not found (install Python 3.13, e.g. pyenv install 3.13, or pass PYTHON313=/path/to/python3.13)")
test-4.2:
	$(PY42) -m pytest -q tests/blender --junitxml=$(RESULTS)/blender-4.2.xml

# mypy over the Blender side against fake-bpy-module (.mypy.ini, requirements-typecheck.txt).
# The stubs use Python 3.12+ syntax, so this environment runs on PYTHON313 too.
VENVTYPE := .venv-typecheck
PYTYPE := $(VENVTYPE)/bin/python
STAMPTYPE := $(VENVTYPE)/.installed
.PHONY: typecheck
typecheck: $(if $(PYTHON313),$(STAMPTYPE))
	@if [ -z "$(PYTHON313)" ]; then \
	  echo "SKIPPED typecheck: python3.13 not found (install Python 3.13, e.g. pyenv install 3.13, or pass PYTHON313=/path/to/python3.13)"; \
	else mkdir -p $(VENVTYPE)/src && ln -sfn "$(CURDIR)" $(VENVTYPE)/src/flame_lipsync && \
	  $(PYTYPE) -m mypy -p flame_lipsync.operators -p flame_lipsync.panels -p flame_lipsync.blender; fi

$(STAMPTYPE): requirements-typecheck.txt
	$(PYTHON313) -m venv $(VENVTYPE)
	$(PYTYPE) -m pip install --quiet --upgrade pip
	$(PYTYPE) -m pip install --quiet -r requirements-typecheck.txt
	touch $(STAMPTYPE)

# Speed and memory on 10/60/600 s of real speech with the naive-bake and decode
# baselines and the CLI cold start, same run (~7-11 min on 2 cores) -> out/bench.{json,md}.
bench: $(STAMP)
	$(PY) -m flame_lipsync.tools.bench

# One hour of speech (phonetic without transcript, the default; both bake modes and
# animate --export-npy) against 60 s: the memory bound (peak RSS of 1 h <= 2x that of
# 60 s) -> out/bench_hour/ (~15 min). Not with a transcript: aligning an hour's
# transcript ran for over 20 minutes in its first (word) pass and was stopped.
bench-hour: $(STAMP)
	$(PY) -m flame_lipsync.tools.bench --seconds 60 3600 --engines phonetic --no-transcripts --naive-budget 0 \
	  --manifest-shots 0 --no-cold-start --out-dir out/bench_hour

# Lip-sync metrics of every engine on every shared clip, with and without transcripts:
# out/eval/results.json, results.md and plots/*.png (tools/evaluate.py); then the real-face
# table (every engine and the loudness floor against MediaPipe-tracked talking-face video,
# tracks cached by the video's hash in out/tracks): out/eval/real_faces.{json,md}.
eval: $(STAMP) .venv-track/.installed  # (STAMPTRACK: defined further down)
	$(PY) cli.py eval --engine all --transcripts --out out/eval
	$(PY) tools/real_faces.py --out out/eval
	$(PY) tools/real_faces_splits.py --eval out/eval/real_faces.json
	$(PY) tools/upper_face_eval.py --out out/eval

# Rebuild committed artefacts from ../shared/assets (visemes: from the tracked videos,
# needs `make eval` first for out/tracks and the clips' A/V offsets; ~3 min).
.PHONY: visemes
visemes: $(STAMP)
	$(PY) -m flame_lipsync.training.fit_visemes

rig: $(STAMP)
	$(PY) -m flame_lipsync.tools.build_rig

LIBRIVOX := $(SHARED)/speech/librivox/sense_and_sensibility_01_austen_64kb-0870
# Contact sheets under docs/ (look at them after a change to the rig, engine or teeth).
docs: $(STAMP)
	$(PY) cli.py render-frames rig --out docs/rig_controls.png
	$(PY) cli.py render-frames clip --audio $(LIBRIVOX).wav --transcript $(LIBRIVOX).txt \
	  --reference $(LIBRIVOX).phone.json --out docs/librivox_0870_phonetic.png
	$(PY) cli.py render-frames teeth --out docs/teeth.png
	$(PY) tools/real_vs_ours.py --out docs/real_vs_ours.png  # needs `make eval` first (tracks, offsets)

# Synthetic training corpus for the neural engine (out/corpus, not committed):
# installs the offline synthesizers (Debian packages), then builds it; about
# 10 minutes on 2 cores. CORPUS_ARGS passes options, e.g. CORPUS_ARGS="--sentences 100".
.PHONY: corpus
corpus: $(STAMP)
	@pkgs=$$($(PY) -m flame_lipsync.training.build_corpus --apt-packages); \
	missing=$$(for p in $$pkgs; do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "Installing the synthesizers:" $$missing; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi
	$(PY) -m flame_lipsync.training.build_corpus --out out/corpus $(CORPUS_ARGS)

clean:
	rm -rf out dist .pytest_cache

# --- real-face instrument (issue 10) ---------------------------------------------------
# Face-tracking environment (mediapipe 0.10.14 pins clash with the main one): dev/eval only.
VENVTRACK := .venv-track
PYTRACK := $(VENVTRACK)/bin/python
STAMPTRACK := $(VENVTRACK)/.installed
.PHONY: venv-track eval-real
venv-track: $(STAMPTRACK)

$(STAMPTRACK): requirements-tracking.txt
	$(PYTHON) -m venv $(VENVTRACK)
	$(PYTRACK) -m pip install --quiet --upgrade pip
	$(PYTRACK) -m pip install --quiet -r requirements-tracking.txt
	touch $(STAMPTRACK)

# Every shared video: track (cached by sha256 in out/tracks), fit the rig, score every
# engine and the loudness floor -> out/eval/real_faces.{json,md}, out/eval/plots/real_*.png.
eval-real: $(STAMP) $(STAMPTRACK)
	$(PY) tools/real_faces.py --out out/eval
# --- end real-face instrument ----------------------------------------------------------

# Four stills of the demo movie as one sheet (needs `make demo` first).
docs-demo: $(STAMP)
	$(PY) -c "from pathlib import Path; from flame_lipsync.blender.render import contact_sheet; \
	p = sorted(Path('out/demo_stills').glob('*.png')); \
	contact_sheet(p, [x.stem.replace('_', ' ') for x in p], 4, Path('docs/demo_stills.png'), \
	title='make demo: librivox 0870 on flame_template, shape-key bake, Workbench preview')"

# The README's Results section, regenerated from out/eval/results.json and out/bench.json
# (run `make eval` and `make bench` first); never edited by hand.
results: $(STAMP)
	$(PY) -m flame_lipsync.tools.readme_results
