"""``python -m serving.batch``: score a file of reviews offline, one JSON result per input record.

    python -m serving.batch --model-dir artifacts --input reviews.csv --output scores.jsonl

Input is plain text (one review per line), CSV with a header row and a text column, or JSON
Lines (``{"review": "..."}``), from a local path, an ``s3://bucket/key`` URI or ``-`` (stdin).
It streams: records are read, featurized and scored ``--batch-size`` at a time and written
straight out, so memory stays flat however long the input is. Every input record gets exactly
one output line, in order (``--explain [N]`` adds each review's explanation as the API gives it,
from the model's explain.onnx); a record that cannot be scored (blank, invalid JSON or UTF-8, a
missing or non-string field, a line or CSV field over ``MAX_RECORD_CHARS`` characters) gets
``{"line": n, "error": "..."}`` and the run goes on. An oversized line is skipped in pieces,
never held whole. A byte order mark at the start of any line is dropped (files joined with cat).

Before the model loads or the input is read, the destinations are checked: S3 URIs against
S3's bucket-name rules and key length; a local output must not be the input (same resolved
path or the same inode, through symlinks and hard links, stdin and stdout included), nor the
model's files, nor a directory, block device or socket. A local output is written to a unique
hidden temporary file in its own folder (through a symlink: the folder of the file it points
to), synced and renamed over it on success, and removed on failure; a FIFO or character
device output is written into directly. An S3 output is written to a local temporary file
and uploaded when complete (an interrupted multipart upload is aborted).

Exit codes: 0 every record scored; 3 finished, but some records are error records;
2 unusable arguments, model directory, input or output (nothing written); 1 the run failed
part-way (an I/O or S3 error); 128 + the signal number when interrupted by SIGINT (130, Ctrl-C),
SIGTERM (143) or SIGHUP (129). After 1 or a signal no output file or object is left behind
(stdout, a FIFO or a device may hold the results written so far).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, NamedTuple, TextIO

from tqdm import tqdm

from sentiment.artifacts import FEATURIZER_FILE, MODEL_FILE, ArtifactError
from sentiment.batch import Batch
from sentiment.wire import MAX_EXPLAIN, Explain, PayloadError, name_terms, prediction, read_explain
from serving.model import Model

FORMATS = ("text", "csv", "jsonl")
EXTENSIONS = {".txt": "text", ".text": "text", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_FIELDS = ("review", "text")  # the text column / JSON field, when --text-column is not given
JSONL_CONTENT_TYPE = "application/jsonlines"
# One limit for a record in every format: a text or JSON Lines line, a CSV line or field. A review
# may be long (the csv module's default of 128 Ki characters is too little), but a record of
# millions of characters is a broken file, not a review; it becomes an error record and is read
# past in pieces of at most _SKIP_CHARS, never held whole.
MAX_RECORD_CHARS = 1 << 24
_SKIP_CHARS = 1 << 16
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RECORD_ERRORS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
INTERRUPTING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each cleans up; exit 128 + its number
# S3 general purpose bucket names (the rules AWS documents); directory buckets and access
# point aliases follow the same character rules.
_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-")
MAX_KEY_BYTES = 1024
# Bytes that are not UTF-8 are decoded to lone surrogates (errors="surrogateescape"), so one
# bad record becomes an error record instead of stopping the whole stream.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", type(None): "null",
               list: "an array", dict: "an object"}


class UsageError(Exception):
    """Arguments, model directory or input that cannot be used; nothing has been written."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived; unwinding removes any partial output."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class RecordTooLong(Exception):
    """A line longer than MAX_RECORD_CHARS; it has been read past, not kept."""

    def __init__(self, limit: int):
        super().__init__(f"longer than {limit:,} characters (the limit for one record); skipped")


class Invalid(NamedTuple):
    """An input record that cannot be scored, and why."""

    message: str


Record = str | Invalid


