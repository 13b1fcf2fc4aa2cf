"""narrow_seg_ros: real-time semantic segmentation (NDNet, VNet) for ROS 2 driving stacks."""

__version__ = "0.1.0"
