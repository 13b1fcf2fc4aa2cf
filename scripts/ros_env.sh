# Source me: keeps ROS 2 / Fast DDS traffic on this machine (loopback UDP + shared memory).
_nsr_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$(python3 "$_nsr_root/narrow_seg_ros/dds.py")"  # the variables, defined once there
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# A domain of our own unless the caller chose one (tests pick their own per run as well).
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 100 ))}"
# launch, ros2cli and vision_msgs built by scripts/setup.sh from ../shared/ros2_src, where present
# (NSR_ROS2_TOOLS: another environment's build, e.g. .ros2_tools-jazzy)
_nsr_tools="${NSR_ROS2_TOOLS:-$_nsr_root/.ros2_tools}"
if [ -f "$_nsr_tools/env.sh" ]; then source "$_nsr_tools/env.sh"; fi
unset _nsr_tools
unset _nsr_root