# -- input ---------------------------------------------------------------------------------------
def split_s3(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URI, or UsageError naming the rule it breaks."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key or key.endswith("/"):
        raise UsageError(f"{uri} is not an S3 object URI; expected s3://bucket/key")
    if problem := _bucket_problem(bucket):
        raise UsageError(f"{uri}: the bucket name {bucket!r} {problem}")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError(f"{uri}: the key is not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise UsageError(f"{uri}: the key is {size:,} bytes long; at most {MAX_KEY_BYTES:,} (UTF-8)")
    return bucket, key


def _bucket_problem(bucket: str) -> str | None:
    if not _BUCKET_CHARS.fullmatch(bucket):
        return "may hold only lowercase letters, digits, dots and hyphens"
    if not 3 <= len(bucket) <= 63:
        return f"must be 3 to 63 characters long, not {len(bucket)}"
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        return "must begin and end with a letter or digit"
    if ".." in bucket:
        return "must not hold two adjacent dots"
    if _IP_ADDRESS.fullmatch(bucket):
        return "must not be an IP address"
    if prefix := next((p for p in _RESERVED_BUCKET_PREFIXES if bucket.startswith(p)), None):
        return f"must not begin with {prefix!r} (reserved by AWS)"
    return None


class _Counting(io.RawIOBase):
    """A binary source that counts the bytes read (for the progress bar) and reports read
    failures (a dropped S3 connection, say) as OSError."""

    def __init__(self, source: IO[bytes]):
        self.source, self.count = source, 0
        self._read = getattr(source, "read1", source.read)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._read(len(buffer))
        except Exception as exc:  # botocore and urllib3 raise their own types mid-stream
            raise OSError(f"reading the input failed: {exc}") from exc
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)

    def close(self) -> None:
        if self.source is not sys.stdin.buffer:
            self.source.close()
        super().close()


def open_input(uri: str, s3_client=None) -> tuple[_Counting, int | None]:
    """A byte stream of ``uri`` (path, s3:// URI or ``-``) and its size when cheaply known."""
    if uri == "-":
        return _Counting(sys.stdin.buffer), None
    if uri.startswith("s3://"):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3(uri)
        try:
            response = s3_client.get_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise UsageError(f"cannot read {uri}: {exc}") from None
        return _Counting(response["Body"]), response.get("ContentLength")
    try:
        source: BinaryIO = open(uri, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {uri}: {exc.strerror or exc}") from None
    info = os.fstat(source.fileno())
    return _Counting(source), info.st_size if stat.S_ISREG(info.st_mode) else None  # a FIFO has no size


def _check_text(text: str) -> Record:
    if not text.isascii() and (bad := _UNDECODABLE.search(text)):
        byte = ord(bad.group()) - 0xDC00
        return Invalid(f"not valid UTF-8: byte 0x{byte:02x} at character {bad.start() + 1}")
    if not text.strip():
        return Invalid("blank: no review text")
    return text


class _Lines:
    """The lines of ``stream``, none ever read whole if longer than ``limit`` characters.

    Each call asks the stream for at most ``limit + 2`` characters (room for ``\\r\\n``); a line
    that does not end within them is read past in pieces of at most as many and raises
    RecordTooLong, after which iteration goes on with the next line. So no string longer than
    ``limit + 2`` characters is ever held, whatever the input. ``universal``: lines also end at
    a lone ``\\r`` (the stream was opened with ``newline=""``, as csv wants). A byte order mark
    at the start of a line is dropped.
    """

    def __init__(self, stream: TextIO, limit: int, universal: bool = False):
        self.stream, self.limit, self.universal = stream, limit, universal
        self._cut_after_cr = False  # the last piece ended in "\r" at the size cut: its "\n" may follow

    def __iter__(self) -> _Lines:
        return self

    def _read(self, size: int) -> str:
        piece = self.stream.readline(size)
        if self._cut_after_cr and piece == "\n":  # the rest of a "\r\n" the size limit split
            piece = self.stream.readline(size)
        self._cut_after_cr = self.universal and len(piece) == size and piece.endswith("\r")
        return piece

    def _ended(self, piece: str) -> bool:
        return piece.endswith("\n") or (self.universal and piece.endswith("\r"))

    def __next__(self) -> str:
        size = self.limit + 2
        line = self._read(size)
        if not line:
            raise StopIteration
        if len(line) == size and not self._ended(line):  # longer than the limit: read past the rest
            while (piece := self._read(min(size, _SKIP_CHARS))) and not self._ended(piece):
                pass
            raise RecordTooLong(self.limit)
        line = line.removeprefix("\ufeff")
        if len(line.removesuffix("\n").removesuffix("\r")) > self.limit:
            raise RecordTooLong(self.limit)
        return line


def _lines(stream: TextIO) -> Iterator[str | Invalid]:
    """Lines without their ending (``\\n`` only, a ``\\r`` before it dropped); an Invalid for one too long."""
    lines = _Lines(stream, MAX_RECORD_CHARS)
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except RecordTooLong as exc:
            yield Invalid(str(exc))
            continue
        yield line.removesuffix("\n").removesuffix("\r")


def text_records(stream: TextIO) -> Iterator[Record]:
    """One review per line; lines end at ``\\n`` only (a review may hold U+2028 and friends)."""
    for line in _lines(stream):
        yield line if isinstance(line, Invalid) else _check_text(line)


def jsonl_records(stream: TextIO, field: str | None) -> Iterator[Record]:
    """One JSON object per line; the review is in ``field``, else in "review" or "text"."""
    for line in _lines(stream):
        if isinstance(line, Invalid) or isinstance(checked := _check_text(line), Invalid):
            yield line if isinstance(line, Invalid) else checked
            continue
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield Invalid(f"not valid JSON: {exc}")
            continue
        if not isinstance(doc, dict):
            expected = f'{{"{field or DEFAULT_FIELDS[0]}": "<text>"}}'
            yield Invalid(f"not a JSON object: expected {expected}, got {_json_type(doc)}")
            continue
        key = field or next((k for k in DEFAULT_FIELDS if k in doc), None)
        if key is None or key not in doc:
            wanted = f'"{field}"' if field else " or ".join(f'"{k}"' for k in DEFAULT_FIELDS)
            yield Invalid(f"missing the field {wanted}")
        elif not isinstance(doc[key], str):
            yield Invalid(f'"{key}" must be a string, got {_json_type(doc[key])}')
        else:
            yield _check_text(doc[key])


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def csv_records(stream: TextIO, column: str | None) -> Iterator[Record]:
    """CSV with a header row; quoted fields may span lines (a record, not a line, is one review).

    The stream must be opened with ``newline=""``. The header is read now, so a missing column
    is a UsageError before anything is scored.
    """
    limit = MAX_RECORD_CHARS
    csv.field_size_limit(limit)
    reader = csv.reader(_Lines(stream, limit, universal=True))
    try:
        header = next(reader, None)
    except (csv.Error, RecordTooLong) as exc:
        raise UsageError(f"the CSV header cannot be read: {_csv_problem(exc, limit)}") from None
    if header is None:  # empty input: empty output
        return iter(())
    wanted = (column,) if column else DEFAULT_FIELDS
    index = next((header.index(name) for name in wanted if name in header), None)
    if index is None:
        raise UsageError(f"the CSV header has no column {' or '.join(map(repr, wanted))}; its columns are "
                         f"{', '.join(map(repr, header)) or '(none)'}; choose one with --text-column")
    return _csv_rows(reader, index, header[index], limit)


def _csv_problem(exc: Exception, limit: int) -> str:
    if isinstance(exc, RecordTooLong) or "field larger than field limit" in str(exc):
        return str(RecordTooLong(limit))
    return f"not valid CSV: {exc}"


def _csv_rows(reader: Iterator[list[str]], index: int, name: str, limit: int) -> Iterator[Record]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, RecordTooLong) as exc:
            yield Invalid(_csv_problem(exc, limit))
            continue
        if not row:
            yield Invalid("blank: no review text")
        elif len(row) <= index:
            yield Invalid(f"has {len(row)} field(s), so no column {name!r} (field {index + 1})")
        else:
            yield _check_text(row[index])


def records(source: _Counting, fmt: str, field: str | None) -> Iterator[Record]:
    """Decode ``source`` as UTF-8 (a leading BOM is dropped) and parse it as ``fmt``."""
    stream = io.TextIOWrapper(io.BufferedReader(source), encoding="utf-8-sig", errors="surrogateescape",
                              newline="" if fmt == "csv" else "\n")
    if fmt == "csv":
        return csv_records(stream, field)
    return jsonl_records(stream, field) if fmt == "jsonl" else text_records(stream)


def infer_format(uri: str) -> str:
    suffix = PurePosixPath(uri).suffix.lower() if uri != "-" else ""
    if not suffix:
        return "text"
    if suffix not in EXTENSIONS:
        raise UsageError(f"cannot tell the format of {uri} from its extension {suffix!r}; "
                         f"pass --format {'|'.join(FORMATS)}")
    return EXTENSIONS[suffix]


# -- output --------------------------------------------------------------------------------------
def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)  # through symlinks
    except OSError:
        return None


