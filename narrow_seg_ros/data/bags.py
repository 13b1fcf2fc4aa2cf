"""Recorded drives: rosbag2 recordings (sqlite3 or MCAP) read and written without ROS, with rosbags.

``narrow-seg infer`` reads camera topics from a recording and writes the masks into a new one;
``image_player`` plays a recording's camera topics. A recording is a rosbag2 directory (the one
holding ``metadata.yaml``); a ``.db3``/``.mcap`` file inside one stands for its directory.

Output topics follow the node: seg_node, started in the camera's namespace, publishes ``~/mask``
etc., so ``/cam_front/image_raw`` (or ``/cam_front/image_raw/compressed``) gives
``/cam_front/seg_node/mask``. ``output_namespace`` changes the ``seg_node`` part (relative: under
the camera's namespace; absolute: used as it is).

Every problem with the input raises ``BagError`` (a ValueError: the CLI prints it as one line):
rosbags raises whatever its parsers meet in a damaged file (apsw's SQLite errors, KeyError,
OverflowError, UnicodeDecodeError, RecursionError, ...; found by ``narrow-seg fuzz recording``), so
every call into it is wrapped, and names or text taken from the recording are shown escaped and
shortened. ``metadata.yaml`` is read with a size and alias-expansion guard before rosbags sees it.

Decompression is bounded (``MAX_DECOMPRESSED_BYTES``): rosbags inflates zstd messages (rosbag2's
message mode), zstd and lz4 MCAP chunks and whole zstd storage files (file mode) with no limit, so a
few KB could expand to many GB. It has no hook for that: ``_bound_rosbags_decompression`` puts
bounded decompressors in the places it looks them up. The same goes for MCAP record lengths: rosbags
reads what a record declares with one ``read()``, which allocates it before finding the file shorter,
so a length past the file's end is refused first (``_bounded_read_exact``).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from types import SimpleNamespace

from lz4.frame import LZ4FrameDecompressor  # rosbags' own dependency, installed with it
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError, StoragePlugin, Writer, storage_mcap
from rosbags.rosbag2 import reader as rosbag2_reader
from rosbags.rosbag2.storage_mcap import zstd  # the zstd module rosbags chose for this Python
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from ..exceptions import found_in_chain
from ..ros.image_conversion import MAX_PIXELS

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
LABEL_INFO = "vision_msgs/msg/LabelInfo"
IMAGE_TYPES = (IMAGE, COMPRESSED)
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
BAG_SUFFIXES = (".db3", ".mcap")

# vision_msgs' definitions (fields only: comments do not enter the type hash), so that a machine
# without vision_msgs can write LabelInfo; test_bags checks the hash against the installed package.
_VISION_MSGS = {
    LABEL_INFO: "std_msgs/Header header\nvision_msgs/VisionClass[] class_map\nfloat32 threshold\n",
    "vision_msgs/msg/VisionClass": "uint16 class_id\nstring class_name\n",
}
# Errors rosbags itself raises for unreadable recordings: broken metadata, storage or message data.
# Its parsers let others through on damaged input (see the module docstring): those are caught too.
_READ_ERRORS = (AnyReaderError, ReaderError, SerdeError, OSError)
# metadata.yaml: rosbag2 writes a few KB per storage file and topic; ruamel's pure-Python parser
# takes about 1 s per MB, so anything larger is refused before it is parsed.
MAX_METADATA_BYTES = 4 << 20
#: Most bytes one zstd message or one MCAP chunk may expand to: 512 MiB, one 4-channel 16-bit frame
#: of ``MAX_PIXELS`` (the largest Image a camera can send that the readers take in a common
#: encoding), 2.7 bgr8 ones. rosbag2 and MCAP writers chunk at a few MB, a larger message alone.
MAX_DECOMPRESSED_BYTES = 8 * MAX_PIXELS
#: A storage file of rosbag2's file mode holds the whole recording, so it is bounded by its expansion
#: instead: camera data compresses 2-10x, zstd's all-zero blocks about 30000x (the bomb). Its
#: decompressed copy goes to the temporary directory (often tmpfs: memory).
MAX_FILE_EXPANSION = 1000


class BagError(ValueError):
    """A recording that cannot be used as asked; the message names the path, topic or type."""


def shown(text, limit: int = 120) -> str:
    """A name or text read from a recording, as a message may hold it: one line, escaped, shortened."""
    text = str(text)
    if text.isprintable() and len(text) <= limit:
        return text
    escaped = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return escaped if len(escaped) <= limit else f"{escaped[:limit]}... ({len(text)} characters)"


class DecompressionLimit(ReaderError):
    """Compressed data of a recording that expands beyond what it declares or ``MAX_DECOMPRESSED_BYTES``."""


def _damaged(bag, exc: BaseException, what: str = "recording") -> BagError:
    bomb = found_in_chain(exc, DecompressionLimit)  # rosbags raises its own error from it
    if bomb is not None:  # not damage a reader could meet by chance: said as it is
        return BagError(f"cannot read {what} {bag}: {bomb}")
    detail = str(exc) if isinstance(exc, _READ_ERRORS) else f"{type(exc).__name__}: {exc}"
    return BagError(f"cannot read {what} {bag} (damaged or truncated?): {shown(' '.join(detail.split()), 300)}")


_INFLATE_STEP_BYTES = 1 << 20  # output asked of a decompressor at a time


def _inflate(decompressor, data: bytes, limit: int, too_large: str) -> bytes:
    """``data`` (one or more frames) decompressed, stopped with DecompressionLimit(``too_large``) as
    soon as the output passes ``limit`` bytes: a frame's declared content size may lie or be absent."""
    out, rest = bytearray(), bytes(data)
    while rest:
        engine = decompressor()
        while not engine.eof:
            # in steps: lz4 allocates max_length before it decompresses (500 MiB for a 1 KB frame)
            piece = engine.decompress(rest, max_length=min(limit + 1 - len(out), _INFLATE_STEP_BYTES))
            out += piece
            rest = b""
            if len(out) > limit:
                raise DecompressionLimit(too_large)
            if not engine.eof and (engine.needs_input or not piece):  # (no output and no end: no loop for ever)
                raise ReaderError(f"truncated compressed data ({len(out)} bytes decompressed)")
        rest = engine.unused_data or b""
    return bytes(out)


