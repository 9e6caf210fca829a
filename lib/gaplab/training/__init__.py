"""The model-and-training layer: MAD models as open_clip configurations, the CNN image tower, the tokenizer,
the losses, precision by device, and the one step loop that trains single runs and grids.

- :mod:`~gaplab.training.models`, :mod:`~gaplab.training.cnn`, :mod:`~gaplab.training.tokenizer`: the models;
- :mod:`~gaplab.training.losses`: CLIP's loss and the terms added to it;
- :mod:`~gaplab.training.precision`: the numeric precision each device trains in;
- :mod:`~gaplab.training.config`: what determines a run (``TrainConfig.from_profile``) and its result;
- :mod:`~gaplab.training.train`: one run's set-up and the step loop single runs, grids and the same-modality
  control share; :mod:`~gaplab.training.step`: one optimiser step, its schedule and loss;
  :mod:`~gaplab.training.evaluate`: what a run measures; :mod:`~gaplab.training.checkpoint`: resumable state;
- :mod:`~gaplab.training.grid`, :mod:`~gaplab.training.grid_stack`: many runs trained as one stacked model.
"""
