# MoGenTS fine-tuning through the hftrainer host: the `vq` stage (the dual-stream RVQ-VAE).
# Usage (from a checkout of the host):
#   MOGENTS_ARTIFACT=path/or/hub-id MOGENTS_DATA=path/to/HumanML3D \
#   python tools/train.py $(python -c "from hftrainer_mogents.training.configs import config_path; print(config_path('vq'))") --work-dir work_dirs/mogents_vq
# or: mogents finetune --stage vq --data DIR --from ARTIFACT --work-dir DIR
# Several GPUs: bash tools/dist_train.sh CONFIG N (accelerate launch underneath).

custom_imports = dict(imports=["hftrainer_mogents.training.host.setup"], allow_failed_imports=False)

ARTIFACT = "{{$MOGENTS_ARTIFACT:ZeyuLing/hftrainer-mogents-humanml3d}}"
DATA_ROOT = "{{$MOGENTS_DATA:data/HumanML3D}}"
STAGE = "vq"
SEED = 0

# the artifact's weights, the stage preset (its networks train, the others are frozen), and
# optional per-module overrides such as text_encoder=dict(trainable=False, save_ckpt=False)
model = dict(type="MoGenTSTrainingBundle", pretrained=ARTIFACT, stage=STAGE)

# official_schedule: the official warm-up (and the VQ's step decays) set by the trainer
trainer = dict(type="MoGenTSTrainer", seed=SEED, mode="default", official_schedule=True)

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
    batch_size=256,
    num_workers=4,
    shuffle=False,
    drop_last=True,
)

# official: AdamW 2e-4, betas (0.9, 0.99), 2000 warm-up iterations, x0.1 at 150k/250k
optimizer = dict(type="AdamW", lr=2e-4, betas=(0.9, 0.99), weight_decay=0.0)
lr_scheduler = None  # the trainer applies the official schedule

train_cfg = dict(by_epoch=False, max_iters=300_000)

work_dir = "work_dirs/mogents_vq"
auto_resume = False
load_from = None

accelerator = dict(mixed_precision="no", gradient_accumulation_steps=1, log_with=None)

default_hooks = dict(
    checkpoint=dict(type="CheckpointHook", interval=5000, max_keep_ckpts=3, save_last=True),
    logger=dict(type="LoggerHook", interval=50),
)
