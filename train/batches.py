"""The GPU input path, assembled: raw batches from the workers -> (x, y) ready on the device.

``DeviceBatches`` wraps the DataLoader of ``RawBatch`` es (``train/gpu_decode.py``),
decodes each batch on the device and augments it there (``train/gpu_augment.py``).
On CUDA a producer thread prepares the next batches on a side stream while the
training step runs on the main stream: decoding overlaps the model instead of
adding to it. The consumer waits on an event per batch (a GPU-side wait, not a
host sync) and records the batch on its stream so the caching allocator keeps it
alive. The batches are the same with or without the thread: every random choice
was drawn in the workers from (seed, epoch, index).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from train.gpu_augment import BatchAugment
from train.gpu_decode import DeviceDecoder, RawBatch

Batch = tuple[torch.Tensor, torch.Tensor]
_END = object()


class DeviceBatches:
    """An iterable of device batches with ``len``, like the DataLoader it wraps."""

    def __init__(
        self,
        loader: DataLoader,
        decoder: DeviceDecoder,
        augment: BatchAugment,
        overlap: bool | None = None,
        depth: int = 3,
    ) -> None:
        self.loader, self.decoder, self.augment = loader, decoder, augment
        self.device = decoder.device
        self.overlap = self.device.type == "cuda" if overlap is None else overlap
        self.depth = depth  # batches the producer may prepare ahead

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.decoder.counts.counts)

    def prepare(self, raw: RawBatch) -> Batch:
        images = self.decoder(raw)
        rows = raw.params.to(self.device, non_blocking=True)
        return self.augment(images, rows), raw.labels.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[Batch]:
        if not self.overlap:
            return (self.prepare(raw) for raw in self.loader)
        return self._overlapped()

    def _overlapped(self) -> Iterator[Batch]:
        source = iter(self.loader)  # created here, so the epoch's sampler state is read in this thread
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce, args=(source, ready, stop), name="device-batches", daemon=True
        )
        producer.start()
        try:
            while True:
                item = ready.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                x, y, event = item
                if event is not None:  # the main stream waits for the side stream's work on this batch
                    stream = torch.cuda.current_stream(self.device)
                    stream.wait_event(event)
                    x.record_stream(stream)
                    y.record_stream(stream)
                yield x, y
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue, then let it end
                with contextlib.suppress(queue.Empty):
                    ready.get_nowait()
                producer.join(timeout=0.05)

    def _produce(self, source: Iterator[RawBatch], ready: queue.Queue, stop: threading.Event) -> None:
        try:
            with self._side_stream() as stream:
                for raw in source:
                    if stop.is_set():
                        return
                    x, y = self.prepare(raw)
                    event = None
                    if stream is not None:
                        event = torch.cuda.Event()
                        event.record(stream)
                    if not _put(ready, (x, y, event), stop):
                        return
            _put(ready, _END, stop)
        except BaseException as exc:  # handed to the consumer, which raises it in the training loop
            _put(ready, exc, stop)

    @contextlib.contextmanager
    def _side_stream(self) -> Iterator[Any]:
        """On CUDA: this thread on the training device, on its own stream. Elsewhere: nothing."""
        if self.device.type != "cuda":
            yield None
            return
        with torch.cuda.device(self.device):
            stream = torch.cuda.Stream(self.device)
            with torch.cuda.stream(stream):
                yield stream


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put unless the consumer has stopped (a full queue would otherwise block this thread forever)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