def _message_decompress(data: bytes) -> bytes:
    """rosbag2's message mode: one zstd message."""
    limit = MAX_DECOMPRESSED_BYTES
    too_large = (
        f"a zstd-compressed message expands to more than {limit} bytes (MAX_DECOMPRESSED_BYTES; a decompression bomb?)"
    )
    return _inflate(zstd.ZstdDecompressor, data, limit, too_large)


def _chunk_decompressor(name: str, decompressor):
    """An MCAP chunk: refused when it declares more than the limit, cut where it passes what it declares."""

    def decompress(data: bytes, size: int) -> bytes:
        if size > MAX_DECOMPRESSED_BYTES:
            raise DecompressionLimit(
                f"{name} MCAP chunk declares {size} uncompressed bytes, over the limit of "
                f"{MAX_DECOMPRESSED_BYTES} (MAX_DECOMPRESSED_BYTES; a decompression bomb?)"
            )
        too_large = f"{name} MCAP chunk expands to more than the {size} bytes it declares (a decompression bomb?)"
        return _inflate(decompressor, data, size, too_large)

    return decompress


class _BoundedZstdFile:
    """rosbag2's file mode: the storage file read through, refused past ``MAX_FILE_EXPANSION`` times
    its size (and at least ``MAX_DECOMPRESSED_BYTES``)."""

    def __init__(self, file, mode: str = "rb"):
        self.name = getattr(file, "name", "a storage file")
        size = os.fstat(file.fileno()).st_size if hasattr(file, "fileno") else 0
        self.limit, self.read_bytes = max(MAX_DECOMPRESSED_BYTES, MAX_FILE_EXPANSION * size), 0
        self.file = zstd.open(file, mode)

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size if 0 <= size <= self.limit else self.limit + 1 - self.read_bytes)
        self.read_bytes += len(data)
        if self.read_bytes > self.limit:
            raise DecompressionLimit(
                f"zstd-compressed {shown(self.name)} expands to more than {self.limit} bytes "
                f"(MAX_FILE_EXPANSION times its size, at least MAX_DECOMPRESSED_BYTES; a decompression bomb?)"
            )
        return data

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _left_in_file(bio) -> int | None:
    """Bytes from ``bio``'s position to the end of its file; None for an in-memory buffer."""
    try:
        return os.fstat(bio.fileno()).st_size - bio.tell()
    except (OSError, ValueError):  # io.UnsupportedOperation is both: a BytesIO (a chunk's contents)
        return None


