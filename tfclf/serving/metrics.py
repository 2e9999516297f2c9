"""The server's Prometheus metrics, in the text exposition format (no client library: three metric kinds).

    registry = Registry()
    requests = registry.counter("tfclf_requests_total", "Requests answered", ("endpoint", "code"))
    requests.inc(endpoint="predict", code="200")
    registry.render()  # the body of GET /monitoring/prometheus/metrics
"""
import threading

# Request latencies from a 1 ms bag-of-words answer to a 10 s overloaded transformer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Texts per model call: powers of two up to the largest --max-batch-size one would pick.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _labels(names, values) -> str:
    if not names:
        return ""
    escaped = (str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for value in values)
    return "{" + ",".join(f'{name}="{value}"' for name, value in zip(names, escaped)) + "}"


class Counter:
    def __init__(self, name: str, help_text: str, label_names=()):
        self.name, self.help, self.label_names = name, help_text, tuple(label_names)
        self._values, self._lock = {}, threading.Lock()

    def inc(self, amount: float = 1.0, **labels) -> None:
        key = tuple(str(labels[name]) for name in self.label_names)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels) -> float:
        return self._values.get(tuple(str(labels[name]) for name in self.label_names), 0.0)

    def lines(self):
        yield f"# TYPE {self.name} counter"
        for key, value in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.label_names, key)} {value:g}"


class Gauge:
    """A value read when scraped (queue depth, served version)."""

    def __init__(self, name: str, help_text: str, read):
        self.name, self.help, self.read = name, help_text, read

    def lines(self):
        yield f"# TYPE {self.name} gauge"
        yield f"{self.name} {float(self.read()):g}"


class Histogram:
    def __init__(self, name: str, help_text: str, buckets):
        self.name, self.help, self.buckets = name, help_text, tuple(buckets)
        self._counts, self._sum, self._count = [0] * len(self.buckets), 0.0, 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    self._counts[index] += 1
            self._sum += value
            self._count += 1

    def lines(self):
        yield f"# TYPE {self.name} histogram"
        for bound, count in zip(self.buckets, self._counts):
            yield f'{self.name}_bucket{{le="{bound:g}"}} {count}'
        yield f'{self.name}_bucket{{le="+Inf"}} {self._count}'
        yield f"{self.name}_sum {self._sum:g}"
        yield f"{self.name}_count {self._count}"


class Registry:
    def __init__(self):
        self._metrics = []

    def _add(self, metric):
        self._metrics.append(metric)
        return metric

    def counter(self, name, help_text, label_names=()) -> Counter:
        return self._add(Counter(name, help_text, label_names))

    def gauge(self, name, help_text, read) -> Gauge:
        return self._add(Gauge(name, help_text, read))

    def histogram(self, name, help_text, buckets) -> Histogram:
        return self._add(Histogram(name, help_text, buckets))

    def render(self) -> str:
        lines = []
        for metric in self._metrics:
            lines.append(f"# HELP {metric.name} {metric.help}")
            lines.extend(metric.lines())
        return "\n".join(lines) + "\n"


class ServerMetrics:
    """What the server counts: requests and errors by endpoint and status code, predict latency, texts per
    model call, model calls, and (read when scraped) the queue depth and the served version."""

    def __init__(self, queue_depth, served_version):
        self.registry = Registry()
        self.requests = self.registry.counter("tfclf_requests_total", "Requests answered, by endpoint and HTTP "
                                              "status code", ("endpoint", "code"))
        self.errors = self.registry.counter("tfclf_request_errors_total", "Requests answered with a 4xx or 5xx "
                                            "status, by endpoint and code", ("endpoint", "code"))
        self.latency = self.registry.histogram("tfclf_predict_latency_seconds", "Predict request latency, from "
                                               "the request's arrival to its answer", LATENCY_BUCKETS)
        self.batch_size = self.registry.histogram("tfclf_batch_size", "Texts per model call", BATCH_BUCKETS)
        self.model_calls = self.registry.counter("tfclf_model_calls_total", "Model calls (merged batches)")
        self.registry.gauge("tfclf_queue_depth", "Predict requests waiting for a model call", queue_depth)
        self.registry.gauge("tfclf_model_version", "The version served as latest (0 while none is loaded)",
                            served_version)

    def answered(self, endpoint: str, code: int) -> None:
        self.requests.inc(endpoint=endpoint, code=code)
        if code >= 400:
            self.errors.inc(endpoint=endpoint, code=code)
