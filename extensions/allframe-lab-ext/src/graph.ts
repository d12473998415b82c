/**
 * application/vnd.allframe.graph+json: Graphviz DOT laid out to SVG in the browser.
 *
 * The layout runs in WebAssembly Graphviz (@hpcc-js/wasm-graphviz, whose wasm binary is
 * inlined in its JavaScript), loaded on first use as a separate chunk, so no system `dot`
 * and no network access are needed, and notebooks without graphs do not pay for it.
 */
import { errorBox, h, replaceChildren } from './dom';
import { graphV1 } from './schemas.generated';
import { check } from './validate';

/** A graph.v1 payload (see allframe_lab/notebook/schemas/graph.v1.json). */
export interface IGraphPayload {
  schema: 'allframe.graph';
  version: 1;
  title?: string;
  dot: string;
  engine?: 'dot' | 'neato' | 'fdp' | 'circo' | 'twopi';
  nodes?: { id: string; label?: string; kind?: string }[];
}

type GraphvizModule = typeof import('@hpcc-js/wasm-graphviz');
type Graphviz = Awaited<ReturnType<GraphvizModule['Graphviz']['load']>>;

let graphviz: Promise<Graphviz> | null = null;

/** Load the WebAssembly Graphviz once per page. */
function loadGraphviz(): Promise<Graphviz> {
  if (!graphviz) {
    graphviz = import('@hpcc-js/wasm-graphviz').then(module => module.Graphviz.load());
    graphviz.catch(() => {
      graphviz = null; // let a later render retry
    });
  }
  return graphviz;
}

/**
 * Parse Graphviz's SVG and drop anything active: scripts, foreign objects, event-handler
 * attributes and `javascript:` links (DOT `URL`/`href` attributes end up as links). The
 * renderer is declared safe, so untrusted notebooks show the graph too.
 */
function sanitisedSVG(svgText: string): SVGSVGElement {
  const doc = new DOMParser().parseFromString(svgText, 'image/svg+xml');
  const svg = doc.documentElement as unknown as SVGSVGElement;
  if (svg.nodeName !== 'svg') {
    throw new Error('Graphviz did not return an SVG document');
  }
  for (const bad of Array.from(svg.querySelectorAll('script, foreignObject'))) {
    bad.remove();
  }
  for (const element of Array.from(svg.querySelectorAll('*'))) {
    for (const attr of Array.from(element.attributes)) {
      const name = attr.name.toLowerCase();
      const value = attr.value.trim().toLowerCase();
      if (name.startsWith('on') || ((name === 'href' || name === 'xlink:href') && value.startsWith('javascript:'))) {
        element.removeAttribute(attr.name);
      }
    }
  }
  return document.importNode(svg, true);
}

/** Render a graph payload into `host` (replacing its content). */
export async function renderGraph(host: HTMLElement, payload: unknown): Promise<void> {
  const checked = check(payload, graphV1);
  if (!checked.ok) {
    replaceChildren(
      host,
      checked.unsupported
        ? errorBox('allframe graph: unsupported output', checked.unsupported)
        : errorBox('allframe graph: invalid output', 'The payload does not match graph.v1.json:', checked.problems)
    );
    return;
  }
  const graph = payload as IGraphPayload;
  const container = h('div', { class: 'allframe-graph' });
  if (graph.title) {
    container.append(h('div', { class: 'allframe-caption' }, graph.title));
  }
  const canvas = h('div', { class: 'allframe-graph-canvas' }, h('span', { class: 'allframe-muted' }, 'Laying out graph…'));
  container.append(canvas);
  replaceChildren(host, container);

  let svg: SVGSVGElement;
  try {
    const gv = await loadGraphviz();
    svg = sanitisedSVG(gv.layout(graph.dot, 'svg', graph.engine ?? 'dot'));
  } catch (reason) {
    replaceChildren(
      canvas,
      errorBox(
        'allframe graph: Graphviz could not lay out this graph',
        `${reason instanceof Error ? reason.message : String(reason)}. Check the DOT source below.`
      ),
      h('details', {}, h('summary', {}, 'DOT source'), h('pre', {}, graph.dot))
    );
    return;
  }
  svg.classList.add('allframe-graph-svg'); // natural size, shrunk to the output width (CSS)
  const kinds = new Map((graph.nodes ?? []).map(node => [node.id, node.kind]));
  if (kinds.size) {
    for (const node of Array.from(svg.querySelectorAll('g.node'))) {
      const kind = kinds.get(node.querySelector('title')?.textContent ?? '');
      if (kind) {
        node.setAttribute('data-kind', kind);
      }
    }
  }
  replaceChildren(canvas, svg);
}
