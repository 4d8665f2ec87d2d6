# MoGenTS fine-tuning through the hftrainer host: the `length` stage (the length estimator).
# Usage (from a checkout of the host):
#   MOGENTS_ARTIFACT=path/or/hub-id MOGENTS_DATA=path/to/HumanML3D \
#   python tools/train.py $(python -c "from hftrainer_mogents.training.configs import config_path; print(config_path('length'))") --work-dir work_dirs/mogents_length
# or: mogents finetune --stage length --data DIR --from ARTIFACT --work-dir DIR
# Several GPUs: bash tools/dist_train.sh CONFIG N (accelerate launch underneath).

custom_imports = dict(imports=["hftrainer_mogents.training.host.setup"], allow_failed_imports=False)

ARTIFACT = "{{$MOGENTS_ARTIFACT:ZeyuLing/hftrainer-mogents-humanml3d}}"
DATA_ROOT = "{{$MOGENTS_DATA:data/HumanML3D}}"
STAGE = "length"
SEED = 0

# the artifact's weights, the stage preset (its networks train, the others are frozen), and
# optional per-module overrides such as text_encoder=dict(trainable=False, save_ckpt=False)
model = dict(type="MoGenTSTrainingBundle", pretrained=ARTIFACT, stage=STAGE)

trainer = dict(type="MoGenTSTrainer", seed=SEED, mode="default", grad_clip="preset")

train_dataloader = dict(
    dataset=dict(
        type="HumanML3DTrainDataset",
        data_root=DATA_ROOT,
        artifact=ARTIFACT,
        split="train",
        stage=STAGE,
        seed=SEED,
        # the dataset orders each epoch from (seed, epoch) itself (resumable): no loader shuffle
        shuffle=True,
    ),
    batch_size=64,
    num_workers=4,
    shuffle=False,
    drop_last=True,
)

# official: Adam 1e-4, constant, gradient norm clipped at 0.5 (by the trainer)
optimizer = dict(type="Adam", lr=1e-4)
lr_scheduler = dict(type="constant")

train_cfg = dict(by_epoch=False, max_iters=50000)

work_dir = "work_dirs/mogents_length"
auto_resume = False
load_from = None

accelerator = dict(mixed_precision="no", gradient_accumulation_steps=1, log_with=None)

default_hooks = dict(
    checkpoint=dict(type="CheckpointHook", interval=5000, max_keep_ckpts=3, save_last=True),
    logger=dict(type="LoggerHook", interval=50),
)