def _bounded_read_exact(bio, size: int) -> bytes:
    """rosbags' MCAP ``read_exact``, refusing a length the file cannot hold before reading it: a
    buffered file's ``read(n)`` allocates n bytes first, and n is what a record or chunk index
    declares (up to 2^64-1; 2 GiB was allocated for an 8 KB file). A BytesIO reads only what it holds."""
    if size > _CHECKED_READ_BYTES:
        left = _left_in_file(bio)
        if left is not None and size > left:
            raise ReaderError(
                f"a record at byte {bio.tell()} declares {size} bytes, but the file has {max(left, 0)} left"
            )
    return _rosbags_read_exact(bio, size)


# reads up to this size are passed through unchecked: they allocate little (and save an fstat call)
_CHECKED_READ_BYTES = 1 << 20
_rosbags_read_exact = storage_mcap.read_exact


def _bound_rosbags_decompression() -> None:
    """rosbags looks up ``zstd`` in its rosbag2 reader module (message and file modes), MCAP chunk
    decompressors in ``storage_mcap.DECOMPRESSORS`` and ``read_exact`` (every record, message and
    chunk read from an MCAP file) in ``storage_mcap``, at each call: bounded ones go there."""
    rosbag2_reader.zstd = SimpleNamespace(decompress=_message_decompress, open=_BoundedZstdFile)
    storage_mcap.DECOMPRESSORS.update(
        zstd=_chunk_decompressor("a zstd", zstd.ZstdDecompressor),
        lz4=_chunk_decompressor("an lz4", LZ4FrameDecompressor),
    )
    storage_mcap.read_exact = _bounded_read_exact


_bound_rosbags_decompression()


def find_bag(path: Path) -> Path | None:
    """The rosbag2 directory ``path`` is or lies in (a storage file inside one), else None."""
    if path.is_dir():
        return path if (path / "metadata.yaml").is_file() else None
    if path.suffix in BAG_SUFFIXES and (path.parent / "metadata.yaml").is_file():
        return path.parent
    return None


def require_bag(path: Path) -> Path:
    bag = find_bag(path)
    if bag is not None:
        return bag
    if not path.exists():
        raise BagError(f"recording {path} does not exist")
    if path.suffix in BAG_SUFFIXES:
        raise BagError(f"{path} has no metadata.yaml beside it: `ros2 bag reindex {path.parent}` writes one")
    raise BagError(f"{path} is not a rosbag2 recording (a directory with metadata.yaml and .db3 or .mcap files)")


def _check_metadata(bag: Path) -> None:
    """Refuse a ``metadata.yaml`` too large to parse quickly or whose aliases expand without bound
    (a "billion laughs" file), before rosbags parses it."""
    from ..safe_yaml import MAX_NODES, load_yaml_text

    path = bag / "metadata.yaml"
    try:
        size = path.stat().st_size
        if size > MAX_METADATA_BYTES:
            raise BagError(f"{path} is {size} bytes, over the {MAX_METADATA_BYTES} a rosbag2 metadata.yaml may have")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BagError(f"{path} is not UTF-8 text (damaged?): {exc}") from exc
    except OSError as exc:
        raise _damaged(bag, exc) from exc
    try:  # an alias-free file has fewer nodes than bytes
        document = load_yaml_text(text, max_nodes=max(MAX_NODES, size))
    except ValueError as exc:  # refused, or not YAML: rosbags' own (pure-Python) parser would recurse
        raise BagError(f"{path}: {exc}") from exc
    try:
        info = document["rosbag2_bagfile_information"]
        names = [PurePath(name).name for name in info.get("relative_file_paths", [])]
    except Exception:  # rosbags reports what it cannot read
        return
    # rosbags' reader clears ``files`` when it closes, before it closes the storage: a string there
    # raised AttributeError in close() and left the SQLite file open
    if not isinstance(info.get("files", []), list):
        raise BagError(f"{path}: files is {shown(repr(info['files']), 60)}, not a list (damaged?)")
    # rosbags checks that the storage files exist, not what they are: a FIFO blocked its open for ever
    for name in names:
        storage = bag / name
        if storage.exists() and not storage.is_file():
            raise BagError(f"{storage} is not a regular file (a directory, FIFO or device): not a storage file")


