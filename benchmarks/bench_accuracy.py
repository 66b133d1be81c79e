"""Accuracy on the official 25k/25k IMDB split: this project's model beside scikit-learn baselines.

The baselines are trained in this run on the same training reviews the project's model saw
(train minus its validation split, same seed), and every model is scored on the same 25,000
test reviews. The project's model is rescored from ``model.onnx`` with ONNX Runtime
(``training.evaluate``), not read back from metrics.json.

    python -m benchmarks.bench_accuracy [--model-dir artifacts] [--data PATH]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import parser
from benchmarks.headline import Headline, Section, verdict
from sentiment.artifacts import FEATURIZER_FILE, METRICS_FILE, MODEL_FILE
from training.data import load_imdb, train_validation_split
from training.evaluate import evaluate


def nb_weighted_logistic(x_train, y_train, x_test, alpha: float = 1.0, c: float = 10.0):
    """Wang & Manning's NB-weighted features (binary uni+bigrams × log-count ratio) + logistic regression."""
    from sklearn.linear_model import LogisticRegression

    x_train, x_test = (x_train > 0).astype(np.float32), (x_test > 0).astype(np.float32)
    p = alpha + x_train[y_train == 1].sum(axis=0)
    q = alpha + x_train[y_train == 0].sum(axis=0)
    r = np.asarray(np.log((p / p.sum()) / (q / q.sum()))).ravel()
    clf = LogisticRegression(C=c, max_iter=2000).fit(x_train.multiply(r).tocsr(), y_train)
    return clf.predict(x_test.multiply(r).tocsr())


def baselines(train_texts, y_train, test_texts, y_test) -> list[tuple[str, float, float]]:
    """(name, test accuracy, seconds to fit and predict) for each scikit-learn baseline."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB

    results = []

    def run(name, fn):
        start = time.perf_counter()
        predicted = fn()
        results.append((name, float(np.mean(predicted == y_test)), time.perf_counter() - start))

    uni = CountVectorizer(max_features=5000)
    xu_train, xu_test = uni.fit_transform(train_texts), uni.transform(test_texts)
    run("multinomial NB, 5k unigram counts", lambda: MultinomialNB().fit(xu_train, y_train).predict(xu_test))
    run(
        "logistic regression, 5k binary unigrams",
        lambda: LogisticRegression(max_iter=2000).fit(xu_train > 0, y_train).predict(xu_test > 0),
    )
    bi = CountVectorizer(ngram_range=(1, 2), min_df=3)
    xb_train = bi.fit_transform(train_texts)
    xb_test = bi.transform(test_texts)
    run("NB-weighted logistic regression, uni+bigrams", lambda: nb_weighted_logistic(xb_train, y_train, xb_test))
    return results


def report(ours: dict, metrics: dict, rows: list[tuple[str, float, float]]) -> str:
    cm = ours["confusion_matrix"]
    lines = [
        "Trained on the IMDB training reviews minus the validation split; scored on the 25,000 test reviews.",
        "",
        "| model | test accuracy | validation accuracy | fit + predict |",
        "| --- | ---: | ---: | ---: |",
        f"| **this project** ({metrics.get('model_kind', '?')}, `{metrics['model_version']}`, ONNX Runtime) "
        f"| **{ours['accuracy']:.2%}** | {metrics['validation']['accuracy']:.2%} "
        f"| {metrics.get('timings_s', {}).get('total', float('nan')):.0f} s (training) |",
    ]
    lines += [f"| scikit-learn: {name} | {acc:.2%} | — | {secs:.1f} s |" for name, acc, secs in rows]
    lines += [
        "",
        f"This project's test confusion matrix: {cm['tp']:,} true positives, {cm['tn']:,} true negatives, "
        f"{cm['fp']:,} false positives, {cm['fn']:,} false negatives (ROC AUC {ours['roc_auc']:.4f}).",
    ]
    return "\n".join(lines)


def headlines(ours: dict, metrics: dict, rows: list[tuple[str, float, float]], model_dir: Path) -> tuple[Headline, ...]:
    name, accuracy, _ = max(rows, key=lambda row: row[1])
    total = metrics.get("timings_s", {}).get("total", float("nan"))
    mb = lambda file: (model_dir / file).stat().st_size / 1e6  # noqa: E731
    train = f"python -m training --out {model_dir}"
    return (
        Headline("IMDB test accuracy (25,000 reviews)",
                 f"**{ours['accuracy']:.2%}** (validation {metrics['validation']['accuracy']:.2%}, "
                 f"ROC AUC {ours['roc_auc']:.3f})",
                 f"≥ 91.5%: {verdict(ours['accuracy'] >= 0.915)}", train),
        Headline("best classic baseline, same split, same run", f"{accuracy:.2%} ({name})", "—",
                 "python -m benchmarks.bench_accuracy"),
        Headline("training time, data to artifacts, this machine", f"{total:.0f} s (`timings_s.total` in metrics.json)",
                 f"≤ 10 min: {verdict(total <= 600)}", train),
        Headline("artifact sizes", f"model.onnx {mb(MODEL_FILE):.2f} MB, featurizer.json {mb(FEATURIZER_FILE):.2f} MB",
                 f"≤ 50 MB, ≤ 5 MB: {verdict(mb(MODEL_FILE) <= 50 and mb(FEATURIZER_FILE) <= 5)}",
                 "python -m benchmarks.bench_accuracy"),
    )


def main(argv: list[str] | None = None) -> Section:
    args = parser(__doc__).parse_args(argv)
    metrics = json.loads((Path(args.model_dir) / METRICS_FILE).read_text())
    imdb = load_imdb(args.data)
    config = metrics.get("config", {})
    train, _ = train_validation_split(imdb.train, config.get("val_fraction", 0.1), config.get("seed", 1337))
    ours = evaluate(args.model_dir, args.data)
    rows = baselines(train.texts, np.array(train.labels), imdb.test.texts, np.array(imdb.test.labels))
    text = report(ours, metrics, rows)
    print(text)
    return Section(text, headlines(ours, metrics, rows, Path(args.model_dir)))


if __name__ == "__main__":
    main()
