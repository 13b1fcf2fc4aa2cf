"""ROS 2 adapters over the engine: seg_node, image_player, message conversion, camera_info scaling."""
