"""TF Serving's REST JSON for tensors, Examples and results, after util/json_tensor.cc.

A port of tensorflow_serving/util/json_tensor.cc, function for function, checked by a port
of its json_tensor_test.cc (tests/test_json_tensor.py). Request bodies ("instances",
"inputs", "examples") fill PredictRequest / ClassificationRequest / RegressionRequest
protos; tensors, results and errors become TF Serving's response bodies; every refusal
carries upstream's message.

Upstream reads JSON with rapidjson 1.1.0 (its iterative parser, with NaN/Infinity allowed,
stopping after the top-level value) and writes it with rapidjson's PrettyWriter. Both decide
what a client may send and what it gets back, so both are reproduced here:

* an integer literal stays an integer when it fits int64 or uint64; every other number is
  the double rapidjson computes, so "1" is no float where an int is expected but "1.0" is;
* objects keep all their members in order, duplicates included; a lookup takes the first;
* strings are bytes, passed through unchecked; parse errors say what rapidjson says, at the
  byte offset it gives;
* nothing recurses: a document nested 500000 levels deep parses. Python's json module parses
  the documents it reads as rapidjson does (the common case, and fast); anything else, from
  deep nesting to rapidjson's own leniencies and every error, goes to the explicit-stack
  parser below.
"""

from __future__ import annotations

import base64
import binascii
import enum
import itertools
import json
import math
import re
import struct
from collections.abc import Callable, Mapping, MutableMapping
from fractions import Fraction
from typing import TypeAlias

import grpc
import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

from zoo.serve.server.status import ServingError, invalid

DT = types_pb2


class JsonPredictRequestFormat(enum.Enum):
    """How a predict request was written, and so how its response is (kRow / kColumnar)."""

    ROW = "row"  # "instances" in, "predictions" out
    COLUMNAR = "columnar"  # "inputs" in, "outputs" out


# --------------------------------------------------------------------------------------
# JSON values as rapidjson's Document holds them
# --------------------------------------------------------------------------------------


class JsonObject:
    """A JSON object as rapidjson keeps it: every member, in order, duplicate names included."""

    __slots__ = ("members",)

    def __init__(self, members: list[tuple[bytes, JsonValue]]) -> None:
        self.members = members

    def find(self, name: bytes) -> JsonValue | _Absent:
        """The first member called `name` (rapidjson's FindMember), else ABSENT."""
        for key, value in self.members:
            if key == name:
                return value
        return ABSENT


class _Absent:
    """What JsonObject.find returns for a missing member."""


ABSENT = _Absent()

#: null, false/true, integer, double, string (raw bytes), array, object.
JsonValue: TypeAlias = "None | bool | int | float | bytes | list[JsonValue] | JsonObject"


def _type_name(value: JsonValue) -> str:
    """rapidjson's type, as upstream's JsonTypeString names it."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if type(value) is JsonObject:
        return "Object"
    if type(value) is list:
        return "Array"
    if type(value) is bytes:
        return "String"
    return "Number"


def _is_base64_object(value: JsonValue) -> bool:
    """{"b64": "<string>"} and nothing else: upstream's IsValBase64Object."""
    return (
        type(value) is JsonObject
        and len(value.members) == 1
        and value.members[0][0] == b"b64"
        and type(value.members[0][1]) is bytes
    )


def _text(data: bytes) -> str:
    """Bytes from a request as text for protos and messages (upstream keeps them raw)."""
    return data.decode("utf-8", "replace")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------------------
# Parsing: rapidjson's iterative parser, with Python's json module as the fast path
# --------------------------------------------------------------------------------------


class _SyntaxError(Exception):
    """A rapidjson parse error: its English message (GetParseError_En) and byte offset."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class _Fallback(Exception):
    """The fast path cannot vouch for this document: parse it the exact way."""


_EMPTY = "The document is empty."
_INVALID_VALUE = "Invalid value."
_MISS_NAME = "Missing a name for object member."
_MISS_COLON = "Missing a colon after a name of object member."
_MISS_COMMA_OR_CURLY = "Missing a comma or '}' after an object member."
_MISS_COMMA_OR_SQUARE = "Missing a comma or ']' after an array element."
_BAD_HEX = "Incorrect hex digit after \\u escape in string."
_BAD_SURROGATE = "The surrogate pair in string is invalid."
_BAD_ESCAPE = "Invalid escape character in string."
_MISS_QUOTE = "Missing a closing quotation mark in string."
_TOO_BIG = "Number too big to be stored in double."
_MISS_FRACTION = "Miss fraction part in number."
_MISS_EXPONENT = "Miss exponent in number."

# The parser's states (rapidjson's IterativeParsingState), and the error each one reports
# for a token it cannot take or for the end of the input (its HandleError).
_START, _OBJECT_START, _KEY, _COLON, _MEMBER, _MEMBER_COMMA = range(6)
_ARRAY_START, _ELEMENT, _ELEMENT_COMMA, _FINISH = range(6, 10)
_VALUE_EXPECTED = {_START, _COLON, _ARRAY_START, _ELEMENT_COMMA}
_UNEXPECTED = {
    _START: _EMPTY,
    _OBJECT_START: _MISS_NAME,
    _MEMBER_COMMA: _MISS_NAME,
    _KEY: _MISS_COLON,
    _MEMBER: _MISS_COMMA_OR_CURLY,
    _COLON: _INVALID_VALUE,
    _ARRAY_START: _INVALID_VALUE,
    _ELEMENT_COMMA: _INVALID_VALUE,
    _ELEMENT: _MISS_COMMA_OR_SQUARE,
}

_WHITESPACE = frozenset(b" \t\n\r")
_WS = re.compile(rb"[ \t\n\r]*")
_PUNCTUATION = frozenset(b"]},:")
_PLAIN = re.compile(rb'[^"\\\x00-\x1f]*')
_DIGITS = re.compile(rb"[0-9]*")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = {
    ord('"'): b'"',
    ord("\\"): b"\\",
    ord("/"): b"/",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
}
_POW10 = [float(f"1e{n}") for n in range(309)]  # rapidjson's Pow10() table


def _parse_document(body: bytes | str) -> JsonObject:
    """Upstream's ParseJson: the body as a JSON object, or INVALID_ARGUMENT saying why not."""
    data = _utf8(body) if isinstance(body, str) else bytes(body)
    if not data:
        raise invalid("JSON Parse error: The document is empty")
    # rapidjson's UTF-8 memory stream drops the bytes of a byte order mark, each on its own.
    pos = 0
    for bom_byte in b"\xef\xbb\xbf":
        if data[pos : pos + 1] == bytes([bom_byte]):
            pos += 1
    try:
        doc = _parse_with_json_module(data, pos)
    except _Fallback:
        try:
            doc = _parse_exact(data, pos)
        except _SyntaxError as e:
            raise invalid(f"JSON Parse error: {e.message} at offset: {e.offset}") from None
    if type(doc) is not JsonObject:
        raise _format_error(doc, "Is not object")
    return doc