def _check_connections(reader: AnyReader) -> None:
    """The fields the commands use, as metadata.yaml gives them: rosbags does not check their types."""
    for c in reader.connections:
        if not isinstance(c.topic, str) or not isinstance(c.msgtype, str):
            raise BagError(f"{reader.paths[0]}: a topic with name {shown(repr(c.topic))} and type "
                           f"{shown(repr(c.msgtype))} in metadata.yaml (damaged?)")  # fmt: skip
        if isinstance(c.msgcount, bool) or not isinstance(c.msgcount, int) or c.msgcount < 0:
            raise BagError(f"{reader.paths[0]}: metadata.yaml gives topic {shown(c.topic)} a message count of "
                           f"{shown(repr(c.msgcount))} (damaged?)")  # fmt: skip


@contextmanager
def open_bag(path: Path) -> Iterator[AnyReader]:
    """An open reader of the recording at ``path``; unreadable recordings raise BagError."""
    bag = require_bag(path)
    _check_metadata(bag)
    reader = AnyReader([bag])
    try:
        reader.open()
    except Exception as exc:  # rosbags' own errors and whatever its parsers meet in a damaged file
        _close_quietly(reader)
        raise _damaged(bag, exc) from exc
    try:
        _check_connections(reader)
        yield reader
    finally:
        _close_quietly(reader)


def _close_quietly(reader: AnyReader) -> None:
    try:
        reader.close()
    except Exception:  # a reader that failed to open, or a damaged file: nothing more to release
        pass


def storage_of(bag: Path) -> str:
    """The storage plugin (``sqlite3`` or ``mcap``) of a recording ``open_bag`` has read."""
    import yaml

    try:
        storage = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"][
            "storage_identifier"
        ]
    except Exception as exc:  # it was read once already: changed since, or read otherwise by rosbags
        raise _damaged(bag, exc, "the metadata.yaml of") from exc
    if storage not in STORAGES:
        raise BagError(f"{bag}: storage {shown(repr(storage))} is not one of {', '.join(STORAGES)}")
    return storage


def image_connections(reader: AnyReader, topics: Iterable[str] = ()) -> list:
    """The connections of ``topics`` (default: every Image and CompressedImage topic), checked."""
    types = {c.topic: c.msgtype for c in reader.connections}
    listing = ", ".join(f"{shown(t)} ({shown(m)})" for t, m in sorted(types.items())[:20]) or "none"
    if len(types) > 20:
        listing += f" and {len(types) - 20} more"
    topics = list(topics) or sorted(t for t, m in types.items() if m in IMAGE_TYPES)
    if not topics:
        raise BagError(f"{reader.paths[0]} has no Image or CompressedImage topic (its topics: {listing})")
    for topic in topics:
        if topic not in types:
            raise BagError(f"topic {shown(topic)} is not in {reader.paths[0]} (its topics: {listing})")
        if types[topic] not in IMAGE_TYPES:
            raise BagError(f"topic {shown(topic)} is {shown(types[topic])}, not {IMAGE} or {COMPRESSED}")
    return [c for c in reader.connections if c.topic in topics]


