from setuptools import find_packages, setup

setup(
    name='mmhatnet',
    version='0.1.0',
    description='HAT-Net (Vision Transformers with Hierarchical Attention) '
    'backbones for mmdet, mmseg and mmpretrain',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(include=['mmhatnet', 'mmhatnet.*']),
    # Ranges the OpenMMLab releases accept; the exact, tested set is
    # requirements/stack.txt.
    install_requires=[
        'torch>=2.1',
        'mmengine>=0.10.0,<1.0',
        'mmcv>=2.0.0rc4,<2.2.0',
    ],
    extras_require={
        'det': ['mmdet>=3.0,<3.4'],
        'seg': ['mmsegmentation>=1.0,<1.3', 'ftfy', 'regex'],
        'cls': ['mmpretrain>=1.0,<1.3'],
        'all': ['mmdet>=3.0,<3.4', 'mmsegmentation>=1.0,<1.3', 'ftfy',
                'regex', 'mmpretrain>=1.0,<1.3'],
        # tools/export_onnx.py and benchmark --onnx (README, Deployment);
        # onnxscript is what torch.onnx's dynamo exporter translates with
        'deploy': ['onnx>=1.16', 'onnxruntime>=1.18', 'onnxscript>=0.3'],
    },
)