def _parse_exact(buf: bytes, pos: int) -> JsonValue:
    """rapidjson's iterative parser: an explicit stack, so any depth, never recursion.

    Stops after the first complete value (kParseStopWhenDoneFlag); a NUL byte ends the
    input as the buffer's end does. Raises _SyntaxError with rapidjson's message and offset.
    """
    end = len(buf)
    open_containers: list[list[JsonValue] | JsonObject] = []
    root: JsonValue = None
    key = b""

    def attach(value: JsonValue) -> None:
        nonlocal root
        if not open_containers:
            root = value
        elif type(open_containers[-1]) is list:
            open_containers[-1].append(value)
        else:
            open_containers[-1].members.append((key, value))

    def state_after_value() -> int:
        if not open_containers:
            return _FINISH
        return _ELEMENT if type(open_containers[-1]) is list else _MEMBER

    state = _START
    pos = _WS.match(buf, pos).end()
    while pos < end and buf[pos] != 0:
        c = buf[pos]
        if state in _VALUE_EXPECTED:
            if c == 0x5B or c == 0x7B:  # [ {
                container: list[JsonValue] | JsonObject = [] if c == 0x5B else JsonObject([])
                attach(container)
                open_containers.append(container)
                pos += 1
                state = _ARRAY_START if c == 0x5B else _OBJECT_START
            elif c == 0x5D and state == _ARRAY_START:  # ]
                open_containers.pop()
                pos += 1
                state = state_after_value()
            elif c in _PUNCTUATION:
                raise _SyntaxError(_UNEXPECTED[state], pos)
            else:
                value, pos = _parse_scalar(buf, pos)
                attach(value)
                state = state_after_value()
        elif state == _OBJECT_START or state == _MEMBER_COMMA:
            if c == 0x22:  # "
                key, pos = _parse_string(buf, pos)
                state = _KEY
            elif c == 0x7D and state == _OBJECT_START:  # }
                open_containers.pop()
                pos += 1
                state = state_after_value()
            else:
                raise _SyntaxError(_MISS_NAME, pos)
        elif state == _KEY:
            if c != 0x3A:  # :
                raise _SyntaxError(_MISS_COLON, pos)
            pos += 1
            state = _COLON
        elif state == _MEMBER or state == _ELEMENT:
            closing = 0x7D if state == _MEMBER else 0x5D
            if c == 0x2C:  # ,
                pos += 1
                state = _MEMBER_COMMA if state == _MEMBER else _ELEMENT_COMMA
            elif c == closing:
                open_containers.pop()
                pos += 1
                state = state_after_value()
            else:
                raise _SyntaxError(_UNEXPECTED[state], pos)
        if state == _FINISH:
            return root
        if pos < end and buf[pos] in _WHITESPACE:
            pos = _WS.match(buf, pos).end()
    raise _SyntaxError(_UNEXPECTED[state], pos)


def _parse_scalar(buf: bytes, pos: int) -> tuple[JsonValue, int]:
    """A string, literal or number at `pos` (rapidjson's ParseValue for non-containers)."""
    c = buf[pos]
    if c == 0x22:
        return _parse_string(buf, pos)
    for word, value in ((b"null", None), (b"true", True), (b"false", False)):
        if c == word[0]:
            for i in range(1, len(word)):
                if pos + i >= len(buf) or buf[pos + i] != word[i]:
                    raise _SyntaxError(_INVALID_VALUE, pos + i)
            return value, pos + len(word)
    return _parse_number(buf, pos)


def _parse_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    """rapidjson's ParseString from the opening quote at `pos`: the raw bytes, unescaped.

    Bytes pass through unvalidated; \\u escapes become UTF-8 (a lone low surrogate too, as
    three bytes); control characters and NUL are errors.
    """
    end = len(buf)
    pos += 1
    chunks = []
    while True:
        plain_end = _PLAIN.match(buf, pos).end()
        chunks.append(buf[pos:plain_end])
        pos = plain_end
        c = buf[pos] if pos < end else 0
        if c == 0x22:
            return b"".join(chunks), pos + 1
        if c == 0x5C:
            escape = pos
            e = buf[pos + 1] if pos + 1 < end else 0
            if e in _SIMPLE_ESCAPES:
                chunks.append(_SIMPLE_ESCAPES[e])
                pos += 2
            elif e == 0x75:  # u
                code, pos = _hex4(buf, pos + 2, escape)
                if 0xD800 <= code <= 0xDBFF:
                    if buf[pos : pos + 2] != b"\\u":
                        raise _SyntaxError(_BAD_SURROGATE, escape)
                    low, pos = _hex4(buf, pos + 2, escape)
                    if not 0xDC00 <= low <= 0xDFFF:
                        raise _SyntaxError(_BAD_SURROGATE, escape)
                    code = (((code - 0xD800) << 10) | (low - 0xDC00)) + 0x10000
                chunks.append(_utf8(chr(code)))
            else:
                raise _SyntaxError(_BAD_ESCAPE, escape)
        elif c == 0:
            raise _SyntaxError(_MISS_QUOTE, pos)
        else:  # an unescaped control character
            raise _SyntaxError(_BAD_ESCAPE, pos)


def _hex4(buf: bytes, pos: int, escape: int) -> tuple[int, int]:
    digits = buf[pos : pos + 4]
    if len(digits) < 4 or not all(c in _HEX_DIGITS for c in digits):
        raise _SyntaxError(_BAD_HEX, escape)
    return int(digits, 16), pos + 4


