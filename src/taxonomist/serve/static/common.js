// What every page shares: the header with its navigation and project picker, calls to the API with its
// problem+json errors shown on the page, and a few DOM helpers. No framework, no build step.

const PAGES = [
  ["classify", "./", "Classify"],
  ["review", "review.html", "Review queue"],
  ["labels", "labels.html", "Labels"],
  ["info", "info.html", "Project"],
];
const PROJECT_KEY = "taxonomist.project";

/** An element: el("a", {href: "x", class: "y"}, "text", child). Text is always text, never HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An API error: the problem's detail (what was wrong, as the server said it) and its status. */
export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `the server answered ${status}`);
    this.status = status;
    this.title = title;
  }
}

/** JSON from the API; a problem+json answer (or no answer) becomes an ApiError with the server's words. */
export async function api(path, { method = "GET", body } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, "No answer", "the server does not answer: is `taxonomist serve` still running?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (error) {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, data && data.title, (data && data.detail) || text.slice(0, 300));
  }
  return data;
}

/** The path of a project's API, with each part escaped. */
export function projectPath(project, ...parts) {
  return ["/api/projects", project, ...parts].map((part, i) => (i ? encodeURIComponent(part) : part)).join("/");
}

/** A message above the page (role=alert, so screen readers say it); errors in red. Cleared by clearMessage. */
export function showMessage(text, kind = "error") {
  const box = document.getElementById("message");
  box.className = `message ${kind}`;
  box.replaceChildren(el("span", {}, text),
    el("button", { type: "button", class: "link", "aria-label": "Dismiss message", onclick: clearMessage }, "×"));
  box.hidden = false;
}

export function showError(error) {
  const what = error instanceof ApiError ? error.message : `Something went wrong in this page: ${error.message}`;
  showMessage(what, "error");
}

export function clearMessage() {
  const box = document.getElementById("message");
  box.hidden = true;
  box.replaceChildren();
}

/** "food › fruit › banana": a label's ancestors and its name. */
export function pathText(path, name) {
  return [...path.map((step) => step.name), name].join(" › ");
}

/** A bar for a value in [0, 1] with its number beside it (a meter for assistive technology). */
export function bar(value, what) {
  const clipped = Math.max(0, Math.min(1, value));
  const fill = el("span", { class: "fill" });
  fill.style.width = `${(clipped * 100).toFixed(1)}%`;
  return el("span", { class: `bar ${what}` }, el("span", { class: "what" }, what),
    el("span", { class: "track", role: "meter", "aria-valuemin": 0, "aria-valuemax": 1,
                 "aria-valuenow": clipped.toFixed(3), "aria-label": what }, fill),
    el("span", { class: "number" }, value.toFixed(3)));
}

/** The current project from ?project=, the last one used, or the first served. */
function choose(projects) {
  const ids = projects.map((p) => p.project_id);
  const asked = new URLSearchParams(location.search).get("project");
  if (asked && ids.includes(asked)) return asked;
  const last = localStorage.getItem(PROJECT_KEY);
  return last && ids.includes(last) ? last : ids[0];
}

/** The header for `page`; resolves to {project, projects, store} once the server said what it serves. */
export async function start(page) {
  const header = document.getElementById("top");
  const nav = el("nav", { "aria-label": "Pages" });
  header.replaceChildren(el("span", { class: "brand" }, "taxonomist"), nav,
    el("span", { id: "picker", class: "picker" }));
  let served;
  try {
    served = await api("/api/projects");
  } catch (error) {
    showError(error);
    throw error;
  }
  const project = choose(served.projects);
  localStorage.setItem(PROJECT_KEY, project);
  for (const [id, href, text] of PAGES) {
    nav.append(el("a", { href: `${href}?project=${encodeURIComponent(project)}`,
                         "aria-current": id === page ? "page" : null }, text));
  }
  const picker = document.getElementById("picker");
  if (served.projects.length > 1) {
    const select = el("select", { id: "project", "aria-label": "Project" },
      served.projects.map((p) => el("option", { value: p.project_id, selected: p.project_id === project },
                                    p.name === p.project_id ? p.name : `${p.name} (${p.project_id})`)));
    select.addEventListener("change", () => {
      const url = new URL(location.href);
      url.searchParams.set("project", select.value);
      location.assign(url);
    });
    picker.append(el("label", { for: "project" }, "Project "), select);
  } else {
    picker.append("Project: ", el("strong", {}, project));
  }
  return { project, projects: served.projects, store: served.store };
}
