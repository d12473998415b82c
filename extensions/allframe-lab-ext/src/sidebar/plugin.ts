/**
 * The model sidebar plugin: a left-area panel listing the active notebook kernel's
 * allframe-lab models and stores.
 *
 * It asks the kernel (silently, see ./kernel.ts) after every executed cell of the current
 * notebook (NotebookActions.executed), when the current notebook changes, when its kernel
 * changes or restarts, when the panel is shown and on Refresh. While the panel is hidden it
 * only remembers that it is stale. Clicking a stream opens a main-area panel with that
 * stream's timeline, drawn by the same code as the timeline MIME renderer.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { renderTimeline } from '../timeline';
import { evaluate, STATE_EXPRESSION, streamTimelineExpression } from './kernel';
import { SidebarPanel } from './panel';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
  '<g class="jp-icon3" fill="#616161">' +
  '<rect x="1" y="2" width="14" height="2.5" rx="1"/>' +
  '<rect x="1" y="6.75" width="10" height="2.5" rx="1"/>' +
  '<rect x="1" y="11.5" width="6" height="2.5" rx="1"/></g></svg>';

/** The sidebar's tab icon (stacked bars: an event log). */
export const allframeIcon = new LabIcon({ name: 'allframe-lab-ext:log', svgstr: ICON_SVG });

/** Delay after the last executed cell before asking the kernel (cells run in bursts). */
const DEBOUNCE_MS = 250;

class SidebarController {
  constructor(
    private readonly _app: JupyterFrontEnd,
    tracker: INotebookTracker
  ) {
    this.panel = new SidebarPanel((key, stream) => void this._openStream(key, stream));
    this.panel.title.icon = allframeIcon;
    this.panel.onRefresh = () => void this.refresh();
    this.panel.showMessage('Open a notebook: this panel lists the allframe-lab models and stores of its kernel.');

    tracker.currentChanged.connect((_, notebook) => this._follow(notebook), this);
    NotebookActions.executed.connect((_, args) => {
      if (args.notebook === this._notebook?.content) {
        this._schedule();
      }
    }, this);
    this._follow(tracker.currentWidget);
  }

  readonly panel: SidebarPanel;

  /** Ask the kernel now (or mark stale while the panel is hidden). */
  async refresh(): Promise<void> {
    if (!this.panel.isVisible) {
      this._stale = true;
      return;
    }
    this._stale = false;
    const notebook = this._notebook;
    if (!notebook) {
      this.panel.setContext('');
      this.panel.setStatus('');
      this.panel.showMessage('Open a notebook: this panel lists the allframe-lab models and stores of its kernel.');
      return;
    }
    this.panel.setContext(notebook.title.label);
    const kernel = notebook.sessionContext.session?.kernel;
    if (!kernel) {
      this.panel.setStatus('');
      this.panel.showMessage(notebook.sessionContext.hasNoKernel ? 'This notebook has no kernel.' : 'Waiting for the kernel…');
      return;
    }
    const ticket = ++this._ticket;
    this.panel.setStatus('Asking the kernel…');
    let result;
    try {
      result = await evaluate(kernel, STATE_EXPRESSION);
    } catch (reason) {
      if (ticket === this._ticket) {
        this.panel.setStatus('');
        this.panel.showError('allframe sidebar: the kernel did not answer', String(reason));
      }
      return;
    }
    if (ticket !== this._ticket || notebook !== this._notebook) {
      return; // a newer refresh or another notebook took over
    }
    this.panel.setStatus(`Updated ${new Date().toLocaleTimeString()}`);
    if (result.ok) {
      this.panel.showState(result.data);
    } else if (result.notInstalled) {
      this.panel.showMessage(
        'allframe-lab is not installed in this kernel. Install it in the kernel environment ' +
          '(pip install allframe-lab) and restart the kernel.'
      );
    } else {
      this.panel.showError('allframe sidebar: the kernel reported an error', `${result.ename}: ${result.evalue}`);
    }
  }

  /** Refresh if something happened while the panel was hidden. */
  refreshIfStale(): void {
    if (this._stale) {
      void this.refresh();
    }
  }

  private _schedule(): void {
    if (this._timer !== undefined) {
      window.clearTimeout(this._timer);
    }
    this._timer = window.setTimeout(() => {
      this._timer = undefined;
      void this.refresh();
    }, DEBOUNCE_MS);
  }

  private _follow(notebook: NotebookPanel | null): void {
    const previous = this._notebook;
    if (previous) {
      previous.sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
      previous.sessionContext.statusChanged.disconnect(this._onStatus, this);
    }
    this._notebook = notebook;
    this._restarted = false;
    if (notebook) {
      notebook.sessionContext.kernelChanged.connect(this._onKernelChanged, this);
      notebook.sessionContext.statusChanged.connect(this._onStatus, this);
      void notebook.sessionContext.ready.then(() => {
        if (this._notebook === notebook) {
          this._schedule();
        }
      });
    }
    this._schedule();
  }

  private _onKernelChanged(): void {
    this._schedule();
  }

  /**
   * After a (re)start the namespace is new: refresh at the next idle. (A restart goes
   * restarting -> busy -> idle: the kernel_info request in between is not a cell.)
   */
  private _onStatus(_: unknown, status: Kernel.Status): void {
    if (['restarting', 'starting', 'autorestarting', 'unknown', 'dead'].includes(status)) {
      this._restarted = true;
    } else if (status === 'idle' && this._restarted) {
      this._restarted = false;
      this._schedule();
    }
  }

  private async _openStream(storeKey: string, streamId: string): Promise<void> {
    const kernel = this._notebook?.sessionContext.session?.kernel;
    if (!kernel) {
      return;
    }
    const id = `allframe-stream-${encodeURIComponent(storeKey)}-${encodeURIComponent(streamId)}`.replace(/%/g, '_');
    let widget = this._streams.get(id);
    if (!widget || widget.isDisposed) {
      widget = new Widget();
      widget.id = id;
      widget.addClass('allframe-stream-panel');
      widget.title.label = `${streamId} · timeline`;
      widget.title.caption = `Timeline of stream ${streamId} (${storeKey})`;
      widget.title.icon = allframeIcon;
      widget.title.closable = true;
      this._streams.set(id, widget);
    }
    widget.node.textContent = `Loading stream ${streamId}…`;
    if (!widget.isAttached) {
      this._app.shell.add(widget, 'main');
    }
    this._app.shell.activateById(id);
    const result = await evaluate(kernel, streamTimelineExpression(storeKey, streamId)).catch(reason => ({
      ok: false as const,
      ename: 'Error',
      evalue: String(reason),
      notInstalled: false
    }));
    if (result.ok) {
      renderTimeline(widget.node, result.data);
    } else {
      widget.node.textContent = `Could not load stream ${streamId}: ${result.ename}: ${result.evalue}`;
    }
  }

  private _notebook: NotebookPanel | null = null;
  private _restarted = false;
  private _stale = true;
  private _ticket = 0;
  private _timer: number | undefined = undefined;
  private _streams = new Map<string, Widget>();
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'allframe-lab-ext:sidebar',
  description: 'A left-area panel listing the models and stores of the active notebook kernel.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker): void => {
    const controller = new SidebarController(app, tracker);
    controller.panel.onShown = () => controller.refreshIfStale();
    app.shell.add(controller.panel, 'left', { rank: 650 });
    app.commands.addCommand('allframe-lab-ext:refresh-sidebar', {
      label: 'Refresh the allframe-lab sidebar',
      execute: () => controller.refresh()
    });
  }
};

export default plugin;
