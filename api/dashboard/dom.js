// Small DOM helpers: build elements without innerHTML (so API text is never parsed as HTML),
// labelled form fields, plain error display.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let fieldCounter = 0;

// A labelled input/select/textarea with a slot for its validation message.
export function field(label, control, { name, hint } = {}) {
  const id = control.id || `f${++fieldCounter}`;
  control.id = id;
  if (name) control.name = name;
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  control.setAttribute("aria-describedby", `${id}-error`);
  return h(
    "div",
    { class: "field", dataset: { field: name || "" } },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint" }, hint) : null,
    error,
  );
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) { el.hidden = true; el.textContent = ""; }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const summary = form.querySelector(".form-error");
  if (summary) { summary.hidden = true; summary.textContent = ""; }
}

// Put each {field, message} of a 422 under the field it names (config.memory_mb → the field whose
// data-field is config.memory_mb, or its closest parent name); the rest goes in the form's summary.
export function showErrors(form, err) {
  clearErrors(form);
  const unplaced = [];
  for (const { field: name, message } of err.fields || []) {
    let target = null;
    for (let key = name; key && !target; key = key.includes(".") ? key.slice(0, key.lastIndexOf(".")) : "") {
      target = form.querySelector(`.field[data-field="${CSS.escape(key)}"]`);
    }
    if (!target) { unplaced.push(`${name}: ${message}`); continue; }
    const slot = target.querySelector(".field-error");
    slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    slot.hidden = false;
    const control = target.querySelector("input, select, textarea");
    if (control) control.setAttribute("aria-invalid", "true");
  }
  const summary = form.querySelector(".form-error");
  const text = unplaced.length ? unplaced.join("; ") : err.fields && err.fields.length ? "" : err.message;
  if (summary && text) { summary.textContent = text; summary.hidden = false; }
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
}

export function banner(message) {
  const el = document.getElementById("banner");
  el.textContent = message || "";
  el.hidden = !message;
}

export function age(timestamp) {
  if (!timestamp) return "";
  const seconds = Math.max(0, (Date.now() - new Date(timestamp).getTime()) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function readyCondition(agent) {
  return (agent.conditions || []).find((c) => c.type === "Ready") || null;
}

export function phaseBadge(status) {
  return h("span", { class: `phase phase-${status}` }, status);
}

// Run an action from a button: disable it meanwhile, show a failure plainly in the banner.
export async function act(button, fn) {
  button.disabled = true;
  try { banner(""); return await fn(); }
  catch (err) { banner(err.message || String(err)); return undefined; }
  finally { button.disabled = false; }
}
