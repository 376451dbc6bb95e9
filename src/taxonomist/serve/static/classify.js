// Classify page: a text (pasted or from a file) → suggestions with score and probability bars, the hierarchy
// path of each, and the name and alias mentions that explain them highlighted in the text.
import { api, bar, clearMessage, el, pathText, projectPath, showError, showMessage, start } from "./common.js";
import { typeahead } from "./typeahead.js";

const $ = (id) => document.getElementById(id);
const branches = new Map(); // label id → name

/** The text split at every mention's edges; each piece knows which labels' evidence covers it. */
function highlighted(text, suggestions) {
  const spans = [];
  for (const s of suggestions) {
    for (const m of (s.evidence && s.evidence.mentions) || []) spans.push({ start: m.start, end: m.end, id: s.id });
  }
  const cuts = [...new Set([0, text.length, ...spans.flatMap((s) => [s.start, s.end])])]
    .filter((c) => c >= 0 && c <= text.length).sort((a, b) => a - b);
  const pieces = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [from, to] = [cuts[i], cuts[i + 1]];
    const ids = spans.filter((s) => s.start <= from && s.end >= to).map((s) => s.id);
    const part = text.slice(from, to);
    pieces.push(ids.length ? el("mark", { "data-labels": ids.join(" "), title: `evidence for ${ids.join(", ")}` }, part)
                           : part);
  }
  return pieces;
}

function focusLabel(id) {
  for (const mark of document.querySelectorAll("#evidence mark")) {
    mark.classList.toggle("active", id !== null && mark.dataset.labels.split(" ").includes(id));
  }
}

function render(answer, text) {
  const result = answer.results[0];
  const list = $("suggestions");
  list.replaceChildren();
  $("results").hidden = false;
  $("results-help").textContent = answer.calibrated
    ? "Bars: the model's score and its calibrated probability that the label is right."
    : `Bars: the model's score (${answer.score}); this model is not calibrated, so there are no probabilities.`;
  if (!result.suggestions.length) {
    list.append(el("li", { class: "empty" }, "No label fits this text above zero (or none under the branches chosen)."));
  }
  for (const s of result.suggestions) {
    const mentions = (s.evidence && s.evidence.mentions.length) || 0;
    const item = el("li", { class: "suggestion", tabindex: 0, "data-label": s.id,
                            onmouseenter: () => focusLabel(s.id), onfocus: () => focusLabel(s.id),
                            onmouseleave: () => focusLabel(null), onblur: () => focusLabel(null) },
      el("div", { class: "title" }, el("strong", {}, s.name), " ", el("code", {}, s.id)),
      el("div", { class: "path", "aria-label": "hierarchy path" }, pathText(s.path, s.name)),
      el("div", { class: "bars" }, bar(s.score, "score"),
        s.probability === null ? null : bar(s.probability, "probability")),
      el("div", { class: "why" }, mentions ? `${mentions} mention${mentions > 1 ? "s" : ""} in the text`
                                           : "no mention of its name in the text"),
      reasons(s.evidence));
    list.append(item);
  }
  $("evidence").replaceChildren(...highlighted(text, result.suggestions));
}

const SHOWN_EXAMPLES = 5;
const number = (value) => (value === null || value === undefined ? "–" : value.toFixed(2));

/** What else made the model suggest a label: the child that lifted it, each scorer's part, the training
 * documents nearest the text that carry it. Folded away: most readers want the list first. */
function reasons(evidence) {
  if (!evidence) return null;
  const items = [];
  if (evidence.lifted_by) {
    const lift = evidence.lifted_by;
    items.push(el("li", {}, `Lifted by its narrower label ${lift.name} (${number(lift.child_similarity)}, its own `
                            + `${number(lift.own_similarity)})`));
  }
  if (evidence.scores) {
    const shares = evidence.contributions || {};
    const parts = Object.entries(evidence.scores).map(([name, score]) => {
      const share = shares[name] === undefined || shares[name] === null ? "" : ` (${shares[name] >= 0 ? "+" : ""}${number(shares[name])})`;
      return `${name.replaceAll("_", " ")} ${number(score)}${share}`;
    });
    items.push(el("li", { class: "scorers" }, "Scorers: ", parts.join(" · "),
                  evidence.contributions ? " — in brackets, each one's share of the log-odds" : ""));
  }
  const examples = evidence.nearest_examples || [];
  if (examples.length) {
    items.push(el("li", {}, "Nearest training documents with this label:",
      el("ol", { class: "examples" }, examples.slice(0, SHOWN_EXAMPLES).map((e) => el("li", {},
        el("code", {}, e.id === null ? `row ${e.row}` : e.id), ` ${number(e.similarity)} `,
        e.text === null ? null : el("q", {}, e.text)))),
      examples.length > SHOWN_EXAMPLES ? `and ${examples.length - SHOWN_EXAMPLES} more (in the API's answer)` : null));
  }
  return items.length ? el("details", { class: "reasons" }, el("summary", {}, "Why"), el("ul", {}, items)) : null;
}

function renderBranches() {
  $("branches").replaceChildren(...[...branches].map(([id, name]) => el("li", {},
    el("button", { type: "button", class: "chip", "aria-label": `Remove branch ${name}`,
                   onclick: () => { branches.delete(id); renderBranches(); } }, `${name} ×`))));
}

async function main() {
  const { project } = await start("classify");
  typeahead($("branch"), { project, onPick: (label) => { branches.set(label.id, label.name); renderBranches(); } });
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (!file) return;
    if (file.size > 5_000_000) return showMessage(`${file.name} is ${(file.size / 1e6).toFixed(1)} MB; open a text under 5 MB.`);
    $("text").value = await file.text();
  });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("classify").requestSubmit();
  });
  $("classify").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("text").value;
    if (!text.trim()) return showMessage("Paste a text (or open a file) first.");
    const k = Number($("k").value) || 10;
    const button = $("suggest");
    button.disabled = true;
    button.textContent = "Suggesting…";
    try {
      const answer = await api(projectPath(project, "suggest"),
        { method: "POST", body: { text, k, explain: true, include_under: [...branches.keys()] } });
      clearMessage();
      render(answer, text);
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
      button.textContent = "Suggest labels";
    }
  });
}

main().catch((error) => showError(error));
