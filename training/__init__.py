"""Training of the neural engines (not shipped: excluded from the extension zip):
datasets (TTS corpus, VOCASET), augmentation, losses, the training loop, calibration.

    python -m flame_lipsync.training.train --config training/configs/voca.json
"""
