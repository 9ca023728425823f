# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED := ../shared/assets
DEMO_AUDIO ?= $(SHARED)/speech/librivox/sense_and_sensibility_01_austen_64kb-0870.wav
DEMO_TRANSCRIPT ?= $(SHARED)/speech/librivox/sense_and_sensibility_01_austen_64kb-0870.txt
DEMO_HEAD ?= $(SHARED)/flame/flame_template.ply

.PHONY: venv demo test bench rig docs clean

venv: $(STAMP)

# Pinned environment; pocketsphinx, soundfile and bpy ship their native parts
# as wheels, so no Debian package is needed.
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	@if [ ! -f "$(DEMO_AUDIO)" ] || [ ! -f "$(DEMO_HEAD)" ]; then \
	  echo "Demo inputs not found ($(DEMO_AUDIO), $(DEMO_HEAD))."; \
	  echo "Run: make demo DEMO_AUDIO=speech.wav DEMO_HEAD=head.ply [DEMO_TRANSCRIPT=words.txt]"; exit 2; fi
	$(PY) cli.py animate --audio "$(DEMO_AUDIO)" $(if $(wildcard $(DEMO_TRANSCRIPT)),--transcript "$(DEMO_TRANSCRIPT)") \
	  --head "$(DEMO_HEAD)" --fps 30 --export-npy out/demo.npy
	$(PY) cli.py render-frames clip --audio "$(DEMO_AUDIO)" $(if $(wildcard $(DEMO_TRANSCRIPT)),--transcript "$(DEMO_TRANSCRIPT)") \
	  --head "$(DEMO_HEAD)" --out out/demo_frames.png

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) tools/bench.py

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
