"""Training and fine-tuning the U-Nets (torch): simulated or labelled pairs in, checkpoints out.

- :mod:`.train`: the training loop, its options (:class:`~.train.TrainConfig`) and presets;
- :mod:`.augment`: rotation, mirror, crop and dose augmentation of (image, target) pairs;
- :mod:`.losses`: border-weighted cross-entropy and soft Dice;
- :mod:`.realdata`: labelled image folders (``images/image_K.png`` + ``labels/label_K.png``).

Inference (:mod:`temstream.models`) never imports this subpackage (an import-linter contract).
"""