def _parse_number(buf: bytes, pos: int) -> tuple[int | float, int]:
    """rapidjson's ParseNumber (no kParseFullPrecisionFlag), a run of digits at a time.

    An integer literal within int64/uint64 stays an int. Anything else is the double rapidjson
    builds: the digits taken into a 64-bit significand while it is at most 2**53 - 1, up to
    17 significant digits in all, then one multiplication or division by a power of ten; for
    long or extreme literals that can be an ulp off the correctly rounded value. "NaN", "Inf"
    and "Infinity" (with or without "-") are numbers, and rapidjson's quirks stay: "NaN.5" is
    0.5.
    """
    start = pos
    minus = buf.startswith(b"-", pos)
    pos += minus
    c = buf[pos] if pos < len(buf) else 0
    i64 = significant = exp_frac = exp = 0
    d = 0.0
    use_double = nan_or_inf = False

    if c == 0x30:  # a leading 0 is the whole integer part
        pos += 1
    elif 0x31 <= c <= 0x39:
        run_end = _DIGITS.match(buf, pos).end()
        whole = buf[pos:run_end]
        pos = run_end
        limit = 2**63 if minus else 2**64 - 1
        significant = len(whole) - 1  # rapidjson does not count the first digit
        if len(whole) <= 20 and int(whole) <= limit:
            i64 = int(whole)
        else:  # digits go into 64 bits while they fit, the rest into a double
            fits = len(str(limit))
            if int(whole[:fits]) > limit:
                fits -= 1
            significant = fits - 1
            d, use_double = float(int(whole[:fits])), True
            for digit in whole[fits:]:
                if d >= 1.7976931348623157e307:
                    raise _SyntaxError(_TOO_BIG, start)
                d = d * 10 + (digit - 0x30)
    elif c in b"IN":
        # rapidjson consumes "NaN" as far as it matches, then tries "Inf" from there.
        nan_or_inf = True
        matched = _common_prefix(buf, pos, b"NaN")
        pos += matched
        if matched == 3:
            d = math.nan
        else:
            matched = _common_prefix(buf, pos, b"Inf")
            pos += matched
            if matched < 3:
                raise _SyntaxError(_INVALID_VALUE, pos)
            d = -math.inf if minus else math.inf
            if buf.startswith(b"i", pos):
                matched = _common_prefix(buf, pos, b"inity")
                pos += matched
                if matched < 5:
                    raise _SyntaxError(_INVALID_VALUE, pos)
    else:
        raise _SyntaxError(_INVALID_VALUE, pos)

    if buf.startswith(b".", pos):
        pos += 1
        run_end = _DIGITS.match(buf, pos).end()
        if run_end == pos:
            raise _SyntaxError(_MISS_FRACTION, pos)
        rest = buf[pos:run_end]
        pos = run_end
        if not use_double:
            if i64 == 0:  # leading zeros leave the significand 0 and count for nothing
                zeros = len(rest) - len(rest.lstrip(b"0"))
                exp_frac -= zeros
                rest = rest[zeros:]
            head = str(i64).encode() if i64 else b""
            # A digit is taken while the significand is at most 2**53 - 1 (16 digits at most).
            take = max(0, 16 - len(head))
            if take < len(rest) and int(head + rest[:take]) <= 2**53 - 1:
                take += 1
            take = min(take, len(rest))
            if take:
                i64 = int(head + rest[:take])
            significant += take
            exp_frac -= take
            rest = rest[take:]
            d, use_double = float(i64), True
        # d > 0 here whenever digits remain, so each one taken counts as significant.
        for digit in rest[: max(0, 17 - significant)]:
            d = d * 10.0 + (digit - 0x30)
            exp_frac -= 1
            significant += 1

    if pos < len(buf) and buf[pos] in b"eE":
        pos += 1
        if not use_double:
            d, use_double = float(i64), True
        exp_minus = buf.startswith(b"-", pos)
        pos += exp_minus or buf.startswith(b"+", pos)
        run_end = _DIGITS.match(buf, pos).end()
        if run_end == pos:
            raise _SyntaxError(_MISS_EXPONENT, pos)
        digits = buf[pos:run_end].lstrip(b"0")
        pos = run_end
        exp = int(digits or b"0") if len(digits) <= 10 else 10**10
        if exp_minus:
            exp = -exp  # rapidjson stops counting near 2**31; the value is 0 either way
        elif exp > 308 - exp_frac:
            raise _SyntaxError(_TOO_BIG, start)

    if use_double:
        p = exp + exp_frac
        d = _scale(_scale(d, -308), p + 308) if p < -308 else _scale(d, p)
        return (-d if minus else d), pos
    if nan_or_inf:
        return d, pos
    return (-i64 if minus else i64), pos


def _common_prefix(buf: bytes, pos: int, word: bytes) -> int:
    """How many bytes of `word` follow at `pos` (rapidjson's chained Consume())."""
    matched = 0
    while matched < len(word) and buf.startswith(word[matched : matched + 1], pos + matched):
        matched += 1
    return matched


def _scale(significand: float, exp: int) -> float:
    """rapidjson's FastPath: significand times 10**exp in one double operation."""
    if exp < -308:
        return 0.0
    if exp >= 0:
        return significand * _POW10[exp]
    return significand / _POW10[-exp]


# The fast path. Python's json module reads every document it accepts as rapidjson does once
# the bytes are valid UTF-8 without a high-surrogate escape (rapidjson rejects unpaired ones);
# its numbers are re-valued as rapidjson values them. Whatever it refuses or recurses too deep
# for goes to _parse_exact, which also gives rapidjson's message for every error.
_HIGH_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]")


def _parse_with_json_module(buf: bytes, pos: int) -> JsonValue:
    if _HIGH_SURROGATE_ESCAPE.search(buf, pos):
        raise _Fallback
    try:
        text = buf[pos:].decode("utf-8")
    except UnicodeDecodeError:
        raise _Fallback from None
    try:
        value, _ = _DECODER.raw_decode(text, _WS.match(buf, pos).end() - pos)
    except (ValueError, RecursionError):
        raise _Fallback from None
    if type(value) not in (JsonObject, list):
        raise _Fallback  # a top-level "1." or "1e" is an error to rapidjson, 1 to Python
    return _finish_json_module_value(value)


def _json_module_float(literal: str) -> float:
    """A literal with a point or exponent, valued as _parse_number values it."""
    if "e" not in literal and "E" not in literal:
        if len(literal) <= 16:
            # At most 15 digits: an exact significand over an exact power of ten, one
            # rounding in rapidjson, hence the correctly rounded float().
            return float(literal)
        if literal.index(".") < 19:
            return _decimal(literal)
    try:
        value, stop = _parse_number(literal.encode("ascii"), 0)
    except _SyntaxError:
        raise _Fallback from None
    if stop != len(literal):
        raise _Fallback
    return value


