/*
 * The only way the console makes HTML elements: `h(tag, attrs, ...children)` with createElement, setAttribute and
 * text nodes. Tags and attribute names come from fixed allowlists (anything else throws: a programming error, not
 * input); children that are strings become text nodes, never markup. A link's href is a same-origin path or a hash
 * route: no scheme can reach an attribute. Nothing here (or anywhere in the console) uses innerHTML.
 */

export type AttrValue = string | number | boolean | null | undefined;
export type Attrs = Readonly<Record<string, AttrValue>>;
export type Child = Node | string | number | null | undefined | false | readonly Child[];

const TAGS = new Set([
  'a', 'article', 'button', 'caption', 'code', 'dd', 'details', 'div', 'dl', 'dt', 'em', 'fieldset', 'footer', 'form', 'h1', 'h2', 'h3',
  'header', 'input', 'label', 'legend', 'li', 'main', 'nav', 'ol', 'option', 'p', 'pre', 'progress', 'section', 'select',
  'small', 'span', 'strong', 'summary', 'table', 'tbody', 'td', 'textarea', 'tfoot', 'th', 'thead', 'time', 'tr', 'ul',
]);

const ATTRS = new Set([
  'class', 'id', 'href', 'download', 'title', 'role', 'type', 'name', 'value', 'placeholder', 'for', 'min', 'max',
  'step', 'required', 'disabled', 'checked', 'selected', 'readonly', 'autocomplete', 'spellcheck', 'maxlength',
  'rows', 'cols', 'colspan', 'scope', 'datetime', 'open', 'hidden', 'tabindex',
  'aria-label', 'aria-live', 'aria-current', 'aria-busy', 'aria-describedby',
]);

/** `data-*` hooks (the end-to-end test's `data-testid`, `data-decision-id`, ...): lower-case names only. */
const DATA_ATTR = /^data-[a-z][a-z0-9-]*$/;

/** A same-origin absolute path (not `//host`) or a hash route: the only hrefs the console makes. */
const SAFE_HREF = /^(#|\/(?!\/))/;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  if (!TAGS.has(tag)) throw new TypeError(`h: tag ${tag} is not on the allowlist`);
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el: Element, attrs: Attrs): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (!ATTRS.has(name) && !DATA_ATTR.test(name)) throw new TypeError(`h: attribute ${name} is not on the allowlist`);
    if (value === undefined || value === null || value === false) continue;
    const text = value === true ? '' : String(value);
    if (name === 'href' && !SAFE_HREF.test(text)) throw new TypeError('h: href must be a same-origin path or a hash route');
    el.setAttribute(name, text);
  }
}

/** Appends children: nodes as they are, strings and numbers as text, arrays flattened, empty values skipped. */
export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child as readonly Child[]);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces every child of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

/** Adds a listener and returns the element (so `on(h('button', ...), 'click', fn)` reads as one expression). */
export function on<E extends HTMLElement, K extends keyof HTMLElementEventMap>(el: E, type: K, listener: (event: HTMLElementEventMap[K]) => void): E {
  el.addEventListener(type, listener);
  return el;
}

/** A hash route link: `#/decision/<id>` with each path segment encoded, and the query (if any) from URLSearchParams. */
export function routeHref(path: readonly string[], query?: URLSearchParams): string {
  const q = query === undefined ? '' : query.toString();
  return `#/${path.map(encodeURIComponent).join('/')}${q === '' ? '' : `?${q}`}`;
}

/** Pretty JSON as text in a <pre> (textContent: a value is never markup). */
export function jsonBlock(value: unknown, testid?: string): HTMLPreElement {
  return h('pre', { class: 'json', 'data-testid': testid }, JSON.stringify(value, null, 2) ?? 'undefined');
}
