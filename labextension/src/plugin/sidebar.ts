/**
 * The sidebar panel: its actions (open a notebook, the charts' window, new
 * benchmark, confirm, kernel controls, restart on another GPU), its place
 * in the right sidebar and the layout restorer, and its redraws when the
 * settings or the theme change.
 */
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, IThemeManager, showDialog } from '@jupyterlab/apputils';

import { GpuApiClient } from '../api';
import { CREATE_BENCHMARK } from '../benchmarks/commands';
import { ITrans } from '../i18n';
import { kernelControl } from '../memory/kernelcontrol';
import { GpuPanel, IPanelActions } from '../panel';
import { restartOnGpu } from '../placement/picker';
import { GpuStore } from '../store';
import { gpuIcon, PANEL_NAME } from './ids';
import { LiveSettings } from './livesettings';

export interface ISidebarOptions {
  client: GpuApiClient;
  store: GpuStore;
  settings: LiveSettings;
  trans: ITrans;
  openNotebook: (path: string, kernelId?: string | null) => void;
  themeManager: IThemeManager | null;
  restorer: ILayoutRestorer | null;
}

export function addPanel(
  app: JupyterFrontEnd,
  options: ISidebarOptions
): GpuPanel {
  const { store, settings, themeManager } = options;
  let themeKey = themeManager?.theme ?? 'default';
  const panel = new GpuPanel(
    store,
    () => settings.current,
    () => themeKey,
    panelActions(app, options),
    options.trans,
    gpuIcon
  );
  app.shell.add(panel, 'right', { rank: 900 });
  options.restorer?.add(panel, PANEL_NAME);
  settings.changed.connect(() => panel.update());
  themeManager?.themeChanged.connect((_, args) => {
    // Canvas charts read --jp-* colours at creation: recreate them. Twice,
    // because the new theme's CSS may still be applying on the first pass.
    themeKey = `${args.newValue}-${Date.now()}`;
    panel.update();
    window.setTimeout(() => {
      themeKey = `${args.newValue}-${Date.now()}`;
      panel.update();
    }, 300);
  });
  return panel;
}

function panelActions(
  app: JupyterFrontEnd,
  options: ISidebarOptions
): IPanelActions {
  const { client, store, settings, trans } = options;
  return {
    openNotebook: options.openNotebook,
    setChartWindow: (seconds: number) => settings.setChartWindow(seconds),
    createBenchmark: async (template: string) => {
      await app.commands.execute(CREATE_BENCHMARK, { template });
    },
    confirm: async (title, body, accept) => {
      const r = await showDialog({
        title,
        body,
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: accept })]
      });
      return r.button.accept;
    },
    kernels: {
      ...kernelControl(
        app.serviceManager.kernels,
        app.serviceManager.serverSettings,
        store
      ),
      restartOnGpu: async (kernelId: string, label: string) => {
        const gpu = await restartOnGpu(
          client,
          kernelId,
          label,
          settings.current.memoryUnits,
          trans
        );
        void store.refreshKernels();
        return gpu;
      }
    }
  };
}
