/**
 * Kernel actions through Jupyter's own kernel API (@jupyterlab/services):
 * interrupt and restart by the services' kernel REST client, shutdown by the
 * app's kernel manager (so every open notebook sees its kernel go); the
 * probe, triage and Release cached memory through the panel's API (they are
 * the panel's own).
 */
import { Kernel, KernelAPI, ServerConnection } from '@jupyterlab/services';

import { GpuStore } from '../store';
import { IKernelControl } from './kernelrow';

export function kernelControl(
  kernels: Kernel.IManager,
  serverSettings: ServerConnection.ISettings,
  store: GpuStore
): IKernelControl {
  const api = new KernelAPI.KernelAPIClient({ serverSettings });
  const thenRefresh = async (p: Promise<void>) => {
    await p;
    void store.refreshKernels();
  };
  return {
    interrupt: id => thenRefresh(api.interrupt(id)),
    restart: id => thenRefresh(api.restart(id)),
    shutdown: id => thenRefresh(kernels.shutdown(id)),
    loadProbe: id => store.loadProbe(id),
    triage: id => store.kernelTriage(id),
    release: id => store.releaseCache(id)
  };
}