def _same_file(a: os.stat_result | None, b: os.stat_result | None) -> bool:
    return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_output(uri: str, model_dir: str | Path) -> None:
    """Refuse an output location that cannot work or would destroy a file we read, before the
    model loads or the input is read."""
    if uri == "-":
        return
    if uri.startswith("s3://"):
        split_s3(uri)
        return
    if uri.endswith("/"):
        raise UsageError(f"cannot write {uri}: it is a directory")
    target = Path(os.path.realpath(uri))
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {uri}: the directory {target.parent} does not exist")
    info = _stat(str(target))
    if info is not None:
        kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a block device" if stat.S_ISBLK(info.st_mode)
                else "a socket" if stat.S_ISSOCK(info.st_mode) else None)
        if kind:
            raise UsageError(f"cannot write {uri}: it is {kind}")
    for name in (MODEL_FILE, FEATURIZER_FILE):
        model_file = Path(model_dir, name)
        if target == Path(os.path.realpath(model_file)) or _same_file(info, _stat(str(model_file))):
            raise UsageError(f"cannot write {uri}: it is the model's {name}; choose another --output")


def check_not_the_input(input_uri: str, source: _Counting, output_uri: str) -> None:
    """Refuse an output that is the input: the same S3 object, or the same file by resolved path
    or by device and inode (symlinks, hard links, stdin or stdout redirected to it)."""
    if input_uri.startswith("s3://") or output_uri.startswith("s3://"):
        if input_uri.startswith("s3://") and output_uri.startswith("s3://") \
                and split_s3(input_uri) == split_s3(output_uri):
            raise UsageError(f"--output {output_uri} is the input object; choose another --output")
        return
    try:
        read = os.fstat(source.source.fileno())
    except (AttributeError, OSError, ValueError):
        return  # not a file descriptor
    if not stat.S_ISREG(read.st_mode):
        return  # a terminal, pipe or FIFO can be read from and written to at once
    if output_uri == "-":
        try:
            written = os.fstat(sys.stdout.fileno())
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return  # stdout replaced by an object with no descriptor (a test's capture)
        same = _same_file(read, written)
    else:
        same = _same_file(read, _stat(output_uri)) or (
            input_uri != "-" and os.path.realpath(input_uri) == os.path.realpath(output_uri))
    if same:
        shown = "stdout" if output_uri == "-" else output_uri
        raise UsageError(f"the output {shown} is the input file{'' if input_uri == '-' else f' {input_uri}'}: "
                         "it would be overwritten; choose another --output")


