"""Check this machine's stack on every device it has; one table, exit
status 1 on any failure (mmhatnet/apis/selfcheck.py).

    python tools/check.py [--train fpn retinanet mask-rcnn]
"""
from __future__ import annotations

import sys

from mmhatnet.apis.selfcheck import main

if __name__ == '__main__':
    sys.exit(main())
