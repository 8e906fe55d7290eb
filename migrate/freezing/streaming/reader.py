"""The checkpoint-reader thread of a streaming freeze: tensors read in the order the writer needs them, the
next one read while the previous is written, at most READ_AHEAD_BYTES held at once."""
import queue
import threading

from migrate import artifacts


READ_AHEAD_BYTES = 128 << 20  # tensors in memory at once (reading + writing); a larger one is read alone


class CheckpointTensors(object):
    """Checkpoint tensors in a given order, read on a thread while the previous one is written (file writes
    release the GIL). At most READ_AHEAD_BYTES are held at once, or one tensor when it alone is larger: the
    peak stays about the largest tensor."""

    def __init__(self, reader, keys, prefix=None):
        self.reader, self.keys, self.prefix = reader, keys, prefix
        self.ready = queue.Queue()
        self.condition = threading.Condition()
        self.held, self.sizes, self.stopped = 0, [], False
        self.thread = threading.Thread(target=self._read_all, name="migrate-stream-reader")
        self.thread.daemon = True
        self.thread.start()

    def _read_all(self):
        try:
            for key, size in self.keys:
                with self.condition:
                    while not self.stopped and self.held and self.held + size > READ_AHEAD_BYTES:
                        self.condition.wait()
                    if self.stopped:
                        return
                    self.held += size
                self.ready.put((size, artifacts.read_tensor(self.reader, key, self.prefix), None))
        except BaseException as exc:  # handed to the writer, which raises it
            self.ready.put((0, None, exc))

    def next(self):
        size, value, error = self.ready.get()
        if error is not None:
            raise error
        self.sizes.append(size)
        return value

    def done(self):
        """The last value from next() is written and dropped."""
        with self.condition:
            self.held -= self.sizes.pop(0)
            self.condition.notify()

    def close(self):
        with self.condition:
            self.stopped = True
            self.condition.notify()
