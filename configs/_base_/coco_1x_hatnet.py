# COCO 1x for detectors with a HAT-Net backbone (paper Table 5; PVT's
# recipe): batch 16 (8 GPUs x 2), 12 epochs, AdamW lr 1e-4, wd 1e-4,
# 500-iteration linear warm-up, lr x0.1 after epochs 8 and 11, 1333x800
# keep-ratio resize, flip 0.5. The model comes from the config that uses
# this file; Mask R-CNN takes the instance_* pipelines, which also load
# masks.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    './hatnet_runtime.py',  # custom_imports, custom_hooks
]

data_root = 'data/coco/'


def _pipelines(with_mask):
    """(train, test) pipelines; CheckAnnotationSize is mmhatnet.datasets'"""
    load = dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask)
    resize = dict(type='Resize', scale=(1333, 800), keep_ratio=True)
    train = [
        dict(type='LoadImageFromFile'), load, resize,
        dict(type='RandomFlip', prob=0.5),
        dict(type='CheckAnnotationSize'),
        dict(type='PackDetInputs')
    ]
    test = [
        dict(type='LoadImageFromFile'), resize, load,
        dict(type='CheckAnnotationSize'),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                        'scale_factor'))
    ]
    return train, test


train_pipeline, test_pipeline = _pipelines(with_mask=False)
instance_train_pipeline, instance_test_pipeline = _pipelines(with_mask=True)

train_dataloader = dict(
    batch_size=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))
auto_scale_lr = dict(base_batch_size=16)

# mmhatnet.engine: atomic checkpoint writes
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')))