def _default_mode() -> int:
    """What ``open(path, "w")`` gives a new file: 0o666 less the umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def open_output(uri: str, s3_client=None) -> Iterator[IO[str]]:
    """A text stream whose content appears at ``uri`` only when the block completes.

    A local file is written to a unique hidden temporary file beside it (``mkstemp`` in the
    folder of the file a symlink points to), synced and renamed over it; an S3 object is written
    to a local temporary file and uploaded with ``upload_file`` (multipart, flat memory). On an
    exception the partial file is deleted, so a half-written output never looks complete. A FIFO
    or a character device (``/dev/null``, a terminal) cannot be replaced and is written directly.
    """
    if uri == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    if uri.startswith("s3://"):
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3(uri)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", prefix="batch-", suffix=".jsonl") as tmp:
            yield tmp
            tmp.flush()
            try:
                s3_client.upload_file(tmp.name, bucket, key, ExtraArgs={"ContentType": JSONL_CONTENT_TYPE})
            except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
                raise OSError(f"uploading the output to {uri} failed: {exc}") from exc
        return
    target = os.path.realpath(uri)
    info = _stat(target)
    if info is not None and (stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode)):
        with open(target, "w", encoding="utf-8") as direct:
            yield direct
        return
    folder, name = os.path.split(target)
    try:
        fd, tmp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write {uri}: cannot create a file in {folder}: {exc.strerror or exc}") from None
    renamed = False
    try:
        os.fchmod(fd, _default_mode())
        with open(fd, "w", encoding="utf-8") as tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_path, target)
        renamed = True
    finally:
        if not renamed:
            Path(tmp_path).unlink(missing_ok=True)


# -- scoring -------------------------------------------------------------------------------------
@dataclass
class Summary:
    records: int = 0
    errors: int = 0
    first_error: str | None = None


def score(items: Iterable[Record], model: Model, out: IO[str], batch_size: int,
          after_batch: Callable[[Summary], None] = lambda summary: None, explain: Explain = False) -> Summary:
    """Featurize, score and write ``items`` ``batch_size`` at a time; only one batch is in memory.

    With ``explain`` each line also holds the review's explanation, terms named (as the API's)."""
    summary = Summary()
    items = iter(items)
    explanations: Iterator[dict] = iter(())
    while batch := list(islice(items, batch_size)):
        texts = [item for item in batch if isinstance(item, str)]
        rows = [model.featurizer.transform(t) for t in texts]
        scored: list[float] = []
        if explain is not False and texts:
            probabilities_array, explained = model.explained(Batch.from_rows(rows), explain)
            scored = probabilities_array.tolist()
            vocabulary = model.featurizer.vocabulary
            explanations = iter([name_terms(e, vocabulary) for e in explained])
        elif texts:
            scored = model.predict_rows(rows).tolist()
        probabilities = iter(scored)
        lines = []
        for item in batch:
            summary.records += 1
            if isinstance(item, Invalid):
                summary.errors += 1
                summary.first_error = summary.first_error or f"line {summary.records}: {item.message}"
                result: dict = {"line": summary.records, "error": item.message}
            else:
                p = next(probabilities)
                result = {"line": summary.records, **prediction(p, model.version, model.band)}
                if explain is not False:
                    result["explanation"] = next(explanations)
            lines.append(json.dumps(result) + "\n")
        out.write("".join(lines))
        after_batch(summary)
    return summary


# -- command line --------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m serving.batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, help="directory holding model.onnx and featurizer.json")
    p.add_argument("--input", required=True, help="local path, s3://bucket/key, or - for stdin")
    p.add_argument("--output", required=True,
                   help="where the JSON Lines results go: local path, s3://bucket/key, or - for stdout")
    p.add_argument("--format", choices=FORMATS,
                   help="input format (default: from the extension: .txt text, .csv csv, .jsonl and "
                        ".ndjson jsonl; text when there is none, as for stdin)")
    p.add_argument("--text-column", help="CSV column or JSON field holding the review "
                                         "(default: 'review', else 'text')")
    p.add_argument("--batch-size", type=int, default=256, help="records scored at a time (default 256)")
    p.add_argument("--explain", nargs="?", const="all", metavar="N",
                   help="add each review's explanation: every term with its contribution to the logit, "
                        "or the N largest (needs the model's explain.onnx)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error("--batch-size must be a positive integer")
    if args.format is None:
        try:
            args.format = infer_format(args.input)
        except UsageError as exc:
            p.error(str(exc))
    if args.text_column is not None and args.format == "text":
        p.error("--text-column applies to csv and jsonl input, not text")
    if args.explain is None:
        args.explain = False
    elif args.explain == "all":
        args.explain = True
    else:
        try:
            args.explain = read_explain(int(args.explain))
        except (ValueError, PayloadError):
            p.error(f"--explain takes no value (every term) or a number of terms from 1 to {MAX_EXPLAIN:,}, "
                    f"not {args.explain!r}")
    return args


def _stdout_closed() -> None:
    """After a broken pipe (``| head``), point stdout at /dev/null so exiting does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGINT, SIGTERM or SIGHUP into Interrupted; further ones are ignored while it unwinds."""
    for sig in INTERRUPTING:
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C (so the partial output is removed), in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in INTERRUPTING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with _signals_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    def say(message: str) -> None:  # an argument may hold undecodable bytes (surrogates): show them escaped
        print(f"serving.batch: {message}".encode("utf-8", "backslashreplace").decode(), file=sys.stderr)

    not_written = "" if args.output == "-" else f"; {args.output} not written"
    s3_client = None
    try:  # everything that can be refused is checked before anything is written
        if args.input.startswith("s3://"):
            split_s3(args.input)
        check_output(args.output, args.model_dir)
        if args.input.startswith("s3://") or args.output.startswith("s3://"):
            import boto3

            s3_client = boto3.client("s3")
        source, size = open_input(args.input, s3_client)
        with source:
            check_not_the_input(args.input, source, args.output)
            items = records(source, args.format, args.text_column)
            model = Model.load(args.model_dir)
            if args.explain is not False and model.explainer is None:
                raise UsageError(f"--explain: model {model.version} in {args.model_dir} has no explain.onnx; "
                                 "retrain with this version of training to get one")
            started = time.perf_counter()
            with open_output(args.output, s3_client) as out, \
                    tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc="scoring",
                         disable=args.quiet or not sys.stderr.isatty(), file=sys.stderr) as progress:
                def show(done: Summary) -> None:
                    progress.update(source.count - progress.n)
                    progress.set_postfix_str(f"{done.records:,} records", refresh=False)

                summary = score(items, model, out, args.batch_size, show, args.explain)
    except (UsageError, ArtifactError) as exc:
        say(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        _stdout_closed()
        say("the output was closed before every record was written")
        return EXIT_FAILED
    except OSError as exc:
        say(f"failed: {exc}{not_written}")
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        say(f"interrupted by {signal.Signals(signum).name}{not_written}")
        return 128 + signum
    seconds = time.perf_counter() - started
    say(f"{summary.records:,} records, {summary.errors:,} errors in {seconds:.1f} s "
        f"({summary.records / max(seconds, 1e-9):,.0f} reviews/s); model {model.version}; "
        f"wrote {'stdout' if args.output == '-' else args.output}"
        + (f"; first error: {summary.first_error}" if summary.first_error else ""))
    return EXIT_RECORD_ERRORS if summary.errors else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
