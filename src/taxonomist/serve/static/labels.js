// Label browser: the hierarchy as a tree opened one level at a time (children fetched by parent), and search.
import { api, clearMessage, el, projectPath, showError, start } from "./common.js";

const $ = (id) => document.getElementById(id);
const LIMIT = 1000; // the server clamps to its own maximum; `total` says how many there are
let project = null;

/** A label's name, id, notation and count of children on one line, then its description and aliases. */
function describe(label, count = false) {
  return [el("span", { class: "name" }, label.name), " ", el("code", {}, label.id),
    label.notation ? el("span", { class: "under" }, ` ${label.notation}`) : null,
    count && label.children ? el("span", { class: "under" }, ` (${label.children} under it)`) : null,
    label.assignable ? null : el("span", { class: "badge" }, "not assignable"),
    label.description ? el("div", { class: "help" }, label.description) : null,
    label.aliases.length ? el("div", { class: "help" }, `also: ${label.aliases.join(", ")}`) : null]
    .filter((part) => part !== null);
}

/** [] or the line that says how many labels are not shown. */
function more(shown, total) {
  return total > shown ? [el("li", { class: "help" }, `${total - shown} more not shown: search to find them`)] : [];
}

async function children(parent) {
  const query = parent ? `?parent=${encodeURIComponent(parent)}&limit=${LIMIT}` : `?limit=${LIMIT}`;
  return api(`${projectPath(project, "labels")}${query}`);
}

function node(label) {
  const item = el("li", { "data-label": label.id });
  if (!label.children) {
    item.append(el("span", { class: "leaf", "aria-hidden": "true" }, "•"), " ", ...describe(label));
    return item;
  }
  const sub = el("ul", { hidden: true });
  const toggle = el("button", { type: "button", class: "toggle", "aria-expanded": "false",
                                "aria-label": `Show the ${label.children} labels under ${label.name}` }, "▸");
  toggle.addEventListener("click", async () => {
    const open = toggle.getAttribute("aria-expanded") === "true";
    if (!open && !sub.childElementCount) {
      try {
        const found = await children(label.id);
        sub.append(...found.labels.map(node), ...more(found.labels.length, found.total));
      } catch (error) {
        return showError(error);
      }
    }
    toggle.setAttribute("aria-expanded", String(!open));
    toggle.textContent = open ? "▸" : "▾";
    sub.hidden = open;
  });
  item.append(toggle, " ", ...describe(label, true), sub);
  return item;
}

async function search() {
  const q = $("search").value.trim();
  $("found-section").hidden = !q;
  if (!q) return;
  const found = await api(`${projectPath(project, "labels")}?q=${encodeURIComponent(q)}&limit=50`);
  $("found-title").textContent = `Found ${found.total} label${found.total === 1 ? "" : "s"} for “${q}”`;
  $("found").replaceChildren(...found.labels.map((label) => el("li", {}, ...describe(label),
    label.parents.length ? el("div", { class: "help" }, `under ${label.parents.join(", ")}`) : null)),
    ...more(found.labels.length, found.total));
  if (!found.total) $("found").append(el("li", { class: "empty" }, "No label's id, name or alias holds that text."));
}

async function main() {
  project = (await start("labels")).project;
  const roots = await children(null);
  $("tree-count").textContent = `${roots.total} label${roots.total === 1 ? "" : "s"} at the top level.`;
  $("tree").replaceChildren(...roots.labels.map(node));
  if (!roots.total) $("tree").append(el("li", { class: "empty" }, "This project has no labels."));
  let timer = null;
  $("search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => search().then(clearMessage).catch(showError), 150);
  });
}

main().catch((error) => showError(error));
