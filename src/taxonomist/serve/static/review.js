// Review queue: one document at a time with its suggestions; the keyboard moves between suggestions (j/k or the
// arrows), accepts (a), rejects (x), undoes (u) and goes on (n). Each verdict is a feedback row in the server's
// store, named with the reviewer's name (kept in localStorage).
import { ApiError, api, bar, clearMessage, el, pathText, projectPath, showError, showMessage, start }
  from "./common.js";
import { typeahead } from "./typeahead.js";

const $ = (id) => document.getElementById(id);
const REVIEWER_KEY = "taxonomist.reviewer";
const WORDS = { accept: "accepted", reject: "rejected", add: "added" };
const state = {
  project: null,
  items: [], // the page of the queue being worked through
  index: 0,
  rows: [], // the current document's rows: {id, name, path, score, probability, verdict, feedback}
  selected: 0,
  skipped: new Set(), // documents passed over without a verdict in this visit
  undo: [], // verdicts given in this visit, last on top: {feedback, document, label, name, verdict}
};

function say(text) {
  $("status").textContent = text;
}

function reviewer() {
  const name = $("reviewer").value.trim();
  if (!name) {
    showMessage("Type your name in “Your name” first: each verdict is recorded with it.");
    $("reviewer").focus();
  }
  return name;
}

async function refreshProgress(progress) {
  const p = progress || await api(projectPath(state.project, "review", "progress"));
  $("progress").max = Math.max(1, p.documents);
  $("progress").value = p.reviewed;
  $("progress-text").textContent = `${p.reviewed} of ${p.documents} documents reviewed ` +
    `(${p.accepted} accepted, ${p.rejected} rejected, ${p.added} added)`;
}

function renderRows() {
  const list = $("review-suggestions");
  list.replaceChildren(...state.rows.map((row, i) => el("li", {
    class: `suggestion${i === state.selected ? " selected" : ""}${row.verdict ? ` ${row.verdict}` : ""}`,
    tabindex: -1, "data-label": row.id, "aria-current": i === state.selected ? "true" : null,
    onclick: () => select(i),
  },
  el("div", { class: "title" }, el("strong", {}, row.name), " ", el("code", {}, row.id),
    row.verdict ? el("span", { class: `badge ${row.verdict}` }, WORDS[row.verdict]) : null),
  el("div", { class: "path", "aria-label": "hierarchy path" }, pathText(row.path, row.name)),
  row.score === null ? null : el("div", { class: "bars" }, bar(row.score, "score"),
    row.probability === null ? null : bar(row.probability, "probability")),
  row.verdict === "add" ? null : el("div", { class: "actions" },
    el("button", { type: "button", "aria-label": `Accept ${row.name}`, onclick: () => give("accept", i) }, "Accept (a)"),
    el("button", { type: "button", "aria-label": `Reject ${row.name}`, onclick: () => give("reject", i) }, "Reject (x)")))));
  if (!state.rows.length) list.append(el("li", { class: "empty" }, "The model suggests nothing here: add a label below."));
}

function select(i, focus = true) {
  if (!state.rows.length) return;
  state.selected = Math.max(0, Math.min(state.rows.length - 1, i));
  renderRows();
  if (focus) $("review-suggestions").children[state.selected].focus();
}

function show(item) {
  clearMessage();
  $("current").hidden = false;
  $("empty").hidden = true;
  $("doc-title").textContent = `Document ${item.document}${item.ref ? ` (${item.ref})` : ""}`;
  $("doc-text").textContent = item.text;
  state.rows = item.suggestions.map((s) => ({ id: s.id, name: s.name, path: s.path, score: s.score,
                                              probability: s.probability, verdict: null, feedback: null }));
  state.selected = 0;
  renderRows();
  say(`Uncertainty ${item.uncertainty.toFixed(2)}: 1 means the model could not tell its best two labels apart.`);
}

function empty(title, text, canAgain = false) {
  $("current").hidden = true;
  $("empty").hidden = false;
  $("empty-title").textContent = title;
  $("empty-text").textContent = text;
  $("again").hidden = !canAgain;
}

