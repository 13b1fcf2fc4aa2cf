"""ros2 launch narrow_seg_ros seg.launch.py [image:=/camera/image_raw] [demo:=true] [rviz:=true]
                                            [cameras:=front,left,right,rear [camera_topic:=image_raw]]
                                            [managed:=true [autostart:=true]]

Starts seg_node with config/seg.yaml (or `params_file:=`); `demo:=true` adds image_player publishing the
shipped synthetic street sequence (or `demo_source:=<folder|video|recording>`), so the pipeline runs with
no camera. `cameras:=` (comma-separated or a YAML list) makes one seg_node serve every camera with one
model: camera `front` reads `front/<camera_topic>` and publishes `seg_node/front/mask` and the rest;
with `demo:=true` one player per camera plays the sequence to it.
weights/model/backend/device/use_compressed/transport override the parameter file only when given.
The launch stops as a whole when seg_node exits, with a non-zero code when it failed (a bad
configuration: its one FATAL line says why); a params_file that does not exist is an error too.
`managed:=true` starts seg_node as a managed node (seg_lifecycle_node, docs/lifecycle.md): unconfigured,
for a lifecycle manager to bring up; with `autostart:=true` this launch configures and activates it
itself. A managed node's bad configuration fails its configure transition (logged) and the node stays up,
unconfigured: the launch goes on.
"""

from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit, OnProcessStart
from launch.events import matches_action
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription

# what `narrow-seg demo` plays the shipped synthetic sequence with (narrow_seg_ros.resources.DEMO_MODEL)
DEMO_MODEL = "ndnet45_fcn8_synth"
# seg_node parameters settable from the command line; empty = the value in params_file
OVERRIDES = {"weights": str, "model": str, "backend": str, "device": str, "use_compressed": bool, "transport": str}


def _camera_entries(context) -> list[str]:
    """The entries of `cameras:=` (``front,left:compressed`` or ``[front, 'left:compressed']``)."""
    text = LaunchConfiguration("cameras").perform(context).strip().strip("[]")
    return [c.strip().strip("'\"") for c in text.split(",") if c.strip()]


def _cameras(context) -> list[str]:
    """Camera names of `cameras:=`, transports cut off."""
    return [entry.split(":")[0] for entry in _camera_entries(context)]


def _image_remappings(camera: str = "", source: str = "") -> list[tuple]:
    """``source`` (default: seg_node's name for the camera's image, `image` or `<camera>/image`), and
    its compressed transport, onto the launch's image topic or `<camera>/<camera_topic>`."""
    arg = LaunchConfiguration
    source = source or (f"{camera}/image" if camera else "image")
    target = [camera, "/", arg("camera_topic")] if camera else [arg("image")]
    return [(source, target), (f"{source}/compressed", [*target, "/compressed"])]


def _seg_node(context):
    arg = LaunchConfiguration
    params_file = arg("params_file").perform(context)
    if not Path(params_file).is_file():  # launch_ros would only warn and start the node on its defaults
        raise RuntimeError(f"params_file {params_file} does not exist")
    overrides = {
        name: ParameterValue(arg(name), value_type=kind)
        for name, kind in OVERRIDES.items()
        if arg(name).perform(context) != ""
    }
    if arg("demo").perform(context) == "true" and not {"model", "weights"} & overrides.keys():
        overrides["model"] = DEMO_MODEL  # the synthetic sequence with the model of its own domain
    cameras = _cameras(context)
    if cameras:  # as one string: seg_node reads either form, launch passes a list-looking string as is
        overrides["cameras"] = ",".join(_camera_entries(context))
    managed = arg("managed").perform(context) == "true"
    node = (LifecycleNode if managed else Node)(
        package="narrow_seg_ros",
        executable="seg_lifecycle_node" if managed else "seg_node",
        name="seg_node",
        namespace=arg("namespace"),
        parameters=[arg("params_file"), overrides],
        remappings=[r for camera in cameras or [""] for r in _image_remappings(camera)],
        output="screen",
        emulate_tty=True,
    )
    actions = [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_on_seg_node_exit))]
    if managed and arg("autostart").perform(context) == "true":
        actions += _autostart(node)
    return actions


def _autostart(node):
    """Configure the managed seg_node once its process runs, activate it once inactive: what a
    lifecycle manager with autostart does, with launch_ros lifecycle events (Humble has them all)."""

    def transition(transition_id):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    return [
        RegisterEventHandler(
            OnProcessStart(target_action=node, on_start=[transition(Transition.TRANSITION_CONFIGURE)])
        ),
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="configuring",
                goal_state="inactive",
                entities=[transition(Transition.TRANSITION_ACTIVATE)],
            )
        ),
    ]


