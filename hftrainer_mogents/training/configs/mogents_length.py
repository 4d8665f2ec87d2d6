# MoGenTS fine-tuning through the hftrainer host: the `length` stage (the length estimator).
# Usage (from a checkout of the host):
#   MOGENTS_ARTIFACT=path/or/hub-id MOGENTS_DATA=path/to/HumanML3D \
#   python tools/train.py $(python -c "from hftrainer_mogents.training.configs import config_path; print(config_path('length'))") --work-dir work_dirs/mogents_length
# or: mogents finetune --stage length --data DIR --from ARTIFACT --work-dir DIR
# Several GPUs: bash tools/dist_train.sh CONFIG N (accelerate launch underneath).

_base_ = ["./_mogents_base.py"]

STAGE = "length"
model = dict(stage=STAGE)

trainer = dict(grad_clip="preset")

train_dataloader = dict(dataset=dict(stage=STAGE), batch_size=64)

# official: Adam 1e-4, constant, gradient norm clipped at 0.5 (by the trainer)
optimizer = dict(type="Adam", lr=1e-4)
lr_scheduler = dict(type="constant")

train_cfg = dict(max_iters=50000)

work_dir = "work_dirs/mogents_length"
