"""Dynamic batching: concurrent predict requests merged into one model call (TF Serving's batching, in asyncio).

A request waits at most `batch_timeout` seconds (from the oldest waiting request's arrival) for others to
fill a batch of `max_batch_size` texts; the model runs in a worker thread so the event loop keeps
accepting and answering; at most `max_queued` requests wait, and the next one is refused (`Overloaded`)
rather than queued. `max_batch_size=1` turns merging off: each request is its own model call.

    batcher = Batcher(max_batch_size=32, batch_timeout=0.005, max_queued=256)
    await batcher.start()
    outputs = await batcher.submit(servable, ["WIN a prize", "see you at 6"])   # numpy arrays, one row per text
"""
import asyncio
import collections
import concurrent.futures
import dataclasses


class Overloaded(Exception):
    """The queue is full: the request is refused (HTTP 503) instead of waiting."""


@dataclasses.dataclass
class _Request:
    servable: object
    texts: list
    future: asyncio.Future
    arrived: float


class Batcher:
    def __init__(self, max_batch_size: int = 32, batch_timeout: float = 0.005, max_queued: int = 256,
                 num_threads: int = 1, on_batch=None):
        self.max_batch_size, self.batch_timeout, self.max_queued = max_batch_size, batch_timeout, max_queued
        self.num_threads = num_threads
        self.on_batch = on_batch or (lambda texts: None)  # called with each model call's number of texts
        self._pending = collections.deque()
        self._wakeup = None
        self._workers = []
        self._executor = None

    @property
    def depth(self) -> int:
        """Requests waiting for a model call."""
        return len(self._pending)

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(self.num_threads, thread_name_prefix="tfclf-model")
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.num_threads)]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def submit(self, servable, texts: list) -> dict:
        """The servable's outputs for `texts` (numpy arrays, one row per text), from a merged model call."""
        if len(self._pending) >= self.max_queued:
            raise Overloaded(f"{len(self._pending)} requests already wait for the model (--max-queued "
                             f"{self.max_queued}); retry later")
        loop = asyncio.get_running_loop()
        request = _Request(servable, list(texts), loop.create_future(), loop.time())
        self._pending.append(request)
        self._wakeup.set()
        return await request.future

    # --- the workers: each takes one batch at a time and runs it in the thread pool ---
    async def _work(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._wait_to_fill()
            batch = self._take()
            if batch:
                await self._run(batch)

    def _ready_texts(self) -> int:
        servable = self._pending[0].servable
        count = 0
        for request in self._pending:
            if request.servable is not servable:
                break
            count += len(request.texts)
        return count

    async def _wait_to_fill(self) -> None:
        """Waits until the front requests fill a batch or the oldest one has waited batch_timeout."""
        loop = asyncio.get_running_loop()
        while self._pending and self.max_batch_size > 1 and self._ready_texts() < self.max_batch_size:
            remaining = self._pending[0].arrived + self.batch_timeout - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list:
        """The front requests for one servable, up to max_batch_size texts (a larger request goes alone)."""
        batch, count = [], 0
        while self._pending:
            request = self._pending[0]
            if batch and (request.servable is not batch[0].servable
                          or count + len(request.texts) > self.max_batch_size):
                break
            self._pending.popleft()
            if request.future.done():  # the client went away while waiting
                continue
            batch.append(request)
            count += len(request.texts)
        return batch

    async def _run(self, batch: list) -> None:
        texts = [text for request in batch for text in request.texts]
        servable = batch[0].servable
        # Without merging a request runs whole (as in TF Serving without batching); with it, in calls of at
        # most max_batch_size texts (a request larger than that is split).
        size = len(texts) if self.max_batch_size == 1 else self.max_batch_size
        for start in range(0, len(texts), size):
            self.on_batch(min(size, len(texts) - start))
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(self._executor, servable.predict, texts, size)
        except Exception as error:  # noqa: BLE001  the requests get the error; the worker goes on
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        start = 0
        for request in batch:
            end = start + len(request.texts)
            if not request.future.done():
                request.future.set_result({name: values[start:end] for name, values in outputs.items()})
            start = end