def _decimal(literal: str) -> float:
    """_parse_number's double for a literal like "-0.1234567890123456789" (no exponent, an
    integer part below 2**63), in a few string operations, for the json module's floats."""
    negative = literal.startswith("-")
    whole, _, fraction = literal[negative:].partition(".")
    if whole == "0":  # zeros after the point leave the significand 0 and count for nothing
        digits = fraction.lstrip("0")
        zeros, whole, first_counted = len(fraction) - len(digits), "", 0
    else:
        digits, zeros, first_counted = whole + fraction, 0, -1
    # Into 64 bits while the significand is at most 2**53 - 1: 16 or 17 digits.
    take = min(len(digits), 16 + (len(digits) > 16 and int(digits[:16]) <= 2**53 - 1))
    take = max(take, len(whole))
    d = float(int(digits[:take] or "0"))
    extra = digits[take : take + max(0, 17 - (first_counted + take))]
    for digit in extra:  # then into the double, up to 17 significant digits
        d = d * 10.0 + (ord(digit) - 0x30)
    places = zeros + take - len(whole) + len(extra)
    d = _scale(_scale(d, -308), 308 - places) if places > 308 else _scale(d, -places)
    return -d if negative else d


def _json_module_object(pairs: list[tuple[str, object]]) -> JsonObject:
    return JsonObject([(_utf8(k), _utf8(v) if type(v) is str else v) for k, v in pairs])


_DECODER = json.JSONDecoder(object_pairs_hook=_json_module_object, parse_float=_json_module_float)


def _finish_json_module_value(root: list | JsonObject) -> JsonValue:
    """Make the json module's value rapidjson's: str in arrays to bytes (objects did theirs),
    and integers beyond int64/uint64, which rapidjson holds as doubles, to the exact parser.
    Goes a level at a time, each at C speed where it can, never recursing."""
    level: list = [root]
    while level:
        lists = level if set(map(type, level)) == {list} else [n for n in level if type(n) is list]
        values = list(itertools.chain.from_iterable(lists))
        if len(lists) < len(level):
            values += [v for node in level if type(node) is JsonObject for _, v in node.members]
        kinds = set(map(type, values))
        if int in kinds:
            ints = values if kinds == {int} else [v for v in values if type(v) is int]
            if min(ints) < -(2**63) or max(ints) > 2**64 - 1:
                raise _Fallback
        if str in kinds:
            for array in lists:
                for index, item in enumerate(array):
                    if type(item) is str:
                        array[index] = _utf8(item)
        level = (
            values
            if kinds <= {list, JsonObject}
            else [v for v in values if type(v) in (list, JsonObject)]
        )
    return root


# --------------------------------------------------------------------------------------
# Writing: rapidjson's PrettyWriter, upstream's WriteDecimal and debug strings
# --------------------------------------------------------------------------------------


def _escape(match: re.Match[bytes]) -> bytes:
    c = match.group()[0]
    return _NAMED_ESCAPES.get(c) or b"\\u%04X" % c


_NAMED_ESCAPES = {0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r"}
_NAMED_ESCAPES.update({ord('"'): b'\\"', ord("\\"): b"\\\\"})
_TO_ESCAPE = re.compile(rb'[\x00-\x1f"\\]')


def _quote(data: bytes) -> bytes:
    """A JSON string as rapidjson's Writer writes it: other bytes go out as they are."""
    return b'"' + _TO_ESCAPE.sub(_escape, data) + b'"'


class _PrettyWriter:
    """rapidjson's PrettyWriter: 4-space indents; arrays on one line while single_line_arrays."""

    def __init__(self, single_line_arrays: bool = False) -> None:
        self.out = bytearray()
        self.single_line_arrays = single_line_arrays
        self._levels: list[list] = []  # [in an array?, values written so far]

    def _prefix(self) -> None:
        if not self._levels:
            return
        level = self._levels[-1]
        in_array, count = level
        if in_array:
            if count:
                self.out += b", " if self.single_line_arrays else b","
            if not self.single_line_arrays:
                self.out += b"\n" + self._indent()
        else:  # in an object: keys and values alternate
            if count:
                self.out += b",\n" if count % 2 == 0 else b": "
            else:
                self.out += b"\n"
            if count % 2 == 0:
                self.out += self._indent()
        level[1] += 1

    def _indent(self) -> bytes:
        return b" " * (4 * len(self._levels))

    def value(self, token: bytes) -> None:
        self._prefix()
        self.out += token

    def string(self, data: bytes) -> None:
        self.value(_quote(data))

    key = string

    def start_array(self) -> None:
        self._prefix()
        self._levels.append([True, 0])
        self.out += b"["

    def start_object(self) -> None:
        self._prefix()
        self._levels.append([False, 0])
        self.out += b"{"

    def end_array(self) -> None:
        _, count = self._levels.pop()
        if count and not self.single_line_arrays:
            self.out += b"\n" + self._indent()
        self.out += b"]"

    def end_object(self) -> None:
        _, count = self._levels.pop()
        if count:
            self.out += b"\n" + self._indent()
        self.out += b"}"

    def text(self) -> str:
        return self.out.decode("utf-8", "replace")


def _dtoa(value: float) -> bytes:
    """rapidjson's Writer::Double for a finite double: shortest digits, laid out its way.

    Digits come from repr(). rapidjson's Grisu2 gives the same ones unless a double needs 17
    digits, where its last one can differ (both read back as the same double): such numbers
    may read differently in an error message than upstream's.
    """
    if value == 0:
        return b"-0.0" if math.copysign(1.0, value) < 0 else b"0.0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    k = int(exp_text or 0) - len(fraction) + (len(digits) - len(digits.rstrip("0")))
    digits = digits.rstrip("0")
    length = len(digits)
    kk = length + k  # 10**(kk-1) <= value < 10**kk
    if 0 <= k and kk <= 21:
        text = digits + "0" * k + ".0"
    elif 0 < kk <= 21:
        text = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        text = "0." + "0" * -kk + digits
    elif length == 1:
        text = f"{digits}e{kk - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return (sign + text).encode()


def _scalar_token(value: JsonValue) -> bytes | None:
    """A scalar as rapidjson's Writer writes it; None for NaN/Infinity, which it refuses."""
    if value is None:
        return b"null"
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if type(value) is bytes:
        return _quote(value)
    if type(value) is float:
        return _dtoa(value) if math.isfinite(value) else None
    return str(value).encode()


_MAX_DEBUG_BYTES = 256
_END = object()


def _debug(value: JsonValue) -> str:
    """Upstream's JsonValueToDebugString: pretty JSON, arrays on one line, cut short once 256
    bytes are out (each write is refused past that), and at a NaN or Infinity, which the
    writer refuses after its separator. Walks with an explicit stack."""
    writer = _PrettyWriter(single_line_arrays=True)
    frames: list[tuple[object, bool]] = []  # (iterator, is an object)
    item: object = value
    while len(writer.out) < _MAX_DEBUG_BYTES:
        if type(item) is list:
            writer.start_array()
            frames.append((iter(item), False))
        elif type(item) is JsonObject:
            writer.start_object()
            frames.append((iter(item.members), True))
        else:
            token = _scalar_token(item)
            if token is None:
                writer._prefix()
                break
            writer.value(token)
        while frames:  # find the next value, closing what is done
            members, is_object = frames[-1]
            following = next(members, _END)
            if len(writer.out) >= _MAX_DEBUG_BYTES:
                return writer.text()
            if following is _END:
                frames.pop()
                writer.end_object() if is_object else writer.end_array()
                continue
            if is_object:
                writer.key(following[0])
                item = following[1]
            else:
                item = following
            break
        else:
            break
    return writer.text()


def _to_float32(value: float) -> float:
    """C's (float)value: round to nearest even, overflowing to infinity."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def _floats32(values: list[int | float]) -> list[float]:
    """(float)(double)value for a whole list: rapidjson's GetFloat()."""
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np.float32).tolist()


