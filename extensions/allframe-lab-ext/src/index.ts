/**
 * allframe-lab-ext: the JupyterLab 4 extension of allframe-lab.
 *
 * JupyterLab loads two entry points (package.json "jupyterlab"): the MIME renderer extension
 * (./mime) and the sidebar plugin (./sidebar/plugin). This module re-exports the rendering
 * functions for reuse.
 */
export { GRAPH_MIME, TIMELINE_MIME, TRACE_MIME, rendererFactory } from './mime';
export { renderGraph } from './graph';
export { renderTimeline } from './timeline';
export { renderTrace } from './trace';
export { check } from './validate';
