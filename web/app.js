// The page's only script: reads config.json, posts reviews to the API, shows the verdict.
// Everything the API or the user supplies is written with textContent, never as HTML,
// so a review such as <img src=x onerror=...> is shown as the text it is.
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
  };

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

  // POST one review; resolve to its prediction or reject with a message fit for the page.
  async function predict(review) {
    let response;
    try {
      response = await fetch(`${apiUrl}/predict`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ review }),
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
      if (body && typeof body.message === "string" && body.message) throw new Error(body.message);
      throw new Error(`The API answered HTTP ${response.status} ${response.statusText}`.trim() + ".");
    }
    const prediction = body && Array.isArray(body.predictions) ? body.predictions[0] : undefined;
    if (!prediction || typeof prediction.probability_positive !== "number") {
      throw new Error("The API answered with a body this page does not understand.");
    }
    return prediction;
  }

  function render(review, prediction) {
    const positive = prediction.label === "positive";
    const percent = Math.min(100, Math.max(0, prediction.probability_positive * 100));
    const shown = `${percent.toFixed(1)}%`;
    view.label.textContent = positive ? "Positive" : "Negative";
    view.label.className = `label ${positive ? "positive" : "negative"}`;
    view.fill.style.width = shown; // CSSOM, which a strict style-src allows
    view.fill.className = `bar-fill ${positive ? "positive" : "negative"}`;
    view.bar.setAttribute("aria-valuenow", percent.toFixed(1));
    view.bar.setAttribute("aria-valuetext", `${shown} positive`);
    view.probability.textContent = `${shown} probability that the review is positive`;
    view.review.textContent = review;
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
