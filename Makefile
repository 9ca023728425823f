# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENV45 := .venv45
PY45 := $(VENV45)/bin/python
STAMP45 := $(VENV45)/.installed
SHARED := ../shared/assets
DEMO_AUDIO ?= $(SHARED)/speech/librivox/sense_and_sensibility_01_austen_64kb-0870.wav
DEMO_TRANSCRIPT ?= $(SHARED)/speech/librivox/sense_and_sensibility_01_austen_64kb-0870.txt
DEMO_HEAD ?= $(SHARED)/flame/flame_template.ply

.PHONY: venv demo test bench eval rig docs docs-demo clean

venv: $(STAMP)

# Pinned environment; pocketsphinx, soundfile and bpy ship their native parts
# as wheels, so no Debian package is needed.
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# Second environment: Blender 4.5 LTS (bpy wheel), same pins otherwise; the
# Blender-side tests run under both 5.0 (.venv) and 4.5 (.venv45).
.PHONY: venv45 build
venv45: $(STAMP45)

$(STAMP45): requirements-blender45.txt
	$(PYTHON) -m venv $(VENV45)
	$(PY45) -m pip install --quiet --upgrade pip
	$(PY45) -m pip install --quiet -r requirements-blender45.txt
	touch $(STAMP45)

# The extension zip(s) in dist/, built and validated by Blender's own extension
# tooling (the bl_pkg CLI that `blender --command extension` runs, shipped in the
# bpy wheel) with Blender's list of valid tags.
BL_PKG_GLOB := $(VENV)/lib/python*/site-packages/bpy/*/scripts/addons_core/bl_pkg
build: $(STAMP)
	@bl_pkg=$$(ls -d $(BL_PKG_GLOB) | head -n 1); \
	[ -n "$$bl_pkg" ] || { echo "blender_ext.py not found under $(VENV) (bpy wheel)"; exit 1; }; \
	tags="$$bl_pkg/../../modules/_bpy_internal/extensions/tags.py"; \
	mkdir -p dist; rm -f dist/*.zip; \
	set -e; \
	$(PY) "$$bl_pkg/cli/blender_ext.py" build --source-dir . --output-dir dist --valid-tags "$$tags"; \
	for zip in dist/*.zip; do \
	  $(PY) "$$bl_pkg/cli/blender_ext.py" validate --valid-tags "$$tags" "$$zip"; \
	  ls -l "$$zip"; \
	done

demo: $(STAMP)
	@if [ ! -f "$(DEMO_AUDIO)" ] || [ ! -f "$(DEMO_HEAD)" ]; then \
	  echo "Demo inputs not found ($(DEMO_AUDIO), $(DEMO_HEAD))."; \
	  echo "Run: make demo DEMO_AUDIO=speech.wav DEMO_HEAD=head.ply [DEMO_TRANSCRIPT=words.txt]"; exit 2; fi
	$(PY) cli.py bake --audio "$(DEMO_AUDIO)" $(if $(wildcard $(DEMO_TRANSCRIPT)),--transcript "$(DEMO_TRANSCRIPT)") \
	  --head "$(DEMO_HEAD)" --fps 30 --out out/demo.blend --export-npy out/demo.npy
	$(PY) cli.py preview out/demo.blend --out out/demo.mp4 --stills out/demo_stills

test: $(STAMP) $(STAMP45)
	$(PY) -m pytest -q tests
	$(PY45) -m pytest -q tests/blender

bench: $(STAMP)
	$(PY) tools/bench.py
	$(PY) tools/bench_bake.py

# Lip-sync metrics of every engine on every shared clip, with and without transcripts:
# out/eval/results.json, results.md and plots/*.png (tools/evaluate.py).
eval: $(STAMP)
	$(PY) cli.py eval --engine all --transcripts --out out/eval

# Rebuild committed artefacts from ../shared/assets.
rig: $(STAMP)
	$(PY) tools/build_rig.py

LIBRIVOX := $(SHARED)/speech/librivox/sense_and_sensibility_01_austen_64kb-0870
docs: $(STAMP)
	$(PY) cli.py render-frames rig --out docs/rig_controls.png
	$(PY) cli.py render-frames clip --audio $(LIBRIVOX).wav --transcript $(LIBRIVOX).txt \
	  --reference $(LIBRIVOX).phone.json --out docs/librivox_0870_phonetic.png

clean:
	rm -rf out dist .pytest_cache

# Four stills of the demo movie as one sheet (needs `make demo` first).
docs-demo: $(STAMP)
	$(PY) -c "import sys; sys.path.insert(0, '.'); import addon_package; addon_package.load_addon(); \
	from pathlib import Path; from flame_lipsync.operators.render_frames import contact_sheet; \
	p = sorted(Path('out/demo_stills').glob('*.png')); \
	contact_sheet(p, [x.stem.replace('_', ' ') for x in p], 4, Path('docs/demo_stills.png'), \
	title='make demo: librivox 0870 on flame_template, shape-key bake, Workbench preview')"
