/**
 * The kernel side of the sidebar protocol (PROTOCOL.md, "Sidebar protocol").
 *
 * The sidebar never runs code in the user's namespace: it sends a SILENT execute request
 * (no history, no execution count, no output in the notebook) whose only content is one
 * user expression calling allframe_lab.notebook.sidebar, and reads the expression's
 * application/json result from the reply.
 */
import { Kernel, KernelMessage } from '@jupyterlab/services';

const MODULE = "__import__('allframe_lab.notebook.sidebar', fromlist=['_'])";

/** Expression returning the sidebar state (allframe.sidebar v1). */
export const STATE_EXPRESSION = `${MODULE}.sidebar_state()`;

/** Expression returning a timeline.v1 payload of one stream of one store. */
export function streamTimelineExpression(storeKey: string, streamId: string): string {
  // JSON string literals are valid Python string literals for the characters ids contain.
  return `${MODULE}.stream_timeline(${JSON.stringify(storeKey)}, ${JSON.stringify(streamId)})`;
}

/** Result of evaluating one expression in the kernel. */
export type Evaluation =
  | { ok: true; data: unknown }
  | { ok: false; ename: string; evalue: string; notInstalled: boolean };

/**
 * Evaluate `expression` in `kernel` with a silent execute request.
 *
 * Resolves with the expression's application/json value, or with the Python error (name and
 * value); `notInstalled` is set when allframe_lab cannot be imported in that kernel.
 */
export async function evaluate(kernel: Kernel.IKernelConnection, expression: string): Promise<Evaluation> {
  const future = kernel.requestExecute(
    {
      code: '',
      silent: true,
      store_history: false,
      allow_stdin: false,
      stop_on_error: false,
      user_expressions: { allframe: expression }
    },
    true
  );
  const reply = (await future.done) as KernelMessage.IExecuteReplyMsg;
  const content = reply.content;
  if (content.status !== 'ok') {
    const error = content as KernelMessage.IReplyErrorContent;
    return { ok: false, ename: error.ename ?? content.status, evalue: error.evalue ?? '', notInstalled: false };
  }
  const result = (content as KernelMessage.IExecuteReply).user_expressions?.allframe as
    | { status: string; data?: { [mime: string]: unknown }; ename?: string; evalue?: string }
    | undefined;
  if (!result) {
    return { ok: false, ename: 'NoResult', evalue: 'the kernel returned no user expression result', notInstalled: false };
  }
  if (result.status !== 'ok') {
    const ename = result.ename ?? 'Error';
    const evalue = result.evalue ?? '';
    const notInstalled =
      ename === 'ModuleNotFoundError' && /allframe_lab/.test(evalue) && !/allframe_lab\.notebook\.sidebar\./.test(evalue);
    return { ok: false, ename, evalue, notInstalled };
  }
  const data = result.data ?? {};
  if ('application/json' in data) {
    return { ok: true, data: data['application/json'] };
  }
  return {
    ok: false,
    ename: 'NoJSON',
    evalue: 'the expression returned no application/json value (is allframe-lab older than this extension?)',
    notInstalled: false
  };
}
