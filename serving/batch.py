"""``python -m serving.batch``: score a file of reviews offline, one JSON result per input record.

    python -m serving.batch --model-dir artifacts --input reviews.csv --output scores.jsonl

Input is plain text (one review per line), CSV with a header row and a text column, or JSON
Lines (``{"review": "..."}``), from a local path, an ``s3://bucket/key`` URI or ``-`` (stdin).
It streams: records are read, featurized and scored ``--batch-size`` at a time and written
straight out, so memory stays flat however long the input is. Every input record gets exactly
one output line, in order; a record that cannot be scored (blank, invalid JSON or UTF-8, a
missing or non-string field) gets ``{"line": n, "error": "..."}`` and the run goes on.

Exit codes: 0 every record scored; 3 finished, but some records are error records;
2 unusable arguments, model directory or input (nothing written); 1 the run failed part-way
(an I/O or S3 error) and 130 interrupted: no output file or object is left behind (stdout
may hold the results written so far).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, Callable, Iterable, Iterator, NamedTuple, TextIO

from tqdm import tqdm

from serving.model import ArtifactError, Model

FORMATS = ("text", "csv", "jsonl")
EXTENSIONS = {".txt": "text", ".text": "text", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_FIELDS = ("review", "text")  # the text column / JSON field, when --text-column is not given
JSONL_CONTENT_TYPE = "application/jsonlines"
# The csv module refuses fields over 128 Ki characters by default; a review may be longer, but
# a field of millions of characters is a broken file, not a review, and would cost memory.
MAX_CSV_FIELD_CHARS = 1 << 24
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RECORD_ERRORS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# Bytes that are not UTF-8 are decoded to lone surrogates (errors="surrogateescape"), so one
# bad record becomes an error record instead of stopping the whole stream.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", type(None): "null",
               list: "an array", dict: "an object"}


class UsageError(Exception):
    """Arguments, model directory or input that cannot be used; nothing has been written."""


class Invalid(NamedTuple):
    """An input record that cannot be scored, and why."""

    message: str


Record = str | Invalid


# -- input ---------------------------------------------------------------------------------------
def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key or key.endswith("/"):
        raise UsageError(f"{uri} is not an S3 object URI; expected s3://bucket/key")
    return bucket, key


class _Counting(io.RawIOBase):
    """A binary source that counts the bytes read (for the progress bar) and reports read
    failures (a dropped S3 connection, say) as OSError."""

    def __init__(self, source: IO[bytes]):
        self.source, self.count = source, 0
        self._read = getattr(source, "read1", source.read)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
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
    return _Counting(source), os.fstat(source.fileno()).st_size


def _check_text(text: str) -> Record:
    if not text.isascii() and (bad := _UNDECODABLE.search(text)):
        byte = ord(bad.group()) - 0xDC00
        return Invalid(f"not valid UTF-8: byte 0x{byte:02x} at character {bad.start() + 1}")
    if not text.strip():
        return Invalid("blank: no review text")
    return text


def text_records(stream: TextIO) -> Iterator[Record]:
    """One review per line; lines end at ``\\n`` only (a review may hold U+2028 and friends)."""
    for line in stream:
        yield _check_text(line.removesuffix("\n").removesuffix("\r"))


def jsonl_records(stream: TextIO, field: str | None) -> Iterator[Record]:
    """One JSON object per line; the review is in ``field``, else in "review" or "text"."""
    for line in stream:
        line = line.removesuffix("\n").removesuffix("\r")
        if isinstance(checked := _check_text(line), Invalid):
            yield checked
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

    The header is read now, so a missing column is a UsageError before anything is scored.
    """
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD_CHARS))
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:  # empty input: empty output
        return iter(())
    wanted = (column,) if column else DEFAULT_FIELDS
    index = next((header.index(name) for name in wanted if name in header), None)
    if index is None:
        raise UsageError(f"the CSV header has no column {' or '.join(map(repr, wanted))}; its columns are "
                         f"{', '.join(map(repr, header)) or '(none)'}; choose one with --text-column")
    return _csv_rows(reader, index, header[index])


