/**
 * jupyter-gpu-panel front end: one plugin wires one API client and one
 * store (one stream socket per tab) to the sidebar panel, the status bar
 * item, commands, launcher tiles and settings.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  IThemeManager,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';

import gpuSvg from '../style/icons/gpu.svg';
import { GpuApiClient } from './api';
import { baseName } from './format';
import { leakLine, scriptName } from './kernelview';
import {
  clampInterval,
  DEFAULT_SETTINGS,
  IPanelSettings,
  parseSettings
} from './settings';
import { GpuStore } from './store';
import { IBenchmarkTemplate, IKernelInfo, IScriptInfo } from './types';
import { GpuPanel, IPanelActions } from './widgets/panel';
import { GpuStatusItem } from './widgets/statusbar';

const PLUGIN_ID = 'jupyter-gpu-panel:plugin';

export const gpuIcon = new LabIcon({
  name: 'jupyter-gpu-panel:gpu',
  svgstr: gpuSvg
});

namespace CommandIDs {
  export const open = 'gpu-panel:open';
  export const createBenchmark = 'gpu-panel:create-benchmark';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Live NVIDIA GPU metrics in a sidebar panel and the status bar.',
  autoStart: true,
  requires: [],
  optional: [
    ICommandPalette,
    ILauncher,
    IStatusBar,
    ISettingRegistry,
    IThemeManager,
    IDefaultFileBrowser,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    themeManager: IThemeManager | null,
    fileBrowser: IDefaultFileBrowser | null,
    restorer: ILayoutRestorer | null
  ) => {
    let settings: IPanelSettings = DEFAULT_SETTINGS;
    let themeKey = themeManager?.theme ?? 'default';
    const settingsChanged = new Signal<object, void>({});

    const client = new GpuApiClient(app.serviceManager.serverSettings);

    const openNotebook = (path: string) => {
      void app.commands.execute('docmanager:open', { path });
    };

    // The server's message names the rate, the time and the step of the OOM;
    // a toast shows ~140 characters, so it goes alone.
    const warnLeak = (
      name: string,
      leak: IKernelInfo['leak'],
      notebook: string | null
    ) => {
      const actions: Notification.IAction[] = [];
      if (notebook) {
        actions.push({
          label: 'Open notebook',
          callback: () => openNotebook(notebook)
        });
      }
      actions.push({
        label: 'Open GPU panel',
        callback: () => void app.commands.execute(CommandIDs.open)
      });
      Notification.warning(
        `GPU memory leak in ${name}: ${leakLine(leak, settings.memoryUnits)}`,
        {
          autoClose: false,
          actions
        }
      );
    };
    const onLeak = (k: IKernelInfo) =>
      warnLeak(
        k.notebook ? baseName(k.notebook) : (k.kernel_name ?? k.kernel_id),
        k.leak,
        k.notebook
      );
    // A script outside any kernel (a terminal's training run): named by its command.
    const onScriptLeak = (sc: IScriptInfo) =>
      warnLeak(scriptName(sc), sc.leak, null);

    const store = new GpuStore({ client, onLeak, onScriptLeak });

    const actions: IPanelActions = {
      openNotebook,
      setChartWindow: (seconds: number) => {
        if (settingRegistry) {
          void settingRegistry.set(PLUGIN_ID, 'chartWindow', seconds);
        } else {
          settings = { ...settings, chartWindow: seconds };
          panel.update();
        }
      },
      createBenchmark: (template: string) =>
        void app.commands.execute(CommandIDs.createBenchmark, { template }),
      confirm: async (title, body, accept) => {
        const r = await showDialog({
          title,
          body,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: accept })]
        });
        return r.button.accept;
      },
      notifyError: (message: string) => {
        Notification.error(message, { autoClose: 8000 });
      }
    };

    const panel = new GpuPanel(
      store,
      () => settings,
      () => themeKey,
      actions,
      gpuIcon
    );
    app.shell.add(panel, 'right', { rank: 900 });
    restorer?.add(panel, 'jupyter-gpu-panel');

    // Interval: the user's choice, never below the server's floor.
    let sentInterval: number | null = null;
    const applyInterval = () => {
      const want = clampInterval(
        settings.refreshInterval,
        store.state.status?.min_interval
      );
      if (want !== sentInterval) {
        sentInterval = want;
        store.setInterval(want);
      }
    };
    store.changed.connect((_, kind) => {
      if (kind === 'status') {
        applyInterval();
      }
    });

    const applySettings = () => {
      store.setLeakHorizon(
        settings.leakForecastMinutes * 60,
        settings.leakNotifications
      );
      applyInterval();
      panel.update();
      settingsChanged.emit();
    };

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(s => {
          const read = () => {
            settings = parseSettings(s.composite as any);
            applySettings();
          };
          read();
          s.changed.connect(read);
        })
        .catch(err => {
          console.warn('gpu-panel: settings unavailable, using defaults', err);
          applySettings();
        });
    } else {
      applySettings();
    }

    if (themeManager) {
      themeManager.themeChanged.connect((_, args) => {
        // Canvas charts read --jp-* colours at creation: recreate them. Twice,
        // because the new theme's CSS may still be applying on the first pass.
        themeKey = `${args.newValue}-${Date.now()}`;
        panel.update();
        window.setTimeout(() => {
          themeKey = `${args.newValue}-${Date.now()}`;
          panel.update();
        }, 300);
      });
    }

    app.commands.addCommand(CommandIDs.open, {
      label: 'Open GPU panel',
      caption: 'Show live GPU metrics in the sidebar',
      icon: gpuIcon,
      execute: () => {
        app.shell.activateById(panel.id);
      }
    });

    app.commands.addCommand(CommandIDs.createBenchmark, {
      // Launcher tiles sit under a "GPU" heading: the title alone reads best there.
      label: args =>
        !args.title
          ? 'New GPU benchmark notebook'
          : args.isPalette
            ? `New benchmark notebook: ${args.title as string}`
            : (args.title as string),
      caption: args =>
        (args.description as string) ?? 'Create a GPU benchmark notebook',
      icon: args => (args.isPalette ? undefined : gpuIcon),
      execute: async args => {
        const template = args.template as string;
        // The file browser's current folder, like File > New does.
        const dir = fileBrowser?.model.path ?? '';
        try {
          const path = await client.createBenchmark(template, dir);
          await app.commands.execute('docmanager:open', { path });
        } catch (err) {
          Notification.error(
            `Could not create the ${template} benchmark: ${(err as Error).message}`,
            { autoClose: 8000 }
          );
        }
      }
    });

    palette?.addItem({ command: CommandIDs.open, category: 'GPU' });

    // Benchmark templates come from the server: add a tile/palette entry per
    // template once they load.
    const added = new Set<string>();
    const addTemplates = (templates: IBenchmarkTemplate[]) => {
      for (const t of templates) {
        if (added.has(t.name)) {
          continue;
        }
        added.add(t.name);
        const args = {
          template: t.name,
          title: t.title,
          description: t.description
        };
        launcher?.add({
          command: CommandIDs.createBenchmark,
          args,
          category: 'GPU',
          rank: added.size
        });
        palette?.addItem({
          command: CommandIDs.createBenchmark,
          args: { ...args, isPalette: true },
          category: 'GPU'
        });
      }
    };
    store.changed.connect((_, kind) => {
      if (kind === 'benchmarks') {
        addTemplates(store.state.benchmarks);
      }
    });

    if (statusBar) {
      const item = new GpuStatusItem(
        store,
        () => settings.memoryUnits,
        () => void app.commands.execute(CommandIDs.open)
      );
      statusBar.registerStatusItem('jupyter-gpu-panel:status', {
        item,
        align: 'left',
        rank: 100,
        isActive: () => settings.statusBar,
        activeStateChanged: settingsChanged
      });
      settingsChanged.connect(() => item.update());
    }

    store.start();
  }
};

export default plugin;
