// Building the page. Every piece of data reaches the page as a text node or an attribute
// value, never as markup: nothing here parses HTML, so a name like "<script>" stays text.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.setAttribute("class", value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** An HTML element: h("td", {class: "hash"}, text, ...). */
export function h(tag, props, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** An SVG element, the same way. */
export function s(tag, props, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

/** A labelled form control: the label's `for` names the control's id. */
export function field(labelText, control, hint) {
  return h("div", { class: "field" }, h("label", { for: control.id }, labelText), control,
    hint ? h("p", { class: "hint", id: `${control.id}-hint` }, hint) : null);
}

export function table(headers, rows, caption) {
  return h("table", {},
    caption ? h("caption", { class: "hint" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows));
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function percent(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)} %`;
}
