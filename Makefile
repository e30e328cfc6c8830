# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv/ when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned here (a local CPU wheel on the CI machine); pyproject keeps a range for users.
TORCH_PIN := torch==2.13.0
MODELS := .cache/models
# Until trained defaults are bundled, the demo runs randomly initialised students.
DEMO_MODELS := $(MODELS)/reid.onnx $(MODELS)/keypoints.onnx $(MODELS)/face.onnx

.PHONY: demo test setup clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[dev]"
	# rank.py of torchreid is a test-time cross-check only; the package itself does not import here.
	$(BIN)/pip install -q --no-deps torchreid==0.2.5
	touch $@

setup: $(VENV)/.installed

test: setup
	$(BIN)/python -m pytest tests --durations=15

$(MODELS)/reid.onnx: setup
	$(BIN)/edgereid export --model reid_mobilenet_w050_128x64 --out $@
$(MODELS)/keypoints.onnx: setup
	$(BIN)/edgereid export --model kp_mobilenet_w050_128x96 --out $@
$(MODELS)/face.onnx: setup
	$(BIN)/edgereid export --model face_mobilefacenet_32 --out $@

demo: $(DEMO_MODELS)
	$(BIN)/edgereid demo --reid $(MODELS)/reid.onnx --keypoints $(MODELS)/keypoints.onnx \
		--face $(MODELS)/face.onnx --out edgereid-demo

clean:
	rm -rf $(VENV) edgereid-demo .cache .pytest_cache
