# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv/ when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned here (a local CPU wheel on the CI machine); pyproject keeps a range for users.
TORCH_PIN := torch==2.13.0
# The bundled defaults: trained on the synthetic world only (see README), committed under samples/models.
MODELS := samples/models

.PHONY: demo test setup clean defaults faces

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

demo: setup
	$(BIN)/edgereid demo --reid $(MODELS)/reid/model.onnx --keypoints $(MODELS)/keypoints/model.onnx \
		--face $(MODELS)/face/model.onnx --out edgereid-demo

# Retrain the bundled defaults (each under ~20 minutes on 2 cores; each run exports model.onnx), then
# store accept thresholds at FAR 1e-3 chosen on held-out world seed 600.
defaults: setup
	$(BIN)/edgereid train --config samples/configs/reid_supervised.yaml
	$(BIN)/edgereid train --config samples/configs/keypoints_supervised.yaml
	$(BIN)/edgereid train --config samples/configs/face_supervised.yaml
	$(BIN)/edgereid calibrate --model $(MODELS)/reid/model.onnx --far 1e-3 --seed 600
	$(BIN)/edgereid calibrate --model $(MODELS)/face/model.onnx --far 1e-3 --seed 600

# The low-resolution face benchmark (README "Low-resolution faces"): CoReFace teacher, CCFace student
# distilled from it, the LR-direct student and the ArcFace-only teacher, then the table and plots.
FACE_RUNS := runs/faces
faces: setup
	$(BIN)/edgereid train --config samples/configs/coreface_teacher.yaml
	$(BIN)/edgereid distill --config samples/configs/ccface_student.yaml
	$(BIN)/edgereid train --config samples/configs/lr_direct_face_student.yaml
	$(BIN)/edgereid train --config samples/configs/arcface_teacher.yaml
	$(BIN)/edgereid evaluate faces --out docs/faces \
		--model "ArcFace teacher (HR, 64 px)=$(FACE_RUNS)/arcface_teacher/model.onnx" \
		--model "CoReFace teacher (HR, 64 px)=$(FACE_RUNS)/coreface_teacher/model.onnx" \
		--model "student trained on LR (32 px)=$(FACE_RUNS)/lr_direct_student/model.onnx" \
		--model "CCFace student (32 px)=$(FACE_RUNS)/ccface_student/model.onnx"

clean:
	rm -rf $(VENV) edgereid-demo .pytest_cache
