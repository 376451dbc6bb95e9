// Project info: the model behind the project (labels, encoder, examples, calibration, checksum) and, with a
// feedback store, how far review has come.
import { api, el, projectPath, showError, showMessage, start } from "./common.js";

const $ = (id) => document.getElementById(id);
const NAMES = {
  name: "Name", project_id: "Project id", labels: "Labels", encoder: "Encoder", is_trained: "Trained on examples",
  documents: "Training documents", labels_with_examples: "Labels with examples", scorers: "Scorers",
  fusion: "Fusion", calibration: "Calibration", held_out_documents: "Held-out documents",
  held_out: "On held-out documents",
  annif_score: "Score on Annif's API", checksum: "Model checksum", model_dir: "Model folder",
  language: "Language", modification_time: "Model written", contexts: "Contexts", rejections: "Rejections kept",
  allow_learning: "Changes allowed (learn, new labels)",
};
const HELP = {
  calibration: "none: scores are not probabilities (calibrate the model to get them)",
  checksum: "none: a zero-shot model that is not saved",
  held_out: "none: no documents were held out (a zero-shot model, or too few examples)",
};

function value(key, v) {
  if (v === null || v === undefined || v === "") return HELP[key] || "none";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return v.length ? v.join(", ") : "none";
  if (typeof v === "number") return v.toLocaleString("en");
  if (key === "held_out") {
    const { documents, ...metrics } = v;
    return Object.entries(metrics).map(([name, x]) => `${name} ${x.toFixed(1)}%`).join(" · ") +
      ` (${documents.toLocaleString("en")} documents)`;
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function list(target, data, names) {
  target.replaceChildren(...Object.entries(data).flatMap(([key, v]) => [
    el("dt", {}, names[key] || key.replaceAll("_", " ")),
    el("dd", { "data-key": key }, key === "checksum" && v ? el("code", {}, v) : value(key, v))]));
}

async function render(project, store) {
  const info = await api(projectPath(project));
  $("title").textContent = `Project ${info.name}`;
  list($("info"), info, NAMES);
  if (!store) return;
  const progress = await api(projectPath(project, "review", "progress"));
  $("review-section").hidden = false;
  list($("review"), progress, { documents: "Documents in the store", reviewed: "Reviewed", remaining: "Waiting",
                                accepted: "Accepted", rejected: "Rejected", added: "Added",
                                feedback_rows: "Feedback rows (undos included)" });
}

async function main() {
  const { project, store } = await start("info");
  await render(project, store);
  $("reload").addEventListener("click", async () => {
    try {
      await api(projectPath(project, "reload"), { method: "POST" });
      await render(project, store);
      showMessage("Reloaded.", "info");
    } catch (error) {
      showError(error);
    }
  });
}

main().catch((error) => showError(error));
