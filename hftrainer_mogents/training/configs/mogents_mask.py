# MoGenTS fine-tuning through the hftrainer host: the `mask` stage (the 1D and 2D mask transformers).
# Usage (from a checkout of the host):
#   MOGENTS_ARTIFACT=path/or/hub-id MOGENTS_DATA=path/to/HumanML3D \
#   python tools/train.py $(python -c "from hftrainer_mogents.training.configs import config_path; print(config_path('mask'))") --work-dir work_dirs/mogents_mask
# or: mogents finetune --stage mask --data DIR --from ARTIFACT --work-dir DIR
# Several GPUs: bash tools/dist_train.sh CONFIG N (accelerate launch underneath).

_base_ = ["./_mogents_base.py"]

STAGE = "mask"
model = dict(stage=STAGE)

# official_schedule: the official warm-up (and the VQ's step decays) set by the trainer
trainer = dict(official_schedule=True)

train_dataloader = dict(dataset=dict(stage=STAGE), batch_size=64)

# official: AdamW 2e-4, betas (0.9, 0.99), wd 1e-5, 2000 warm-up iterations
optimizer = dict(type="AdamW", lr=2e-4, betas=(0.9, 0.99), weight_decay=1e-5)
lr_scheduler = None  # the trainer applies the official schedule

train_cfg = dict(max_iters=500000)

work_dir = "work_dirs/mogents_mask"

# Keep the best-FID checkpoint as the official training does (evaluator files from
# `mogents convert-evaluator`; FID on the folder's test split, the protocol's items; then
# `mogents export WORK_DIR --checkpoint WORK_DIR/best_fid`):
# val_dataloader = dict(
#     dataset=dict(type="HumanML3DEvalDataset", data_root=DATA_ROOT, split="test"),
#     batch_size=32, shuffle=False)
# val_evaluator = dict(type="HumanML263Evaluator", ckpt_dir="checkpoints/evaluator/hml263",
#                      dataset_root=DATA_ROOT, evaluate_kwargs=dict(n_repeats=1))
# default_hooks["best"] = dict(type="BestCheckpointHook", interval=5000, metric="fid")
