from setuptools import find_packages, setup

setup(
    name='mmhatnet',
    version='0.1.0',
    description='HAT-Net (Vision Transformers with Hierarchical Attention) '
    'backbones for mmdet, mmseg and mmpretrain',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    # Exactly the stacks tools/run.sh tests (README, "Environment"):
    # requirements/oldest.txt (Python 3.9, torch 2.0.1, numpy 1.26,
    # mmengine 0.8.5, mmdet 3.2.0, mmseg 1.2.1, mmpretrain 1.1.1) and
    # requirements/stack.txt (Python 3.11, torch 2.14.1, numpy 2, mmengine
    # 0.10.7, mmdet 3.3.0, mmseg 1.2.2, mmpretrain 1.2.0), mmcv 2.1.0 on
    # both; requirements/py38.txt (Python 3.8, numpy 1.24.4, the package
    # without the toolboxes).
    python_requires='>=3.8',
    packages=find_packages(include=['mmhatnet', 'mmhatnet.*']),
    install_requires=[
        'torch>=2.0.1',
        'numpy>=1.24.4,<2.4',
        'mmengine>=0.8.5,<0.11',
        'mmcv>=2.1.0,<2.2.0',
    ],
    extras_require={
        'det': ['mmdet>=3.2,<3.4'],
        'seg': ['mmsegmentation>=1.2.1,<1.3', 'ftfy', 'regex'],
        'cls': ['mmpretrain>=1.1.1,<1.3'],
        'all': ['mmdet>=3.2,<3.4', 'mmsegmentation>=1.2.1,<1.3', 'ftfy',
                'regex', 'mmpretrain>=1.1.1,<1.3'],
        # tools/export_onnx.py and benchmark --onnx (README, Deployment);
        # onnxscript is what torch.onnx's dynamo exporter translates with.
        # Tested on the newest stack only.
        'deploy': ['onnx>=1.16', 'onnxruntime>=1.18', 'onnxscript>=0.3'],
    },
)
