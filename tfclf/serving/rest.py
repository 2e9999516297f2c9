"""TF Serving's REST API formats, for tfclf exports (one input, `text`: string[batch]).

Requests: `{"instances": ["text", ...]}` or `{"instances": [{"text": "..."}, ...]}` (row format, answered
`{"predictions": [{output: value, ...}, ...]}`), and `{"inputs": {"text": [...]}}` or `{"inputs": [...]}`
(columnar, answered `{"outputs": {output: [...], ...}}`); an optional `"signature_name": "serving_default"`.
A text may also come as `{"b64": "<base64 of its UTF-8 bytes>"}`, TF Serving's form for binary strings.
Every error is a RequestError whose message the server sends as `{"error": "..."}`.

    >>> parse_predict(b'{"inputs": {"text": ["hi", ""]}}', Limits())
    (['hi', ''], False)
    >>> parse_path("spam/versions/2:predict")
    ('spam', 2, ':predict')
"""
import base64
import dataclasses
import json
import re

import numpy as np

INPUT = "text"
SIGNATURE = "serving_default"
_PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<verb>:predict|/metadata)?")
_JSON_TYPES = {bool: "boolean", int: "number", float: "number", type(None): "null", list: "array",
               dict: "object", str: "string"}


class RequestError(Exception):
    """A request the server refuses: HTTP `status` and a message for `{"error": ...}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one predict request may hold (each bound keeps one request from taking the server's memory)."""
    max_body_bytes: int = 1 << 20    # 1 MiB: a thousand texts of a thousand characters
    max_texts: int = 1024            # texts per request; a batch bigger than this is the client's to split
    max_text_chars: int = 100_000    # a long document; the models cut far earlier (sequence length)


def parse_path(path: str) -> tuple:
    """(model name, version or None, verb: ":predict", "/metadata" or None) of the path after /v1/models/."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise RequestError(404, f"Malformed request: /v1/models/{path}; expected /v1/models/NAME"
                                "[/versions/N][:predict|/metadata]")
    version = match["version"]
    if version is not None and not (version.isascii() and version.isdigit() and len(version) <= 18):
        raise RequestError(404, f"Malformed request: version {version!r} is not a version number")
    return match["name"], None if version is None else int(version), match["verb"]


def _type_name(value) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _text(value, where: str, limits: Limits) -> str:
    if isinstance(value, dict) and set(value) == {"b64"}:  # TF Serving's binary form of a string
        value = _from_base64(value["b64"], where)
    if not isinstance(value, str):
        raise RequestError(400, f"{where}: expected a string (the text to classify), got {_type_name(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RequestError(400, f"{where}: not valid UTF-8 ({error.reason} at character {error.start})") from None
    if len(value) > limits.max_text_chars:
        raise RequestError(400, f"{where}: text of {len(value)} characters is longer than the server's "
                                f"--max-text-chars {limits.max_text_chars}; shorten it")
    return value


def _from_base64(encoded, where: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (TypeError, ValueError) as error:  # binascii.Error and UnicodeDecodeError are ValueErrors
        reason = "not valid UTF-8" if isinstance(error, UnicodeDecodeError) else "not valid base64"
        raise RequestError(400, f"{where}: {{\"b64\": ...}} is {reason}; send the text's UTF-8 bytes, "
                                "base64-encoded") from None


def _texts(values, where: str, limits: Limits, row_format: bool) -> list:
    if not isinstance(values, list):
        raise RequestError(400, f"{where}: expected a list of texts, got {_type_name(values)}")
    if not values:
        raise RequestError(400, f"{where}: no texts; send at least one")
    if len(values) > limits.max_texts:
        raise RequestError(400, f"{where}: {len(values)} texts is more than the server's --max-texts "
                                f"{limits.max_texts}; send them in several requests")
    texts = []
    for index, value in enumerate(values):
        if row_format and isinstance(value, dict) and set(value) != {"b64"}:  # a named input: {"text": "..."}
            if set(value) != {INPUT}:
                raise RequestError(400, f"{where}[{index}]: the model's only input is {INPUT!r}, got keys "
                                        f"{sorted(value)}")
            value = value[INPUT]
        texts.append(_text(value, f"{where}[{index}]", limits))
    return texts


def parse_predict(body: bytes, limits: Limits) -> tuple:
    """(texts, row_format) of a predict request body; RequestError(400) for anything else."""
    try:
        request = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise RequestError(400, f"request body is not valid UTF-8 (byte {error.start}); send UTF-8 JSON") from None
    except json.JSONDecodeError as error:
        raise RequestError(400, f"JSON Parse error: {error}") from None
    if not isinstance(request, dict):
        raise RequestError(400, f"request body: expected a JSON object with 'instances' or 'inputs', "
                                f"got {_type_name(request)}")
    unknown = sorted(set(request) - {"instances", "inputs", "signature_name"})
    if unknown:
        raise RequestError(400, f"request body: unknown field(s) {unknown}; expected 'instances' or 'inputs' "
                                "and optionally 'signature_name'")
    signature = request.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        raise RequestError(400, f"Serving signature name: {signature!r} not found in signature def; "
                                f"the model has {SIGNATURE!r}")
    if "instances" in request and "inputs" in request:
        raise RequestError(400, "Not allowed: both 'inputs' and 'instances' are specified; send one")
    if "instances" in request:
        return _texts(request["instances"], "instances", limits, row_format=True), True
    if "inputs" not in request:
        raise RequestError(400, "Missing 'inputs' or 'instances' key")
    inputs = request["inputs"]
    if isinstance(inputs, dict):
        if set(inputs) != {INPUT}:
            raise RequestError(400, f"inputs: the model's only input is {INPUT!r}, got keys {sorted(inputs)}")
        return _texts(inputs[INPUT], f"inputs.{INPUT}", limits, row_format=False), False
    return _texts(inputs, "inputs", limits, row_format=False), False


def _json_values(values: np.ndarray) -> list:
    if values.dtype.kind in "SO":  # tf.string outputs arrive as bytes
        return np.vectorize(lambda item: item.decode("utf-8", "replace"), otypes=[object])(values).tolist()
    return values.tolist()


def format_predict(outputs: dict, row_format: bool) -> dict:
    """`{"predictions": [...]}` (one object per text) or `{"outputs": {name: [...]}}` for the model's outputs."""
    columns = {name: _json_values(outputs[name]) for name in sorted(outputs)}
    if not row_format:
        return {"outputs": columns}
    count = len(next(iter(columns.values())))
    return {"predictions": [{name: values[index] for name, values in columns.items()} for index in range(count)]}


def model_status(states: dict, version: int = None) -> dict:
    """GetModelStatusResponse: each version's state, newest first (or only `version`'s)."""
    chosen = sorted(states, reverse=True) if version is None else [version]
    return {"model_version_status": [
        {"version": str(number), "state": states[number][0],
         "status": {"error_code": states[number][1], "error_message": states[number][2]}}
        for number in chosen]}


def model_metadata(name: str, servable) -> dict:
    """GetModelMetadataResponse: the model spec and the version's signature defs."""
    return {"model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": servable.signature_def}}}