def read_raw(reader: AnyReader, connections: list) -> Iterator[tuple]:
    """(connection, log time ns, CDR bytes) in log-time order; damaged data raises BagError."""
    try:
        messages = reader.messages(connections=connections)
    except Exception as exc:
        raise _damaged(reader.paths[0], exc) from exc
    while True:
        try:
            item = next(messages)
        except StopIteration:
            return
        except Exception as exc:  # as in open_bag
            raise _damaged(reader.paths[0], exc) from exc
        yield item


def read_messages(reader: AnyReader, connections: list) -> Iterator[tuple]:
    """(connection, log time ns, message) in log-time order; damaged data raises BagError."""
    for connection, log_time, raw in read_raw(reader, connections):
        try:
            msg = reader.deserialize(raw, connection.msgtype)
        except Exception as exc:  # a flipped length or string: struct.error, IndexError, UnicodeDecodeError, ...
            raise _damaged(
                reader.paths[0], exc, f"a {shown(connection.msgtype)} message on {shown(connection.topic)} in"
            ) from exc
        yield connection, log_time, msg


class Playback:
    """The image topics of a recording as serialized messages, in recorded order, for a player."""

    select = staticmethod(image_connections)  # which connections play (CameraPlayback widens it)

    def __init__(self, path: str | Path, topics: Iterable[str] = (), loop: bool = False):
        self._bag = open_bag(Path(path))
        self.reader = self._bag.__enter__()
        try:
            self.connections = self.select(self.reader, topics)
        except BagError:
            self.close()
            raise
        self.types = {c.topic: c.msgtype for c in self.connections}
        self.loop = loop
        self._messages = read_raw(self.reader, self.connections)

    def next(self) -> tuple[str, int, bytes, bool] | None:
        """(topic, log time ns, CDR bytes, first of a lap), or None at the end (and not looping)."""
        restarted = False
        for _ in range(2):  # a second lap only when looping; an empty recording ends there too
            item = next(self._messages, None)
            if item is not None:
                connection, log_time, raw = item
                return connection.topic, log_time, bytes(raw), restarted
            if not self.loop:
                return None
            self._messages, restarted = read_raw(self.reader, self.connections), True
        return None

    def close(self) -> None:
        self._bag.__exit__(None, None, None)


def camera_namespace(topic: str) -> str:
    """``/cam_front/image_raw[/compressed|/foxglove]`` → ``/cam_front`` (image_transport's layout; ``""`` at the root)."""
    return topic.removesuffix("/compressed").removesuffix("/foxglove").rsplit("/", 1)[0]


def output_namespace(topic: str, namespace: str = "seg_node") -> str:
    """Where the masks of camera ``topic`` go: ``<camera namespace>/<namespace>``, or ``namespace``
    itself when absolute."""
    namespace = namespace.rstrip("/")
    if not namespace:
        raise BagError("the output namespace is empty")
    return namespace if namespace.startswith("/") else f"{camera_namespace(topic)}/{namespace}"


def output_typestore():
    """The ROS 2 message types the outputs use, with vision_msgs' LabelInfo added."""
    store = get_typestore(Stores.ROS2_KILTED)
    for name, text in _VISION_MSGS.items():
        store.register(get_types_from_msg(text, name))
    return store