def _on_seg_node_exit(event, context):
    if context.is_shutdown:  # the launch is stopping (Ctrl-C): the node's exit is part of it
        return None
    if event.returncode != 0:  # launch turns an exception into its own shutdown and exit code 1
        raise RuntimeError(f"seg_node exited with code {event.returncode}: stopping the launch")
    return Shutdown(reason="seg_node exited")


def _players(context):
    """One image_player per camera (or one for the single camera), each playing the demo source."""
    arg = LaunchConfiguration
    parameters = {
        "source": ParameterValue(arg("demo_source"), value_type=str),
        "rate": ParameterValue(arg("demo_rate"), value_type=float),  # demo_rate:=5 is a double too
        "publish_compressed": True,
    }
    return [
        Node(
            package="narrow_seg_ros",
            executable="image_player",
            name=f"image_player_{camera.replace('/', '_')}" if camera else "image_player",
            namespace=arg("namespace"),
            parameters=[parameters],
            remappings=_image_remappings(camera, source="image"),  # a player publishes `image`
            output="screen",
        )
        for camera in _cameras(context) or [""]
    ]


def _rviz(context):
    try:
        get_package_share_directory("rviz2")
    except PackageNotFoundError:
        get_logger("launch.user").warning(
            "rviz:=true, but rviz2 is not installed (apt install ros-$ROS_DISTRO-rviz2): continuing without RViz"
        )
        return []
    # config/seg.rviz shows /image and /seg_node/*: point those at this launch's namespace and image topic;
    ns = LaunchConfiguration("namespace").perform(context).strip("/")
    prefix = f"/{ns}" if ns else ""
    # with several cameras, RViz shows the first
    cameras = _cameras(context)
    image = LaunchConfiguration("image").perform(context)
    if cameras:
        image = f"{cameras[0]}/{LaunchConfiguration('camera_topic').perform(context)}"
    image = image if image.startswith("/") else f"{prefix}/{image}"
    outputs = f"{prefix}/seg_node/{cameras[0]}" if cameras else f"{prefix}/seg_node"
    remap = {"/image": image, **{f"/seg_node/{t}": f"{outputs}/{t}" for t in ("color_mask", "overlay")}}
    return [
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", PathJoinSubstitution([FindPackageShare("narrow_seg_ros"), "config", "seg.rviz"])],
            remappings=[(a, b) for a, b in remap.items() if a != b],
        )
    ]


def generate_launch_description():
    share = FindPackageShare("narrow_seg_ros")
    arg = LaunchConfiguration
    from_file = "; empty = from params_file"
    args = [
        DeclareLaunchArgument("image", default_value="image", description="input image topic"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace for the nodes"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "seg.yaml"])),
        DeclareLaunchArgument("weights", default_value="", description="weights file" + from_file + " (shipped)"),
        DeclareLaunchArgument(
            "model",
            default_value="",
            description="shipped model: ndnet45_fcn8_camvid | vnet_camvid | ndnet45_synth | ndnet45_fcn8_synth | vnet_synth"
            + from_file,
        ),
        DeclareLaunchArgument("backend", default_value="", description="auto | torch | onnxruntime" + from_file),
        DeclareLaunchArgument("device", default_value="", description="auto | cpu | cuda | cuda:N" + from_file),
        DeclareLaunchArgument("use_compressed", default_value="", description="true | false" + from_file),
        DeclareLaunchArgument("transport", default_value="", description="raw | compressed | video" + from_file),
        DeclareLaunchArgument(
            "cameras", default_value="", description="cameras of one seg_node: front,left,... (empty: one camera)"
        ),
        DeclareLaunchArgument(
            "camera_topic", default_value="image", description="each camera's image topic under its namespace"
        ),
        DeclareLaunchArgument("demo", default_value="false", description="play the shipped street sequence"),
        DeclareLaunchArgument("demo_source", default_value="", description="folder or video for the demo player"),
        DeclareLaunchArgument("demo_rate", default_value="10.0", description="demo frames per second"),
        DeclareLaunchArgument("rviz", default_value="false", description="open RViz with config/seg.rviz"),
        DeclareLaunchArgument(
            "managed", default_value="false", description="start seg_node as a managed (lifecycle) node"
        ),
        DeclareLaunchArgument(
            "autostart",
            default_value="false",
            description="with managed:=true: configure and activate it (false: leave it to a lifecycle manager)",
        ),
    ]
    return LaunchDescription(
        [
            *args,
            OpaqueFunction(function=_seg_node),
            OpaqueFunction(function=_players, condition=IfCondition(arg("demo"))),
            OpaqueFunction(function=_rviz, condition=IfCondition(arg("rviz"))),
        ]
    )
