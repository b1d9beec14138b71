/**
 * Placement in words (pure, no JupyterLab import): which GPUs a kernel may
 * use and where that came from, and a GPU as the picker offers it.
 */
import { components } from '../api-schema';
import { formatBytes, MemoryUnits } from '../format';
import { ITrans, plainTrans } from '../i18n';

export type IKernelPlacement = components['schemas']['KernelPlacement'];
export type IPlacement = components['schemas']['Placement'];
export type IPlacementGpu = components['schemas']['PlacementGPU'];

function gpuList(gpus: number[], trans: ITrans): string {
  if (gpus.length === 0) {
    return trans.__('no GPU');
  }
  // _n makes the count %1, so the GPU list is %2
  return trans._n('GPU %2', 'GPUs %2', gpus.length, gpus.join(', '));
}

/** The kernel row's GPUs: "GPU 3 (placed)", "GPU 1 (set outside the panel)", "every GPU". */
export function kernelGpusText(
  p: IKernelPlacement | null | undefined,
  trans: ITrans = plainTrans
): string {
  if (!p) {
    return trans.__('unknown');
  }
  const which =
    p.gpus !== null
      ? gpuList(p.gpus, trans)
      : p.cuda_visible_devices !== null
        ? trans.__('CUDA_VISIBLE_DEVICES=%1', p.cuda_visible_devices)
        : trans.__('every GPU');
  const from = {
    placement: trans.__('placed'),
    request: trans.__('chosen'),
    outside: trans.__('set outside the panel'),
    off: ''
  }[p.source];
  return from ? trans.__('%1 (%2)', which, from) : which;
}

/** Whether the panel can move this kernel: not when its GPUs were set outside. */
export function canMove(p: IKernelPlacement | null | undefined): boolean {
  return !!p && p.source !== 'outside';
}

/** One GPU in the picker: "GPU 3 · 79.1 GiB free · 2 holders · lost (fell off the bus)". */
export function gpuChoiceText(
  g: IPlacementGpu,
  units: MemoryUnits,
  trans: ITrans = plainTrans
): string {
  const parts = [trans.__('GPU %1', g.index)];
  if (g.mem_free !== null) {
    parts.push(trans.__('%1 free', formatBytes(g.mem_free, units)));
  }
  parts.push(trans._n('%1 holder', '%1 holders', g.holders, g.holders));
  if (g.util_avg !== null) {
    parts.push(trans.__('%1% busy', Math.round(g.util_avg)));
  }
  if (g.problem) {
    parts.push(g.problem);
  }
  return parts.join(' · ');
}

/** GPUs the picker offers, freest first; a lost one cannot be chosen. */
export function pickable(doc: IPlacement): IPlacementGpu[] {
  return [...doc.gpus]
    .filter(g => g.state !== 'lost')
    .sort((a, b) => (b.mem_free ?? 0) - (a.mem_free ?? 0) || a.index - b.index);
}
