# What every MoGenTS fine-tuning config shares (the stage configs inherit it through `_base_`):
# the artifact and data, the training bundle and trainer, the data loader, the runtime.
# A stage config adds its stage, batch, optimiser, schedule and steps.

custom_imports = dict(imports=["hftrainer_mogents.training.host.setup"], allow_failed_imports=False)

ARTIFACT = "{{$MOGENTS_ARTIFACT:ZeyuLing/hftrainer-mogents-humanml3d}}"
DATA_ROOT = "{{$MOGENTS_DATA:data/HumanML3D}}"
SEED = 0

# the artifact's weights, the stage preset (its networks train, the others are frozen), and
# optional per-module overrides such as text_encoder=dict(trainable=False, save_ckpt=False)
model = dict(type="MoGenTSTrainingBundle", pretrained=ARTIFACT)

trainer = dict(type="MoGenTSTrainer", seed=SEED, mode="default")

train_dataloader = dict(
    dataset=dict(
        type="HumanML3DTrainDataset",
        data_root=DATA_ROOT,
        artifact=ARTIFACT,
        split="train",
        seed=SEED,
        # the dataset orders each epoch from (seed, epoch) itself (resumable): no loader shuffle
        shuffle=True,
    ),
    num_workers=4,
    shuffle=False,
    drop_last=True,
)

train_cfg = dict(by_epoch=False)

auto_resume = False
load_from = None

accelerator = dict(mixed_precision="no", gradient_accumulation_steps=1, log_with=None)

default_hooks = dict(
    checkpoint=dict(type="CheckpointHook", interval=5000, max_keep_ckpts=3, save_last=True),
    logger=dict(type="LoggerHook", interval=50),
)
