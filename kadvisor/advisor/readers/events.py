"""TensorBoard event files without TensorFlow: the record format, scalars, text summaries.

An event file is a sequence of TFRecords (``uint64 length``, ``uint32`` masked CRC-32C
of the length, the serialised ``Event`` protobuf, ``uint32`` masked CRC-32C of the
data). The protobuf classes come from ``tensorboard.compat.proto`` (plain protobuf; no
TensorFlow is imported), the CRC is computed here because tensorboard's own copy sits
behind its TensorFlow stub, which takes most of a second to import.

Scalars come in two encodings: ``simple_value`` (tensorboardX, PyTorch, TF1) and a
scalar ``tensor`` (TF2's ``tf.summary.scalar``, so Keras's ``TensorBoard`` callback).
"""

from __future__ import annotations

import struct
import time

import numpy as np

_CRC_TABLE: list[int] = []


def _crc32c(data: bytes) -> int:
    if not _CRC_TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _CRC_TABLE.append(c)
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C."""
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(data: bytes) -> tuple[list[bytes], str | None]:
    """Splits an event file into its records.

    Returns:
        (the complete records, why reading stopped early — None at a clean end).
        The length of every record is CRC-checked (a corrupt length would make the
        reader skip garbage); the data CRC is not, to keep large files fast — a record
        that does not parse is reported by the caller.
    """
    out, pos, n = [], 0, len(data)
    while pos < n:
        if pos + 12 > n:
            return out, f"truncated after {len(out)} records (the writer was stopped mid-record)"
        header = data[pos: pos + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", data[pos + 8: pos + 12])
        if crc != masked_crc32c(header):
            return out, f"corrupt record at byte {pos} (length checksum does not match)"
        end = pos + 12 + length
        if end + 4 > n:
            return out, f"truncated after {len(out)} records (the writer was stopped mid-record)"
        out.append(data[pos + 12: end])
        pos = end + 4
    return out, None


_DTYPES = {1: "float_val", 2: "double_val", 3: "int_val", 9: "int64_val", 19: "half_val"}
_NUMPY = {1: "<f4", 2: "<f8", 3: "<i4", 9: "<i8", 19: "<f2"}


def _tensor_scalar(tensor) -> float | None:
    """The value of a numeric scalar ``TensorProto``, else None (strings, images, …)."""
    if tensor.dtype not in _DTYPES or len(tensor.tensor_shape.dim) > 1:
        return None
    if tensor.tensor_content:
        values = np.frombuffer(tensor.tensor_content, dtype=_NUMPY[tensor.dtype])
    else:
        values = list(getattr(tensor, _DTYPES[tensor.dtype]))
        if tensor.dtype == 19:
            values = np.asarray(values, dtype=np.uint16).view(np.float16)
    return float(values[0]) if len(values) == 1 else None


def scalars(data: bytes) -> tuple[list[tuple[str, float, float, float]], str | None]:
    """The scalar points of one event file.

    Returns:
        ([(tag, step, value, wall_time), ...] in file order, a problem or None).
    """
    from tensorboard.compat.proto import event_pb2  # protobuf only; ~25 ms
    from google.protobuf.message import DecodeError

    recs, problem = records(data)
    points = []
    for i, rec in enumerate(recs):
        try:
            event = event_pb2.Event.FromString(rec)
        except DecodeError:
            problem = problem or f"record {i + 1} does not parse as an event (corrupt file)"
            break
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            if kind == "simple_value":
                number = float(value.simple_value)
            elif kind == "tensor":
                number = _tensor_scalar(value.tensor)
                if number is None:
                    continue
            else:
                continue
            points.append((value.tag, float(event.step), number, float(event.wall_time)))
    return points, problem


def text_summary_file(texts: dict[str, str], step: int) -> bytes:
    """An event file holding ``texts`` (tag → markdown) as TensorBoard text summaries.

    Args:
        texts: Tag → markdown shown by TensorBoard's Text tab.
        step: The step the texts are shown at (the last epoch).

    Returns:
        The file's bytes (a version record, then one summary event).
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

    now = time.time()
    events = [event_pb2.Event(wall_time=now, file_version="brain.Event:2")]
    summary = summary_pb2.Summary()
    for tag, text in texts.items():
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[text.encode("utf-8")],
                                        tensor_shape=tensor_shape_pb2.TensorShapeProto())
        summary.value.add(tag=tag, metadata=metadata, tensor=tensor)
    events.append(event_pb2.Event(wall_time=now, step=int(step), summary=summary))
    out = b""
    for event in events:
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        out += header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))
    return out


# One fixed name, replaced atomically: diagnosing again updates the text, never piles up files.
DIAGNOSIS_EVENTS = "events.out.tfevents.0.kadvisor-diagnosis"
