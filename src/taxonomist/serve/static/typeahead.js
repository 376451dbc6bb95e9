// Label type-ahead over the labels API: an ARIA combobox whose list shows the labels whose id, name or alias
// holds what was typed. Arrow keys move, Enter picks, Escape closes; a click picks too.
import { api, el, projectPath, showError } from "./common.js";

let lists = 0;

/** Makes `input` a label type-ahead for `project`; `onPick(label)` gets the label chosen. */
export function typeahead(input, { project, onPick, limit = 8 }) {
  const list = el("ul", { id: `typeahead-${++lists}`, class: "typeahead", role: "listbox", hidden: true,
                          "aria-label": "Matching labels" });
  input.after(list);
  input.parentElement.classList.add("typeahead-host");
  Object.entries({ role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
                   "aria-controls": list.id, autocomplete: "off", spellcheck: "false" })
    .forEach(([name, value]) => input.setAttribute(name, value));
  let options = [];
  let active = -1;
  let asked = 0;
  let timer = null;

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(i) {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute("aria-selected", String(j === i)));
    if (i >= 0) {
      input.setAttribute("aria-activedescendant", list.children[i].id);
      list.children[i].scrollIntoView({ block: "nearest" });
    }
  }

  function pick(i) {
    const label = options[i];
    if (!label) return;
    close();
    input.value = "";
    onPick(label);
  }

  function show(labels, total, query) {
    options = labels;
    list.replaceChildren(...labels.map((label, i) => el("li", {
      id: `${list.id}-${i}`, role: "option", "aria-selected": "false",
      onmousedown: (event) => { event.preventDefault(); pick(i); },
    }, el("span", { class: "name" }, label.name), " ", el("code", {}, label.id),
      label.parents.length ? el("span", { class: "under" }, ` under ${label.parents.join(", ")}`) : null)));
    if (!labels.length) list.append(el("li", { class: "none", "aria-disabled": "true" }, `No label matches “${query}”`));
    else if (total > labels.length) list.append(el("li", { class: "none", "aria-disabled": "true" },
      `${total - labels.length} more: type more to narrow`));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    highlight(labels.length ? 0 : -1);
  }

  async function search() {
    const query = input.value.trim();
    const mine = ++asked;
    if (!query) return close();
    try {
      const found = await api(`${projectPath(project, "labels")}?q=${encodeURIComponent(query)}&limit=${limit}`);
      if (mine === asked) show(found.labels, found.total, query);
    } catch (error) {
      showError(error);
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 120);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (list.hidden || !options.length) return;
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + options.length) % options.length);
    } else if (event.key === "Enter") {
      if (!list.hidden && active >= 0) {
        event.preventDefault();
        pick(active);
      }
    } else if (event.key === "Escape") {
      close();
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
}