def _atof32(text: str) -> float:
    """absl::SimpleAtof: the float nearest the decimal `text`.

    Rounding to a double and then to a float gives that float unless the double lies exactly
    halfway between two floats (or among float subnormals); those few are settled exactly.
    """
    double = float(text)
    single = _to_float32(double)
    if single == double or math.isinf(single):
        return single
    low_bits = struct.unpack("<Q", struct.pack("<d", double))[0] & 0x1FFFFFFF
    if low_bits != 0x10000000 and abs(double) >= 2.0**-126:
        return single
    other = float(np.nextafter(np.float32(single), np.float32(double)))
    if abs(double - single) != abs(other - double):
        return single
    exact = Fraction(text)
    if exact == Fraction(double):  # truly halfway: ties to even, as the cast did
        return single
    return single if (exact > double) == (single > double) else other


def _decimal_token(value: float, is_float32: bool) -> bytes:
    """Upstream's WriteDecimal: "%g" when those six digits read back as the same number, else
    every digit it takes ("%.9g" / "%.17g"); ".0" after whole numbers; NaN, Infinity."""
    if math.isnan(value):
        return b"NaN"
    if math.isinf(value):
        return b"-Infinity" if value < 0 else b"Infinity"
    text = f"{value:g}"
    if (_atof32(text) if is_float32 else float(text)) != value:
        text = f"{value:.9g}" if is_float32 else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text.encode()


# --------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------


def _dtype_string(dtype: int) -> str:
    """TensorFlow's DataTypeString: "float", "int32", "string", "float_ref", ..."""
    if dtype > 100:  # kDataTypeRefOffset
        return _dtype_string(dtype - 100) + "_ref"
    if dtype == DT.DT_INVALID:
        return "INVALID"
    if dtype in DT.DataType.values():
        return DT.DataType.Name(dtype)[len("DT_") :].lower()
    return f"unknown dtype enum ({dtype})"


def _status_string(error: ServingError) -> str:
    """absl::Status::ToString() of an error, as upstream nests one in another's message."""
    return f"{error.code.name}: {error.message}"


def _format_error(value: JsonValue, message: str) -> ServingError:
    return invalid(f"JSON Value: {_debug(value)} {message}")


def _type_error(value: JsonValue, dtype: int) -> ServingError:
    return invalid(
        f"JSON Value: {_debug(value)} Type: {_type_name(value)}"
        f" is not of expected type: {_dtype_string(dtype)}"
    )


_INT32 = (-(2**31), 2**31 - 1)

#: The JSON values each dtype takes (upstream's AddValueToTensor): their Python types, and
#: for integers the range (int32's for the narrower types too: upstream checks no more).
_ACCEPTED: dict[int, tuple[set[type], tuple[int, int] | None]] = {
    DT.DT_FLOAT: ({int, float}, None),
    DT.DT_DOUBLE: ({int, float}, None),
    DT.DT_INT32: ({int}, _INT32),
    DT.DT_INT16: ({int}, _INT32),
    DT.DT_INT8: ({int}, _INT32),
    DT.DT_UINT8: ({int}, _INT32),
    DT.DT_STRING: ({bytes}, None),
    DT.DT_INT64: ({int}, (-(2**63), 2**63 - 1)),
    DT.DT_BOOL: ({bool}, None),
    DT.DT_UINT32: ({int}, (0, 2**32 - 1)),
    DT.DT_UINT64: ({int}, (0, 2**64 - 1)),
}


def _all_accepted(values: list[JsonValue], dtype: int) -> bool:
    """Whether a dtype takes every one of `values` (checked at C speed)."""
    if not values:
        return True
    if dtype not in _ACCEPTED:
        return False
    types, bounds = _ACCEPTED[dtype]
    if not set(map(type, values)) <= types:
        return False
    return bounds is None or bounds[0] <= min(values) and max(values) <= bounds[1]


_VALUE_FIELDS = {
    DT.DT_FLOAT: "float_val",
    DT.DT_DOUBLE: "double_val",
    DT.DT_INT32: "int_val",
    DT.DT_INT16: "int_val",
    DT.DT_INT8: "int_val",
    DT.DT_UINT8: "int_val",
    DT.DT_STRING: "string_val",
    DT.DT_INT64: "int64_val",
    DT.DT_BOOL: "bool_val",
    DT.DT_UINT32: "uint32_val",
    DT.DT_UINT64: "uint64_val",
}


def _leaf(value: JsonValue, dtype: int) -> object:
    """One tensor element from a JSON scalar or b64 object, else the error upstream gives."""
    if type(value) is JsonObject:
        if dtype == DT.DT_STRING:
            return _decode_base64_object(value)
        raise _type_error(value, dtype)
    if dtype not in _ACCEPTED:
        raise ServingError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"Conversion of JSON Value: {_debug(value)} to type: {_dtype_string(dtype)}",
        )
    if not _all_accepted([value], dtype):
        raise _type_error(value, dtype)
    return value


_BASE64_SPACE = b" \t\n\v\f\r"
_BASE64_DATA = re.compile(rb"[A-Za-z0-9+/]*")


