"""``python -m serving.batch`` under hostile arguments, files and signals (issue 11).

The input must never be destroyed, a file that is not ours never clobbered, a bad destination
refused before anything is scored, an interrupted run never leaves a partial file, and one huge
record must cost no more memory than the per-record limit. The model is ``tests.support``'s
tiny logistic regression, so every probability is known.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from moto import mock_aws

from sentiment.featurizer import tokenize
from serving import batch
from serving.batch import main
from tests.support import MODEL_VERSION, NEGATIVE_REVIEW, POSITIVE_REVIEW, WEIGHTS, write_tiny_model

REPO = Path(__file__).resolve().parents[2]
REVIEWS = [POSITIVE_REVIEW, NEGATIVE_REVIEW, "Good, warm and funny.", "Dull, lazy and predictable."]
TEXT = "\n".join(REVIEWS) + "\n"


def expected(review: str) -> float:
    return 1 / (1 + math.exp(-sum(WEIGHTS.get(token, 0.0) for token in tokenize(review))))


def assert_scored(result: dict, line: int, review: str) -> None:
    assert result["line"] == line and result["model_version"] == MODEL_VERSION
    assert result["probability_positive"] == pytest.approx(expected(review), abs=1e-6)


def results_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def score(model, capsys):
    """``score(input, output, *flags)`` runs main in-process: (exit code, stderr)."""

    def go(source: str | Path, out: str | Path, *flags: str) -> tuple[int, str]:
        code = main(["--model-dir", str(model), "--input", str(source), "--output", str(out), "--quiet", *flags])
        return code, capsys.readouterr().err

    return go


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# -- 2. the input is never the output ------------------------------------------------------------
def _same_path(folder: Path, source: Path) -> str:
    return str(source)


def _relative_path(folder: Path, source: Path) -> str:
    return str(folder / "." / ".." / folder.name / source.name)


def _symlink_to_input(folder: Path, source: Path) -> str:
    (folder / "link.jsonl").symlink_to(source)
    return str(folder / "link.jsonl")


def _hard_link_to_input(folder: Path, source: Path) -> str:
    os.link(source, folder / "hard.txt")
    return str(folder / "hard.txt")


def _symlinked_folder(folder: Path, source: Path) -> str:
    (folder / "alias").symlink_to(folder, target_is_directory=True)
    return str(folder / "alias" / source.name)


@pytest.mark.parametrize("output", [_same_path, _relative_path, _symlink_to_input, _hard_link_to_input,
                                    _symlinked_folder], ids=lambda f: f.__name__.strip("_"))
def test_an_output_that_is_the_input_is_refused_and_the_input_kept(score, tmp_path, output):
    source = tmp_path / "reviews.txt"
    source.write_text(TEXT)
    out = output(tmp_path, source)
    before = listing(tmp_path)
    code, err = score(source, out)
    assert code == 2, err
    assert "is the input file" in err and "Traceback" not in err
    assert source.read_text() == TEXT
    assert listing(tmp_path) == before  # no temporary file left either


def test_an_input_named_like_the_old_temporary_file_is_read_not_deleted(score, tmp_path):
    """``--input x.jsonl.tmp --output x.jsonl``: the temporary name is unique now, so this is an
    ordinary run: the input is read, kept, and the output written beside it."""
    source, out = tmp_path / "x.jsonl.tmp", tmp_path / "x.jsonl"
    content = "".join(json.dumps({"review": r}) + "\n" for r in REVIEWS)
    source.write_text(content)
    code, err = score(source, out, "--format", "jsonl")
    assert code == 0, err
    assert source.read_text() == content
    for n, (result, review) in enumerate(zip(results_of(out.read_text()), REVIEWS), 1):
        assert_scored(result, n, review)
    assert listing(tmp_path) == {"x.jsonl.tmp", "x.jsonl"}


def test_stdin_that_is_the_output_file_is_refused(model, tmp_path):
    source = tmp_path / "reviews.txt"
    source.write_text(TEXT)
    with source.open("rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "serving.batch", "--model-dir", str(model), "--input", "-",
                               "--output", str(source)], stdin=stdin, cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert b"is the input file" in done.stderr
    assert source.read_text() == TEXT and listing(tmp_path) == {"reviews.txt"}


def test_stdout_appending_to_the_input_file_is_refused(model, tmp_path):
    """``--input f --output - >> f`` would read its own results back."""
    source = tmp_path / "reviews.txt"
    source.write_text(TEXT)
    with source.open("ab") as stdout:
        done = subprocess.run([sys.executable, "-m", "serving.batch", "--model-dir", str(model),
                               "--input", str(source), "--output", "-"],
                              stdout=stdout, stderr=subprocess.PIPE, cwd=REPO, timeout=120)
    assert done.returncode == 2, done.stderr
    assert b"is the input file" in done.stderr
    assert source.read_text() == TEXT


@pytest.mark.parametrize("name", ["model.onnx", "featurizer.json"])
def test_an_output_onto_the_model_files_is_refused(tmp_path, capsys, name):
    model_dir = write_tiny_model(tmp_path / "model")
    before = (model_dir / name).read_bytes()
    (tmp_path / "in.txt").write_text(TEXT)
    (tmp_path / "link").symlink_to(model_dir / name)
    for out in (model_dir / name, tmp_path / "link"):
        code = main(["--model-dir", str(model_dir), "--input", str(tmp_path / "in.txt"), "--output", str(out)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"is the model's {name}" in err
        assert (model_dir / name).read_bytes() == before and (tmp_path / "link").is_symlink()


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="reviews")
        yield client


def test_the_same_s3_object_as_input_and_output_is_refused(s3, score):
    s3.put_object(Bucket="reviews", Key="in.txt", Body=TEXT.encode())
    code, err = score("s3://reviews/in.txt", "s3://reviews/in.txt")
    assert code == 2 and "is the input object" in err
    assert s3.get_object(Bucket="reviews", Key="in.txt")["Body"].read() == TEXT.encode()


# -- 3. a unique temporary file, removed on failure ----------------------------------------------
def test_a_file_already_at_output_tmp_is_left_alone(score, tmp_path):
    source, out = tmp_path / "reviews.txt", tmp_path / "scores.jsonl"
    source.write_text(TEXT)
    Path(f"{out}.tmp").write_text("somebody else's file\n")
    code, err = score(source, out)
    assert code == 0, err
    assert Path(f"{out}.tmp").read_text() == "somebody else's file\n"
    assert len(results_of(out.read_text())) == len(REVIEWS)
    assert listing(tmp_path) == {"reviews.txt", "scores.jsonl", "scores.jsonl.tmp"}


def test_a_failure_part_way_removes_the_temporary_file(score, tmp_path, monkeypatch):
    source, out = tmp_path / "reviews.txt", tmp_path / "scores.jsonl"
    source.write_text(TEXT * 3)
    out.write_text("previous complete output\n")
    seen = []

    def fail_on_second_batch(self, rows):
        seen.append(listing(tmp_path))
        if len(seen) == 2:
            raise OSError("disk on fire")
        return original(self, rows)

    original = batch.Model.predict_rows
    monkeypatch.setattr(batch.Model, "predict_rows", fail_on_second_batch)
    code, err = score(source, out, "--batch-size", "4")
    assert code == 1 and "disk on fire" in err
    [temporary] = seen[1] - {"reviews.txt", "scores.jsonl"}  # it existed while scoring, in the output's folder
    assert temporary.startswith(".scores.jsonl.") and temporary.endswith(".tmp")
    assert listing(tmp_path) == {"reviews.txt", "scores.jsonl"}
    assert out.read_text() == "previous complete output\n"


def test_the_output_gets_the_permissions_of_a_plain_new_file(score, tmp_path):
    """mkstemp creates 0600; the finished output must be what ``open(path, "w")`` would make."""
    source, out = tmp_path / "reviews.txt", tmp_path / "scores.jsonl"
    source.write_text(TEXT)
    mask = os.umask(0o022)
    try:
        assert score(source, out)[0] == 0
    finally:
        os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_an_output_symlink_is_followed_and_kept(score, tmp_path):
    source, target = tmp_path / "reviews.txt", tmp_path / "real" / "scores.jsonl"
    source.write_text(TEXT)
    target.parent.mkdir()
    (tmp_path / "scores.jsonl").symlink_to(target)
    code, err = score(source, tmp_path / "scores.jsonl")
    assert code == 0, err
    assert (tmp_path / "scores.jsonl").is_symlink() and len(results_of(target.read_text())) == len(REVIEWS)


# -- 4. SIGTERM and SIGHUP clean up like Ctrl-C --------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_mid_run_leaves_no_partial_file(model, tmp_path, sig):
    out = tmp_path / "scores.jsonl"
    out.write_text("previous complete output\n")
    process = subprocess.Popen([sys.executable, "-m", "serving.batch", "--model-dir", str(model), "--input", "-",
                                "--output", str(out), "--batch-size", "1"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        process.stdin.write(TEXT.encode())  # then keep stdin open: the run waits for more input
        process.stdin.flush()
        deadline = time.monotonic() + 120  # a bound on a hang, not a timing
        while not (listing(tmp_path) - {"scores.jsonl"}) and process.poll() is None:
            assert time.monotonic() < deadline, "the temporary output never appeared"
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read()
        process.send_signal(sig)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + sig, err
    assert f"interrupted by {sig.name}; {out} not written".encode() in err and b"Traceback" not in err
    assert listing(tmp_path) == {"scores.jsonl"}
    assert out.read_text() == "previous complete output\n"


# -- 5. destinations are checked before the model loads or the input is read --------------------
@pytest.mark.parametrize("uri, message", [
    ("s3://bu cket/k", "may hold only lowercase letters, digits, dots and hyphens"),
    ("s3://Reviews/k", "may hold only lowercase letters, digits, dots and hyphens"),
    ("s3://my_bucket/k", "may hold only lowercase letters, digits, dots and hyphens"),
    ("s3://ab/k", "must be 3 to 63 characters long"),
    ("s3://" + "a" * 64 + "/k", "must be 3 to 63 characters long"),
    ("s3://-reviews/k", "must begin and end with a letter or digit"),
    ("s3://reviews./k", "must begin and end with a letter or digit"),
    ("s3://re..views/k", "must not hold two adjacent dots"),
    ("s3://192.168.5.4/k", "must not be an IP address"),
    ("s3://xn--reviews/k", "must not begin with 'xn--'"),
    ("s3://reviews/" + "k" * 1025, "the key is 1,025 bytes long; at most 1,024"),
    ("s3://reviews/" + "é" * 513, "the key is 1,026 bytes long; at most 1,024"),
    ("s3://reviews/bad\udcffkey", "the key is not valid UTF-8"),
    ("s3://reviews/", "is not an S3 object URI"),
    ("s3://reviews/folder/", "is not an S3 object URI"),
])
@pytest.mark.parametrize("side", ["--output", "--input"])
def test_a_bad_s3_uri_is_refused_before_the_model_loads_or_the_input_is_read(model, tmp_path, capsys,
                                                                             monkeypatch, uri, message, side):
    def never(*args, **kwargs):
        raise AssertionError("called before the destination was checked")

    monkeypatch.setattr(batch.Model, "load", never)
    monkeypatch.setattr(batch, "open_input", never)
    args = {"--input": str(tmp_path / "in.txt"), "--output": str(tmp_path / "out.jsonl"), side: uri}
    code = main(["--model-dir", str(model), "--input", args["--input"], "--output", args["--output"],
                 "--format", "text"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert listing(tmp_path) == set()


@pytest.mark.parametrize("uri", ["s3://reviews/k", "s3://my-bucket.logs-2026/out/scores v2.jsonl",
                                 "s3://a1b/é/ü.jsonl", "s3://bucket-base--usw2-az1--x-s3/k",
                                 "s3://" + "a" * 63 + "/" + "k" * 1024])
def test_valid_s3_uris_are_accepted(uri):
    bucket, key = batch.split_s3(uri)
    assert f"s3://{bucket}/{key}" == uri


# -- 6. one huge record costs no more than the limit ---------------------------------------------
@pytest.fixture
def small_limit(monkeypatch) -> int:
    monkeypatch.setattr(batch, "MAX_RECORD_CHARS", 1_000)
    return 1_000


@pytest.mark.parametrize("name, make", [
    ("reviews.txt", lambda text: text),
    ("reviews.jsonl", lambda text: json.dumps({"review": text})),
    ("reviews.csv", lambda text: text.replace(",", "")),
])
@pytest.mark.parametrize("ending", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_a_record_over_the_limit_is_an_error_record_and_the_run_goes_on(score, tmp_path, small_limit,
                                                                       name, make, ending):
    fits = "superb " * (small_limit // 7 - 20)  # under the limit, whatever the format adds
    lines = [make(POSITIVE_REVIEW), make("good " * small_limit), make(fits), make("bad " * 10 * small_limit),
             make(NEGATIVE_REVIEW)]
    header = "review" + ending if name.endswith(".csv") else ""
    source, out = tmp_path / name, tmp_path / "scores.jsonl"
    source.write_text(header + ending.join(lines) + ending, newline="")
    code, err = score(source, out)
    assert code == 3, err
    results = results_of(out.read_text())
    assert len(results) == 5
    limit_error = {"error": f"longer than {small_limit:,} characters (the limit for one record); skipped"}
    assert_scored(results[0], 1, POSITIVE_REVIEW)
    assert results[1] == {"line": 2, **limit_error}
    assert_scored(results[2], 3, fits.replace(",", ""))
    assert results[3] == {"line": 4, **limit_error}
    assert_scored(results[4], 5, NEGATIVE_REVIEW.replace(",", ""))


def test_a_record_of_exactly_the_limit_is_scored(score, tmp_path, small_limit):
    review = ("good " * small_limit)[:small_limit]
    source, out = tmp_path / "reviews.txt", tmp_path / "scores.jsonl"
    for content in (f"{review}\nawful\n", f"{review}\r\nawful\r\n", f"awful\n{review}"):
        source.write_text(content, newline="")
        code, err = score(source, out)
        assert code == 0, (content[-10:], err)
        assert sorted(r["label"] for r in results_of(out.read_text())) == ["negative", "positive"]


class Spy(io.TextIOWrapper):
    """A text stream that remembers the longest string it ever handed out, however it was asked."""

    def __init__(self, data: bytes, newline: str):
        super().__init__(io.BytesIO(data), encoding="utf-8", errors="surrogateescape", newline=newline)
        self.longest = 0

    def _seen(self, text: str) -> str:
        self.longest = max(self.longest, len(text))
        return text

    def readline(self, size: int = -1) -> str:
        return self._seen(super().readline(size))

    def read(self, size: int | None = -1) -> str:
        return self._seen(super().read(size))

    def __next__(self) -> str:
        return self._seen(super().__next__())

    def readlines(self, hint: int = -1) -> list[str]:
        raise AssertionError("readlines() holds the whole input")


@pytest.mark.parametrize("reader, newline, good, bad", [
    (batch.text_records, "\n", "superb", "awful"),
    (lambda stream: batch.jsonl_records(stream, None), "\n", '{"review": "superb"}', '{"review": "awful"}'),
    (lambda stream: batch.csv_records(stream, None), "", "superb", "awful"),
], ids=["text", "jsonl", "csv"])
def test_the_readers_never_take_more_than_the_limit_from_the_stream(small_limit, reader, newline, good, bad):
    """Memory is bounded by construction: no string longer than the limit (plus its line ending)
    ever leaves the stream, however long the line."""
    header = "review\n" if newline == "" else ""
    data = f"{header}{good}\n{'x' * (200 * small_limit)}\n{bad}\n".encode()
    spy = Spy(data, newline)
    got = list(reader(spy))
    assert got[0] == "superb" and isinstance(got[1], batch.Invalid) and got[2] == "awful"
    assert 0 < spy.longest <= small_limit + 2


def test_peak_memory_of_a_huge_line_is_bounded_by_the_limit(model, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batch, "MAX_RECORD_CHARS", 100_000)
    source = tmp_path / "huge.txt"
    with source.open("w") as f:
        f.write("superb\n")
        for _ in range(40):  # one line of 40 MB
            f.write("bad " * 250_000)
        f.write("\nawful\n")
    tracemalloc.start()
    try:
        code = main(["--model-dir", str(model), "--input", str(source), "--output", str(tmp_path / "o.jsonl"),
                     "--quiet"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 3, capsys.readouterr().err
    assert [r.get("label", "error") for r in results_of((tmp_path / "o.jsonl").read_text())] == \
        ["positive", "error", "negative"]
    assert peak < 8 * 2**20, peak  # the line alone is 40 MB


# -- 7. more of the same classes -----------------------------------------------------------------
def test_an_output_that_is_a_directory_or_a_path_ending_in_a_slash_is_refused(score, tmp_path):
    (tmp_path / "in.txt").write_text(TEXT)
    (tmp_path / "folder").mkdir()
    for out, message in [(tmp_path / "folder", "it is a directory"),
                         (f"{tmp_path}/new/", "it is a directory"),
                         (f"{tmp_path}/folder/", "it is a directory")]:
        code, err = score(tmp_path / "in.txt", out)
        assert code == 2 and message in err, err
    assert listing(tmp_path) == {"in.txt", "folder"} and listing(tmp_path / "folder") == set()


def test_a_fifo_output_is_written_into_not_replaced(score, tmp_path):
    source, fifo = tmp_path / "in.txt", tmp_path / "scores.fifo"
    source.write_text(TEXT)
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is there, so opening to write won't block
    try:
        code, err = score(source, fifo)
        assert code == 0, err
        assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced by a file"
        data = b""
        while chunk := os.read(reader, 1 << 16):
            data += chunk
    except BlockingIOError:
        data = b""
    finally:
        os.close(reader)
    results = results_of(data.decode())
    assert len(results) == len(REVIEWS)
    assert_scored(results[0], 1, REVIEWS[0])
    assert listing(tmp_path) == {"in.txt", "scores.fifo"}


def _device(path: Path, kind: int, device: int) -> Path:
    try:
        os.mknod(path, kind | 0o600, device)
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot create a device node here: {exc}")
    return path


def test_a_character_device_output_is_written_into_not_replaced(score, tmp_path):
    null = _device(tmp_path / "null", stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    try:
        open(null, "w").close()
    except OSError as exc:
        pytest.skip(f"device nodes cannot be opened on this filesystem: {exc}")
    (tmp_path / "in.txt").write_text(TEXT)
    code, err = score(tmp_path / "in.txt", null)
    assert code == 0, err
    assert stat.S_ISCHR(os.stat(null).st_mode), "the device was replaced by a file"
    assert listing(tmp_path) == {"in.txt", "null"}


def test_a_block_device_output_is_refused(score, tmp_path):
    disk = _device(tmp_path / "disk", stat.S_IFBLK, os.makedev(7, 254))  # never opened
    (tmp_path / "in.txt").write_text(TEXT)
    code, err = score(tmp_path / "in.txt", disk)
    assert code == 2 and "it is a block device" in err, err
    assert stat.S_ISBLK(os.stat(disk).st_mode) and listing(tmp_path) == {"in.txt", "disk"}


def test_an_interrupted_multipart_upload_leaves_no_object_and_no_parts(s3, model, tmp_path, monkeypatch, capsys):
    """Ctrl-C while the output is uploading: nothing at the key, the multipart upload aborted."""
    interrupted = []

    def interrupt(**kwargs):  # runs in the transfer's worker thread, as a part goes out
        interrupted.append(True)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        raise ConnectionError("the network went away")

    s3.meta.events.register("before-call.s3.UploadPart", interrupt)
    s3.upload_file = functools.partial(s3.upload_file, Config=TransferConfig(multipart_threshold=1))
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: s3)
    (tmp_path / "in.txt").write_text(TEXT)
    code = main(["--model-dir", str(model), "--input", str(tmp_path / "in.txt"),
                 "--output", "s3://reviews/out/scores.jsonl"])
    err = capsys.readouterr().err
    assert interrupted and code == 130, err
    assert "interrupted by SIGINT; s3://reviews/out/scores.jsonl not written" in err
    assert "Contents" not in s3.list_objects_v2(Bucket="reviews", Prefix="out/")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="reviews")


@pytest.mark.parametrize("name, content", [
    ("nul.txt", "superb\x00film\nawful\x00\n"),
    ("nul.jsonl", '{"review": "superb\\u0000film"}\n{"review": "awful\\u0000"}\n'),
    ("nul.csv", "review\nsuperb\x00film\nawful\x00\n"),
])
def test_a_nul_byte_is_part_of_the_review(score, tmp_path, name, content):
    (tmp_path / name).write_text(content)
    code, err = score(tmp_path / name, tmp_path / "o.jsonl")
    assert code == 0, err
    assert [r["label"] for r in results_of((tmp_path / "o.jsonl").read_text())] == ["positive", "negative"]


def test_a_raw_control_character_in_a_json_string_is_an_error_record(score, tmp_path):
    """JSON requires control characters in strings to be escaped (``\\u0000``), so a raw one is a
    broken record, not a review."""
    (tmp_path / "raw.jsonl").write_text('{"review": "superb\x00"}\n{"review": "awful"}\n')
    code, _ = score(tmp_path / "raw.jsonl", tmp_path / "o.jsonl")
    results = results_of((tmp_path / "o.jsonl").read_text())
    assert code == 3 and results[0]["error"].startswith("not valid JSON: Invalid control character")
    assert results[1]["label"] == "negative"


@pytest.mark.parametrize("name, lines", [
    ("joined.txt", ["superb", "\ufeffawful", "\ufeff\ufeffgood"]),
    ("joined.jsonl", ['{"review": "superb"}', '\ufeff{"review": "awful"}', '\ufeff{"review": "good"}']),
    ("joined.csv", ["review", "superb", "\ufeffawful", "\ufeffgood"]),
])
def test_a_byte_order_mark_at_the_start_of_a_line_is_dropped(score, tmp_path, name, lines):
    """Files joined with ``cat`` carry each one's BOM into the middle of the stream."""
    (tmp_path / name).write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    code, err = score(tmp_path / name, tmp_path / "o.jsonl")
    assert code == 0, err
    assert [r["label"] for r in results_of((tmp_path / "o.jsonl").read_text())] == ["positive", "negative",
                                                                                    "positive"]