class OutputBag:
    """Messages into a rosbag2 ``Writer``, each stamped with a given source header."""

    def __init__(self, writer: Writer):
        self.writer = writer
        self.store = output_typestore()
        self.types = self.store.types
        self.connections: dict[str, object] = {}

    def _write(self, topic: str, msgtype: str, msg, log_time: int) -> None:
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(topic, msgtype, typestore=self.store)
        self.writer.write(self.connections[topic], log_time, self.store.serialize_cdr(msg, msgtype))

    def header(self, source):
        """A header of the output's types equal to ``source`` (any message's header)."""
        stamp = self.types["builtin_interfaces/msg/Time"](sec=source.stamp.sec, nanosec=source.stamp.nanosec)
        return self.types["std_msgs/msg/Header"](stamp=stamp, frame_id=source.frame_id)

    def image(self, topic: str, header, fields, log_time: int) -> None:
        """``fields``: ``image_conversion.image_fields`` of the array."""
        msg = self.types[IMAGE](header=self.header(header), **fields._asdict())
        self._write(topic, IMAGE, msg, log_time)

    def compressed(self, topic: str, header, fmt: str, data, log_time: int) -> None:
        msg = self.types[COMPRESSED](header=self.header(header), format=fmt, data=data)
        self._write(topic, COMPRESSED, msg, log_time)

    def label_info(self, topic: str, header, names: list[str], threshold: float, log_time: int) -> None:
        vision_class = self.types["vision_msgs/msg/VisionClass"]
        classes = [vision_class(class_id=i, class_name=name) for i, name in enumerate(names)]
        msg = self.types[LABEL_INFO](header=self.header(header), class_map=classes, threshold=threshold)
        self._write(topic, LABEL_INFO, msg, log_time)

    def camera_info(self, topic: str, header, info, log_time: int) -> None:
        """The camera's ``info`` (of the reader's types), restamped with ``header``."""
        fields = {name: getattr(info, name) for name in info.__dataclass_fields__}
        fields["roi"] = self.types["sensor_msgs/msg/RegionOfInterest"](**vars(info.roi))
        msg = self.types[CAMERA_INFO](**{**fields, "header": self.header(header)})
        self._write(topic, CAMERA_INFO, msg, log_time)


def check_output(output: Path, overwrite: bool) -> None:
    """Refuses an existing ``output``, unless ``overwrite`` and it is a recording."""
    if output.exists() or output.is_symlink():
        if not overwrite:
            raise BagError(f"output {output} exists: pass --overwrite to replace it")
        if find_bag(output) != output:
            raise BagError(f"output {output} exists and is not a rosbag2 recording: not replacing it")


@contextmanager
def atomic_bag(output: Path, storage: str, overwrite: bool = False) -> Iterator[OutputBag]:
    """A new recording written in a hidden ``.<name>.partial-*`` sibling and renamed to ``output``
    when complete; on an error it is removed, and a killed run leaves only that partial folder."""
    check_output(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.parent / f".{output.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    # the storage file is named after its folder: write it as <staging>/<name>, then move that folder
    writer = Writer(staging / output.name, version=9, storage_plugin=STORAGES[storage])
    try:
        writer.open()
        yield OutputBag(writer)
        writer.close()
        if output.exists():
            output.rename(staging / "replaced")
        (staging / output.name).rename(output)
    except BaseException:
        writer.abort()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Compressed video cameras: foxglove_msgs/msg/CompressedVideo (H.264 / H.265, one access unit per
# message). rosbags reads the type from the recording's own definition (MCAP schema, sqlite3
# message_definitions); for a recording without one, the definition below is used.

VIDEO = "foxglove_msgs/msg/CompressedVideo"
CAMERA_TYPES = (IMAGE, COMPRESSED, VIDEO)
_FOXGLOVE_MSGS = {VIDEO: "builtin_interfaces/Time timestamp\nstring frame_id\nuint8[] data\nstring format\n"}


def video_typestore():
    """The ROS 2 types with foxglove_msgs' CompressedVideo added (for writing video recordings)."""
    store = output_typestore()
    for name, text in _FOXGLOVE_MSGS.items():
        store.register(get_types_from_msg(text, name))
    return store


def camera_connections(reader: AnyReader, topics: Iterable[str] = ()) -> list:
    """As ``image_connections``, CompressedVideo topics included (default: every camera topic)."""
    types = {c.topic: c.msgtype for c in reader.connections}
    topics = list(topics) or sorted(t for t, m in types.items() if m in CAMERA_TYPES)
    videos = [t for t in topics if types.get(t) == VIDEO]
    if not videos:
        return image_connections(reader, topics)
    others = [t for t in topics if t not in videos]
    chosen = image_connections(reader, others) if others else []
    if VIDEO not in reader.typestore.types:  # a recording without the message definition
        for name, text in _FOXGLOVE_MSGS.items():
            reader.typestore.register(get_types_from_msg(text, name))
    return chosen + [c for c in reader.connections if c.topic in videos]


class CameraPlayback(Playback):
    """``Playback`` of a recording's camera topics, CompressedVideo topics included."""

    select = staticmethod(camera_connections)
