/**
 * Does the kernel a benchmark notebook opens with have torch? Asked of a
 * throwaway kernel of that kernelspec, started and shut down through
 * Jupyter's services: one silent user expression, no output, no history.
 */
import { Kernel, KernelMessage, KernelSpec } from '@jupyterlab/services';

/** True/False in the kernel, without importing torch (which can take seconds). */
export const TORCH_EXPRESSION =
  "__import__('importlib.util').util.find_spec('torch') is not None";

/** The template notebooks' kernelspec (jupyter_gpu_panel/benchmarks/templates.py). */
export const TEMPLATE_KERNEL = 'python3';

/** The command the warning offers: the CPU build (binder/postBuild installs the same). */
export const CPU_TORCH_INSTALL =
  '%pip install --index-url https://download.pytorch.org/whl/cpu torch';

/** The kernelspec to check: the templates' when installed, else the server's default. */
export function kernelToCheck(
  specs: KernelSpec.ISpecModels | null
): { name: string; displayName: string } | null {
  if (!specs) {
    return null;
  }
  const name = specs.kernelspecs[TEMPLATE_KERNEL]
    ? TEMPLATE_KERNEL
    : specs.default;
  const spec = specs.kernelspecs[name];
  return spec ? { name, displayName: spec.display_name || name } : null;
}

/** The reply's answer: true/false, or null when the kernel could not tell. */
export function parseTorchReply(
  content: KernelMessage.IExecuteReplyMsg['content'] | undefined
): boolean | null {
  if (!content || content.status !== 'ok') {
    return null;
  }
  const r = content.user_expressions?.torch as
    { status?: string; data?: { 'text/plain'?: string } } | undefined;
  if (!r || r.status !== 'ok') {
    return null;
  }
  const text = r.data?.['text/plain'];
  return text === 'True' ? true : text === 'False' ? false : null;
}

/** How long the check may take (a kernel start included) before it gives up. */
export const CHECK_TIMEOUT_MS = 30000;

/**
 * Start a kernel of `name`, ask it, shut it down. null when it could not be
 * asked (no such kernelspec, start failure, timeout): the caller then does
 * not warn, as it cannot know.
 */
export async function kernelHasTorch(
  kernels: Kernel.IManager,
  name: string,
  timeoutMs = CHECK_TIMEOUT_MS
): Promise<boolean | null> {
  let timer = 0;
  const timeout = new Promise<null>(resolve => {
    timer = window.setTimeout(() => resolve(null), timeoutMs);
  });
  // Shuts its kernel down however late it finishes, even after the timeout won.
  const ask = async (): Promise<boolean | null> => {
    const kernel = await kernels.startNew({ name }, { handleComms: false });
    try {
      const future = kernel.requestExecute({
        code: '',
        silent: true,
        store_history: false,
        user_expressions: { torch: TORCH_EXPRESSION }
      });
      const reply = await future.done;
      return parseTorchReply(reply?.content);
    } finally {
      void kernel.shutdown().catch(() => undefined);
    }
  };
  const asking = ask();
  asking.catch(() => undefined); // a failure after the timeout is nobody's to handle
  try {
    return await Promise.race([asking, timeout]);
  } catch (err) {
    console.warn('gpu-panel: could not check the kernel for torch', err);
    return null;
  } finally {
    window.clearTimeout(timer);
  }
}