async function load() {
  let page;
  try {
    page = await api(`${projectPath(state.project, "review")}?n=10`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && error.title === "No feedback store") {
      $("submit-box").hidden = true;
      return empty("No feedback store", error.message);
    }
    throw error;
  }
  await refreshProgress(page.progress);
  state.items = page.items.filter((item) => !state.skipped.has(item.document));
  state.index = 0;
  if (state.items.length) return show(state.items[0]);
  if (page.items.length) {
    return empty("Only skipped documents are left",
      `You passed over ${state.skipped.size} document(s) without a verdict; they are still in the queue.`, true);
  }
  empty("Nothing to review", "Every document has a verdict. Documents join the queue when a text is " +
    "classified on the Classify page, or when you add them below.");
}

async function give(verdict, i = state.selected, label = null) {
  const item = state.items[state.index];
  const who = reviewer();
  if (!item || !who) return;
  const row = label ? null : state.rows[i];
  const id = label ? label.id : row && row.id;
  if (!id) return;
  const answer = await api(projectPath(state.project, "feedback"),
    { method: "POST", body: { document: item.document, label: id, verdict, who } });
  const name = label ? label.name : row.name;
  state.undo.push({ feedback: answer.id, document: item.document, label: id, name, verdict });
  if (label) {
    const known = state.rows.findIndex((r) => r.id === id);
    if (known >= 0) state.rows[known].verdict = "add";
    else state.rows.push({ id, name, path: [], score: null, probability: null, verdict: "add", feedback: answer.id });
  } else {
    row.verdict = verdict;
  }
  clearMessage();
  renderRows();
  say(`${name}: ${WORDS[verdict]}. Press u to undo.`);
  await refreshProgress();
}

async function undo() {
  const last = state.undo.pop();
  if (!last) return say("Nothing to undo in this visit.");
  const who = reviewer();
  if (!who) return state.undo.push(last);
  await api(projectPath(state.project, "feedback", String(last.feedback), "undo"), { method: "POST", body: { who } });
  const item = state.items[state.index];
  if (item && item.document === last.document) {
    const before = [...state.undo].reverse().find((u) => u.document === last.document && u.label === last.label);
    const at = state.rows.findIndex((r) => r.id === last.label);
    if (at >= 0) state.rows[at].verdict = before ? before.verdict : null;
    if (at >= 0 && !before && last.verdict === "add" && state.rows[at].score === null) state.rows.splice(at, 1);
    renderRows();
  }
  say(`Undone: ${last.name} ${WORDS[last.verdict]} on document ${last.document}.`);
  await refreshProgress();
}

async function next() {
  const item = state.items[state.index];
  if (item && !state.rows.some((r) => r.verdict)) state.skipped.add(item.document);
  state.index += 1;
  if (state.index < state.items.length) return show(state.items[state.index]);
  await load();
}

const KEYS = {
  j: () => select(state.selected + 1), ArrowDown: () => select(state.selected + 1),
  k: () => select(state.selected - 1), ArrowUp: () => select(state.selected - 1),
  a: () => give("accept"), x: () => give("reject"), u: () => undo(), n: () => next(),
  "/": () => $("add-label").focus(),
};

function onKey(event) {
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) {
    if (event.key === "Escape") target.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey || !KEYS[event.key] || $("current").hidden) return;
  event.preventDefault();
  Promise.resolve(KEYS[event.key]()).catch(showError);
}

async function submit(event) {
  event.preventDefault();
  const texts = $("submit-text").value.split("\n").map((t) => t.trim()).filter(Boolean);
  if (!texts.length) return showMessage("Type or paste at least one text, one document per line.");
  const answer = await api(projectPath(state.project, "documents"),
    { method: "POST", body: { documents: texts.map((text) => ({ text })) } });
  $("submit-text").value = "";
  showMessage(`Added ${answer.documents.length} document(s) to the queue.`, "info");
  if ($("current").hidden) await load();
  else await refreshProgress();
}

async function main() {
  state.project = (await start("review")).project;
  $("reviewer").value = localStorage.getItem(REVIEWER_KEY) || "";
  $("reviewer").addEventListener("input", () => localStorage.setItem(REVIEWER_KEY, $("reviewer").value.trim()));
  typeahead($("add-label"), { project: state.project,
                              onPick: (label) => give("add", null, label).catch(showError) });
  $("undo").addEventListener("click", () => undo().catch(showError));
  $("next").addEventListener("click", () => next().catch(showError));
  $("again").addEventListener("click", () => { state.skipped.clear(); load().catch(showError); });
  $("submit").addEventListener("submit", (event) => submit(event).catch(showError));
  document.addEventListener("keydown", onKey);
  await load();
}

main().catch((error) => showError(error));
