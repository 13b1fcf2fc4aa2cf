"""CamVid's 11 classes and their colours (the SegNet tutorial's class table), without torch: the
folder dataset's CamVid spec and the fuzzing of label groups for a CamVid model read it."""

NAMES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist")
PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
           (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))  # fmt: skip
IGNORE_INDEX = 11  # the label files' "Void"
