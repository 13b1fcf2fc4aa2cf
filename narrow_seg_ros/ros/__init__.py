"""ROS 2 glue for narrow_seg_ros: message conversion and (later) the segmentation node."""
