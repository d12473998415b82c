/**
 * The model sidebar view: the active notebook kernel's models and stores.
 *
 * Pure view: `SidebarPanel.show*` methods draw a state; the plugin decides when to ask the
 * kernel. DOM hooks (PROTOCOL.md): `#allframe-sidebar`, `.allframe-sidebar-model`,
 * `.allframe-sidebar-store`, `.allframe-sidebar-stream[data-stream-id]`.
 */
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { errorBox, h, replaceChildren } from '../dom';

/** One model entry of allframe.sidebar v1. */
export interface ISidebarModel {
  variable: string;
  name: string;
  events?: string[];
  commands?: string[];
  aggregates?: string[];
  projections?: string[];
  sagas?: string[];
}

/** One store entry of allframe.sidebar v1. */
export interface ISidebarStore {
  key: string;
  label: string;
  events?: number;
  streams?: number;
  types?: number;
  head_position?: number;
  first_occurred?: string | null;
  last_occurred?: string | null;
  stream_list?: { stream_id: string; version: number }[];
}

/** The allframe.sidebar v1 payload. */
export interface ISidebarState {
  schema: 'allframe.sidebar';
  version: 1;
  models: ISidebarModel[];
  stores: ISidebarStore[];
}

const SIDEBAR_VERSION = 1;
const ELEMENT_KINDS: (keyof ISidebarModel)[] = ['events', 'commands', 'aggregates', 'projections', 'sagas'];

/** `2024-03-01T09:00:00.123456+00:00` -> `2024-03-01 09:00:00+00:00` (full value on hover). */
function shortTime(iso: string | null | undefined): string | null {
  return iso ? iso.replace('T', ' ').replace(/\.\d+/, '') : null;
}

/** The left-area panel with id `allframe-sidebar`. */
export class SidebarPanel extends Widget {
  constructor(private readonly _openStream: (storeKey: string, streamId: string) => void) {
    super();
    this.id = 'allframe-sidebar';
    this.addClass('allframe-sidebar');
    this.title.caption = 'allframe-lab: models and stores of the kernel';
    this._context = h('div', { class: 'allframe-sidebar-context allframe-muted' });
    this._refresh = h('button', { class: 'allframe-sidebar-refresh', type: 'button', title: 'Ask the kernel again' }, 'Refresh');
    this._status = h('div', { class: 'allframe-sidebar-status allframe-muted' });
    this._content = h('div', { class: 'allframe-sidebar-content' });
    this.node.append(
      h('div', { class: 'allframe-sidebar-header' }, h('strong', {}, 'allframe-lab'), this._refresh),
      this._context,
      this._status,
      this._content
    );
  }

  /** Called when the user presses Refresh. */
  set onRefresh(callback: () => void) {
    this._refresh.onclick = callback;
  }

  /** Called when the panel becomes visible (the plugin refreshes if it is stale). */
  onShown: (() => void) | null = null;

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.onShown?.();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.onShown?.();
  }

  /** Name the notebook (and kernel) the panel describes. */
  setContext(text: string): void {
    this._context.textContent = text;
  }

  /** A one-line status (waiting, refreshing, last refresh time). */
  setStatus(text: string): void {
    this._status.textContent = text;
  }

  /** Replace the content with a message (no notebook, kernel starting, ...). */
  showMessage(text: string): void {
    replaceChildren(this._content, h('p', { class: 'allframe-sidebar-message' }, text));
  }

  /** Replace the content with an error box. */
  showError(title: string, message: string): void {
    replaceChildren(this._content, errorBox(title, message));
  }

  /** Draw a sidebar state returned by the kernel. */
  showState(state: unknown): void {
    const s = state as Partial<ISidebarState> | null;
    if (!s || s.schema !== 'allframe.sidebar' || s.version !== SIDEBAR_VERSION) {
      this.showError(
        'allframe sidebar: unsupported kernel reply',
        `The kernel answered with ${JSON.stringify(s?.schema)} version ${JSON.stringify(s?.version)}; ` +
          `this extension reads allframe.sidebar version ${SIDEBAR_VERSION}. ` +
          'Install the same allframe-lab release in the kernel and in JupyterLab.'
      );
      return;
    }
    const models = s.models ?? [];
    const stores = s.stores ?? [];
    if (!models.length && !stores.length) {
      this.showMessage(
        'No allframe-lab Model, App, Workbench or event store in this kernel yet. ' +
          'Define one in a cell, for example bank = Model("bank"), and run it.'
      );
      return;
    }
    replaceChildren(
      this._content,
      h('h3', {}, `Models (${models.length})`),
      ...models.map(model => this._model(model)),
      h('h3', {}, `Stores (${stores.length})`),
      ...stores.map(store => this._store(store))
    );
  }

  private _model(model: ISidebarModel): HTMLElement {
    const title =
      model.variable && model.variable !== model.name ? `${model.name} (variable ${model.variable})` : model.name;
    const groups = ELEMENT_KINDS.map(kind => {
      const names = (model[kind] as string[] | undefined) ?? [];
      if (!names.length) {
        return null;
      }
      return h(
        'div',
        { class: 'allframe-sidebar-group', 'data-kind': kind },
        h('span', { class: 'allframe-sidebar-kind' }, `${kind} (${names.length})`),
        h('ul', {}, ...names.map(name => h('li', { class: 'allframe-sidebar-element' }, name)))
      );
    });
    const empty = groups.every(g => g === null);
    return h(
      'details',
      { class: 'allframe-sidebar-model', 'data-variable': model.variable, open: '' },
      h('summary', {}, title),
      ...groups,
      empty ? h('p', { class: 'allframe-muted' }, 'No elements declared yet.') : null
    );
  }

  private _store(store: ISidebarStore): HTMLElement {
    const stat = (label: string, value: unknown, title?: string | null): HTMLElement[] => [
      h('dt', {}, label),
      h('dd', { title: title ?? undefined }, value === null || value === undefined ? '—' : String(value))
    ];
    const streams = store.stream_list ?? [];
    const list = h(
      'ul',
      { class: 'allframe-sidebar-streams' },
      ...streams.map(stream => {
        const button = h(
          'button',
          {
            class: 'allframe-sidebar-stream',
            type: 'button',
            'data-stream-id': stream.stream_id,
            title: `Open the timeline of stream ${stream.stream_id}`
          },
          `${stream.stream_id} · v${stream.version}`
        );
        button.addEventListener('click', () => this._openStream(store.key, stream.stream_id));
        return h('li', {}, button);
      })
    );
    const more =
      store.streams !== undefined && store.streams > streams.length
        ? h('p', { class: 'allframe-muted' }, `first ${streams.length} of ${store.streams} streams`)
        : null;
    return h(
      'details',
      { class: 'allframe-sidebar-store', 'data-key': store.key, open: '' },
      h('summary', {}, store.label || store.key),
      h(
        'dl',
        { class: 'allframe-sidebar-stats' },
        ...stat('events', store.events),
        ...stat('streams', store.streams),
        ...stat('event types', store.types),
        ...stat('head position', store.head_position),
        ...stat('first', shortTime(store.first_occurred), store.first_occurred),
        ...stat('last', shortTime(store.last_occurred), store.last_occurred)
      ),
      streams.length ? list : null,
      more
    );
  }

  private _context: HTMLElement;
  private _refresh: HTMLButtonElement;
  private _status: HTMLElement;
  private _content: HTMLElement;
}
