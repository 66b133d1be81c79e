"""``python -m serving.batch``: formats, order, error records, S3, stdin/stdout, exit codes, flat memory.

The model is ``tests.support``'s tiny logistic regression, so every probability is known:
sigmoid(sum of WEIGHTS of the review's words).
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import tracemalloc
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from sentiment.featurizer import tokenize
from serving import batch
from serving.batch import main
from tests.support import MODEL_VERSION, NEGATIVE_REVIEW, POSITIVE_REVIEW, WEIGHTS, write_tiny_model

REPO = Path(__file__).resolve().parents[2]
REVIEWS = [POSITIVE_REVIEW, NEGATIVE_REVIEW, "Good, warm and funny.", "Dull, lazy and predictable.",
           "Brilliant: the best film of the year.", "Bad acting; the plot drags."]


def expected(review: str) -> float:
    return 1 / (1 + math.exp(-sum(WEIGHTS.get(token, 0.0) for token in tokenize(review))))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def run(model, tmp_path, capsys):
    """``run(input_name, content, *flags)`` writes the input, runs main in-process and returns
    (exit code, output records, stderr)."""

    def go(name: str, content: str | bytes, *flags: str) -> tuple[int, list[dict], str]:
        source, out = tmp_path / name, tmp_path / f"{name}.out.jsonl"
        source.write_bytes(content.encode() if isinstance(content, str) else content)
        code = main(["--model-dir", str(model), "--input", str(source), "--output", str(out), *flags])
        results = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else None
        return code, results, capsys.readouterr().err

    return go


def assert_scored(result: dict, line: int, review: str) -> None:
    assert result["line"] == line and result["model_version"] == MODEL_VERSION
    assert result["probability_positive"] == pytest.approx(expected(review), abs=1e-6)
    assert result["label"] == ("positive" if expected(review) >= 0.5 else "negative")


# -- formats -------------------------------------------------------------------------------------
def test_text_scores_every_line_in_order_across_batches(run):
    reviews = REVIEWS * 5  # 30 lines in batches of 4: order must survive the batch boundaries
    code, results, err = run("reviews.txt", "\n".join(reviews) + "\n", "--batch-size", "4")
    assert code == 0
    assert len(results) == len(reviews)
    for n, (result, review) in enumerate(zip(results, reviews), 1):
        assert_scored(result, n, review)
    assert "30 records, 0 errors" in err and MODEL_VERSION in err


def test_text_crlf_and_missing_final_newline(run):
    code, results, _ = run("reviews.txt", f"{POSITIVE_REVIEW}\r\n{NEGATIVE_REVIEW}")
    assert code == 0
    assert_scored(results[0], 1, POSITIVE_REVIEW)
    assert_scored(results[1], 2, NEGATIVE_REVIEW)


def test_text_bad_lines_get_error_records_and_the_rest_is_scored(run):
    content = f"{POSITIVE_REVIEW}\n\n   \nsuperb \xff\xfe film\n{NEGATIVE_REVIEW}\n".encode("latin-1")
    code, results, err = run("reviews.txt", content)
    assert code == batch.EXIT_RECORD_ERRORS == 3
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5]
    assert_scored(results[0], 1, POSITIVE_REVIEW)
    assert results[1] == {"line": 2, "error": "blank: no review text"}
    assert results[2] == {"line": 3, "error": "blank: no review text"}
    assert results[3] == {"line": 4, "error": "not valid UTF-8: byte 0xff at character 8"}
    assert_scored(results[4], 5, NEGATIVE_REVIEW)
    assert "5 records, 3 errors" in err and "first error: line 2: blank" in err


def test_csv_quoted_multiline_fields_and_the_default_columns(run):
    multiline = "Superb.\nA great cast, and \"loved\" it."
    negative = NEGATIVE_REVIEW.replace(",", "")
    content = 'id,review,stars\n1,"{}",9\n2,{},1\n'.format(multiline.replace('"', '""'), negative)
    code, results, _ = run("reviews.csv", content)
    assert code == 0
    assert_scored(results[0], 1, multiline)
    assert_scored(results[1], 2, negative)
    code, results, _ = run("texts.csv", f"text\n{negative}\n")  # "text" is the fallback column
    assert code == 0
    assert_scored(results[0], 1, negative)


def test_csv_text_column_option_and_byte_order_mark(run):
    content = "\ufeffbody,review\n" + f'"{POSITIVE_REVIEW}",awful\n'
    code, results, _ = run("reviews.csv", content.encode("utf-8"), "--text-column", "body")
    assert code == 0
    assert_scored(results[0], 1, POSITIVE_REVIEW)


def test_csv_bad_records_get_error_records(run):
    content = f"id,review\n1,{REVIEWS[2].replace(',', '')}\n2\n\n3,\n".encode() + b"4,superb \xff\n5,awful\n"
    code, results, _ = run("reviews.csv", content)
    assert code == 3
    assert_scored(results[0], 1, REVIEWS[2].replace(",", ""))
    assert results[1] == {"line": 2, "error": "has 1 field(s), so no column 'review' (field 2)"}
    assert results[2] == {"line": 3, "error": "blank: no review text"}
    assert results[3] == {"line": 4, "error": "blank: no review text"}
    assert results[4] == {"line": 5, "error": "not valid UTF-8: byte 0xff at character 8"}
    assert_scored(results[5], 6, "awful")


def test_csv_long_fields_are_read_and_one_over_the_limit_is_an_error_record(run):
    long = "superb " * 30_000  # 210k characters: over the csv module's default 128 Ki limit
    too_long = "x" * (batch.MAX_RECORD_CHARS + 1)
    code, results, _ = run("reviews.csv", f'review\n"{long}\n{long}"\n{too_long}\ngood\n')
    assert code == 3 and len(results) == 3
    assert_scored(results[0], 1, long)
    assert results[1] == {"line": 2, "error": "longer than 16,777,216 characters (the limit for one record); skipped"}
    assert_scored(results[2], 3, "good")


def test_csv_without_the_text_column_is_refused_before_writing(run):
    code, results, err = run("reviews.csv", "id,body\n1,superb\n")
    assert code == 2 and results is None
    assert "the CSV header has no column 'review' or 'text'; its columns are 'id', 'body'" in err
    code, _, err = run("reviews.csv", "id,review\n1,superb\n", "--text-column", "comment")
    assert code == 2 and "no column 'comment'" in err


def test_jsonl_review_or_text_field(run):
    lines = [json.dumps({"review": POSITIVE_REVIEW, "id": 1}), json.dumps({"text": NEGATIVE_REVIEW})]
    code, results, _ = run("reviews.jsonl", "\n".join(lines) + "\n")
    assert code == 0
    assert_scored(results[0], 1, POSITIVE_REVIEW)
    assert_scored(results[1], 2, NEGATIVE_REVIEW)
    both = json.dumps({"body": "superb", "review": "awful"})
    code, results, _ = run("reviews.ndjson", both, "--text-column", "body")
    assert code == 0
    assert_scored(results[0], 1, "superb")


def test_jsonl_bad_lines_get_error_records(run):
    lines = [
        json.dumps({"review": POSITIVE_REVIEW}),
        '{"review": "unterminated',
        '["superb"]',
        '{"title": "superb"}',
        '{"review": 5}',
        '{"review": null}',
        "",
        '{"review": "  "}',
        json.dumps({"review": NEGATIVE_REVIEW}),
    ]
    content = ("\n".join(lines) + "\n").encode() + b'{"review": "superb \xc3"}\n'
    code, results, _ = run("reviews.jsonl", content)
    assert code == 3
    assert len(results) == 10
    assert_scored(results[0], 1, POSITIVE_REVIEW)
    assert results[1]["line"] == 2 and results[1]["error"].startswith("not valid JSON: Unterminated string")
    assert results[2] == {"line": 3,
                          "error": 'not a JSON object: expected {"review": "<text>"}, got an array'}
    assert results[3] == {"line": 4, "error": 'missing the field "review" or "text"'}
    assert results[4] == {"line": 5, "error": '"review" must be a string, got a number'}
    assert results[5] == {"line": 6, "error": '"review" must be a string, got null'}
    assert results[6] == {"line": 7, "error": "blank: no review text"}
    assert results[7] == {"line": 8, "error": "blank: no review text"}
    assert_scored(results[8], 9, NEGATIVE_REVIEW)
    assert results[9] == {"line": 10, "error": "not valid UTF-8: byte 0xc3 at character 20"}


@pytest.mark.parametrize("name", ["empty.txt", "empty.csv", "empty.jsonl", "header_only.csv"])
def test_empty_input_gives_empty_output(run, name):
    code, results, err = run(name, "review\n" if name == "header_only.csv" else "")
    assert code == 0 and results == []
    assert "0 records, 0 errors" in err


def test_format_option_overrides_the_extension(run):
    code, results, _ = run("reviews.data", json.dumps({"review": POSITIVE_REVIEW}), "--format", "jsonl")
    assert code == 0
    assert_scored(results[0], 1, POSITIVE_REVIEW)


# -- exit codes and refusals ---------------------------------------------------------------------
@pytest.mark.parametrize("flags, message", [
    (["--input", "{tmp}/missing.txt"], "cannot read {tmp}/missing.txt: No such file or directory"),
    (["--input", "{tmp}"], "cannot read {tmp}: Is a directory"),
    (["--model-dir", "{tmp}/no_model"], "model directory {tmp}/no_model does not exist"),
    (["--output", "{tmp}/no_dir/out.jsonl"], "the directory {tmp}/no_dir does not exist"),
    (["--output", "s3://bucket-only"], "s3://bucket-only is not an S3 object URI"),
])
def test_unusable_arguments_exit_2_with_a_message_and_write_nothing(model, tmp_path, capsys, flags, message):
    (tmp_path / "in.txt").write_text(POSITIVE_REVIEW)
    args = {"--model-dir": str(model), "--input": str(tmp_path / "in.txt"),
            "--output": str(tmp_path / "out.jsonl")}
    args.update(zip(flags[::2], (f.format(tmp=tmp_path) for f in flags[1::2])))
    assert main([item for pair in args.items() for item in pair]) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and "Traceback" not in err
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.tmp").exists()


@pytest.mark.parametrize("flags, message", [
    (["--input", "reviews.tsv"], "cannot tell the format of reviews.tsv from its extension '.tsv'"),
    (["--input", "reviews.txt", "--text-column", "review"], "--text-column applies to csv and jsonl"),
    (["--input", "reviews.txt", "--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--input", "reviews.txt", "--format", "xml"], "invalid choice: 'xml'"),
])
def test_bad_options_exit_2(capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--model-dir", "m", "--output", "o.jsonl", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_crash_part_way_leaves_the_previous_output_untouched(model, tmp_path, monkeypatch, capsys):
    source, out = tmp_path / "reviews.txt", tmp_path / "scores.jsonl"
    source.write_text("\n".join(REVIEWS * 3))
    out.write_text("previous complete output\n")
    calls = []
    original = batch.Model.predict_rows

    def interrupted_on_second_batch(self, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, rows)

    monkeypatch.setattr(batch.Model, "predict_rows", interrupted_on_second_batch)
    code = main(["--model-dir", str(model), "--input", str(source), "--output", str(out),
                 "--batch-size", "5"])
    assert code == 130 and calls == [5, 5]
    assert f"interrupted by SIGINT; {out} not written" in capsys.readouterr().err
    assert out.read_text() == "previous complete output\n"
    assert {p.name for p in tmp_path.iterdir()} == {"reviews.txt", "scores.jsonl"}  # no temporary file


# -- progress ------------------------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_unless_quiet(run, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    content = "\n".join(REVIEWS) + "\n"
    run("reviews.txt", content, "--batch-size", "2")
    shown = terminal.getvalue()
    size = len(content.encode())
    assert "scoring" in shown and "6 records" in shown and f"{size}/{size}" in shown
    monkeypatch.setattr(sys, "stderr", quiet := Terminal())
    run("reviews.txt", content, "--quiet")
    assert "scoring" not in quiet.getvalue() and "6 records, 0 errors" in quiet.getvalue()


# -- S3 ------------------------------------------------------------------------------------------
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


def test_s3_input_and_output(s3, model, capsys):
    lines = [json.dumps({"review": r}) for r in REVIEWS] + ["not json"]
    s3.put_object(Bucket="reviews", Key="in/reviews.jsonl", Body="\n".join(lines).encode())
    code = main(["--model-dir", str(model), "--input", "s3://reviews/in/reviews.jsonl",
                 "--output", "s3://reviews/out/scores.jsonl"])
    assert code == 3
    obj = s3.get_object(Bucket="reviews", Key="out/scores.jsonl")
    assert obj["ContentType"] == "application/jsonlines"
    results = [json.loads(line) for line in obj["Body"].read().decode().splitlines()]
    for n, review in enumerate(REVIEWS, 1):
        assert_scored(results[n - 1], n, review)
    assert results[-1]["line"] == 7 and results[-1]["error"].startswith("not valid JSON")
    assert "wrote s3://reviews/out/scores.jsonl" in capsys.readouterr().err


def test_s3_missing_input_exits_2_and_failed_upload_exits_1(s3, model, tmp_path, capsys):
    assert main(["--model-dir", str(model), "--input", "s3://reviews/nope.txt", "--output", "-"]) == 2
    assert "cannot read s3://reviews/nope.txt" in capsys.readouterr().err
    (tmp_path / "in.txt").write_text(POSITIVE_REVIEW)
    assert main(["--model-dir", str(model), "--input", str(tmp_path / "in.txt"),
                 "--output", "s3://no-such-bucket/out.jsonl"]) == 1
    err = capsys.readouterr().err
    assert "uploading the output to s3://no-such-bucket/out.jsonl failed" in err and "NoSuchBucket" in err


# -- a real process: stdin, stdout, exit codes ---------------------------------------------------
def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "serving.batch", *args], input=stdin, cwd=REPO,
                          capture_output=True, timeout=120)


def test_stdin_to_stdout_in_a_real_process(model):
    done = cli("--model-dir", str(model), "--input", "-", "--output", "-",
               stdin=f"{POSITIVE_REVIEW}\n\n{NEGATIVE_REVIEW}\n".encode())
    assert done.returncode == 3
    results = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert_scored(results[0], 1, POSITIVE_REVIEW)
    assert results[1] == {"line": 2, "error": "blank: no review text"}
    assert_scored(results[2], 3, NEGATIVE_REVIEW)
    assert b"3 records, 1 errors" in done.stderr and b"wrote stdout" in done.stderr

    done = cli("--model-dir", str(model), "--input", "-", "--output", "-", "--format", "csv",
               stdin=b"review\nsuperb\n")
    assert done.returncode == 0 and json.loads(done.stdout)["label"] == "positive"


def test_missing_model_in_a_real_process_exits_2_without_a_traceback(tmp_path):
    done = cli("--model-dir", str(tmp_path / "none"), "--input", "-", "--output", "-", stdin=b"superb\n")
    assert done.returncode == 2 and done.stdout == b""
    assert b"does not exist" in done.stderr and b"Traceback" not in done.stderr


# -- memory --------------------------------------------------------------------------------------
def peak_traced_bytes(model: Path, tmp_path: Path, lines: int) -> int:
    """Peak Python-heap bytes while scoring ``lines`` generated reviews (tracemalloc; not timed)."""
    source = tmp_path / f"{lines}.txt"
    with source.open("w") as f:
        f.writelines("good film\n" if i % 2 else "bad plot\n" for i in range(lines))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        code = main(["--model-dir", str(model), "--input", str(source), "--output", f"{source}.out",
                     "--quiet"])
        assert code == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert sum(1 for _ in open(f"{source}.out")) == lines


def test_memory_stays_flat_as_the_input_grows(model, tmp_path, capsys):
    peak_traced_bytes(model, tmp_path, 1_000)  # first-call imports and caches
    small = peak_traced_bytes(model, tmp_path, 10_000)
    large = peak_traced_bytes(model, tmp_path, 100_000)
    # Holding the input or the output would cost over 10 MB for 100k records (10x the small run).
    assert large < 1.5 * small, (small, large)
    assert large < 4 * 2**20, (small, large)
