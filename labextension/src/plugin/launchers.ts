/**
 * The launcher tiles and palette commands: *New benchmark* (one per template
 * the server lists, added when the store has them) and the placement
 * commands (a notebook on a chosen GPU).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';

import { GpuApiClient } from '../api';
import { registerBenchmarks } from '../benchmarks/commands';
import { ITrans } from '../i18n';
import { registerPlacement } from '../placement/commands';
import { GpuStore } from '../store';
import { gpuIcon } from './ids';
import { LiveSettings } from './livesettings';

export interface ILauncherOptions {
  client: GpuApiClient;
  store: GpuStore;
  settings: LiveSettings;
  trans: ITrans;
  launcher: ILauncher | null;
  palette: ICommandPalette | null;
  fileBrowser: IDefaultFileBrowser | null;
}

export function addLaunchers(
  app: JupyterFrontEnd,
  options: ILauncherOptions
): void {
  const { client, store, trans, launcher, palette, fileBrowser } = options;
  const currentDir = () => fileBrowser?.model.path ?? '';
  const addTemplates = registerBenchmarks(app, {
    client,
    icon: gpuIcon,
    trans,
    currentDir,
    launcher,
    palette
  });
  registerPlacement(app, {
    client,
    icon: gpuIcon,
    trans,
    units: () => options.settings.current.memoryUnits,
    currentDir,
    launcher,
    palette
  });
  store.changed.connect((_, kind) => {
    if (kind === 'benchmarks') {
      addTemplates(store.state.benchmarks);
    }
  });
}