def _csv_rows(reader: Iterator[list[str]], index: int, name: str) -> Iterator[Record]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Invalid(f"not valid CSV: {exc}")
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
def check_output(uri: str) -> None:
    """Refuse an output location that cannot work, before the model loads."""
    if uri.startswith("s3://"):
        split_s3(uri)
    elif uri != "-":
        parent = Path(uri).resolve().parent
        if not parent.is_dir():
            raise UsageError(f"cannot write {uri}: the directory {parent} does not exist")
        if Path(uri).is_dir():
            raise UsageError(f"cannot write {uri}: it is a directory")


@contextmanager
def open_output(uri: str, s3_client=None) -> Iterator[TextIO]:
    """A text stream whose content appears at ``uri`` only when the block completes.

    A local file is written to ``<uri>.tmp``, synced and renamed; an S3 object is written to a
    local temporary file and uploaded with ``upload_file`` (multipart, flat memory). On an
    exception the partial file is deleted, so a half-written output never looks complete.
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
    tmp_path = Path(uri + ".tmp")
    try:
        with open(tmp_path, "w", encoding="utf-8") as tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_path, uri)
    finally:
        tmp_path.unlink(missing_ok=True)


# -- scoring -------------------------------------------------------------------------------------
@dataclass
class Summary:
    records: int = 0
    errors: int = 0
    first_error: str | None = None


def score(items: Iterable[Record], model: Model, out: TextIO, batch_size: int,
          after_batch: Callable[[Summary], None] = lambda summary: None) -> Summary:
    """Featurize, score and write ``items`` ``batch_size`` at a time; only one batch is in memory."""
    summary = Summary()
    items = iter(items)
    while batch := list(islice(items, batch_size)):
        texts = [item for item in batch if isinstance(item, str)]
        probabilities = iter(
            model.predict_sparse([model.featurizer.transform(t) for t in texts]).tolist() if texts else ()
        )
        lines = []
        for item in batch:
            summary.records += 1
            if isinstance(item, Invalid):
                summary.errors += 1
                summary.first_error = summary.first_error or f"line {summary.records}: {item.message}"
                result: dict = {"line": summary.records, "error": item.message}
            else:
                p = next(probabilities)
                result = {"line": summary.records, "label": "positive" if p >= 0.5 else "negative",
                          "probability_positive": p, "model_version": model.version}
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
    return args


def _stdout_closed() -> None:
    """After a broken pipe (``| head``), point stdout at /dev/null so exiting does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = lambda message: print(f"serving.batch: {message}", file=sys.stderr)  # noqa: E731
    s3_client = None
    if args.input.startswith("s3://") or args.output.startswith("s3://"):
        import boto3

        s3_client = boto3.client("s3")
    try:  # everything that can be refused is checked before anything is written
        check_output(args.output)
        source, size = open_input(args.input, s3_client)
        with source:
            items = records(source, args.format, args.text_column)
            model = Model.load(args.model_dir)
            started = time.perf_counter()
            with open_output(args.output, s3_client) as out, \
                    tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc="scoring",
                         disable=args.quiet or not sys.stderr.isatty(), file=sys.stderr) as progress:
                def show(done: Summary) -> None:
                    progress.update(source.count - progress.n)
                    progress.set_postfix_str(f"{done.records:,} records", refresh=False)

                summary = score(items, model, out, args.batch_size, show)
    except (UsageError, ArtifactError) as exc:
        say(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        _stdout_closed()
        say("the output was closed before every record was written")
        return EXIT_FAILED
    except OSError as exc:
        say(f"failed: {exc}" + ("" if args.output == "-" else f"; {args.output} not written"))
        return EXIT_FAILED
    except KeyboardInterrupt:
        say("interrupted" + ("" if args.output == "-" else f"; {args.output} not written"))
        return EXIT_INTERRUPTED
    seconds = time.perf_counter() - started
    say(f"{summary.records:,} records, {summary.errors:,} errors in {seconds:.1f} s "
        f"({summary.records / max(seconds, 1e-9):,.0f} reviews/s); model {model.version}; "
        f"wrote {'stdout' if args.output == '-' else args.output}"
        + (f"; first error: {summary.first_error}" if summary.first_error else ""))
    return EXIT_RECORD_ERRORS if summary.errors else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