def _base64_unescape(text: bytes) -> bytes | None:
    """absl::Base64Unescape: whitespace anywhere, padding ('=' or '.') optional but, if there,
    exact and last; None where absl refuses."""
    cut = min((i for i in (text.find(b"="), text.find(b".")) if i >= 0), default=len(text))
    data = text[:cut].translate(None, _BASE64_SPACE)
    tail = text[cut:]
    if not _BASE64_DATA.fullmatch(data) or tail.translate(None, b"=." + _BASE64_SPACE):
        return None
    padding = len(tail) - len(tail.translate(None, b"=."))
    missing = -len(data) % 4
    if missing == 3 or padding not in (0, missing):
        return None
    return binascii.a2b_base64(data + b"=" * missing)


def _decode_base64_object(value: JsonValue) -> bytes:
    if not _is_base64_object(value):
        raise invalid(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    decoded = _base64_unescape(value.members[0][1])
    if decoded is None:
        raise invalid("Unable to base64 decode")
    return decoded


def _add_dense_shape(value: JsonValue, shape: tensor_shape_pb2.TensorShapeProto) -> None:
    """GetDenseTensorShape: the sizes of the first elements' lists, level by level."""
    while type(value) is list:
        shape.dim.add(size=len(value))
        if not value:
            break
        value = value[0]


def _fill_tensor(value: JsonValue, dtype: int, tensor: tensor_pb2.TensorProto) -> int:
    """FillTensorProto: check `value` against the tensor's shape and dtype, append its values
    to the typed field; returns how many."""
    dims = [dim.size for dim in tensor.tensor_shape.dim]
    values = _dense_leaves(value, dims)
    if values is None or not _all_accepted(values, dtype):
        values = _checked_leaves(value, dims, dtype)  # raises upstream's first error
    if values:
        if dtype == DT.DT_FLOAT:  # GetFloat()
            values = _floats32(values)
        elif dtype == DT.DT_DOUBLE:  # GetDouble()
            values = np.asarray(values, dtype=np.float64).tolist()
        getattr(tensor, _VALUE_FIELDS[dtype]).extend(values)
    return len(values)


def _dense_leaves(value: JsonValue, dims: list[int]) -> list[JsonValue] | None:
    """The leaves of `value`, in order, if it is lists nested exactly as `dims` say with no list
    for a leaf (the usual case, checked a level at a time at C speed); else None."""
    items = [value]
    for size in dims:
        if not items:
            return []
        if set(map(type, items)) != {list} or set(map(len, items)) != {size}:
            return None
        items = list(itertools.chain.from_iterable(items))
    return None if list in set(map(type, items)) else items


def _checked_leaves(value: JsonValue, dims: list[int], dtype: int) -> list[object]:
    """FillTensorProto's walk, depth first as upstream (so the first error is upstream's), on
    an explicit stack: every leaf, decoded from b64 where it is, or the error."""
    rank = len(dims)
    values = []
    stack: list[tuple[JsonValue, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if type(item) is not list:
            if level != rank:
                raise invalid(
                    f"JSON Value: {_debug(item)} found at incorrect level: {level + 1}"
                    f" in the JSON DOM. Expected at level: {rank}"
                )
            values.append(_leaf(item, dtype))
        elif level >= rank:
            raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
        elif len(item) != dims[level]:
            raise invalid(
                f"Encountered list at unexpected size: {len(item)} at level: {level}"
                f" expected size: {dims[level]}"
            )
        else:
            stack.extend((child, level + 1) for child in reversed(item))
    return values


def _shape_string(dims: list[int]) -> str:
    return "[" + ",".join(str(size) for size in dims) + "]"


class _Instances:
    """FillTensorMapFromInstancesList: "instances", one tensor per input, batched by row."""

    def __init__(
        self,
        infos: Mapping[str, meta_graph_pb2.TensorInfo],
        inputs: MutableMapping[str, tensor_pb2.TensorProto],
    ) -> None:
        self.infos = infos
        self.names = {_utf8(name): name for name in infos}  # JSON keys are bytes
        self.inputs = inputs
        self.sizes: dict[str, int] = {}
        self.shapes: dict[str, list[int]] = {}

    def fill(self, instances: list[JsonValue]) -> None:
        if type(instances[0]) is not JsonObject and len(self.infos) > 1:
            raise invalid(
                "instances is a plain list, but expecting list of objects as multiple input"
                " tensors required as per tensorinfo_map"
            )

        def is_named(value: JsonValue) -> bool:
            return type(value) is JsonObject and not _is_base64_object(value)

        objects = is_named(instances[0])
        self.inputs.clear()
        for index, element in enumerate(instances):
            if objects:
                if not is_named(element):
                    raise invalid(f"Expecting object but got list at item {index} of input list")
                for key, item in element.members:
                    try:
                        self._add(item, key)
                    except ServingError as e:
                        raise invalid(
                            f"Failed to process element: {index} key: {_text(key)} of"
                            f" 'instances' list. Error: {_status_string(e)}"
                        ) from None
                if {key for key, _ in element.members} != set(self.names):
                    raise invalid(
                        f"Failed to process element: {index} of 'instances' list. JSON object:"
                        f" {_debug(element)} keys must be equal to: {','.join(sorted(self.infos))}"
                    )
            else:
                if is_named(element):
                    raise invalid(
                        f"Expecting value/list but got object at item {index} of input list"
                    )
                try:
                    self._add(element, _utf8(next(iter(self.infos))))
                except ServingError as e:
                    raise invalid(
                        f"Failed to process element: {index} of 'instances' list."
                        f" Error: {_status_string(e)}"
                    ) from None
        # Every element checked: each tensor's shape is [instances, element's shape...].
        for name, tensor in self.inputs.items():
            tensor.dtype = self.infos[name].dtype
            tensor.tensor_shape.Clear()
            for size in [len(instances), *self.shapes[name]]:
                tensor.tensor_shape.dim.add(size=size)

    def _add(self, item: JsonValue, key: bytes) -> None:
        """AddInstanceItem: append one element's values; all must have one size and shape."""
        name = self.names.get(key)
        if name is None:
            raise invalid(f"JSON object: does not have named input: {_text(key)}")
        tensor = self.inputs[name]
        tensor.tensor_shape.Clear()
        _add_dense_shape(item, tensor.tensor_shape)
        size = _fill_tensor(item, self.infos[name].dtype, tensor)
        shape = [dim.size for dim in tensor.tensor_shape.dim]
        if name not in self.sizes:
            self.sizes[name], self.shapes[name] = size, shape
        elif self.sizes[name] != size:
            raise invalid(f"Expecting tensor size: {self.sizes[name]} but got: {size}")
        elif self.shapes[name] != shape:
            raise invalid(
                f"Expecting shape {_shape_string(self.shapes[name])}"
                f" but got: {_shape_string(shape)}"
            )


def _fill_from_inputs(
    value: JsonValue,
    infos: Mapping[str, meta_graph_pb2.TensorInfo],
    inputs: MutableMapping[str, tensor_pb2.TensorProto],
) -> None:
    """FillTensorMapFromInputsMap: "inputs", one value/list, or an object of them by name."""
    if type(value) is not JsonObject or _is_base64_object(value):
        if len(infos) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input"
                " tensors required as per tensorinfo_map"
            )
        name, info = next(iter(infos.items()))
        tensor = inputs[name]
        tensor.dtype = info.dtype
        _add_dense_shape(value, tensor.tensor_shape)  # onto any shape already there, as upstream
        _fill_tensor(value, tensor.dtype, tensor)
        return
    for name, info in infos.items():
        item = value.find(_utf8(name))
        if item is ABSENT:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        tensor = inputs[name]
        tensor.dtype = info.dtype
        tensor.tensor_shape.Clear()
        _add_dense_shape(item, tensor.tensor_shape)
        _fill_tensor(item, info.dtype, tensor)


def _fill_signature(
    doc: JsonObject,
    request: predict_pb2.PredictRequest
    | classification_pb2.ClassificationRequest
    | regression_pb2.RegressionRequest,
) -> None:
    """FillSignature: the optional "signature_name" into request.model_spec."""
    name = doc.find(b"signature_name")
    if name is ABSENT:
        return
    if type(name) is not bytes:
        raise _format_error(
            doc, "not formatted correctly. 'signature_name' key must be a string value."
        )
    request.model_spec.signature_name = _text(name)


def fill_predict_request_from_json(
    body: bytes | str,
    get_info_map: Callable[[str], Mapping[str, meta_graph_pb2.TensorInfo]],
    request: predict_pb2.PredictRequest,
) -> JsonPredictRequestFormat:
    """FillPredictRequestFromJson: the body's tensors into request.inputs (and its
    "signature_name" into request.model_spec); returns the format they were written in."""
    doc = _parse_document(body)
    _fill_signature(doc, request)
    signature = request.model_spec.signature_name
    infos = get_info_map(signature)
    if not infos:
        raise invalid(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    instances, inputs = doc.find(b"instances"), doc.find(b"inputs")
    if instances is not ABSENT:
        if inputs is not ABSENT:
            raise _format_error(
                doc,
                "Not formatted correctly expecting only one of 'inputs' or 'instances' keys"
                " to exist ",
            )
        if type(instances) is not list:
            raise _format_error(doc, "Expecting 'instances' to be an list/array")
        if not instances:
            raise _format_error(doc, "No values in 'instances' array")
        _Instances(infos, request.inputs).fill(instances)
        return JsonPredictRequestFormat.ROW
    if inputs is not ABSENT:
        _fill_from_inputs(inputs, infos, request.inputs)
        return JsonPredictRequestFormat.COLUMNAR
    raise invalid("Missing 'inputs' or 'instances' key")


_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}


def _require_kind(feature: feature_pb2.Feature, kind: str, name: str) -> None:
    """IsFeatureOfKind, or IncompatibleFeatureKindError naming the kind the feature has."""
    current = feature.WhichOneof("kind")
    if current is not None and current != kind:
        raise invalid(
            f"Unexpected element type in feature: {name} expecting type: {_KIND_NAMES[current]}"
        )


def _add_to_feature(value: JsonValue, name: str, feature: feature_pb2.Feature) -> None:
    """AddValueToFeature: strings and b64 to bytes_list, doubles to float_list, integers and
    booleans to int64_list; one kind per feature."""
    kind = type(value)
    if kind is bool:
        _require_kind(feature, "int64_list", name)
        feature.int64_list.value.append(1 if value else 0)
    elif kind is JsonObject and _is_base64_object(value):
        _require_kind(feature, "bytes_list", name)
        feature.bytes_list.value.append(_decode_base64_object(value))
    elif kind is bytes:
        _require_kind(feature, "bytes_list", name)
        feature.bytes_list.value.append(value)
    elif kind is float:
        _require_kind(feature, "float_list", name)
        feature.float_list.value.append(_to_float32(value))
    elif kind is int:
        _require_kind(feature, "int64_list", name)
        if value >= 2**63:
            raise invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        feature.int64_list.value.append(value)
    else:  # null, array, an object that is no b64
        raise invalid(f"Feature: {name} has element with unexpected JSON type: {_type_name(value)}")


def _fill_example(value: JsonValue, example: example_pb2.Example) -> None:
    """MakeExampleFromJsonObject: one feature per member; a later duplicate replaces."""
    if type(value) is not JsonObject:
        raise invalid(f"Example must be JSON object but got JSON {_type_name(value)}")
    for key, content in value.members:
        name = _text(key)
        feature = feature_pb2.Feature()
        for item in content if type(content) is list else [content]:
            _add_to_feature(item, name, feature)
        example.features.feature[name].CopyFrom(feature)


def _fill_classify_regress_request(
    body: bytes | str,
    request: classification_pb2.ClassificationRequest | regression_pb2.RegressionRequest,
) -> None:
    """FillClassifyRegressRequestFromJson: "examples", with an optional "context"."""
    doc = _parse_document(body)
    _fill_signature(doc, request)
    context = doc.find(b"context")
    if context is not ABSENT:
        request.input.example_list_with_context.context.SetInParent()
        _fill_example(context, request.input.example_list_with_context.context)
    examples = doc.find(b"examples")
    if examples is ABSENT:
        # Upstream says "classify" for regress requests too.
        raise _format_error(
            doc, "When method is classify, key 'examples' is expected and was not found"
        )
    if type(examples) is not list:
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(doc, "'examples' value is an empty array")
    if context is not ABSENT:
        target = request.input.example_list_with_context.examples
    else:
        target = request.input.example_list.examples
    for value in examples:
        _fill_example(value, target.add())


def fill_classification_request_from_json(
    body: bytes | str, request: classification_pb2.ClassificationRequest
) -> None:
    """FillClassificationRequestFromJson: the body's Examples into request.input."""
    _fill_classify_regress_request(body, request)


def fill_regression_request_from_json(
    body: bytes | str, request: regression_pb2.RegressionRequest
) -> None:
    """FillRegressionRequestFromJson: the body's Examples into request.input."""
    _fill_classify_regress_request(body, request)


# --------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------


class _TensorWriter:
    """One tensor's values written in order (upstream's AddTensorValues), resumable row by
    row. Strings of tensors named "*_bytes" go out as {"b64": ...}."""

    def __init__(self, name: str, tensor: tensor_pb2.TensorProto) -> None:
        self.dtype = tensor.dtype
        self.dims = [dim.size for dim in tensor.tensor_shape.dim]
        self.as_bytes = tensor.dtype == DT.DT_STRING and name.endswith("_bytes")
        field = _VALUE_FIELDS.get(tensor.dtype)
        self.values = list(getattr(tensor, field)) if field else []
        self.offset = 0

    def write(self, writer: _PrettyWriter, dim: int) -> None:
        """The values from dimension `dim` on: nested arrays, or one scalar past the last."""
        dims = self.dims
        if dim > len(dims) - 1:
            self._write_one(writer)
            return
        writer.start_array()
        remaining = [dims[dim]]  # elements left in each open array
        while remaining:
            if remaining[-1] <= 0:
                remaining.pop()
                writer.end_array()
                continue
            remaining[-1] -= 1
            if dim + len(remaining) == len(dims):
                self._write_one(writer)
            else:
                writer.start_array()
                remaining.append(dims[dim + len(remaining)])

    def _write_one(self, writer: _PrettyWriter) -> None:
        """AddSingleValueAndAdvance."""
        if self.dtype not in _VALUE_FIELDS:
            raise invalid(
                f"Failed to write JSON value for tensor type: {_dtype_string(self.dtype)}"
            )
        if self.offset >= len(self.values):  # upstream reads past the field's end (undefined)
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                f"Tensor of type {_dtype_string(self.dtype)} has fewer values than its shape"
                f" {_shape_string(self.dims)} needs (typed fields only, no tensor_content)",
            )
        value = self.values[self.offset]
        if self.dtype == DT.DT_FLOAT or self.dtype == DT.DT_DOUBLE:
            writer.value(_decimal_token(value, self.dtype == DT.DT_FLOAT))
        elif self.dtype == DT.DT_STRING and self.as_bytes:
            writer.start_object()
            writer.key(b"b64")
            writer.string(base64.b64encode(value))
            writer.end_object()
        elif self.dtype == DT.DT_STRING:
            writer.string(value)
        elif self.dtype == DT.DT_BOOL:
            writer.value(b"true" if value else b"false")
        else:
            writer.value(str(value).encode())
        self.offset += 1


def _row_format(tensors: Mapping[str, tensor_pb2.TensorProto]) -> str:
    """MakeRowFormatJsonFromTensors: {"predictions": [row, ...]}, a row an object of named
    values when there are several tensors; all must share the first dimension."""
    batch_size = -1
    for name, tensor in tensors.items():
        if not tensor.tensor_shape.dim:
            raise invalid(f"Tensor name: {name} has no shape information ")
        size = tensor.tensor_shape.dim[0].size
        if batch_size >= 0 and batch_size != size:
            raise invalid(
                f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch_size}"
            )
        batch_size = size
    columns = [(_utf8(name), _TensorWriter(name, tensor)) for name, tensor in tensors.items()]
    objects = len(columns) > 1
    writer = _PrettyWriter()
    writer.start_object()
    writer.key(b"predictions")
    writer.start_array()
    for _ in range(batch_size):
        if objects:
            writer.start_object()
        writer.single_line_arrays = True
        for name, column in columns:
            if objects:
                writer.key(name)
            column.write(writer, 1)  # dimension 0 is the batch
        writer.single_line_arrays = False
        if objects:
            writer.end_object()
    writer.end_array()
    writer.end_object()
    return writer.text()


