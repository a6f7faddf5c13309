"""The README's main job: build every HAT-Net architecture and print its
parameter table (backbone; with the ImageNet classifier; the release's
count, which includes the unused proj_norm)."""
import torch

from mmhatnet import HATNet
from mmhatnet.checkpoint import release_layout


def parameter_table() -> str:
    rows = ['| arch | backbone (M) | + classifier (M) | release (M) | '
            'dropped proj_norm (M) |', '|---|---|---|---|---|']
    for arch in ('tiny', 'small', 'medium', 'large'):
        backbone = sum(p.numel() for p in HATNet(arch).parameters())
        layout = release_layout(arch)
        size = {k: torch.Size(s).numel() for k, s in layout.items()}
        classifier = sum(v for k, v in size.items()
                         if k.startswith('classifier.'))
        proj_norm = sum(v for k, v in size.items() if 'proj_norm' in k)
        rows.append(f'| {arch} | {backbone / 1e6:.2f} | '
                    f'{(backbone + classifier) / 1e6:.2f} | '
                    f'{sum(size.values()) / 1e6:.2f} | '
                    f'{proj_norm / 1e6:.3f} |')
    return '\n'.join(rows)


if __name__ == '__main__':
    print(parameter_table())
