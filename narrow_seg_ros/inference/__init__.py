"""Inference engine: pre-process → backend → post-process, independent of ROS."""
