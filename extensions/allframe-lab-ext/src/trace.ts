/**
 * application/vnd.allframe.trace+json: a trace waterfall.
 *
 * One row per span in tree order (children under their parent, by start time), the name
 * indented by depth, a bar from start_ns to end_ns on a shared axis, error spans coloured,
 * attributes on hover (title) and in the details pane on click.
 */
import { errorBox, h, prettyJSON, replaceChildren } from './dom';
import { traceV1 } from './schemas.generated';
import { check } from './validate';

/** One span of a trace.v1 payload (the OpenTelemetry span model). */
export interface ISpan {
  trace_id: string;
  span_id: string;
  parent_id?: string | null;
  name: string;
  start_ns: number;
  end_ns: number;
  status?: 'unset' | 'ok' | 'error';
  attributes?: { [key: string]: unknown };
}

/** A trace.v1 payload (see allframe_lab/notebook/schemas/trace.v1.json). */
export interface ITracePayload {
  schema: 'allframe.trace';
  version: 1;
  title?: string;
  spans: ISpan[];
}

/** A duration in nanoseconds, in the largest unit that keeps it >= 1. */
export function formatDuration(ns: number): string {
  const abs = Math.abs(ns);
  if (abs >= 1e9) {
    return `${(ns / 1e9).toPrecision(3)} s`;
  }
  if (abs >= 1e6) {
    return `${(ns / 1e6).toPrecision(3)} ms`;
  }
  if (abs >= 1e3) {
    return `${(ns / 1e3).toPrecision(3)} µs`;
  }
  return `${ns} ns`;
}

/** Spans in depth-first order with their depth; unknown parents make a span a root. */
function treeOrder(spans: ISpan[]): { span: ISpan; depth: number }[] {
  const ids = new Set(spans.map(s => s.span_id));
  const children = new Map<string, ISpan[]>();
  const roots: ISpan[] = [];
  for (const span of spans) {
    if (span.parent_id && ids.has(span.parent_id) && span.parent_id !== span.span_id) {
      const list = children.get(span.parent_id) ?? [];
      list.push(span);
      children.set(span.parent_id, list);
    } else {
      roots.push(span);
    }
  }
  const byStart = (a: ISpan, b: ISpan): number => a.start_ns - b.start_ns;
  const out: { span: ISpan; depth: number }[] = [];
  const seen = new Set<ISpan>();
  const visit = (span: ISpan, depth: number): void => {
    if (seen.has(span)) {
      return; // a parent cycle: show each span once
    }
    seen.add(span);
    out.push({ span, depth });
    for (const child of (children.get(span.span_id) ?? []).sort(byStart)) {
      visit(child, depth + 1);
    }
  };
  roots.sort(byStart).forEach(root => visit(root, 0));
  spans.filter(s => !seen.has(s)).forEach(s => visit(s, 0)); // spans only reachable through a cycle
  return out;
}

function hoverText(span: ISpan): string {
  const lines = [
    span.name,
    `${formatDuration(span.end_ns - span.start_ns)} · status ${span.status ?? 'unset'}`,
    `span ${span.span_id}` + (span.parent_id ? ` · parent ${span.parent_id}` : '')
  ];
  for (const [key, value] of Object.entries(span.attributes ?? {})) {
    lines.push(`${key} = ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  return lines.join('\n');
}

/** Render a trace payload into `host` (replacing its content). */
export function renderTrace(host: HTMLElement, payload: unknown): void {
  const checked = check(payload, traceV1);
  if (!checked.ok) {
    replaceChildren(
      host,
      checked.unsupported
        ? errorBox('allframe trace: unsupported output', checked.unsupported)
        : errorBox('allframe trace: invalid output', 'The payload does not match trace.v1.json:', checked.problems)
    );
    return;
  }
  const trace = payload as ITracePayload;
  const spans = trace.spans;
  const start = Math.min(...spans.map(s => s.start_ns));
  const end = Math.max(...spans.map(s => s.end_ns));
  const total = Math.max(end - start, 1);
  const details = h('pre', { class: 'allframe-trace-details' }, 'Click a span to see its attributes.');
  let current: HTMLElement | null = null;

  const rows = treeOrder(spans).map(({ span, depth }) => {
    const duration = span.end_ns - span.start_ns;
    const isError = span.status === 'error';
    const bar = h(
      'div',
      {
        class: 'allframe-trace-bar' + (isError ? ' allframe-trace-error' : ''),
        'data-span-id': span.span_id,
        'data-depth': String(depth),
        title: hoverText(span),
        role: 'button',
        tabindex: '0'
      },
      span.name
    );
    bar.style.left = `${(100 * (span.start_ns - start)) / total}%`;
    bar.style.width = `${Math.max((100 * duration) / total, 0.4)}%`;
    const show = (): void => {
      current?.classList.remove('allframe-selected');
      bar.classList.add('allframe-selected');
      current = bar;
      details.textContent = prettyJSON({
        name: span.name,
        span_id: span.span_id,
        parent_id: span.parent_id ?? null,
        trace_id: span.trace_id,
        status: span.status ?? 'unset',
        duration: formatDuration(duration),
        start_offset: formatDuration(span.start_ns - start),
        attributes: span.attributes ?? {}
      });
    };
    bar.addEventListener('click', show);
    bar.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        show();
      }
    });
    const label = h(
      'div',
      { class: 'allframe-trace-label', title: span.name },
      h('span', { class: 'allframe-trace-label-name' }, span.name),
      h('span', { class: 'allframe-muted' }, ` ${formatDuration(duration)}`)
    );
    label.style.paddingLeft = `${4 + 14 * depth}px`;
    return h(
      'div',
      { class: 'allframe-trace-row' + (isError ? ' allframe-trace-row-error' : '') },
      label,
      h('div', { class: 'allframe-trace-track' }, bar)
    );
  });

  const ticks = [0, 0.25, 0.5, 0.75, 1].map(f => {
    const tick = h('span', { class: 'allframe-trace-tick' }, formatDuration(Math.round(f * (end - start))));
    tick.style.left = `${100 * f}%`;
    return tick;
  });
  const errors = spans.filter(s => s.status === 'error').length;
  replaceChildren(
    host,
    h(
      'div',
      { class: 'allframe-trace' },
      h(
        'div',
        { class: 'allframe-toolbar' },
        h('span', { class: 'allframe-caption' }, trace.title ?? 'Trace'),
        h(
          'span',
          { class: 'allframe-muted' },
          `${spans.length} spans · ${formatDuration(end - start)}` + (errors ? ` · ${errors} with errors` : '')
        )
      ),
      spans.length
        ? h(
            'div',
            { class: 'allframe-trace-row allframe-trace-axis' },
            h('div', { class: 'allframe-trace-label' }),
            h('div', { class: 'allframe-trace-track' }, ...ticks)
          )
        : h('p', { class: 'allframe-muted' }, 'No spans.'),
      ...rows,
      details
    )
  );
}
