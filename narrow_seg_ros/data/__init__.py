"""Data: labelled datasets (Cityscapes layout, folder datasets such as CamVid), their transforms and
sampling inputs, rosbag2 recordings, image/video frame sources, and the synthetic street-scene generator."""