def _columnar_format(tensors: Mapping[str, tensor_pb2.TensorProto]) -> str:
    """MakeColumnarFormatJsonFromTensors: {"outputs": value}, or an object of them by name."""
    objects = len(tensors) > 1
    writer = _PrettyWriter()
    writer.start_object()
    writer.key(b"outputs")
    if objects:
        writer.start_object()
    for name, tensor in tensors.items():
        if objects:
            writer.key(_utf8(name))
        _TensorWriter(name, tensor).write(writer, 0)
    if objects:
        writer.end_object()
    writer.end_object()
    return writer.text()


def make_json_from_tensors(
    tensors: Mapping[str, tensor_pb2.TensorProto], format: JsonPredictRequestFormat
) -> str:
    """MakeJsonFromTensors: a predict response body in the request's format.

    Values come from the typed fields (float_val, int_val, ...), as TF Serving's own protos
    have them; a TensorProto holding tensor_content is refused.
    """
    if not tensors:
        raise invalid("Cannot convert empty tensor map to JSON")
    if format is JsonPredictRequestFormat.ROW:
        return _row_format(tensors)
    if format is JsonPredictRequestFormat.COLUMNAR:
        return _columnar_format(tensors)
    raise invalid("Invalid request format")


def make_json_from_classification_result(result: classification_pb2.ClassificationResult) -> str:
    """MakeJsonFromClassificationResult: {"results": [[[label, score], ...], ...]}."""
    if not result.classifications:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    writer = _PrettyWriter()
    writer.start_object()
    writer.key(b"results")
    writer.start_array()
    for classifications in result.classifications:
        writer.single_line_arrays = True
        writer.start_array()
        for entry in classifications.classes:
            writer.start_array()
            writer.string(_utf8(entry.label))
            writer.value(_decimal_token(entry.score, is_float32=True))
            writer.end_array()
        writer.end_array()
        writer.single_line_arrays = False
    writer.end_array()
    writer.end_object()
    return writer.text()


def make_json_from_regression_result(result: regression_pb2.RegressionResult) -> str:
    """MakeJsonFromRegressionResult: {"results": [value, ...]}."""
    if not result.regressions:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    writer = _PrettyWriter()
    writer.start_object()
    writer.key(b"results")
    writer.single_line_arrays = True
    writer.start_array()
    for regression in result.regressions:
        writer.value(_decimal_token(regression.value, is_float32=True))
    writer.end_array()
    writer.end_object()
    return writer.text()


def make_json_from_status(error: ServingError | None) -> str:
    """MakeJsonFromStatus: nothing for a request that succeeded (None), else
    {"error": message}."""
    if error is None:
        return ""
    writer = _PrettyWriter()
    writer.start_object()
    writer.key(b"error")
    writer.string(_utf8(error.message))
    writer.end_object()
    return writer.text()
