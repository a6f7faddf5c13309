from setuptools import find_packages, setup

setup(
    name='mmhatnet',
    version='0.1.0',
    description='HAT-Net (Vision Transformers with Hierarchical Attention) '
    'backbones for mmdet, mmseg and mmpretrain',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    # Exactly the stacks tools/run.sh tests (docs/get_started.md): the
    # bottom of each range is requirements/py38.txt (Python 3.8, torch
    # 2.0.1, numpy 1.24.4, mmengine 0.8.5, mmcv 2.0.1, mmdet 3.0.0, mmseg
    # 1.0.0, mmpretrain 1.0.0), the top requirements/stack.txt (Python
    # 3.11, torch 2.14.1, numpy 2, mmengine 0.10.7, mmcv 2.1.0, mmdet
    # 3.3.0, mmseg 1.2.2, mmpretrain 1.2.0); requirements/common.txt is the
    # common torch 2.0 + mmcv 2.1.0 environment between them.
    python_requires='>=3.8',
    packages=find_packages(include=['mmhatnet', 'mmhatnet.*']),
    install_requires=[
        'torch>=2.0.1',
        'numpy>=1.24.4,<2.4',
        'mmengine>=0.8.5,<0.11',
        'mmcv>=2.0.1,<2.2.0',
    ],
    extras_require={
        'det': ['mmdet>=3.0,<3.4'],
        'seg': ['mmsegmentation>=1.0,<1.3,!=1.2.0', 'ftfy', 'regex'],
        'cls': ['mmpretrain>=1.0,<1.3'],
        'all': ['mmdet>=3.0,<3.4', 'mmsegmentation>=1.0,<1.3,!=1.2.0', 'ftfy',
                'regex', 'mmpretrain>=1.0,<1.3'],
        # tools/export_onnx.py and benchmark --onnx (docs: deployment.md);
        # onnxscript is what torch.onnx's dynamo exporter translates with.
        # Tested on the newest stack only.
        'deploy': ['onnx>=1.16', 'onnxruntime>=1.18', 'onnxscript>=0.3'],
    },
)
