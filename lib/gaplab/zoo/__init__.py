"""Real pretrained models: encode real data with any open_clip model, report its gap, compare many models.

* :mod:`gaplab.zoo.datasets` - readers for the layouts users have (COCO captions, a caption CSV, class folders,
  CIFAR, MIT-States, UT-Zappos)
* :mod:`gaplab.zoo.models` - open_clip models by tag or local checkpoint, failing fast offline
* :mod:`gaplab.zoo.encode` - batched encoding with an on-disk cache that resumes by chunk
* :mod:`gaplab.zoo.report` - one model's measures (``python -m gaplab report``)
* :mod:`gaplab.zoo.survey` - many models and the paper's rank correlations
* :mod:`gaplab.zoo.compare` - one comparison table for either set of models, as the chapter reads it
* :mod:`gaplab.zoo.fairness` - Liang et al.'s FairFace probe of denigration harm under a shifted gap
* :mod:`gaplab.experiments.mad_zoo` - the offline analogue: the book's own MAD models as a controlled zoo
"""
