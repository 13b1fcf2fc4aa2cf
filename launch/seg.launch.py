"""ros2 launch narrow_seg_ros seg.launch.py [image:=/camera/image_raw] [demo:=true] [rviz:=true]

Starts seg_node with config/seg.yaml; `demo:=true` adds image_player publishing the shipped
synthetic street sequence (or `demo_source:=<folder|video>`), so the pipeline runs with no camera.
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description():
    share = FindPackageShare("narrow_seg_ros")
    arg = LaunchConfiguration
    args = [
        DeclareLaunchArgument("image", default_value="image", description="input image topic"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace for the nodes"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "seg.yaml"])),
        DeclareLaunchArgument("weights", default_value="", description="weights file; empty = shipped"),
        DeclareLaunchArgument("model", default_value="ndnet45", description="shipped model: ndnet45 | vnet"),
        DeclareLaunchArgument("backend", default_value="auto", description="auto | torch | onnxruntime"),
        DeclareLaunchArgument("device", default_value="auto", description="auto | cpu | cuda | cuda:N"),
        DeclareLaunchArgument("use_compressed", default_value="false"),
        DeclareLaunchArgument("demo", default_value="false", description="play the shipped street sequence"),
        DeclareLaunchArgument("demo_source", default_value="", description="folder or video for the demo player"),
        DeclareLaunchArgument("demo_rate", default_value="10.0"),
        DeclareLaunchArgument("rviz", default_value="false", description="open RViz with config/seg.rviz"),
    ]
    seg_node = Node(
        package="narrow_seg_ros",
        executable="seg_node",
        name="seg_node",
        namespace=arg("namespace"),
        parameters=[
            arg("params_file"),
            {
                "weights": arg("weights"),
                "model": arg("model"),
                "backend": arg("backend"),
                "device": arg("device"),
                "use_compressed": arg("use_compressed"),
            },
        ],
        remappings=[("image", arg("image")), ("image/compressed", [arg("image"), "/compressed"])],
        output="screen",
        emulate_tty=True,
    )
    player = Node(
        package="narrow_seg_ros",
        executable="image_player",
        name="image_player",
        namespace=arg("namespace"),
        parameters=[{"source": arg("demo_source"), "rate": arg("demo_rate"), "publish_compressed": True}],
        remappings=[("image", arg("image")), ("image/compressed", [arg("image"), "/compressed"])],
        condition=IfCondition(arg("demo")),
        output="screen",
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", PathJoinSubstitution([share, "config", "seg.rviz"])],
        condition=IfCondition(arg("rviz")),
    )
    return LaunchDescription([*args, seg_node, player, rviz])
