"""Data: the Cityscapes label table, loader and augmentation, and the synthetic street-scene generator."""
