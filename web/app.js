// The page's only script: reads config.json, posts reviews to the API, shows the verdict and
// which words drove it. Everything the API or the user supplies is written as text nodes
// (textContent, createTextNode), never as HTML, so a review such as <img src=x onerror=...> is
// shown as the text it is, highlighted or not.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("review-form");
  const textarea = $("review");
  const submit = $("submit");
  const samples = document.querySelectorAll("button.sample");
  const errorBox = $("error");
  const status = $("status");
  const result = $("result");
  const view = {
    label: $("result-label"),
    bar: $("result-bar"),
    fill: $("result-fill"),
    probability: $("result-probability"),
    review: $("result-review"),
    version: $("result-version"),
    unsure: $("result-unsure"),
    why: $("result-why"),
    positiveTerms: $("terms-positive"),
    negativeTerms: $("terms-negative"),
  };
  // A word of the review as the page finds it: letters and digits, apostrophes inside (the
  // featurizer's tokens, near enough for display; a word it does not match is left plain).
  const WORD = /[\p{L}\p{N}]+(?:['\u2019\u2018\u02bc][\p{L}\p{N}]+)*/gu;
  const TOP_TERMS = 5; // terms listed per direction

  let apiUrl = null; // set once config.json is read; no submissions before that
  let busy = false;

  function showError(message) {
    errorBox.textContent = message;
    if (message) result.hidden = true;
  }

  function setBusy(on) {
    busy = on;
    submit.disabled = on || apiUrl === null;
    submit.textContent = on ? "Analysing…" : "Analyse review";
    samples.forEach((button) => { button.disabled = on || apiUrl === null; });
    form.setAttribute("aria-busy", String(on));
    status.setAttribute("aria-busy", String(on));
  }

  async function loadConfig() {
    try {
      const response = await fetch("config.json", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const config = await response.json();
      if (typeof config.apiUrl !== "string" || config.apiUrl === "") {
        throw new Error('it has no "apiUrl" string');
      }
      apiUrl = new URL(config.apiUrl, document.baseURI).href.replace(/\/+$/, "");
    } catch (err) {
      showError(`The page cannot reach its API: config.json beside it could not be read (${err.message}).`);
    }
    setBusy(false);
  }

  // POST one review with "explain" (every term's contribution); a model that cannot explain
  // (501 explain_unavailable) is asked again without. Resolve to the prediction or reject with a
  // message fit for the page.
  async function predict(review) {
    try {
      return await post({ review, explain: true });
    } catch (err) {
      if (err.code !== "explain_unavailable") throw err;
      return post({ review });
    }
  }

  async function post(request) {
    let response;
    try {
      response = await fetch(`${apiUrl}/predict`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
      });
    } catch (err) {
      throw new Error(`Could not reach the API at ${apiUrl} (${err.message}). Check that it is running and try again.`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      // not JSON: described below by its status
    }
    if (!response.ok) {
      const error = new Error(body && typeof body.message === "string" && body.message ? body.message
        : `The API answered HTTP ${response.status} ${response.statusText}`.trim() + ".");
      error.code = body && typeof body.error === "string" ? body.error : null;
      throw error;
    }
    const prediction = body && Array.isArray(body.predictions) ? body.predictions[0] : undefined;
    if (!prediction || typeof prediction.probability_positive !== "number") {
      throw new Error("The API answered with a body this page does not understand.");
    }
    return prediction;
  }

  // The contribution of each word of the review: every term's contribution is shared out over its
  // occurrences and, for an n-gram, over its n words (a bigram highlights both of its words), so
  // the words' scores add up to the terms' contributions. Returns [{start, end, score, terms}].
  function scoreWords(review, terms) {
    const words = [...review.matchAll(WORD)].map((m) => ({
      start: m.index, end: m.index + m[0].length, key: m[0].toLowerCase().replace(/[\u2019\u2018\u02bc]/g, "'"),
      score: 0, terms: [],
    }));
    const contributions = new Map(terms.map((t) => [t.term, t.contribution]));
    const longest = Math.max(1, ...terms.map((t) => t.term.split(" ").length));
    const places = new Map(); // term -> [first word of each occurrence]
    for (let n = 1; n <= longest; n += 1) {
      for (let i = 0; i + n <= words.length; i += 1) {
        const term = words.slice(i, i + n).map((w) => w.key).join(" ");
        if (contributions.get(term)) places.set(term, [...(places.get(term) || []), i]); // a zero moves nothing
      }
    }
    for (const [term, starts] of places) {
      const n = term.split(" ").length;
      const share = contributions.get(term) / (starts.length * n);
      for (const i of starts) {
        for (let k = i; k < i + n; k += 1) {
          words[k].score += share;
          words[k].terms.push(term);
        }
      }
    }
    return words;
  }

  const signed = (x) => `${x >= 0 ? "+" : "\u2212"}${Math.abs(x).toFixed(2)}`;

  // The review with its words highlighted by contribution: text nodes and <mark> elements only.
  // Positive and negative differ by more than colour: solid or dashed underline and a + or −
  // after the word, which CSS gives screen readers as "pushes positive" / "pushes negative".
  function renderReview(review, explanation) {
    view.review.replaceChildren();
    if (!explanation) {
      view.review.textContent = review;
      return;
    }
    const words = scoreWords(review, explanation.terms);
    const strongest = Math.max(0, ...words.map((w) => Math.abs(w.score)));
    let at = 0;
    for (const word of words) {
      const strength = strongest > 0 ? Math.abs(word.score) / strongest : 0;
      if (strength < 0.1) continue; // too slight to mark
      view.review.append(document.createTextNode(review.slice(at, word.start)));
      const mark = document.createElement("mark");
      mark.className = `contribution ${word.score > 0 ? "pushes-positive" : "pushes-negative"} ` +
        `strength-${strength >= 0.6 ? 3 : strength >= 0.3 ? 2 : 1}`;
      mark.textContent = review.slice(word.start, word.end);
      mark.title = `${signed(word.score)} (${word.terms.join(", ")})`;
      mark.dataset.contribution = word.score.toFixed(4);
      view.review.append(mark);
      at = word.end;
    }
    view.review.append(document.createTextNode(review.slice(at)));
  }

  function renderTerms(list, terms) {
    list.replaceChildren();
    for (const t of terms) {
      const item = document.createElement("li");
      const term = document.createElement("span");
      term.className = "term";
      term.textContent = t.term;
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = signed(t.contribution);
      item.append(term, document.createTextNode(" "), value);
      list.append(item);
    }
    list.closest(".terms").hidden = terms.length === 0;
  }

  function render(review, prediction) {
    const positive = prediction.label === "positive";
    const unsure = prediction.uncertain === true;
    const percent = Math.min(100, Math.max(0, prediction.probability_positive * 100));
    const shown = `${percent.toFixed(1)}%`;
    const side = positive ? "positive" : "negative";
    view.label.textContent = unsure ? `Leaning ${side}` : positive ? "Positive" : "Negative";
    view.label.className = `label ${side}${unsure ? " uncertain" : ""}`;
    view.unsure.hidden = !unsure;
    view.fill.style.width = shown; // CSSOM, which a strict style-src allows
    view.fill.className = `bar-fill ${side}${unsure ? " uncertain" : ""}`;
    view.bar.setAttribute("aria-valuenow", percent.toFixed(1));
    view.bar.setAttribute("aria-valuetext", `${shown} positive`);
    view.probability.textContent = `${shown} probability that the review is positive`;
    const explanation = prediction.explanation && Array.isArray(prediction.explanation.terms)
      ? prediction.explanation : null;
    renderReview(review, explanation);
    view.why.hidden = explanation === null;
    if (explanation) {
      const byMagnitude = [...explanation.terms].sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
      renderTerms(view.positiveTerms, byMagnitude.filter((t) => t.contribution > 0).slice(0, TOP_TERMS));
      renderTerms(view.negativeTerms, byMagnitude.filter((t) => t.contribution < 0).slice(0, TOP_TERMS));
    }
    view.version.textContent = String(prediction.model_version ?? "unknown");
    showError("");
    result.hidden = false;
  }

  async function onSubmit(event) {
    event.preventDefault();
    if (busy || apiUrl === null) return;
    const review = textarea.value;
    if (review.trim() === "") {
      showError("Please write a review first: the text box is empty.");
      textarea.focus();
      return;
    }
    setBusy(true);
    try {
      render(review, await predict(review));
    } catch (err) {
      showError(err.message);
    } finally {
      setBusy(false);
    }
  }

  form.addEventListener("submit", onSubmit);
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  samples.forEach((button) => {
    button.addEventListener("click", () => {
      textarea.value = button.dataset.review;
      form.requestSubmit();
    });
  });

  setBusy(false);
  loadConfig();
})();
