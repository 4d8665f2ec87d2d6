# MoGenTS fine-tuning through the hftrainer host: the `length` stage (a smoke test: 4 steps on a tiny artifact and folder).
# Usage (from a checkout of the host):
#   MOGENTS_ARTIFACT=path/or/hub-id MOGENTS_DATA=path/to/HumanML3D \
#   python tools/train.py $(python -c "from hftrainer_mogents.training.configs import config_path; print(config_path('tiny'))") --work-dir work_dirs/mogents_tiny
# or: mogents finetune --stage length --data DIR --from ARTIFACT --work-dir DIR
# Several GPUs: bash tools/dist_train.sh CONFIG N (accelerate launch underneath).

_base_ = ["./_mogents_base.py"]

STAGE = "length"
model = dict(stage=STAGE)

trainer = dict(grad_clip="preset")

train_dataloader = dict(dataset=dict(stage=STAGE), batch_size=4, num_workers=0, drop_last=False)

# a quick smoke test: a few steps of the length stage
optimizer = dict(type="Adam", lr=1e-3)
lr_scheduler = dict(type="constant")

train_cfg = dict(max_iters=4)

work_dir = "work_dirs/mogents_tiny"

default_hooks = dict(checkpoint=dict(interval=1000), logger=dict(interval=1))
