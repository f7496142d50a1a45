// Building DOM nodes. Text always enters the page as text nodes (never as markup), so
// nothing a model or the server says can become HTML here.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An element with attributes, event listeners (`onclick`…) and children (nodes or text). */
export function h(tag, attributes = {}, ...children) {
  return fill(document.createElement(tag), attributes, children);
}

/** The same for SVG elements. */
export function svg(tag, attributes = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attributes, children);
}

function fill(node, attributes, children) {
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.setAttribute("class", value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key === "style") {
      throw new Error("inline styles are refused by the page's Content-Security-Policy; use a class");
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  appendChildren(node, children);
  return node;
}

/** Appends nodes and strings (as text); skips null, undefined and false. */
export function appendChildren(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replaces all children of `node`. */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  return appendChildren(node, children);
}

/**
 * Runs a re-render and puts keyboard focus back on the control with the same `data-focus-key`,
 * so redrawing a list every few seconds never throws a keyboard user back to the page start.
 */
export function preservingFocus(update) {
  const key = document.activeElement?.dataset?.focusKey;
  update();
  if (key && document.activeElement?.dataset?.focusKey !== key) {
    document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus({ preventScroll: true });
  }
}

/** "3 s", "2 min 5 s": short durations in plain words. */
export function formatSeconds(seconds) {
  const whole = Math.max(0, Math.ceil(seconds));
  if (whole < 60) return `${whole} s`;
  const minutes = Math.floor(whole / 60);
  const rest = whole % 60;
  return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
}
