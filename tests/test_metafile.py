"""configs/metafile.yml (what `mim search` shows): every accuracy is
marked as the paper's, in the metric's name, and is the number the model
zoo pages (README.md, configs/README.md) give."""
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_accuracies_are_marked_as_the_papers_and_match_the_readme():
    with open(os.path.join(ROOT, 'configs', 'metafile.yml')) as f:
        models = yaml.safe_load(f)['Models']
    readme = ''.join(open(os.path.join(ROOT, page)).read()
                     for page in ('README.md', 'configs/README.md'))
    for model in models:
        for result in model['Results']:
            for name, value in result['Metrics'].items():
                assert name.endswith(' (paper)'), (model['Name'], name)
                assert re.search(rf'\b{value}\b', readme), \
                    (model['Name'], name, value)
