/**
 * The MIME renderer extension: one renderer factory for the three allframe MIME types.
 *
 * Declared safe (the views build DOM from data and never run payload code; Graphviz's SVG is
 * sanitised), so outputs render in untrusted notebooks too, for example a saved notebook
 * reopened without running it. Rank 0 puts them ahead of the text/html fallback every
 * bundle also carries.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { errorBox, replaceChildren } from './dom';
import { renderGraph } from './graph';
import { renderTimeline } from './timeline';
import { renderTrace } from './trace';

export const GRAPH_MIME = 'application/vnd.allframe.graph+json';
export const TIMELINE_MIME = 'application/vnd.allframe.timeline+json';
export const TRACE_MIME = 'application/vnd.allframe.trace+json';

const RENDERERS: { [mime: string]: (host: HTMLElement, payload: unknown) => void | Promise<void> } = {
  [GRAPH_MIME]: renderGraph,
  [TIMELINE_MIME]: renderTimeline,
  [TRACE_MIME]: renderTrace
};

/** A widget rendering one allframe MIME type. */
export class AllframeRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('allframe-output');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const render = RENDERERS[this._mimeType];
    try {
      await render(this.node, model.data[this._mimeType]);
    } catch (reason) {
      replaceChildren(
        this.node,
        errorBox(
          `allframe: could not render ${this._mimeType}`,
          `${reason instanceof Error ? reason.message : String(reason)}. ` +
            'The text/html fallback of this output is still in the notebook file.'
        )
      );
    }
  }

  private _mimeType: string;
}

/** The renderer factory registered with JupyterLab's rendermime registry. */
export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [GRAPH_MIME, TIMELINE_MIME, TRACE_MIME],
  createRenderer: options => new AllframeRenderer(options)
};

const extension: IRenderMime.IExtension = {
  id: 'allframe-lab-ext:renderers',
  description: 'Renders allframe graphs (WebAssembly Graphviz), event timelines and trace waterfalls.',
  rendererFactory,
  rank: 0,
  dataType: 'json'
};

export default extension;
