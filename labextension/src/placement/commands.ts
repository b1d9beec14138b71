/**
 * *New notebook on GPU…* (palette and launcher): pick a GPU, start the
 * default kernel, move it onto that GPU (the panel's restart with `gpus`),
 * and open a new notebook on that kernel.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { KernelAPI } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';

import { GpuApiClient } from '../api';
import { MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { pickGpu } from './picker';

export const NEW_ON_GPU = 'gpu-panel:new-notebook-on-gpu';

export function registerPlacement(
  app: JupyterFrontEnd,
  opts: {
    client: GpuApiClient;
    icon: LabIcon;
    trans: ITrans;
    units: () => MemoryUnits;
    currentDir: () => string;
    launcher: ILauncher | null;
    palette: ICommandPalette | null;
  }
): void {
  const { client, trans } = opts;
  const serverSettings = app.serviceManager.serverSettings;
  app.commands.addCommand(NEW_ON_GPU, {
    label: trans.__('New notebook on GPU…'),
    caption: trans.__(
      'Create a notebook whose kernel sees only the GPU you choose (its CUDA_VISIBLE_DEVICES)'
    ),
    icon: opts.icon,
    execute: async () => {
      const gpu = await pickGpu(client, {
        title: trans.__('New notebook on GPU…'),
        intro: trans.__(
          "The new notebook's kernel will see only the GPU you choose:"
        ),
        accept: trans.__('Create'),
        units: opts.units(),
        trans
      });
      if (gpu === null) {
        return;
      }
      const name = app.serviceManager.kernelspecs.specs?.default ?? 'python3';
      const kernel = await KernelAPI.startNew({ name }, serverSettings);
      try {
        await client.restartOnGpus(kernel.id, [gpu]);
      } catch (err) {
        await KernelAPI.shutdownKernel(kernel.id, serverSettings);
        Notification.error(
          trans.__(
            'Cannot start a kernel on GPU %1: %2',
            gpu,
            (err as Error).message
          ),
          { autoClose: false }
        );
        return;
      }
      const model = await app.commands.execute('docmanager:new-untitled', {
        path: opts.currentDir(),
        type: 'notebook'
      });
      await app.commands.execute('docmanager:open', {
        path: model.path,
        factory: 'Notebook',
        kernel: { id: kernel.id }
      });
    }
  });
  opts.palette?.addItem({ command: NEW_ON_GPU, category: trans.__('GPU') });
  opts.launcher?.add({
    command: NEW_ON_GPU,
    category: trans.__('Notebook'),
    rank: 100
  });
}