def test_crlf_jsonl_and_csv_are_read_like_lf(score, tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'{"review": "superb"}\r\n{"review": "awful"}\r\n')
    (tmp_path / "a.csv").write_bytes(b'id,review\r\n1,"superb\r\nfilm"\r\n2,awful\r\n')
    for name in ("a.jsonl", "a.csv"):
        code, err = score(tmp_path / name, tmp_path / "o.jsonl")
        assert code == 0, err
        assert [r["label"] for r in results_of((tmp_path / "o.jsonl").read_text())] == ["positive", "negative"]


def test_an_output_folder_that_cannot_take_a_new_file_exits_2_before_scoring(score, tmp_path, monkeypatch):
    """Found when the temporary file is made, after the model loads but before any record is scored."""
    try:
        fd, name = tempfile.mkstemp(dir="/sys")
    except OSError:
        pass  # as wanted: sysfs takes no new files, even from root
    else:
        os.close(fd)
        os.unlink(name)
        pytest.skip("/sys takes new files here")
    scored = []
    monkeypatch.setattr(batch, "score", lambda *args, **kwargs: scored.append(1))
    (tmp_path / "in.txt").write_text(TEXT)
    code, err = score(tmp_path / "in.txt", "/sys/scores.jsonl")
    assert code == 2 and "cannot write /sys/scores.jsonl: cannot create a file in /sys" in err, err
    assert not scored and not os.path.exists("/sys/scores.jsonl")
