# MoGenTS fine-tuning through the hftrainer host: the `vq` stage (the dual-stream RVQ-VAE).
# Usage (from a checkout of the host):
#   MOGENTS_ARTIFACT=path/or/hub-id MOGENTS_DATA=path/to/HumanML3D \
#   python tools/train.py $(python -c "from hftrainer_mogents.training.configs import config_path; print(config_path('vq'))") --work-dir work_dirs/mogents_vq
# or: mogents finetune --stage vq --data DIR --from ARTIFACT --work-dir DIR
# Several GPUs: bash tools/dist_train.sh CONFIG N (accelerate launch underneath).

_base_ = ["./_mogents_base.py"]

STAGE = "vq"
model = dict(stage=STAGE)

# official_schedule: the official warm-up (and the VQ's step decays) set by the trainer
trainer = dict(official_schedule=True)

train_dataloader = dict(dataset=dict(stage=STAGE), batch_size=256)

# official: AdamW 2e-4, betas (0.9, 0.99), 2000 warm-up iterations, x0.1 at 150k/250k
optimizer = dict(type="AdamW", lr=2e-4, betas=(0.9, 0.99), weight_decay=0.0)
lr_scheduler = None  # the trainer applies the official schedule

train_cfg = dict(max_iters=300_000)

work_dir = "work_dirs/mogents_vq"
