/**
 * Small DOM helpers shared by the renderers and the sidebar (no framework: the views are
 * plain elements with the class names the browser tests rely on, see PROTOCOL.md).
 */

type Child = Node | string | null | undefined | false;

/** Create an element with classes, attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { class?: string; title?: string; [attr: string]: string | undefined } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined) {
      continue;
    }
    if (name === 'class') {
      element.className = value;
    } else {
      element.setAttribute(name, value);
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    element.append(child);
  }
  return element;
}

/** Replace every child of `host` with `children`. */
export function replaceChildren(host: HTMLElement, ...children: Child[]): void {
  while (host.firstChild) {
    host.removeChild(host.firstChild);
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      host.append(child);
    }
  }
}

/**
 * A clear, visible message in place of a view: what went wrong and what to do.
 *
 * `problems` (for example schema violations) are listed under the message.
 */
export function errorBox(title: string, message: string, problems: string[] = []): HTMLElement {
  return h(
    'div',
    { class: 'allframe-error', role: 'alert' },
    h('strong', {}, title),
    h('p', {}, message),
    problems.length ? h('ul', {}, ...problems.map(p => h('li', {}, p))) : null
  );
}

const PALETTE = [
  '#4c78a8',
  '#f58518',
  '#54a24b',
  '#b279a2',
  '#e45756',
  '#72b7b2',
  '#eeca3b',
  '#9d755d',
  '#ff9da6',
  '#bab0ac'
];

/** A stable categorical colour for a name (same event type, same colour, in every view). */
export function colourFor(name: string): string {
  let hash = 0;
  for (let i = 0; i < name.length; i++) {
    hash = (hash * 31 + name.charCodeAt(i)) | 0;
  }
  return PALETTE[Math.abs(hash) % PALETTE.length];
}

/** Pretty JSON for a payload pane. */
export function prettyJSON(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}
